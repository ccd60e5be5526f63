"""The alert pages: forms that validate and never render a secret back, confirm before delete, send-test, the
history with delivery attempts, the section the monitoring page includes, and who sees which buttons."""

from __future__ import annotations

import re

import pytest
from django.template.loader import render_to_string
from django.test import Client

from governance.models import AlertDestination, AlertRule
from governance.selectors.alerts import alerts_section
from governance.services.alert_destinations import alert_destination_create, destination_secrets
from governance.services.alerts import alert_rule_create, alert_rules_evaluate
from tests.governance.alert_helpers import make_version, run_delivery, start_receiver
from tests.governance.test_alert_rules import drift_result

pytestmark = pytest.mark.django_db

SLACK_URL = "https://hooks.example.com/services/T0AAAA/B0BBBB/xoxbSECRETtoken123"
ROUTING_KEY = "R0UT1NGKEY0123456789abcdefSECRET"
SIGNING = "whsec-SIGNING-0123456789-secret"


@pytest.fixture(autouse=True)
def dns(monkeypatch, settings):
    settings.FORGE_ALERT_ALLOW_LOOPBACK = True
    settings.FORGE_ALERT_RETRY_BASE_S = 0.0
    answers = {
        "hooks.example.com": ["93.184.215.14"],
        "events.pagerduty.com": ["93.184.215.15"],
        "inside.example.com": ["192.168.7.7"],
    }
    monkeypatch.setattr("governance.services.alert_destinations.resolve_host", lambda host, port: answers.get(host, []))


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def html(response) -> str:
    return response.content.decode()


def assert_secret_free(page: str) -> None:
    for secret in (SLACK_URL, "xoxbSECRETtoken123", ROUTING_KEY, "0123456789abcdefSECRET", SIGNING):
        assert secret not in page


def test_a_destination_made_in_the_form_never_shows_its_secrets_again(engineer):
    erin = client_for(engineer)
    form = erin.get("/alerts/destinations/new/")
    assert form.status_code == 200 and 'name="routing_key"' in html(form)
    made = erin.post(
        "/alerts/destinations/new/",
        {"name": "ops", "kind": "slack", "url": SLACK_URL, "min_severity": "warning", "enabled": "on"},
    )
    destination = AlertDestination.objects.get(name="ops")
    assert made.status_code == 302 and made["Location"] == f"/alerts/destinations/{destination.pk}/"
    for path in (
        "/alerts/destinations/",
        f"/alerts/destinations/{destination.pk}/",
        f"/alerts/destinations/{destination.pk}/edit/",
    ):
        page = erin.get(path)
        assert page.status_code == 200
        assert_secret_free(html(page))
    assert "https://hooks.example.com/…" in html(erin.get(f"/alerts/destinations/{destination.pk}/"))
    pager = alert_destination_create(actor=engineer, name="pager", kind="pagerduty", routing_key=ROUTING_KEY)
    edit = html(erin.get(f"/alerts/destinations/{pager.pk}/edit/"))
    assert_secret_free(edit)
    assert re.search(r'<input type="password" name="routing_key"[^>]*>', edit)
    assert not re.search(r'name="routing_key"[^>]*value=', edit) and not re.search(r'name="url"[^>]*value=', edit)
    assert "saved: …CRET" in edit
    # Saving the edit form with the secret left empty keeps the saved one.
    kept = erin.post(f"/alerts/destinations/{pager.pk}/edit/", {"name": "pager 2", "min_severity": "critical"})
    assert kept.status_code == 302
    pager.refresh_from_db()
    assert pager.name == "pager 2" and destination_secrets(pager)[1] == ROUTING_KEY and not pager.enabled


def test_a_refused_form_says_why_on_the_field_and_does_not_echo_what_was_typed(engineer):
    erin = client_for(engineer)
    private = "https://inside.example.com/hook/SECRETPATH"
    response = erin.post(
        "/alerts/destinations/new/",
        {"name": "bad", "kind": "webhook", "url": private, "signing_secret": SIGNING, "min_severity": "info"},
    )
    page = html(response)
    assert response.status_code == 400
    assert "192.168.7.7 is a private address" in page
    assert 'data-error-for="url"' in page and "SECRETPATH" not in page and SIGNING not in page
    missing = html(erin.post("/alerts/destinations/new/", {"name": "pd", "kind": "pagerduty", "min_severity": "info"}))
    assert "Give the integration&#x27;s routing key." in missing
    assert not AlertDestination.objects.exists()


