"""Rollout reads: lists, traffic windows, the statistics and recommendation, time series, the approval queue."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from rollouts import stats
from rollouts.aggregates import ArmWindow, LatencyHistogram
from rollouts.guardrails import (
    ExternalVerdict,
    GuardrailConfig,
    GuardrailReport,
    PrimaryMetric,
    Recommendation,
    evaluate_guardrails,
    recommend,
)
from rollouts.models import ArmMinute, PromotionRequest, PromotionStatus, Rollout, RolloutState, RolloutUnit


def rollout_list(*, state: str = "", model_name: str = "") -> QuerySet[Rollout]:
    rollouts = Rollout.objects.select_related("model", "champion", "challenger", "created_by")
    if state == "active":
        rollouts = rollouts.filter(
            state__in=[RolloutState.RUNNING, RolloutState.PAUSED, RolloutState.AWAITING_APPROVAL]
        )
    elif state:
        rollouts = rollouts.filter(state=state)
    if model_name:
        rollouts = rollouts.filter(model__name=model_name)
    return rollouts


def rollout_get(*, rollout_id: int) -> Rollout:
    return rollout_list().get(pk=rollout_id)


@dataclass
class Traffic:
    """A window of a rollout's traffic: each arm's totals, and what the plan expected of the challenger."""

    arms: dict[str, ArmWindow] = field(default_factory=lambda: {"champion": ArmWindow(), "challenger": ArmWindow()})
    assignments: dict[str, int] = field(default_factory=lambda: {"champion": 0, "challenger": 0})
    fallbacks: int = 0
    expected_challenger: float = 0.0  # the sum, over every request, of the challenger's share when it was assigned
    # What was randomised: units (counted once, at their first request) and requests without a unit id.
    units: dict[str, int] = field(default_factory=lambda: {"champion": 0, "challenger": 0})
    expected_challenger_units: float = 0.0  # the sum over units and unit-less requests of the share they got

    @property
    def total(self) -> int:
        return sum(self.traffic(arm) for arm in self.arms)

    def traffic(self, arm: str) -> int:
        """Requests served plus assignments answered: everything routed to the arm."""
        return self.arms[arm].requests + self.assignments[arm]


def _add_row(traffic: Traffic, row: ArmMinute) -> None:
    window = ArmWindow(
        requests=row.requests,
        errors=row.errors,
        latency=LatencyHistogram.from_json(row.latency_buckets),
        latency_sum_ms=row.latency_sum_ms,
        success_count=row.success_count,
        successes=row.successes,
        value_count=row.value_count,
        value_sum=row.value_sum,
        value_sum_sq=row.value_sum_sq,
    )
    traffic.arms[row.arm].merge(window)
    traffic.assignments[row.arm] += row.assignments
    traffic.fallbacks += row.fallbacks
    traffic.expected_challenger += row.share_sum
    traffic.units[row.arm] += row.unitless
    traffic.expected_challenger_units += row.unitless_share_sum


def _add_units(traffic_by_rollout: dict[int, Traffic], since: datetime | None = None) -> None:
    rows = RolloutUnit.objects.filter(rollout__in=list(traffic_by_rollout))
    if since is not None:
        rows = rows.filter(first_seen__gte=since)
    for row in rows.values("rollout_id", "arm").annotate(n=Count("pk"), shares=Sum("share")).order_by():
        traffic = traffic_by_rollout[row["rollout_id"]]
        traffic.units[row["arm"]] += row["n"]
        traffic.expected_challenger_units += (row["shares"] or 0.0) / 100


def traffic_window(*, rollout: Rollout, since: datetime | None = None) -> Traffic:
    """The rollout's traffic from `since` (a minute boundary; None: since it started), all writers merged."""
    rows = ArmMinute.objects.filter(rollout=rollout)
    if since is not None:
        rows = rows.filter(minute__gte=since.replace(second=0, microsecond=0))
    traffic = Traffic()
    for row in rows.iterator(chunk_size=2000):
        _add_row(traffic, row)
    _add_units({rollout.pk: traffic}, since)
    return traffic


def traffic_windows(*, rollouts: list[Rollout]) -> dict[int, Traffic]:
    """Whole-rollout traffic of many rollouts in one query (list pages)."""
    windows = {rollout.pk: Traffic() for rollout in rollouts}
    for row in ArmMinute.objects.filter(rollout__in=list(windows)).iterator(chunk_size=2000):
        _add_row(windows[row.rollout_id], row)
    _add_units(windows)
    return windows


