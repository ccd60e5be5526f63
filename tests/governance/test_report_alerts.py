"""Reports cite alerting: the rules that watch the scope, and each alert open in the period (fired by a rule on a
drift result, or raised by a rollout guardrail) with how long it fired and where it was delivered, through a real
local webhook receiver; a delivery that failed counts against, an alert that reached nobody is a gap."""

from __future__ import annotations

import re

import pytest

from governance.models import Alert, AlertDelivery, Report
from governance.reports.pdf import render_pdf
from governance.selectors.reports import report_content
from governance.services.alert_destinations import alert_destination_create
from governance.services.alerts import alert_raise, alert_resolve, alert_rule_create, alert_rules_evaluate
from governance.services.reports import report_create, report_finalize
from tests.governance.alert_helpers import make_version, run_delivery, start_receiver
from tests.governance.test_alert_rules import drift_result
from tests.governance.test_report_monitoring import of_kind, sub
from tests.governance.test_report_pdf import pdftotext

pytestmark = pytest.mark.django_db
SECRET = "whsec-0123456789abcdef-signing"


@pytest.fixture(autouse=True)
def alert_settings(settings):
    settings.FORGE_ALERT_ALLOW_LOOPBACK = True
    settings.FORGE_ALERT_READ_TIMEOUT_S = 0.5
    settings.FORGE_ALERT_RETRY_BASE_S = 0.0
    settings.FORGE_ALERT_MAX_ATTEMPTS = 2
    return settings


@pytest.fixture
def receiver():
    server = start_receiver()
    yield server
    server.close()


@pytest.fixture
def alerted(engineer, receiver):
    """credit-risk 1.0.0 watched by a drift-share rule and a webhook: the rule fired on a drift result, was delivered
    and resolved when the drift cleared; a guardrail alert whose two delivery attempts failed; an alert raised
    before any destination existed."""
    version = make_version(owner=engineer)
    lonely = alert_raise(
        model=version.model,
        version=version,
        source="rollout",
        metric="p95_latency_ratio",
        feature=None,
        value=2.1,
        threshold=1.5,
        comparison="gt",
        severity="warning",
        message="challenger p95 latency 2.1x the champion's",
        dedup_key="rollout:1:p95_latency_ratio",
    )
    alert_destination_create(
        actor=engineer, name="ops hook", kind="webhook", url=receiver.url("/ops"), signing_secret=SECRET
    )
    rule = alert_rule_create(
        actor=engineer,
        name="credit drift",
        metric="drift_share",
        comparison="gte",
        threshold=0.5,
        severity="critical",
        model=version.model,
    )
    [drifted] = alert_rules_evaluate(version=version, kind="drift", result=drift_result({"income": (0.3, True)}))
    run_delivery(AlertDelivery.objects.get(alert=drifted, event="fire").pk)
    alert_rules_evaluate(version=version, kind="drift", result=drift_result({"income": (0.01, False)}))
    receiver.answer((500, {}, b"down"), (500, {}, b"still down"))
    failed = alert_raise(
        model=version.model,
        version=version,
        source="rollout",
        metric="error_rate",
        feature=None,
        value=0.12,
        threshold=0.05,
        comparison="gt",
        severity="critical",
        message="challenger error rate 12% > 5%",
        dedup_key="rollout:1:error_rate",
    )
    run_delivery(AlertDelivery.objects.get(alert=failed, event="fire").pk)
    alert_resolve(dedup_key="rollout:1:error_rate", message="rolled back")
    return version, rule, Alert.objects.get(pk=drifted.pk), Alert.objects.get(pk=failed.pk), lonely


def test_each_alert_says_what_fired_how_long_and_where_it_went(officer, alerted):
    version, rule, drifted, failed, lonely = alerted
    assert drifted.status == "resolved" and failed.status == "resolved" and lonely.status == "firing"
    content = report_content(report_create(actor=officer, model=version.model, start="2020-01-01", end="2030-12-31"))
    items = {item["key"]: item for item in of_kind(content, "alerts")}
    assert items[f"alert-rule:{rule.pk}"]["summary"].startswith(
        "alert rule credit drift on credit-risk: drift_share >= 0.5, critical, enabled"
    )
    first = items[f"alert:{drifted.pk}"]
    assert re.search(
        r"critical alert #\d+ on credit-risk 1\.0\.0 \(credit drift\): drift_share 1 >= 0\.5", first["summary"]
    )
    assert "resolved after 0 min" in first["summary"] and "sent to ops hook (delivered)" in first["summary"]
    assert first["ok"] is True and first["values"]["deliveries"][0]["status"] == "delivered"
    second = items[f"alert:{failed.pk}"]
    assert "sent to ops hook (failed, 2 attempts)" in second["summary"] and second["ok"] is False
    third = items[f"alert:{lonely.pk}"]
    assert "still firing" in third["summary"] and "sent to no destination" in third["summary"]
    manage_43 = sub(content, "MANAGE 4.3")
    assert manage_43["status"] == "partially_met"
    assert f"alert #{lonely.pk} (p95_latency_ratio) reached no destination" in manage_43["reason"]
    assert f"some evidence fails (critical alert #{failed.pk} on credit-risk 1.0.0" in manage_43["reason"]
    assert "does not record" not in sub(content, "MEASURE 2.4")["reason"]


def test_alerts_of_other_models_and_outside_the_period_stay_out(officer, alerted, engineer):
    version, *_ = alerted
    other = make_version(name="fraud", owner=engineer)
    content = report_content(report_create(actor=officer, model=other.model, start="2020-01-01", end="2030-12-31"))
    assert [item for item in of_kind(content, "alerts") if item["key"].startswith("alert:")] == []
    before = report_content(report_create(actor=officer, model=version.model, start="2020-01-01", end="2020-12-31"))
    assert of_kind(before, "alerts") == []
    assert sub(before, "MANAGE 4.3")["status"] == "attestation_required"


def test_the_pdf_lists_the_alerts(officer, alerted):
    version, _, drifted, *_ = alerted
    report = report_create(actor=officer, model=version.model, start="2020-01-01", end="2030-12-31")
    report, _ = report_finalize(report=report, actor=officer)
    report = Report.objects.get(pk=report.pk)
    text = re.sub(r"\s+", " ", pdftotext(render_pdf(report.snapshot, report.snapshot_sha256, "a4").data))
    assert f"critical alert #{drifted.pk} on credit-risk 1.0.0 (credit drift)" in text
    assert "Forge does not record alerts" not in text
