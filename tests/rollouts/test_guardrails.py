"""Guardrails (never before the minimum samples) and the recommendation in words."""

from __future__ import annotations

import pytest

from rollouts import stats
from rollouts.aggregates import ArmWindow
from rollouts.guardrails import (
    BREACH,
    KEEP_GOING,
    NOT_AVAILABLE,
    OFF,
    OK,
    PROMOTE,
    ROLL_BACK,
    WAITING,
    ExternalVerdict,
    GuardrailConfig,
    GuardrailReport,
    PrimaryMetric,
    evaluate_guardrails,
    recommend,
)


def arm(requests: int, errors: int = 0, latency_ms: float = 5.0) -> ArmWindow:
    window = ArmWindow()
    for i in range(requests):
        window.record_request(latency_ms * (1 + (i % 10) / 20), error=i < errors)
    return window


def verdict(report: GuardrailReport, name: str):
    return next(v for v in report.verdicts if v.name == name)


def test_nothing_acts_before_the_challenger_has_served_the_minimum():
    report = evaluate_guardrails(arm(5000), arm(199, errors=199, latency_ms=500), GuardrailConfig())
    assert report.waiting and not report.breaches
    assert {v.status for v in report.verdicts} == {WAITING}
    assert "199 of the 200" in report.verdicts[0].message


def test_a_failing_challenger_breaches_the_error_rate_as_soon_as_the_minimum_is_reached():
    report = evaluate_guardrails(arm(5000, errors=10), arm(200, errors=200), GuardrailConfig())
    error = verdict(report, "error_rate")
    assert error.status == BREACH and error.value == pytest.approx(0.998)
    assert "100.00%" in error.message and "+2.00" in error.message


def test_a_small_unlucky_excess_is_not_a_breach_without_evidence():
    # 3.5% vs 1%: above the allowed +2 points, but 7 errors in 200 are not evidence at the guardrail's level.
    report = evaluate_guardrails(arm(5000, errors=50), arm(200, errors=7), GuardrailConfig())
    assert verdict(report, "error_rate").status == OK
    # With ten times the traffic the same rates are evidence.
    report = evaluate_guardrails(arm(50_000, errors=500), arm(2000, errors=70), GuardrailConfig())
    assert verdict(report, "error_rate").status == BREACH


def test_the_error_rate_is_compared_with_zero_when_the_champion_has_served_too_little():
    report = evaluate_guardrails(arm(10), arm(400, errors=40), GuardrailConfig())
    assert verdict(report, "error_rate").status == BREACH
    assert "compared with 0" in verdict(report, "error_rate").message
    assert verdict(report, "p95_latency_ratio").status == WAITING


def test_the_p95_latency_ratio():
    slow = evaluate_guardrails(arm(1000, latency_ms=5), arm(300, latency_ms=9), GuardrailConfig())
    assert verdict(slow, "p95_latency_ratio").status == BREACH
    assert verdict(slow, "p95_latency_ratio").value == pytest.approx(1.8, rel=0.1)
    fine = evaluate_guardrails(arm(1000, latency_ms=5), arm(300, latency_ms=6), GuardrailConfig())
    assert verdict(fine, "p95_latency_ratio").status == OK
    lenient_config = GuardrailConfig(max_p95_latency_ratio=2)
    lenient = evaluate_guardrails(arm(1000, latency_ms=5), arm(300, latency_ms=9), lenient_config)
    assert verdict(lenient, "p95_latency_ratio").status == OK


def test_drift_and_fairness_verdicts_pass_through_and_can_be_switched_off():
    drift = ExternalVerdict("breach", "PSI 0.31 on income > 0.2", 0.31, 0.2, "/jobs/9/")
    report = evaluate_guardrails(arm(1000), arm(300), GuardrailConfig(), drift=drift, fairness=None)
    assert verdict(report, "drift").status == BREACH and verdict(report, "drift").evidence_url == "/jobs/9/"
    assert verdict(report, "fairness").status == NOT_AVAILABLE
    report = evaluate_guardrails(arm(1000), arm(300), GuardrailConfig(drift=False), drift=drift)
    assert verdict(report, "drift").status == OFF and not report.breaches


