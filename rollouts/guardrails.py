"""Guardrails and the recommendation for a rollout (pure: no Django, no Celery).

Guardrails protect the people a bad challenger would serve; each is evaluated from the arms' aggregates (and, for
drift and fairness, from verdicts the monitoring computed) and none acts before the challenger has served
`min_samples` requests. The defaults (documented in docs/api.md):

- error rate: the challenger's error rate exceeds the champion's by more than `max_error_rate_increase` (absolute,
  default 0.02) *and* an always-valid test at `error_alpha` (default 0.01) says it is higher;
- latency: the challenger's p95 is more than `max_p95_latency_ratio` (default 1.5) times the champion's;
- drift: the monitoring reports drift of the challenger's inputs or outputs (`drift`, default on);
- fairness: the monitoring reports a fairness gap over its threshold (`fairness`, default on);
- and none of them before the challenger has served `min_samples` requests (default 200).

The error-rate test asks for evidence as well as size so that a guardrail read every minute does not roll back a
sound challenger on a few unlucky minutes; a challenger that fails outright is still caught within its first
`min_samples` requests.

The recommendation reads the statistics in this order: a breached guardrail means roll back; a sample-ratio
mismatch means the numbers cannot be trusted yet (keep going, find the cause); too few outcomes means keep going;
then the sequential test of the primary metric decides: worse beyond the margin, roll back; not worse by more than
the margin, promote; neither yet, keep going.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from rollouts import stats
from rollouts.aggregates import ArmWindow

OK = "ok"
BREACH = "breach"
WAITING = "waiting"
NOT_AVAILABLE = "not available"
OFF = "off"

PROMOTE = "promote"
KEEP_GOING = "keep going"
ROLL_BACK = "roll back"


@dataclass(frozen=True)
class GuardrailConfig:
    """Thresholds of a rollout's guardrails; from_json() fills omitted keys with these defaults."""

    min_samples: int = 200
    max_error_rate_increase: float = 0.02
    error_alpha: float = 0.01
    max_p95_latency_ratio: float = 1.5
    drift: bool = True
    fairness: bool = True

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> GuardrailConfig:
        """Validated: an unknown key or a value of the wrong type raises ValueError naming it."""
        data = dict(data or {})
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"Unknown guardrail {unknown[0]!r}; the guardrails are {', '.join(known)}.")
        values: dict[str, Any] = {}
        for name, value in data.items():
            default = getattr(cls, name)
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"Guardrail {name!r} must be true or false.")
            elif isinstance(default, int):
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"Guardrail {name!r} must be a positive whole number.")
            else:
                if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                    raise ValueError(f"Guardrail {name!r} must be a number.")
                if value <= 0 or (name == "error_alpha" and value >= 1):
                    raise ValueError(
                        f"Guardrail {name!r} must be greater than 0"
                        + (" and below 1." if name == "error_alpha" else ".")
                    )
                value = float(value)
            values[name] = value
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ExternalVerdict:
    """A verdict computed elsewhere (drift or fairness monitoring), passed in: ok, breach or not available."""

    status: Literal["ok", "breach", "not available"]
    detail: str = ""
    value: float | None = None
    threshold: float | None = None
    evidence_url: str | None = None


@dataclass(frozen=True)
class GuardrailVerdict:
    name: str
    status: str  # ok | breach | waiting | not available | off
    message: str
    value: float | None = None
    threshold: float | None = None
    evidence_url: str | None = None


@dataclass(frozen=True)
class GuardrailReport:
    verdicts: tuple[GuardrailVerdict, ...]
    challenger_requests: int
    min_samples: int

    @property
    def breaches(self) -> tuple[GuardrailVerdict, ...]:
        return tuple(v for v in self.verdicts if v.status == BREACH)

    @property
    def waiting(self) -> bool:
        return self.challenger_requests < self.min_samples

    def to_json(self) -> dict[str, Any]:
        return {
            "verdicts": [asdict(v) for v in self.verdicts],
            "breached": [v.name for v in self.breaches],
            "challenger_requests": self.challenger_requests,
            "min_samples": self.min_samples,
        }


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%"