def traffic_by_minute(*, rollout: Rollout) -> dict[datetime, Traffic]:
    """Each minute's traffic, oldest first (for the time series)."""
    minutes: dict[datetime, Traffic] = {}
    for row in ArmMinute.objects.filter(rollout=rollout).order_by("minute").iterator(chunk_size=2000):
        _add_row(minutes.setdefault(row.minute, Traffic()), row)
    return minutes


# --- statistics --------------------------------------------------------------------------------------------------


def external_verdicts(*, rollout: Rollout) -> dict[str, ExternalVerdict]:
    """Drift and fairness verdicts for the challenger, from the governance monitoring when it is there.

    The single place rollouts ask governance about monitoring: open drift or fairness alerts on the challenger
    version (governance.selectors.open_alerts, see INTERFACES.md). Until that selector exists both read
    "not available", which never breaches.
    """
    try:
        from governance.selectors import open_alerts  # type: ignore[attr-defined]
    except ImportError:
        note = "Drift and fairness monitoring (governance) is not available yet."
        return {
            "drift": ExternalVerdict("not available", note),
            "fairness": ExternalVerdict("not available", note),
        }
    verdicts = {}
    for name in ("drift", "fairness"):
        alerts = list(open_alerts(model=rollout.model, version=rollout.challenger, source=name))
        if alerts:
            first = alerts[0]
            detail = getattr(first, "message", "") or f"{len(alerts)} open {name} alert(s) on the challenger."
            url = first.get_absolute_url() if hasattr(first, "get_absolute_url") else None
            verdicts[name] = ExternalVerdict("breach", detail, getattr(first, "value", None), None, url)
        else:
            verdicts[name] = ExternalVerdict("ok", f"No open {name} alert on {rollout.challenger.version}.")
    return verdicts


@dataclass(frozen=True)
class Analysis:
    """Everything the console shows about a rollout's evidence, computed from one traffic window."""

    traffic: Traffic
    metric: PrimaryMetric
    champion: stats.MetricSummary
    challenger: stats.MetricSummary
    srm: stats.SrmResult | None
    fixed: stats.Comparison | None
    sequential: stats.Comparison | None
    guardrails: GuardrailReport
    recommendation: Recommendation

    def arm_json(self, arm: str) -> dict[str, Any]:
        window = self.traffic.arms[arm]
        summary = self.champion if arm == "champion" else self.challenger
        if self.metric.name == "success":
            interval = stats.proportion_interval(window.successes, window.success_count)
        else:
            interval = stats.mean_interval(summary)
        return {
            "traffic": self.traffic.traffic(arm),
            "requests": window.requests,
            "assignments": self.traffic.assignments[arm],
            "errors": window.errors,
            "error_rate": window.error_rate,
            "latency_ms": {
                "p50": window.latency.quantile(0.5),
                "p95": window.latency.quantile(0.95),
                "p99": window.latency.quantile(0.99),
            },
            "metric": {
                "name": self.metric.name,
                "n": summary.n,
                "mean": summary.mean if summary.n else None,
                "ci_low": interval[0] if interval else None,
                "ci_high": interval[1] if interval else None,
            },
        }

    def to_json(self) -> dict[str, Any]:
        def comparison(result: stats.Comparison | None) -> dict[str, Any] | None:
            if result is None:
                return None
            return {
                "difference": result.difference,
                "relative": result.relative,
                "ci_low": result.ci_low,
                "ci_high": result.ci_high,
                "p_value": result.p_value,
                "alpha": result.alpha,
                "significant": result.significant,
            }

        srm = self.srm
        return {
            "arms": {arm: self.arm_json(arm) for arm in ("champion", "challenger")},
            "fallbacks": self.traffic.fallbacks,
            "srm": None
            if srm is None
            else {
                "observed": list(srm.observed),
                "expected": list(srm.expected),
                "chi2": srm.chi2,
                "p_value": srm.p_value,
                "mismatch": srm.mismatch,
                "threshold": srm.threshold,
            },
            "fixed_horizon": comparison(self.fixed),
            "sequential": comparison(self.sequential),
            "guardrails": self.guardrails.to_json(),
            "recommendation": self.recommendation.to_json(),
        }