def test_guardrail_settings_are_validated_and_defaults_fill_the_rest():
    config = GuardrailConfig.from_json({"max_p95_latency_ratio": 2, "drift": False})
    assert config.max_p95_latency_ratio == 2.0 and config.min_samples == 200 and config.drift is False
    assert GuardrailConfig.from_json(None) == GuardrailConfig()
    assert GuardrailConfig.from_json(config.to_json()) == config
    for bad, word in [
        ({"max_latency": 2}, "max_latency"),
        ({"min_samples": 0}, "min_samples"),
        ({"min_samples": 2.5}, "min_samples"),
        ({"drift": "yes"}, "drift"),
        ({"error_alpha": 1.5}, "error_alpha"),
        ({"max_error_rate_increase": float("nan")}, "max_error_rate_increase"),
        ({"max_p95_latency_ratio": True}, "max_p95_latency_ratio"),
    ]:
        with pytest.raises(ValueError, match=word):
            GuardrailConfig.from_json(bad)


def test_the_primary_metric_accepts_a_name_or_settings():
    assert PrimaryMetric.from_json("value").name == "value"
    assert PrimaryMetric.from_json({"name": "success", "margin": 0}).margin == 0
    bad_settings = (
        "accuracy",
        {"name": "success", "margin": 1},
        {"higher_is_better": "no"},
        {"min_outcomes": 1},
        {"x": 1},
    )
    for bad in bad_settings:
        with pytest.raises(ValueError):
            PrimaryMetric.from_json(bad)


def outcomes(successes: int, n: int) -> ArmWindow:
    window = ArmWindow(requests=n)
    for i in range(n):
        window.record_outcome(success=i < successes)
    return window


def decide(champion: ArmWindow, challenger: ArmWindow, *, srm=None, report=None, metric=None):
    metric = metric or PrimaryMetric()
    a, b = metric.summary(champion), metric.summary(challenger)
    report = report or evaluate_guardrails(arm(1000), arm(300), GuardrailConfig())
    return recommend(
        metric=metric, champion=a, challenger=b, sequential=stats.sequential_test(a, b), srm=srm, guardrails=report
    )


def test_a_breached_guardrail_means_roll_back_whatever_the_metric_says():
    report = evaluate_guardrails(arm(5000), arm(300, errors=300), GuardrailConfig())
    result = decide(outcomes(3000, 10_000), outcomes(4000, 10_000), report=report)
    assert result.action == ROLL_BACK and "error_rate" in result.text


def test_a_sample_ratio_mismatch_means_keep_going_and_find_the_cause():
    srm = stats.srm_check([90_000, 9_000], [0.9, 0.1])
    result = decide(outcomes(3000, 10_000), outcomes(4000, 10_000), srm=srm)
    assert result.action == KEEP_GOING and "sample-ratio mismatch" in result.text


def test_too_few_outcomes_means_keep_going():
    result = decide(outcomes(30, 99), outcomes(40, 99))
    assert result.action == KEEP_GOING and "99" in result.text and "100 needed" in result.text


def test_the_sequential_test_decides_promote_roll_back_or_keep_going():
    better = decide(outcomes(3000, 10_000), outcomes(3400, 10_000))
    assert better.action == PROMOTE and "better than the champion" in better.text
    assert better.numbers["ci_low"] > 0
    worse = decide(outcomes(3400, 10_000), outcomes(3000, 10_000))
    assert worse.action == ROLL_BACK and worse.numbers["ci_high"] < 0
    unclear = decide(outcomes(300, 1000), outcomes(310, 1000))
    assert unclear.action == KEEP_GOING and "No conclusion yet" in unclear.text
    # Equal with plenty of data: not worse by more than the 2% margin, so promote (non-inferiority).
    equal = decide(outcomes(150_000, 500_000), outcomes(150_000, 500_000))
    assert equal.action == PROMOTE and "not worse" in equal.text


def test_lower_is_better_turns_the_verdict_around():
    metric = PrimaryMetric(name="success", higher_is_better=False)
    assert decide(outcomes(3000, 10_000), outcomes(3400, 10_000), metric=metric).action == ROLL_BACK