def test_rules_are_made_in_the_form_and_deleted_after_asking(engineer):
    make_version(owner=engineer)
    erin = client_for(engineer)
    assert 'list="metric-catalog"' in html(erin.get("/alerts/rules/new/"))
    bad = erin.post(
        "/alerts/rules/new/",
        {
            "name": "x",
            "metric": "latency",
            "comparison": "gt",
            "threshold": "1",
            "severity": "info",
            "lookback_minutes": "60",
            "cooldown_minutes": "5",
        },
    )
    assert bad.status_code == 400 and "Unknown metric" in html(bad)
    made = erin.post(
        "/alerts/rules/new/",
        {
            "name": "drift",
            "model": "credit-risk",
            "version": "1.0.0",
            "metric": "drift_share",
            "comparison": "gte",
            "threshold": "0.5",
            "severity": "critical",
            "lookback_minutes": "60",
            "cooldown_minutes": "30",
            "enabled": "on",
        },
    )
    assert made.status_code == 302
    rule = AlertRule.objects.get(name="drift")
    assert (rule.version.version, rule.threshold, rule.comparison) == ("1.0.0", 0.5, "gte")
    listing = html(erin.get("/alerts/rules/"))
    assert "drift_share &gt;= 0.5" in listing and f"/alerts/rules/{rule.pk}/delete/" in listing
    confirm = erin.get(f"/alerts/rules/{rule.pk}/delete/")
    assert confirm.status_code == 200 and 'id="confirm-delete"' in html(confirm)
    assert AlertRule.objects.filter(pk=rule.pk).exists()  # asking deleted nothing
    assert erin.post(f"/alerts/rules/{rule.pk}/delete/").status_code == 302
    assert not AlertRule.objects.filter(pk=rule.pk).exists()


def test_send_test_from_the_page_and_the_attempts_show(engineer):
    receiver = start_receiver()
    try:
        hook = alert_destination_create(actor=engineer, name="local", kind="slack", url=receiver.url("/x"))
        erin = client_for(engineer)
        sent = erin.post(f"/alerts/destinations/{hook.pk}/test/", follow=True)
        page = html(sent)
        assert "is on its way" in page and 'data-live="true"' in page  # polls while the delivery is pending
        delivery = hook.deliveries.get()
        receiver.answer((503, {}, b"try later"))
        run_delivery(delivery.pk)
        page = html(erin.get(f"/alerts/destinations/{hook.pk}/"))
        assert 'data-live="false"' in page
        assert re.search(r'data-attempt="1" data-outcome="retry">.*?503', page, re.S)
        assert re.search(r'data-attempt="2" data-outcome="delivered">.*?200', page, re.S)
        fragment = erin.get(f"/alerts/destinations/{hook.pk}/", HTTP_HX_REQUEST="true")
        assert html(fragment).lstrip().startswith('<div id="delivery-log"')
    finally:
        receiver.close()


def test_the_history_and_an_alert_with_its_deliveries(engineer, officer):
    version = make_version(owner=engineer)
    alert_destination_create(actor=engineer, name="ops", kind="slack", url=SLACK_URL)
    alert_rule_create(actor=engineer, name="features", metric="feature_drift", threshold=0.1, severity="critical")
    [alert] = alert_rules_evaluate(version=version, kind="drift", result=drift_result({"<b>inc</b>": (0.4, True)}))
    olga = client_for(officer)
    listing = html(olga.get("/alerts/?model=credit-risk&status=firing"))
    assert f'data-alert="{alert.pk}" data-status="firing"' in listing
    assert "&lt;b&gt;inc&lt;/b&gt;" in listing and "<b>inc</b>" not in listing  # autoescaped
    assert "data-alert" not in html(olga.get("/alerts/?status=resolved"))
    detail = html(olga.get(f"/alerts/{alert.pk}/"))
    assert "features" in detail and "critical" in detail and 'data-status="pending"' in detail
    assert_secret_free(detail)
    assert "Add a rule" not in html(olga.get("/alerts/rules/")) and "Send a test" not in html(
        olga.get(f"/alerts/destinations/{AlertDestination.objects.get().pk}/")
    )
    assert olga.get("/alerts/rules/new/").status_code == 403
    assert client_for(engineer).get("/alerts/").status_code == 200


def test_the_monitoring_page_section_for_a_version(engineer, rf):
    version = make_version(owner=engineer)
    alert_rule_create(actor=engineer, name="share", metric="drift_share", threshold=0.4, model=version.model)
    alert_rules_evaluate(version=version, kind="drift", result=drift_result({"a": (1, True)}))
    request = rf.get("/")
    request.user = engineer
    page = render_to_string(
        "governance/inc/alerts_section.html", {"section": alerts_section(version=version)}, request=request
    )
    assert 'id="alerts-section" data-firing="1"' in page and "1 firing" in page
    assert "drift_share &gt; 0.4" in page and "/alerts/?model=credit-risk&amp;version=1.0.0" in page
    quiet = make_version(version="2.0.0", owner=engineer)
    empty = render_to_string(
        "governance/inc/alerts_section.html", {"section": alerts_section(version=quiet)}, request=request
    )
    assert "No alert has fired for this version." in empty and 'data-firing="0"' in empty