def _srm(traffic: Traffic) -> stats.SrmResult | None:
    """Chi-squared of the randomised units per arm (each unit once, plus every request without a unit id) against
    the shares they were routed at. Requests are not independent draws when units repeat; units are."""
    total = traffic.units["champion"] + traffic.units["challenger"]
    if total == 0:
        return None
    expected_challenger = min(max(traffic.expected_challenger_units, 0.0), float(total))
    return stats.srm_check(
        [traffic.units["champion"], traffic.units["challenger"]], [total - expected_challenger, expected_challenger]
    )


def rollout_analysis(
    *, rollout: Rollout, traffic: Traffic | None = None, verdicts: dict[str, ExternalVerdict] | None = None
) -> Analysis:
    """Per-arm statistics, SRM, both tests, the guardrails and the recommendation, over the whole rollout."""
    traffic = traffic if traffic is not None else traffic_window(rollout=rollout)
    metric = PrimaryMetric.from_json(rollout.primary_metric or None)
    config = GuardrailConfig.from_json(rollout.guardrails or None)
    verdicts = verdicts if verdicts is not None else external_verdicts(rollout=rollout)
    champion = metric.summary(traffic.arms["champion"])
    challenger = metric.summary(traffic.arms["challenger"])
    srm = _srm(traffic)
    fixed = stats.fixed_horizon_test(champion, challenger)
    sequential = stats.sequential_test(champion, challenger)
    report = evaluate_guardrails(
        traffic.arms["champion"],
        traffic.arms["challenger"],
        config,
        drift=verdicts.get("drift"),
        fairness=verdicts.get("fairness"),
    )
    recommendation = recommend(
        metric=metric, champion=champion, challenger=challenger, sequential=sequential, srm=srm, guardrails=report
    )
    return Analysis(traffic, metric, champion, challenger, srm, fixed, sequential, report, recommendation)


def step_progress(*, rollout: Rollout, now: datetime) -> dict[str, Any]:
    """How far the current step is towards its minimums (duration, challenger requests served in the step)."""
    step = rollout.current_step
    started = rollout.step_started_at
    minutes = (now - started).total_seconds() / 60 if started else 0.0
    samples = traffic_window(rollout=rollout, since=started).traffic("challenger") if started else 0
    unmet = []
    if minutes < step["min_minutes"]:
        unmet.append(f"the step has run {minutes:.0f} of its {step['min_minutes']} minutes")
    if samples < step["min_samples"]:
        unmet.append(f"the challenger has served {samples:,} of the step's {step['min_samples']:,} requests")
    return {"minutes": minutes, "samples": samples, "unmet": unmet}


def time_series(*, rollout: Rollout) -> dict[str, Any]:
    """Per arm and minute: traffic, error rate, p95 latency and the primary metric (for the rollout page's charts)."""
    metric = PrimaryMetric.from_json(rollout.primary_metric or None)
    series: dict[str, Any] = {"minutes": []}
    for arm in ("champion", "challenger"):
        series[arm] = {"traffic": [], "error_rate": [], "p95_ms": [], "metric": []}
    for minute, traffic in traffic_by_minute(rollout=rollout).items():
        series["minutes"].append(minute.isoformat())
        for arm in ("champion", "challenger"):
            window = traffic.arms[arm]
            out = series[arm]
            out["traffic"].append(traffic.traffic(arm))
            out["error_rate"].append(window.error_rate)
            out["p95_ms"].append(window.latency.quantile(0.95))
            out["metric"].append(window.success_rate if metric.name == "success" else window.value_mean)
    return series


# --- promotion -----------------------------------------------------------------------------------------------------


def pending_promotion(*, rollout: Rollout) -> PromotionRequest | None:
    return (
        PromotionRequest.objects.select_related("requested_by")
        .filter(rollout=rollout, status=PromotionStatus.PENDING)
        .first()
    )


def promotion_history(*, rollout: Rollout) -> QuerySet[PromotionRequest]:
    return PromotionRequest.objects.select_related("requested_by", "decided_by").filter(rollout=rollout)


def approval_queue(*, user: Any) -> QuerySet[PromotionRequest]:
    """Pending promotion requests a manager may decide: everyone's but their own."""
    return (
        PromotionRequest.objects.select_related(
            "rollout__model", "rollout__champion", "rollout__challenger", "requested_by"
        )
        .filter(status=PromotionStatus.PENDING)
        .filter(~Q(requested_by=user))
        .order_by("requested_at")
    )
