"""An engineer sets up alerting in a real Chromium: adds a signed webhook (the form shows the secret field its kind
needs), sends a test that a real worker delivers to a local receiver while the page follows its attempts, adds and
deletes a rule (asked first), and reads an alert with its deliveries; no page breaks the Content-Security-Policy."""

from __future__ import annotations

import os
import re

import pytest

from governance.models import AlertDestination, AlertRule
from governance.services.alerts import alert_rules_evaluate
from tests.e2e.conftest import log_in
from tests.e2e.test_csp import RECORD_VIOLATIONS, violations, visit
from tests.governance.alert_helpers import make_version, start_receiver, verify_signature
from tests.governance.test_alert_rules import drift_result

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.services]

SECRET = "e2e-signing-secret-0123456789abcdef"
SHOTS = os.environ.get("FORGE_E2E_SCREENSHOTS")  # a folder: save what the pages look like, for a person to review


def shot(page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"alerts-{name}.png"), full_page=True)


@pytest.fixture
def watched(page) -> dict[str, list[str]]:
    """CSP violations, recorded as tests/e2e/test_csp.py records them."""
    seen: dict[str, list[str]] = {"events": [], "console": []}
    page.context.add_init_script(RECORD_VIOLATIONS)
    page.on("console", lambda m: "Content Security Policy" in m.text and seen["console"].append(m.text))
    return seen


@pytest.fixture
def receiver(settings):
    settings.FORGE_ALERT_ALLOW_LOOPBACK = True
    server = start_receiver()
    yield server
    server.close()


def test_an_engineer_sets_up_a_destination_tests_it_and_reads_an_alert(
    celery_worker,
    page,
    watched,
    live_server,
    engineer,
    receiver,
):
    version = make_version(owner=engineer)
    log_in(page, live_server, engineer)
    base = live_server.url

    visit(page, f"{base}/alerts/destinations/new/")
    page.select_option("#id_kind", "webhook")
    assert page.is_visible("#id_signing_secret") and not page.is_visible("#id_routing_key")
    page.select_option("#id_kind", "pagerduty")
    assert page.is_visible("#id_routing_key") and not page.is_visible("#id_signing_secret")
    page.select_option("#id_kind", "webhook")
    page.fill("#id_name", "local receiver")
    page.fill("#id_url", receiver.url("/forge"))
    page.fill("#id_signing_secret", SECRET)
    shot(page, "destination-form")
    page.click("#destination-form button[type=submit]")
    page.wait_for_url(re.compile(r"/alerts/destinations/[0-9]+/$"))
    destination = AlertDestination.objects.get(name="local receiver")
    assert page.url == f"{base}/alerts/destinations/{destination.pk}/"
    assert SECRET not in page.content() and "/forge" not in page.inner_text("#destination-facts")

    page.click("#send-test")
    page.wait_for_selector("#delivery-log [data-status=delivered]", timeout=60_000)  # htmx polls until it is
    assert page.inner_text("#delivery-log [data-attempt='1'] td:nth-child(4)") == "200"
    [request] = receiver.received
    assert request.headers["X-Forge-Event"] == "alert.test" and verify_signature(SECRET, request.headers, request.body)
    shot(page, "destination-detail")

    visit(page, f"{base}/alerts/rules/new/")
    page.fill("#id_name", "credit drift")
    page.select_option("#id_model", "credit-risk")
    page.fill("#id_metric", "drift_share")
    page.select_option("#id_comparison", "gte")
    page.fill("#id_threshold", "0.5")
    page.select_option("#id_severity", "critical")
    shot(page, "rule-form")
    page.click("main form.form button[type=submit]")
    page.wait_for_url(f"{base}/alerts/rules/")
    rule = AlertRule.objects.get(name="credit drift")
    assert "drift_share >= 0.5" in page.inner_text("#rule-table")

    [alert] = alert_rules_evaluate(version=version, kind="drift", result=drift_result({"income": (0.3, True)}))
    visit(page, f"{base}/alerts/?model=credit-risk")
    assert page.is_visible(f"[data-alert='{alert.pk}'][data-status=firing]")
    shot(page, "history")
    page.click(f"[data-alert='{alert.pk}'] a.cell-title")
    page.wait_for_url(f"{base}/alerts/{alert.pk}/")
    page.wait_for_selector("#delivery-log [data-status=delivered]", timeout=60_000)
    assert "credit drift" in page.inner_text("#alert-facts")
    shot(page, "alert-detail")

    visit(page, f"{base}/alerts/rules/{rule.pk}/delete/")
    page.click("#confirm-delete button[type=submit]")
    page.wait_for_url(f"{base}/alerts/rules/")
    assert not AlertRule.objects.filter(pk=rule.pk).exists()
    assert violations(page, watched) == []
