"""Alert rules judged on drift and fairness results: firing once, the cool-down, resolving when it clears, the
lookback, per-feature metrics, the monitor hook, beat's pass, and alert_raise as rollouts call it."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import timezone

from forge_site.models import AuditEvent
from governance.models import Alert, AlertDelivery, AlertEvidence, AlertStatus, DeliveryEvent
from governance.services.alert_destinations import AlertConfigError, alert_destination_create
from governance.services.alerts import (
    alert_raise,
    alert_resolve,
    alert_rule_create,
    alert_rule_delete,
    alert_rule_update,
    alert_rules_evaluate,
    alert_rules_evaluate_due,
    alert_rules_monitor_hook,
    rule_dedup_key,
)
from tests.concurrency import at_once, postgres_only
from tests.governance.alert_helpers import make_version

pytestmark = pytest.mark.django_db


def drift_result(features: dict[str, tuple[float, bool]], *, prediction: float | None = None) -> dict[str, Any]:
    """A drift job result in the shape of issue 12 (statistic and verdict per feature)."""
    entries = [
        {
            "name": name,
            "kind": "numeric",
            "method": "wasserstein",
            "statistic": stat,
            "p_value": None,
            "threshold": 0.1,
            "drifted": drifted,
            "psi": stat * 2,
        }
        for name, (stat, drifted) in features.items()
    ]
    drifted = sum(1 for _, flag in features.values() if flag)
    result: dict[str, Any] = {
        "features": entries,
        "dataset": {"drifted_share": drifted / len(entries), "drifted": drifted / len(entries) >= 0.5},
        "rows": {"reference": 5000, "current": 1200},
        "prediction": None,
    }
    if prediction is not None:
        result["prediction"] = {"name": "prediction", "statistic": prediction, "drifted": prediction >= 0.1}
    return result


def fairness_result(ratios: dict[str, float]) -> dict[str, Any]:
    """Fairness reports per segment attribute, as governance.drift.fairness.fairness_report shapes them."""
    return {
        "attributes": [
            {
                "attribute": name,
                "demographic_parity_ratio": ratio,
                "demographic_parity_difference": 1 - ratio,
                "equalized_odds_gap": None,
                "segments": [],
                "breaches": [],
            }
            for name, ratio in ratios.items()
        ]
    }


@pytest.fixture
def version(engineer):
    return make_version(owner=engineer)


@pytest.fixture
def pager(engineer, settings, monkeypatch):
    monkeypatch.setattr("governance.services.alert_destinations.resolve_host", lambda host, port: ["93.184.215.14"])
    return alert_destination_create(
        actor=engineer, name="on-call", kind="pagerduty", routing_key="R0UT1NGKEY0123456789abcdefABCDEF"
    )


def share_rule(engineer, **kwargs):
    fields = {
        "name": "credit drift",
        "metric": "drift_share",
        "comparison": "gte",
        "threshold": 0.5,
        "severity": "critical",
        "cooldown_minutes": 60,
        **kwargs,
    }
    return alert_rule_create(actor=engineer, **fields)


def test_a_rule_fires_once_while_it_holds_and_resolves_when_it_clears(engineer, version, pager):
    rule = share_rule(engineer, model=version.model)
    now = timezone.now()
    half = drift_result({"income": (0.3, True), "age": (0.01, False)})
    [alert] = alert_rules_evaluate(version=version, kind="drift", result=half, now=now)
    assert (alert.source, alert.metric, alert.value, alert.threshold, alert.severity, alert.rule) == (
        "rule",
        "drift_share",
        0.5,
        0.5,
        "critical",
        rule,
    )
    assert alert.message == "credit drift: Share of drifted features (dataset drift) is 0.5 (>= 0.5)"
    fire = AuditEvent.objects.get(action="alert.fire")
    assert fire.object_type == "governance.alert" and fire.object_id == str(alert.pk)
    assert {k: fire.after[k] for k in ("rule", "metric", "feature", "value", "threshold", "severity")} == {
        "rule": "credit drift",
        "metric": "drift_share",
        "feature": None,
        "value": 0.5,
        "threshold": 0.5,
        "severity": "critical",
    }
    assert fire.after["model"] == "credit-risk" and fire.after["version"] == "1.0.0"
    # Still breaching a minute later: the open alert is seen again, nothing new fires or is sent.
    worse = drift_result({"income": (0.3, True), "age": (0.2, True)})
    assert alert_rules_evaluate(version=version, kind="drift", result=worse, now=now + dt.timedelta(minutes=1)) == []
    alert.refresh_from_db()
    assert alert.last_seen_at == now + dt.timedelta(minutes=1) and alert.details["last_value"] == 1.0
    assert Alert.objects.count() == 1 and AlertDelivery.objects.filter(event="fire").count() == 1
    # It clears: resolved, audited, and PagerDuty is told with a resolve.
    calm = drift_result({"income": (0.02, False), "age": (0.01, False)})
    alert_rules_evaluate(version=version, kind="drift", result=calm, now=now + dt.timedelta(minutes=2))
    alert.refresh_from_db()
    assert alert.status == AlertStatus.RESOLVED and alert.resolve_value == 0.0
    assert alert.resolve_message == "cleared: Share of drifted features (dataset drift) is 0"
    resolve = AuditEvent.objects.get(action="alert.resolve")
    assert resolve.after["value"] == 0.0 and resolve.after["metric"] == "drift_share"
    assert AlertDelivery.objects.get(alert=alert, event=DeliveryEvent.RESOLVE).destination == pager


def test_the_cool_down_holds_back_a_second_alert_for_the_same_version(engineer, version):
    share_rule(engineer, cooldown_minutes=60)
    breach = drift_result({"income": (0.3, True)})
    calm = drift_result({"income": (0.01, False)})
    start = timezone.now()

    def at(minutes: int, result: dict[str, Any]) -> list[Alert]:
        return alert_rules_evaluate(
            version=version, kind="drift", result=result, now=start + dt.timedelta(minutes=minutes)
        )

    assert len(at(0, breach)) == 1
    at(5, calm)
    assert at(10, breach) == []  # cleared and back within the cool-down: quiet
    assert len(at(61, breach)) == 1  # after the cool-down it fires again
    other = make_version(version="2.0.0")
    assert len(alert_rules_evaluate(version=other, kind="drift", result=breach, now=start)) == 1  # per version


def test_any_feature_fires_on_the_worst_and_names_the_others(engineer, version):
    alert_rule_create(actor=engineer, name="feature drift", metric="feature_drift", threshold=0.1, severity="warning")
    result = drift_result({"income": (0.25, True), "age": (0.4, True), "tenure": (0.15, True), "zip": (0.01, False)})
    [alert] = alert_rules_evaluate(version=version, kind="drift", result=result)
    assert (alert.feature, alert.value) == ("age", 0.4)
    assert alert.message.endswith("of age is 0.4 (> 0.1); 3 breach: income, age, tenure")
    assert alert.details["breaching_count"] == 3
    assert {row["feature"] for row in alert.details["breaching"]} == {"income", "age", "tenure"}


def test_a_rule_on_one_feature_ignores_the_others_and_lower_is_worse_for_less_than(engineer, version):
    alert_rule_create(actor=engineer, name="zip only", metric="feature_drift", feature="zip", threshold=0.1)
    alert_rule_create(actor=engineer, name="p low", metric="feature_p_value", comparison="lt", threshold=0.05)
    result = drift_result({"income": (0.9, True), "zip": (0.05, False)})
    result["features"][0]["p_value"], result["features"][1]["p_value"] = 0.001, 0.02
    [alert] = alert_rules_evaluate(version=version, kind="drift", result=result)
    assert (alert.rule_name, alert.feature, alert.value) == ("p low", "income", 0.001)


def test_a_result_about_data_older_than_the_lookback_is_not_judged(engineer, version):
    share_rule(engineer, lookback_minutes=60)
    old = timezone.now() - dt.timedelta(hours=3)
    assert (
        alert_rules_evaluate(version=version, kind="drift", result=drift_result({"a": (1, True)}), window_end=old) == []
    )
    assert alert_rules_evaluate(version=version, kind="drift", result=drift_result({"a": (1, True)})) != []


def test_fairness_rules_judge_each_segment_attribute(engineer, version):
    alert_rule_create(
        actor=engineer, name="four fifths", metric="demographic_parity_ratio", comparison="lt", threshold=0.8
    )
    [alert] = alert_rules_evaluate(
        version=version, kind="fairness", result=fairness_result({"sex": 0.92, "age_band": 0.61})
    )
    assert (alert.metric, alert.feature, alert.value, alert.comparison) == (
        "demographic_parity_ratio",
        "age_band",
        0.61,
        "lt",
    )
    assert alert_rules_evaluate(version=version, kind="drift", result=drift_result({"a": (1, True)})) == []


def test_custom_paths_reach_any_number_of_a_result(engineer, version):
    alert_rule_create(actor=engineer, name="psi", metric="drift:features.psi", threshold=0.2)
    alert_rule_create(actor=engineer, name="volume", metric="drift:rows.current", comparison="lt", threshold=2000)
    fired = alert_rules_evaluate(version=version, kind="drift", result=drift_result({"income": (0.3, True)}))
    assert sorted((a.rule_name, a.feature, a.value) for a in fired) == [("psi", "income", 0.6), ("volume", "", 1200.0)]


def test_results_that_hold_nonsense_are_skipped_not_raised(engineer, version):
    share_rule(engineer)
    alert_rule_create(actor=engineer, name="features", metric="feature_drift", threshold=0.1)
    for junk in (
        {},
        {"features": "x", "dataset": []},
        {"features": [{"name": "a", "statistic": "high"}]},
        {"dataset": {"drifted_share": float("nan")}},
        [1, 2],
    ):
        assert alert_rules_evaluate(version=version, kind="drift", result=junk) == []
    with pytest.raises(ValueError):
        alert_rules_evaluate(version=version, kind="latency", result={})


def test_the_monitor_hook_judges_drift_and_fairness_of_a_monitors_job(engineer, version):
    share_rule(engineer)
    alert_rule_create(actor=engineer, name="parity", metric="demographic_parity_ratio", comparison="lt", threshold=0.8)
    end = timezone.now().replace(microsecond=0)
    result = {**drift_result({"a": (1, True)}), "fairness": fairness_result({"sex": 0.5})}
    job = SimpleNamespace(
        pk="3f1e8a52-0000-4000-8000-000000000001",
        params={"window": {"start": (end - dt.timedelta(hours=24)).isoformat(), "end": end.isoformat()}},
        result=result,
    )
    fired = alert_rules_monitor_hook(monitor=SimpleNamespace(version=version), job=job)
    assert sorted(a.rule_name for a in fired) == ["credit drift", "parity"]
    assert all(a.details["job_id"] == job.pk for a in fired)
    assert {e.kind: e.window_end for e in AlertEvidence.objects.all()} == {"drift": end, "fairness": end}


def test_beat_judges_a_rule_made_after_the_result_and_refires_after_the_cool_down(engineer, version):
    now = timezone.now()
    alert_rules_evaluate(version=version, kind="drift", result=drift_result({"a": (1, True)}), now=now)
    assert Alert.objects.count() == 0  # no rule yet
    rule = share_rule(engineer, cooldown_minutes=30, lookback_minutes=120)
    assert alert_rules_evaluate_due(now=now + dt.timedelta(minutes=1)) == 1
    alert_resolve(dedup_key=rule_dedup_key(rule, version), message="acknowledged by hand")
    assert alert_rules_evaluate_due(now=now + dt.timedelta(minutes=10)) == 0  # cooling down
    assert alert_rules_evaluate_due(now=now + dt.timedelta(minutes=40)) == 1
    assert alert_rules_evaluate_due(now=now + dt.timedelta(minutes=200)) == 0  # the evidence is past the lookback


def test_switching_a_rule_off_or_deleting_it_resolves_its_alerts_and_keeps_its_name(engineer, version):
    rule = share_rule(engineer)
    [first] = alert_rules_evaluate(version=version, kind="drift", result=drift_result({"a": (1, True)}))
    alert_rule_update(rule=rule, actor=engineer, enabled=False)
    first.refresh_from_db()
    assert first.status == "resolved" and first.resolve_message == "the rule was switched off"
    alert_rule_update(rule=rule, actor=engineer, enabled=True, cooldown_minutes=0)
    [second] = alert_rules_evaluate(version=version, kind="drift", result=drift_result({"a": (1, True)}))
    alert_rule_delete(rule=rule, actor=engineer)
    second.refresh_from_db()
    assert (second.status, second.rule, second.rule_name) == ("resolved", None, "credit drift")
    assert second.resolve_message == "the rule was deleted"
    actions = list(
        AuditEvent.objects.filter(action__startswith="alert_rule.").order_by("seq").values_list("action", flat=True)
    )
    assert actions == ["alert_rule.create", "alert_rule.update", "alert_rule.update", "alert_rule.delete"]
    update = AuditEvent.objects.filter(action="alert_rule.update").order_by("seq").first()
    assert update.before["enabled"] is True and update.after["enabled"] is False


@pytest.mark.parametrize(
    ("fields", "field", "status"),
    [
        ({"metric": "latency"}, "metric", 400),
        ({"metric": "drift_share", "feature": "income"}, "feature", 422),
        ({"threshold": float("inf")}, "threshold", 400),
        ({"comparison": "!="}, "comparison", 400),
        ({"lookback_minutes": 0}, "lookback_minutes", 400),
        ({"name": " padded "}, "name", 400),
    ],
)
def test_a_rule_that_cannot_be_judged_is_refused(engineer, fields, field, status):
    with pytest.raises(AlertConfigError) as caught:
        alert_rule_create(actor=engineer, **{"name": "r", "metric": "drift_share", "threshold": 0.5, **fields})
    assert (caught.value.field, caught.value.status) == (field, status)


def test_rollouts_raise_with_their_own_key_and_cool_down(engineer, version, settings):
    settings.FORGE_ALERT_DEFAULT_COOLDOWN_S = 600
    kwargs = dict(
        model=version.model,
        version=version,
        source="rollout",
        metric="error_rate",
        feature=None,
        value=0.2,
        threshold=0.05,
        severity="critical",
        message="guardrail",
        dedup_key="rollout:7:error_rate",
    )
    now = timezone.now()
    first = alert_raise(**kwargs, now=now)
    assert first is not None and first.rule is None and first.source == "rollout"
    assert alert_raise(**kwargs, now=now) is None  # already open
    alert_resolve(dedup_key="rollout:7:error_rate", value=0.01, now=now)
    assert alert_raise(**kwargs, now=now + dt.timedelta(seconds=599)) is None
    assert alert_raise(**kwargs, now=now + dt.timedelta(seconds=601)) is not None
    assert alert_raise(**{**kwargs, "dedup_key": "rollout:8:error_rate"}, cooldown_s=0, now=now) is not None
    with pytest.raises(ValueError):
        alert_raise(**{**kwargs, "severity": "urgent"})
    with pytest.raises(ValueError):
        alert_raise(**{**kwargs, "value": float("nan")})


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_raisers_at_once_fire_one_alert(engineer):
    version = make_version(owner=engineer)
    errors = at_once(
        lambda: alert_raise(
            model=version.model,
            version=version,
            source="rollout",
            metric="m",
            feature=None,
            value=1.0,
            threshold=0.5,
            severity="warning",
            message="m",
            dedup_key="race",
        ),
        count=6,
    )
    assert errors == []
    assert Alert.objects.filter(dedup_key="race").count() == 1
    assert AuditEvent.objects.filter(action="alert.fire").count() == 1
