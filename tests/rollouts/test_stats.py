"""A/B statistics against scipy, the mSPRT against its defining integral, and simulated A/A tests under peeking."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as scipy_stats

from rollouts import stats
from rollouts.stats import MetricSummary


def summary_of(values: np.ndarray) -> MetricSummary:
    return MetricSummary.from_sums(len(values), float(values.sum()), float((values**2).sum()))


def test_a_summary_from_sums_has_numpys_mean_and_sample_variance():
    values = np.random.default_rng(1).normal(50, 7, 1000)
    summary = summary_of(values)
    assert summary.mean == pytest.approx(values.mean())
    assert summary.variance == pytest.approx(values.var(ddof=1))
    outcomes = np.array([1] * 30 + [0] * 70)
    assert MetricSummary.from_proportion(30, 100).variance == pytest.approx(outcomes.var(ddof=1))
    assert MetricSummary.from_sums(1, 5.0, 25.0) == MetricSummary(1, 5.0, 0.0)
    with pytest.raises(ValueError):
        MetricSummary.from_proportion(5, 4)


@pytest.mark.parametrize(
    ("observed", "expected"),
    [([9000, 1000], [0.9, 0.1]), ([8950, 1050], [0.9, 0.1]), ([5100, 4900], [1, 1]), ([300, 350, 410], [1, 1, 1])],
)
def test_the_srm_chi_squared_is_scipys(observed, expected):
    result = stats.srm_check(observed, expected)
    total, planned = sum(observed), sum(expected)
    reference = scipy_stats.chisquare(observed, [e * total / planned for e in expected])
    assert result is not None
    assert result.chi2 == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.mismatch == (reference.pvalue < 0.001)


def test_srm_flags_a_real_mismatch_and_not_noise():
    # A 10% plan where a logging path lost 5% of the challenger's requests, out of 100,000.
    assert stats.srm_check([90_000, 9_500], [0.9, 0.1]).mismatch
    assert not stats.srm_check([90_000, 10_050], [0.9, 0.1]).mismatch
    # Requests where the plan sends none: a mismatch whatever the numbers.
    assert stats.srm_check([1000, 3], [1.0, 0.0]).mismatch
    assert stats.srm_check([1000, 0], [1.0, 0.0]) is None
    assert stats.srm_check([0, 0], [0.9, 0.1]) is None


def test_the_fixed_horizon_test_is_welchs_t_test():
    rng = np.random.default_rng(2)
    control, treatment = rng.normal(10, 3, 400), rng.normal(10.6, 4, 250)
    result = stats.fixed_horizon_test(summary_of(control), summary_of(treatment))
    reference = scipy_stats.ttest_ind(treatment, control, equal_var=False)
    assert result.p_value == pytest.approx(reference.pvalue)
    low, high = reference.confidence_interval(0.95)
    assert (result.ci_low, result.ci_high) == (pytest.approx(low), pytest.approx(high))
    assert result.difference == pytest.approx(treatment.mean() - control.mean())


def test_the_fixed_horizon_test_of_a_success_rate_is_the_t_test_of_its_outcomes():
    control = np.array([1] * 120 + [0] * 280)
    treatment = np.array([1] * 150 + [0] * 250)
    result = stats.fixed_horizon_test(MetricSummary.from_proportion(120, 400), MetricSummary.from_proportion(150, 400))
    assert result.p_value == pytest.approx(scipy_stats.ttest_ind(treatment, control, equal_var=False).pvalue)


def test_constant_arms_and_tiny_arms():
    same = stats.fixed_horizon_test(MetricSummary.from_proportion(50, 50), MetricSummary.from_proportion(40, 40))
    assert same.p_value == 1.0 and not same.significant
    apart = stats.sequential_test(MetricSummary.from_proportion(0, 50), MetricSummary.from_proportion(40, 40))
    assert apart.p_value == 0.0 and apart.significant
    assert stats.fixed_horizon_test(MetricSummary(1, 1.0, 0.0), MetricSummary(10, 1.0, 0.1)) is None
    assert stats.sequential_test(MetricSummary(10, 1.0, 0.1), MetricSummary(0, 0.0, 0.0)) is None


def test_wilson_and_t_intervals_are_scipys():
    low, high = stats.proportion_interval(7, 60)
    reference = scipy_stats.binomtest(7, 60).proportion_ci(0.95, method="wilson")
    assert (low, high) == (pytest.approx(reference.low), pytest.approx(reference.high))
    values = np.random.default_rng(3).normal(3, 1, 40)
    low, high = stats.mean_interval(summary_of(values))
    ref_low, ref_high = scipy_stats.t.interval(0.95, 39, loc=values.mean(), scale=scipy_stats.sem(values))
    assert (low, high) == (pytest.approx(ref_low), pytest.approx(ref_high))
    assert stats.proportion_interval(0, 0) is None and stats.mean_interval(MetricSummary(1, 2.0, 0.0)) is None


@pytest.mark.parametrize(("difference", "se", "n"), [(0.01, 0.004, 20_000), (0.3, 0.5, 300), (-2.0, 0.6, 5000)])
def test_the_msprt_ratio_is_the_normal_mixture_integral(difference, se, n):
    # Lambda = integral of N(d; theta, V) N(theta; 0, tau^2) dtheta / N(d; 0, V), with tau^2 = n rho^2 V.
    rho = stats.mixture_rho(0.05, 5000)
    variance = se * se
    tau = math.sqrt(n * rho * rho * variance)
    numerator, _ = integrate.quad(
        lambda theta: scipy_stats.norm.pdf(difference, theta, se) * scipy_stats.norm.pdf(theta, 0, tau),
        -50 * tau,
        50 * tau,
        points=[difference],
    )
    expected = math.log(numerator / scipy_stats.norm.pdf(difference, 0, se))
    assert stats.msprt_log_likelihood_ratio(difference**2 / variance, n, rho) == pytest.approx(expected, rel=1e-6)


def test_the_confidence_sequence_is_the_inverted_test():
    control, treatment = MetricSummary(3000, 0.30, 0.21), MetricSummary(2900, 0.33, 0.2211)
    result = stats.sequential_test(control, treatment)
    variance = control.variance / control.n + treatment.variance / treatment.n
    rho = stats.mixture_rho(0.05, 5000)
    for bound in (result.ci_low, result.ci_high):  # at its edges the likelihood ratio is exactly 1/alpha
        z2 = (result.difference - bound) ** 2 / variance
        assert stats.msprt_log_likelihood_ratio(z2, 5900, rho) == pytest.approx(math.log(20))
    assert (result.ci_low > 0) == result.significant
    fixed = stats.fixed_horizon_test(control, treatment)
    assert result.ci_high - result.ci_low > fixed.ci_high - fixed.ci_low  # the price of looking at any time


def test_the_always_valid_p_value_never_rises():
    rng = np.random.default_rng(4)
    looks, nc, sc, nt, st = [], 0, 0, 0, 0
    for _ in range(50):
        nc, nt = nc + 200, nt + 200
        sc, st = sc + int(rng.binomial(200, 0.3)), st + int(rng.binomial(200, 0.31))
        looks.append((MetricSummary.from_proportion(sc, nc), MetricSummary.from_proportion(st, nt)))
    p_values = stats.sequential_p_values(looks)
    assert all(b <= a for a, b in itertools.pairwise(p_values))
    assert p_values[-1] <= stats.sequential_test(*looks[-1]).p_value


def peeking_false_positive_rate(method: str, *, runs: int, share: float, seed: int, effect: float = 0.0) -> float:
    """Run `runs` A/A (or A/B with `effect`) experiments, each looked at after every one of 60 "minutes"
    (200 requests a minute with outcomes, success rate 30%), and count those declared significant at any look."""
    rng = np.random.default_rng(seed)
    n_treatment = rng.binomial(200, share, size=(runs, 60))
    n_control = 200 - n_treatment
    s_treatment = rng.binomial(n_treatment, 0.3 + effect)
    s_control = rng.binomial(n_control, 0.3)
    cum = [np.cumsum(a, axis=1).tolist() for a in (n_control, s_control, n_treatment, s_treatment)]
    significant = 0
    for run in range(runs):
        previous = 1.0
        for minute in range(60):
            control = MetricSummary.from_proportion(cum[1][run][minute], cum[0][run][minute])
            treatment = MetricSummary.from_proportion(cum[3][run][minute], cum[2][run][minute])
            if method == "sequential":
                result = stats.sequential_test(control, treatment, previous_p=previous)
            else:
                result = stats.fixed_horizon_test(control, treatment)
            if result is None:
                continue
            if result.significant:
                significant += 1
                break
            previous = min(previous, result.p_value)
    return significant / runs


@pytest.mark.parametrize(("share", "seed"), [(0.5, 11), (0.1, 12)])
def test_an_aa_test_read_every_minute_keeps_its_false_positive_rate(share, seed):
    # 1,200 seeded runs: the rate's standard error is about 0.6 points, so 5% is a real bound, not luck.
    assert peeking_false_positive_rate("sequential", runs=1200, share=share, seed=seed) <= 0.05


def test_the_fixed_horizon_test_read_every_minute_does_not():
    # The same simulation can fail: read the same way, the fixed-horizon test finds "effects" in A/A far too often.
    assert peeking_false_positive_rate("fixed", runs=300, share=0.5, seed=13) > 0.15


def test_the_sequential_test_finds_a_real_effect():
    # 30% -> 34% with 6,000 outcomes per arm over the hour: found in most runs.
    assert peeking_false_positive_rate("sequential", runs=100, share=0.5, seed=14, effect=0.04) > 0.8