def _error_rate_verdict(champion: ArmWindow, challenger: ArmWindow, config: GuardrailConfig) -> GuardrailVerdict:
    threshold = config.max_error_rate_increase
    challenger_rate = challenger.errors / challenger.requests
    # Before the champion has served enough to compare against (a 100% step from the start), compare with 0.
    champion_rate = champion.errors / champion.requests if champion.requests >= config.min_samples else 0.0
    increase = challenger_rate - champion_rate
    if champion.requests >= config.min_samples:
        test = stats.sequential_test(
            stats.MetricSummary.from_proportion(champion.errors, champion.requests),
            stats.MetricSummary.from_proportion(challenger.errors, challenger.requests),
            alpha=config.error_alpha,
        )
        evidence = test is not None and test.ci_low > 0
        p_text = f", always-valid p = {test.p_value:.2g}" if test is not None else ""
    else:
        # One-sample: is the challenger's error rate above 0 beyond doubt? (any error at all, with this many requests)
        evidence = challenger.errors > 0
        p_text = " (the champion has served too little to compare; compared with 0)"
    message = (
        f"Challenger error rate {_pct(challenger_rate)} vs champion {_pct(champion_rate)}: "
        f"{increase * 100:+.2f} points (allowed +{threshold * 100:.2f}){p_text}."
    )
    status = BREACH if increase > threshold and evidence else OK
    return GuardrailVerdict("error_rate", status, message, increase, threshold)


def _latency_verdict(champion: ArmWindow, challenger: ArmWindow, config: GuardrailConfig) -> GuardrailVerdict:
    threshold = config.max_p95_latency_ratio
    if champion.requests < config.min_samples:
        return GuardrailVerdict(
            "p95_latency_ratio",
            WAITING,
            f"The champion has served {champion.requests} of the {config.min_samples} requests needed to compare.",
            None,
            threshold,
        )
    champion_p95 = champion.latency.quantile(0.95) or 0.0
    challenger_p95 = challenger.latency.quantile(0.95) or 0.0
    ratio = challenger_p95 / champion_p95 if champion_p95 > 0 else math.inf
    message = (
        f"Challenger p95 {challenger_p95:.2f} ms vs champion {champion_p95:.2f} ms: "
        f"{ratio:.2f}x (allowed {threshold:.2f}x)."
    )
    return GuardrailVerdict("p95_latency_ratio", BREACH if ratio > threshold else OK, message, ratio, threshold)


def _external_verdict(name: str, enabled: bool, verdict: ExternalVerdict | None) -> GuardrailVerdict:
    if not enabled:
        return GuardrailVerdict(name, OFF, f"The {name} guardrail is switched off for this rollout.")
    if verdict is None or verdict.status == NOT_AVAILABLE:
        detail = verdict.detail if verdict is not None and verdict.detail else f"No {name} monitoring is available."
        return GuardrailVerdict(name, NOT_AVAILABLE, detail)
    status = BREACH if verdict.status == BREACH else OK
    return GuardrailVerdict(name, status, verdict.detail, verdict.value, verdict.threshold, verdict.evidence_url)


def evaluate_guardrails(
    champion: ArmWindow,
    challenger: ArmWindow,
    config: GuardrailConfig,
    *,
    drift: ExternalVerdict | None = None,
    fairness: ExternalVerdict | None = None,
) -> GuardrailReport:
    """Each guardrail's verdict; all are 'waiting' until the challenger has served config.min_samples requests."""
    names = ("error_rate", "p95_latency_ratio", "drift", "fairness")
    if challenger.requests < config.min_samples:
        message = f"The challenger has served {challenger.requests} of the {config.min_samples} requests needed."
        verdicts = tuple(GuardrailVerdict(name, WAITING, message) for name in names)
        return GuardrailReport(verdicts, challenger.requests, config.min_samples)
    verdicts = (
        _error_rate_verdict(champion, challenger, config),
        _latency_verdict(champion, challenger, config),
        _external_verdict("drift", config.drift, drift),
        _external_verdict("fairness", config.fairness, fairness),
    )
    return GuardrailReport(verdicts, challenger.requests, config.min_samples)


