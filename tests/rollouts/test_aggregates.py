"""Per-arm aggregates: exponential latency buckets, quantiles within half a bucket, exact merges."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rollouts.aggregates import MAX_BUCKET, MIN_BUCKET, ArmWindow, LatencyHistogram, bucket_bounds, latency_bucket


def test_a_latency_lies_inside_its_bucket():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.lognormal(0, 3, 5000), [0.01, 1.0, 2.0, 1000.0]])
    for value in values[(values > 2.0**-10) & (values < 2.0**20)]:
        lower, upper = bucket_bounds(latency_bucket(float(value)))
        assert lower < value <= upper * (1 + 1e-12)
        assert upper / lower == pytest.approx(2 ** (1 / 8))


def test_extremes_land_in_the_end_buckets_and_nan_is_refused():
    assert latency_bucket(0.0) == latency_bucket(-1.0) == latency_bucket(1e-9) == MIN_BUCKET
    assert latency_bucket(math.inf) == latency_bucket(1e12) == MAX_BUCKET
    with pytest.raises(ValueError):
        latency_bucket(math.nan)


@pytest.mark.parametrize("q", [0.5, 0.95, 0.99])
def test_quantiles_are_within_half_a_bucket_of_the_exact_ones(q):
    rng = np.random.default_rng(2)
    latencies = rng.lognormal(mean=1.5, sigma=0.6, size=100_000)
    histogram = LatencyHistogram()
    for value in latencies:
        histogram.add(float(value))
    exact = float(np.quantile(latencies, q))
    assert histogram.quantile(q) == pytest.approx(exact, rel=0.045)


def test_an_empty_histogram_has_no_quantile_and_q_must_be_in_range():
    assert LatencyHistogram().quantile(0.5) is None
    with pytest.raises(ValueError):
        LatencyHistogram().quantile(0)


def test_merging_the_minutes_gives_what_one_window_would_have_counted():
    rng = np.random.default_rng(3)
    whole, minutes = ArmWindow(), [ArmWindow() for _ in range(7)]
    for i in range(5000):
        minute = minutes[i % 7]
        latency, error = float(rng.exponential(5)), bool(rng.random() < 0.03)
        success, value = bool(rng.random() < 0.4), float(rng.normal(10, 2))
        for window in (whole, minute):
            window.record_request(latency, error=error)
            if i % 3 == 0:
                window.record_outcome(success=success)
            if i % 5 == 0:
                window.record_outcome(value=value)
    merged = ArmWindow.total(reversed(minutes))
    assert (merged.requests, merged.errors, merged.success_count, merged.successes, merged.value_count) == (
        whole.requests,
        whole.errors,
        whole.success_count,
        whole.successes,
        whole.value_count,
    )
    assert merged.latency.counts == whole.latency.counts
    assert merged.value_sum == pytest.approx(whole.value_sum)
    assert merged.value_sum_sq == pytest.approx(whole.value_sum_sq)
    assert merged.error_rate == whole.errors / 5000


def test_a_histogram_round_trips_through_json_and_bad_json_is_refused():
    histogram = LatencyHistogram()
    for value in (0.3, 0.3, 4.0, 250.0):
        histogram.add(value)
    assert LatencyHistogram.from_json(histogram.to_json()) == histogram
    assert all(isinstance(k, str) for k in histogram.to_json())
    for bad in ({"9999": 1}, {"3": -1}, {"3": 1.5}, {"3": True}, {"x": 1}):
        with pytest.raises(ValueError):
            LatencyHistogram.from_json(bad)


def test_an_outcome_value_must_be_finite():
    window = ArmWindow()
    with pytest.raises(ValueError):
        window.record_outcome(value=math.inf)
    window.record_outcome(success=False, value=2.0)
    assert (window.success_rate, window.value_mean) == (0.0, 2.0)
    assert ArmWindow().error_rate is None and ArmWindow().success_rate is None and ArmWindow().value_mean is None
