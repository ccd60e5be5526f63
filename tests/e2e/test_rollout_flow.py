"""In a real Chromium: an engineer opens a rollout and asks for promotion; a manager approves it from their queue."""

from __future__ import annotations

import re

import pytest

from forge_site.models import AuditEvent
from forge_site.roles import Role
from models_registry.models import AliasAssignment
from models_registry.services import alias_set, model_create
from rollouts.models import PromotionPolicy, Rollout
from tests.conftest import make_user
from tests.e2e.conftest import log_in
from tests.e2e.test_csp import RECORD_VIOLATIONS, violations
from tests.rollouts.conftest import ready_version, serve

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_engineer_asks_for_promotion_and_a_manager_approves_it(browser, live_server):
    from rollouts.services import rollout_create, rollout_start

    engineer = make_user("erin", Role.ENGINEER)
    manager = make_user("mo", Role.MANAGER)
    model = model_create(name="credit-risk", owner=engineer)
    champion = ready_version(model, "1.0.0", engineer, seed=0)
    challenger = ready_version(model, "1.1.0", engineer, seed=1)
    alias_set(model=model, alias="champion", version=champion, actor=manager, reason="first champion")
    PromotionPolicy.objects.create(
        model=model, require_parity=False, benchmark_p95_budget=None, require_no_open_drift_alert=False, min_samples=100
    )
    rollout = rollout_start(
        rollout=rollout_create(model=model, challenger=challenger, plan=[20, 100], actor=engineer), actor=engineer
    )
    serve(rollout, "champion", 800, successes=240)
    serve(rollout, "challenger", 200, successes=64)

    # The engineer opens the rollout from the list and asks for promotion (a confirmed control).
    erin = browser.new_context(viewport={"width": 1280, "height": 900})
    page = erin.new_page()
    log_in(page, live_server, engineer)
    page.click("nav >> text=Rollouts")
    page.click(f"#rollout-table a[href='/rollouts/{rollout.pk}/']")
    assert page.inner_text("h1 .badge") == "Running"
    assert "Nobody has asked for promotion yet." in page.inner_text("#approval")
    page.click("#control-promotion summary")
    page.fill("#control-promotion-reason", "Repayment holds up at 20%.")
    page.click("#control-promotion button[type=submit]")
    page.wait_for_selector(".alert-success")
    assert "a manager decides" in page.inner_text(".alert-success")
    assert page.inner_text("h1 .badge") == "Awaiting approval"
    assert page.locator("#approve-form").count() == 0  # an engineer cannot decide
    erin.close()

    # The manager finds it in the queue on the home page and approves it.
    mo = browser.new_context(viewport={"width": 1280, "height": 900})
    page = mo.new_page()
    log_in(page, live_server, manager)
    queue = page.locator("#approval-queue")
    queue.wait_for()
    assert "asked by erin" in queue.inner_text()
    queue.locator("table a").first.click()
    page.wait_for_url(re.compile(rf"/rollouts/{rollout.pk}/"))
    assert page.get_attribute("[data-requirement='samples']", "data-status") == "met"
    page.fill("#approve-comment", "Evidence is in order.")
    page.click("#control-approve summary")
    page.click("#approve-button")
    page.wait_for_selector(".alert-success")
    assert "champion now" in page.inner_text(".alert-success")
    assert page.inner_text("h1 .badge") == "Promoted"
    mo.close()

    assert Rollout.objects.get(pk=rollout.pk).state == "promoted"
    holder = AliasAssignment.objects.get(model=model, alias="champion", ended_at__isnull=True)
    assert holder.version == challenger and holder.assigned_by == manager
    approval = AuditEvent.objects.get(action="promotion.approve")
    assert approval.actor_label == "mo" and approval.after["comment"] == "Evidence is in order."


def test_the_rollout_pages_draw_their_charts_without_a_csp_violation(page, live_server):
    from rollouts.services import promotion_request, rollout_create, rollout_start

    engineer = make_user("erin", Role.ENGINEER)
    manager = make_user("mo", Role.MANAGER)
    model = model_create(name="credit-risk", owner=engineer)
    champion = ready_version(model, "1.0.0", engineer, seed=0)
    alias_set(model=model, alias="champion", version=champion, actor=manager, reason="first champion")
    rollout = rollout_start(
        rollout=rollout_create(
            model=model, challenger=ready_version(model, "1.1.0", engineer, seed=1), plan=[20], actor=engineer
        ),
        actor=engineer,
    )
    serve(rollout, "champion", 400, successes=120)
    serve(rollout, "challenger", 100, successes=30)
    promotion_request(rollout=rollout, actor=engineer)
    seen: list[str] = []
    page.context.add_init_script(RECORD_VIOLATIONS)
    page.on("console", lambda m: seen.append(m.text) if "Content Security Policy" in m.text else None)
    log_in(page, live_server, manager)
    page.locator("#approval-queue").wait_for()  # the home page's htmx panel
    for url in ("/rollouts/", f"/rollouts/{rollout.pk}/"):
        response = page.goto(f"{live_server.url}{url}")
        assert response is not None and response.ok
    page.locator("#chart-metric.js-plotly-plot").wait_for()
    assert page.locator(".chart.js-plotly-plot").count() == 4
    page.click("#control-approve summary")  # a confirm without script
    assert page.locator("#approve-button").is_visible()
    assert violations(page, {"console": seen}) == []