@dataclass(frozen=True)
class PrimaryMetric:
    """What decides the rollout: the success rate or the mean value of outcomes, its direction and the margin.

    `margin` is relative to the champion: 0.02 lets the challenger be up to 2% worse and still count as not
    worse (non-inferiority), since a replacement model is usually promoted for reasons besides this metric.
    """

    name: Literal["success", "value"] = "success"
    higher_is_better: bool = True
    margin: float = 0.02
    min_outcomes: int = 100

    @classmethod
    def from_json(cls, data: str | Mapping[str, Any] | None) -> PrimaryMetric:
        if data is None:
            return cls()
        if isinstance(data, str):
            data = {"name": data}
        data = dict(data)
        unknown = sorted(set(data) - {"name", "higher_is_better", "margin", "min_outcomes"})
        if unknown:
            raise ValueError(f"Unknown primary metric setting {unknown[0]!r}.")
        name = data.get("name", "success")
        if name not in ("success", "value"):
            raise ValueError('The primary metric is "success" (a success rate) or "value" (the mean of a value).')
        higher = data.get("higher_is_better", True)
        if not isinstance(higher, bool):
            raise ValueError("higher_is_better must be true or false.")
        margin = data.get("margin", cls.margin)
        if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 <= margin < 1:
            raise ValueError("The margin is a fraction of the champion's value, from 0 up to (not including) 1.")
        min_outcomes = data.get("min_outcomes", cls.min_outcomes)
        if isinstance(min_outcomes, bool) or not isinstance(min_outcomes, int) or min_outcomes < 2:
            raise ValueError("min_outcomes must be a whole number of at least 2.")
        return cls(name, higher, float(margin), min_outcomes)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self, window: ArmWindow) -> stats.MetricSummary:
        if self.name == "success":
            return stats.MetricSummary.from_proportion(window.successes, window.success_count)
        return stats.MetricSummary.from_sums(window.value_count, window.value_sum, window.value_sum_sq)


@dataclass(frozen=True)
class Recommendation:
    action: str  # promote | keep going | roll back
    reasons: tuple[str, ...]
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return f"{self.action.capitalize()}: " + " ".join(self.reasons)

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "text": self.text, "reasons": list(self.reasons), "numbers": self.numbers}


def _fmt(value: float, metric: PrimaryMetric) -> str:
    return f"{value * 100:+.2f} points" if metric.name == "success" else f"{value:+.4g}"


def recommend(
    *,
    metric: PrimaryMetric,
    champion: stats.MetricSummary,
    challenger: stats.MetricSummary,
    sequential: stats.Comparison | None,
    srm: stats.SrmResult | None,
    guardrails: GuardrailReport,
) -> Recommendation:
    """Promote, keep going or roll back, with the numbers behind it (see the module docstring for the order)."""
    numbers: dict[str, Any] = {
        "champion_n": champion.n,
        "challenger_n": challenger.n,
        "min_outcomes": metric.min_outcomes,
    }
    if guardrails.breaches:
        return Recommendation(
            ROLL_BACK, tuple(f"Guardrail {v.name}: {v.message}" for v in guardrails.breaches), numbers
        )
    if srm is not None and srm.mismatch:
        numbers.update(srm_chi2=srm.chi2, srm_p=srm.p_value)
        return Recommendation(
            KEEP_GOING,
            (
                f"The traffic split is off plan (sample-ratio mismatch: chi-squared {srm.chi2:.1f}, "
                f"p = {srm.p_value:.2g} < {srm.threshold}), so the comparison cannot be trusted until the cause "
                "is found (an assignment or logging path that loses one arm's requests).",
            ),
            numbers,
        )
    if champion.n < metric.min_outcomes or challenger.n < metric.min_outcomes or sequential is None:
        return Recommendation(
            KEEP_GOING,
            (
                f"Too few outcomes to compare yet: champion {champion.n}, challenger {challenger.n}, "
                f"{metric.min_outcomes} needed per arm.",
            ),
            numbers,
        )
    sign = 1 if metric.higher_is_better else -1
    margin = metric.margin * abs(champion.mean)
    # Oriented so that positive means the challenger is better.
    better_low, better_high = sorted((sign * sequential.ci_low, sign * sequential.ci_high))
    numbers.update(
        difference=sequential.difference,
        ci_low=sequential.ci_low,
        ci_high=sequential.ci_high,
        p_value=sequential.p_value,
        margin=margin,
    )
    label = "success rate" if metric.name == "success" else "mean value"
    evidence = (
        f"challenger minus champion {label}: {_fmt(sequential.difference, metric)} "
        f"(always-valid {100 * (1 - sequential.alpha):.0f}% interval {_fmt(sequential.ci_low, metric)} to "
        f"{_fmt(sequential.ci_high, metric)}, p = {sequential.p_value:.2g}; margin {_fmt(margin, metric).lstrip('+')})"
    )
    if better_high < -margin:
        return Recommendation(ROLL_BACK, (f"The challenger is worse beyond the margin: {evidence}.",), numbers)
    if better_low > -margin:
        verdict = (
            "better than the champion" if better_low > 0 else "not worse than the champion by more than the margin"
        )
        return Recommendation(PROMOTE, (f"The challenger is {verdict}: {evidence}.",), numbers)
    return Recommendation(KEEP_GOING, (f"No conclusion yet: {evidence}.",), numbers)
