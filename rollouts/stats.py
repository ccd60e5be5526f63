"""A/B statistics for a champion/challenger rollout (pure: no Django, no Celery; scipy for distributions).

- Per arm: a metric summary (count, mean, sample variance) from the aggregates' sums, and a confidence interval
  for its mean: Wilson's interval for a success rate, Student's t interval for the mean of a value.
- Sample-ratio mismatch: Pearson's chi-squared of the observed request counts against the planned split, flagged
  at p < 0.001, as GrowthBook does (a real mismatch means a broken assignment or logging path, so the stricter
  level keeps false alarms away from experiments that are fine).
- The fixed-horizon test: Welch's t-test of the difference in means (for a success rate, the means of 0/1
  outcomes), valid when read once at a horizon chosen in advance.
- The sequential test, valid however often it is read: the mixture sequential probability ratio test (mSPRT,
  Johari et al. 2017, as Optimizely runs it) with a normal mixture over the effect. Its likelihood ratio is a
  martingale under the null hypothesis, so by Ville's inequality the chance that it ever exceeds 1/alpha is at
  most alpha: a console polled every minute keeps its false-positive rate. The mixture's variance is set the
  way GrowthBook sets its sequential tests (the asymptotic confidence sequences of Waudby-Smith et al. 2023): from
  a tuning sample size N* at which the confidence sequence is tightest (default 5,000 like GrowthBook). Inverted,
  the test gives an always-valid confidence interval (a confidence sequence) that excludes 0 exactly when the
  always-valid p-value is below alpha.

The statistics treat requests (or outcomes) as independent. Requests of one unit are correlated when a unit
returns often, which makes every interval here somewhat too narrow: a known limit of request-level analysis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import special

SRM_P_THRESHOLD = 0.001
DEFAULT_ALPHA = 0.05
DEFAULT_TUNING_SAMPLES = 5000


@dataclass(frozen=True)
class MetricSummary:
    """n observations of a metric: their mean and sample variance (ddof=1; 0 for n < 2)."""

    n: int
    mean: float
    variance: float

    @classmethod
    def from_proportion(cls, successes: int, n: int) -> MetricSummary:
        """A success rate as the mean of 0/1 outcomes (so Welch's test is the t-test of those outcomes)."""
        if not 0 <= successes <= n:
            raise ValueError(f"successes ({successes}) must be between 0 and n ({n}).")
        if n == 0:
            return cls(0, 0.0, 0.0)
        p = successes / n
        variance = n * p * (1 - p) / (n - 1) if n > 1 else 0.0
        return cls(n, p, variance)

    @classmethod
    def from_sums(cls, n: int, total: float, total_sq: float) -> MetricSummary:
        """From a count, a sum and a sum of squares (what the aggregates keep)."""
        if n == 0:
            return cls(0, 0.0, 0.0)
        mean = total / n
        # Clamped: with values all equal, rounding can leave the difference a hair below zero.
        variance = max(total_sq - n * mean * mean, 0.0) / (n - 1) if n > 1 else 0.0
        return cls(n, mean, variance)


def proportion_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson's score interval for a success rate (sound near 0 and 1, unlike the normal approximation)."""
    if n == 0:
        return None
    z = float(special.ndtri(1 - (1 - confidence) / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(centre - half, 0.0), min(centre + half, 1.0)


def mean_interval(summary: MetricSummary, confidence: float = 0.95) -> tuple[float, float] | None:
    """Student's t interval for a mean; None below two observations."""
    if summary.n < 2:
        return None
    t = float(special.stdtrit(summary.n - 1, 1 - (1 - confidence) / 2))
    half = t * math.sqrt(summary.variance / summary.n)
    return summary.mean - half, summary.mean + half


@dataclass(frozen=True)
class SrmResult:
    """Sample-ratio mismatch: observed counts per arm against the counts the plan expects."""

    observed: tuple[int, ...]
    expected: tuple[float, ...]
    chi2: float
    p_value: float
    mismatch: bool
    threshold: float = SRM_P_THRESHOLD


def srm_check(
    observed: Sequence[int], expected: Sequence[float], *, threshold: float = SRM_P_THRESHOLD
) -> SrmResult | None:
    """Pearson's chi-squared test of observed counts against expected ones (shares or counts: they are rescaled).

    An arm the plan gives nothing must receive nothing: any request there is a mismatch (p = 0). Arms that the
    plan gives nothing and that received nothing drop out. None when fewer than two arms remain or nothing
    was observed: there is no split to check.

    When the split changed during the window, pass the expected counts (each period's requests times its split):
    the statistic is then conservative, since requests at different shares vary less than one binomial would.
    """
    if len(observed) != len(expected):
        raise ValueError("observed and expected need one entry per arm.")
    if any(o < 0 for o in observed) or any(e < 0 for e in expected):
        raise ValueError("Counts and shares cannot be negative.")
    total = sum(observed)
    planned = sum(expected)
    if total == 0 or planned == 0:
        return None
    scaled = [e * total / planned for e in expected]
    if any(e == 0 and o > 0 for o, e in zip(observed, scaled, strict=True)):
        return SrmResult(tuple(observed), tuple(scaled), math.inf, 0.0, True, threshold)
    pairs = [(o, e) for o, e in zip(observed, scaled, strict=True) if e > 0]
    if len(pairs) < 2:
        return None
    chi2 = sum((o - e) ** 2 / e for o, e in pairs)
    p_value = float(special.chdtrc(len(pairs) - 1, chi2))
    return SrmResult(tuple(observed), tuple(scaled), chi2, p_value, p_value < threshold, threshold)


@dataclass(frozen=True)
class Comparison:
    """The challenger's mean minus the champion's, with a p-value and an interval at 1 - alpha."""

    method: str  # "fixed" (Welch's t-test) or "sequential" (mSPRT)
    difference: float
    relative: float | None  # difference / |champion's mean|
    ci_low: float
    ci_high: float
    p_value: float
    alpha: float

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha


def _difference(control: MetricSummary, treatment: MetricSummary) -> tuple[float, float, float | None]:
    difference = treatment.mean - control.mean
    variance = control.variance / control.n + treatment.variance / treatment.n
    relative = difference / abs(control.mean) if control.mean else None
    return difference, variance, relative


def fixed_horizon_test(
    control: MetricSummary, treatment: MetricSummary, *, alpha: float = DEFAULT_ALPHA
) -> Comparison | None:
    """Welch's t-test (unequal variances) of treatment minus control; None below two observations per arm.

    Valid only when read once, at a sample size fixed in advance: read every minute, it finds differences that
    are not there (see the A/A simulation in the tests).
    """
    if control.n < 2 or treatment.n < 2:
        return None
    difference, variance, relative = _difference(control, treatment)
    if variance == 0:  # both arms constant: equal means are no evidence, different ones are certain
        p = 1.0 if difference == 0 else 0.0
        return Comparison("fixed", difference, relative, difference, difference, p, alpha)
    se = math.sqrt(variance)
    a, b = control.variance / control.n, treatment.variance / treatment.n
    df = variance**2 / (a * a / (control.n - 1) + b * b / (treatment.n - 1))
    t = difference / se
    p = float(2 * special.stdtr(df, -abs(t)))
    half = float(special.stdtrit(df, 1 - alpha / 2)) * se
    return Comparison("fixed", difference, relative, difference - half, difference + half, p, alpha)


def mixture_rho(alpha: float, tuning_samples: float) -> float:
    """The mixture parameter for which the confidence sequence is tightest near `tuning_samples` observations."""
    if not 0 < alpha < 1 or tuning_samples <= 0:
        raise ValueError("alpha must be in (0, 1) and the tuning sample size positive.")
    log_alpha = math.log(alpha)
    return math.sqrt((-2 * log_alpha + math.log(-2 * log_alpha + 1)) / tuning_samples)


def msprt_log_likelihood_ratio(z_squared: float, n: int, rho: float) -> float:
    """log of the normal-mixture likelihood ratio for an estimate z standard errors from the null, after n samples.

    With the effect's mixture variance tau^2 = n * rho^2 * SE^2, the ratio is
    sqrt(1 / (1 + k)) * exp(k / (1 + k) * z^2 / 2) where k = n * rho^2.
    """
    k = n * rho * rho
    return k / (1 + k) * z_squared / 2 - 0.5 * math.log1p(k)


def sequential_test(
    control: MetricSummary,
    treatment: MetricSummary,
    *,
    alpha: float = DEFAULT_ALPHA,
    tuning_samples: float = DEFAULT_TUNING_SAMPLES,
    previous_p: float = 1.0,
) -> Comparison | None:
    """The mSPRT of treatment minus control at this look: an always-valid p-value and confidence interval.

    `previous_p` is the smallest p-value of earlier looks: the always-valid p-value never rises again (pass it to
    carry a running minimum; sequential_p_values() does this over a series of looks).
    """
    if control.n < 2 or treatment.n < 2:
        return None
    difference, variance, relative = _difference(control, treatment)
    n = control.n + treatment.n
    rho = mixture_rho(alpha, tuning_samples)
    if variance == 0:
        p = min(previous_p, 1.0 if difference == 0 else 0.0)
        return Comparison("sequential", difference, relative, difference, difference, p, alpha)
    log_lr = msprt_log_likelihood_ratio(difference * difference / variance, n, rho)
    p = min(previous_p, 1.0, math.exp(-log_lr)) if log_lr > 0 else min(previous_p, 1.0)
    k = n * rho * rho
    half = math.sqrt(variance * 2 * (1 + k) / k * (math.log(1 / alpha) + 0.5 * math.log1p(k)))
    return Comparison("sequential", difference, relative, difference - half, difference + half, p, alpha)


def sequential_p_values(
    looks: Sequence[tuple[MetricSummary, MetricSummary]],
    *,
    alpha: float = DEFAULT_ALPHA,
    tuning_samples: float = DEFAULT_TUNING_SAMPLES,
) -> list[float]:
    """The always-valid p-value after each look (cumulative summaries of control and treatment), a running minimum."""
    p_values: list[float] = []
    p = 1.0
    for control, treatment in looks:
        result = sequential_test(control, treatment, alpha=alpha, tuning_samples=tuning_samples, previous_p=p)
        if result is not None:
            p = result.p_value
        p_values.append(p)
    return p_values
