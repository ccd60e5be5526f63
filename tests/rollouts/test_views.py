"""Console pages: the rollouts list, a rollout's page with its controls and approval panel, the managers' queue."""

from __future__ import annotations

import pytest
from django.test import Client

from rollouts.models import Rollout
from rollouts.services import promotion_request, rollout_create, rollout_start
from tests.rollouts.conftest import draft, serve, started

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_list_shows_state_split_and_recommendation(setup):
    rollout = started(setup)
    serve(rollout, "champion", 190)
    serve(rollout, "challenger", 10)
    page = client_for(setup.officer).get("/rollouts/").content.decode()
    assert f'data-rollout="{rollout.pk}"' in page and 'data-state="running"' in page
    assert 'value="5.00"' in page and "to the challenger" in page and "keep going" in page
    assert "New rollout" not in page  # officers read; engineers draft
    assert "New rollout" in client_for(setup.engineer).get("/rollouts/").content.decode()


def test_a_rollout_page_shows_statistics_charts_guardrails_and_the_recommendation(setup):
    rollout = started(setup, plan=[50])
    serve(rollout, "champion", 400, successes=120)
    serve(rollout, "challenger", 400, successes=150)
    page = client_for(setup.officer).get(f"/rollouts/{rollout.pk}/").content.decode()
    for part in ('id="recommendation"', 'id="arm-table"', 'id="tests"', 'id="guardrails"', 'id="plan"', 'id="serving"'):
        assert part in page
    assert 'data-chart="chart-traffic-data"' in page and 'id="chart-metric-data"' in page
    assert "vendor/plotly.min.js" in page and "<script>" not in page  # data by json_script, code from static/
    assert "Always-valid" in page or "always-valid" in page
    assert 'id="controls"' in page and "control-rollback" not in page  # officers see no controls


def test_controls_follow_the_state_and_the_role(setup):
    rollout = draft(setup)
    engineer = client_for(setup.engineer).get(f"/rollouts/{rollout.pk}/").content.decode()
    assert 'id="control-start"' in engineer and 'id="control-abort"' in engineer
    assert 'id="control-start"' not in client_for(setup.manager).get(f"/rollouts/{rollout.pk}/").content.decode()
    client_for(setup.engineer).post(f"/rollouts/{rollout.pk}/start/")
    engineer = client_for(setup.engineer).get(f"/rollouts/{rollout.pk}/").content.decode()
    for control in ("control-advance", "control-pause", "control-rollback", "control-promotion"):
        assert f'id="{control}"' in engineer
    manager = client_for(setup.manager).get(f"/rollouts/{rollout.pk}/").content.decode()
    assert 'id="control-pause"' in manager and 'id="control-advance"' not in manager


def test_a_refused_control_says_why_on_the_page(setup):
    rollout = started(setup, plan=[{"share": 5, "min_minutes": 60}, 50])
    response = client_for(setup.engineer).post(f"/rollouts/{rollout.pk}/advance/", follow=True)
    assert "minimums are not met" in response.content.decode()
    assert Rollout.objects.get(pk=rollout.pk).step_index == 0
    response = client_for(setup.engineer).post(
        f"/rollouts/{rollout.pk}/advance/", {"override_reason": "signed off in RISK-7"}, follow=True
    )
    assert "Advanced to the next step." in response.content.decode()


def test_the_approval_panel_for_a_manager_and_for_the_requester(setup):
    rollout = started(setup, plan=[50])
    promotion_request(rollout=rollout, actor=setup.engineer, comment="ready")
    manager = client_for(setup.manager).get(f"/rollouts/{rollout.pk}/").content.decode()
    assert 'id="approve-form"' in manager and 'id="override-reason"' in manager  # parity is unmet
    assert 'data-requirement="parity" data-status="unmet"' in manager
    response = client_for(setup.manager).post(
        f"/rollouts/{rollout.pk}/promotion/approve/", {"comment": "ok"}, follow=True
    )
    assert "Requirements not met" in response.content.decode()
    assert Rollout.objects.get(pk=rollout.pk).state == "awaiting_approval"


def test_a_manager_sees_no_approve_button_on_their_own_request(setup):
    rollout = started(setup, plan=[50])
    promotion_request(rollout=rollout, actor=setup.manager)
    page = client_for(setup.manager).get(f"/rollouts/{rollout.pk}/").content.decode()
    assert 'id="own-request"' in page and 'id="approve-form"' not in page
    response = client_for(setup.manager).post(
        f"/rollouts/{rollout.pk}/promotion/approve/", {"override_reason": "x"}, follow=True
    )
    assert "another manager must approve it" in response.content.decode()


def test_the_managers_home_page_loads_their_approval_queue(setup):
    rollout = started(setup, plan=[50])
    promotion_request(rollout=rollout, actor=setup.engineer)
    home = client_for(setup.manager).get("/").content.decode()
    assert 'id="approval-queue-panel"' in home
    assert 'id="approval-queue-panel"' not in client_for(setup.engineer).get("/").content.decode()
    panel = client_for(setup.manager).get("/rollouts/approvals/panel/").content.decode()
    assert f"/rollouts/{rollout.pk}/#approval" in panel and "asked by erin" in panel
    # A request a manager made themselves is not in their own queue, only in the other managers'.
    from models_registry.services import alias_set, model_create
    from tests.rollouts.conftest import ready_version

    fraud = model_create(name="fraud", owner=setup.engineer)
    alias_set(model=fraud, alias="champion", version=ready_version(fraud, "1", setup.engineer), actor=setup.manager)
    mine = rollout_start(
        rollout=rollout_create(
            model=fraud, challenger=ready_version(fraud, "2", setup.engineer, seed=1), plan=[10], actor=setup.engineer
        ),
        actor=setup.engineer,
    )
    promotion_request(rollout=mine, actor=setup.manager)
    assert f"/rollouts/{mine.pk}/" not in client_for(setup.manager).get("/rollouts/approvals/panel/").content.decode()
    assert f"/rollouts/{mine.pk}/" in client_for(setup.other_manager).get("/rollouts/approvals/panel/").content.decode()


def test_an_engineer_drafts_a_rollout_from_the_form(setup):
    client = client_for(setup.engineer)
    assert client.get("/rollouts/new/?model=credit-risk").status_code == 200
    bad = client.post(
        "/rollouts/new/",
        {
            "model": "credit-risk",
            "challenger": "1.1.0",
            "plan": "50, 10",
            "advance_mode": "manual",
            "unit_key": "user",
            "primary_metric": "success",
        },
    )
    assert bad.status_code == 200 and "shares must rise" in bad.content.decode()
    response = client.post(
        "/rollouts/new/",
        {
            "model": "credit-risk",
            "challenger": "1.1.0",
            "plan": "5, 25%, 100",
            "advance_mode": "manual",
            "unit_key": "account",
            "primary_metric": "value",
            "lower_is_better": "on",
            "guardrails": '{"min_samples": 500}',
        },
    )
    rollout = Rollout.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/rollouts/{rollout.pk}/"
    assert [s["share"] for s in rollout.plan] == [5.0, 25.0, 100.0]
    assert rollout.primary_metric["higher_is_better"] is False and rollout.guardrails["min_samples"] == 500
