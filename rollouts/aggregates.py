"""Mergeable per-arm aggregates of served traffic (pure: no Django, no Celery, no scipy).

The serving process counts what it serves in memory and flushes one aggregate per (rollout, arm, minute) to the
database; the console adds aggregates up over any window. Everything here is a sum, so aggregates from several
serving processes, or of several minutes, merge exactly, in any order:

- requests and errors (a challenger that raised or timed out counts as a challenger error, even though the
  request was answered by the champion);
- latency as a histogram with exponential buckets (the scheme of Prometheus' native histograms, schema 3: eight
  buckets per doubling, each 9% wider than the last), stored sparsely as {bucket index: count}. A quantile read
  from it is within about 4.5% of the true value, whatever the number of requests;
- outcomes: how many came with `success` and how many of those succeeded; how many came with a `value`, their
  sum and their sum of squares (the mean and the variance of the value follow).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

BUCKETS_PER_DOUBLING = 8
# Bucket i holds latencies in (2**((i-1)/8), 2**(i/8)] milliseconds. The lowest bucket also takes everything at or
# below 2**-10 ms (about 1 µs, below any real request); the highest everything from 2**20 ms (17.5 minutes) up.
MIN_BUCKET = -10 * BUCKETS_PER_DOUBLING
MAX_BUCKET = 20 * BUCKETS_PER_DOUBLING
_MIN_LATENCY_MS = 2.0**-10


def latency_bucket(latency_ms: float) -> int:
    """The histogram bucket of one latency in milliseconds."""
    if latency_ms <= _MIN_LATENCY_MS:
        if math.isnan(latency_ms):
            raise ValueError("A latency must be a number of milliseconds, not NaN.")
        return MIN_BUCKET
    if latency_ms == math.inf:
        return MAX_BUCKET
    return min(math.ceil(math.log2(latency_ms) * BUCKETS_PER_DOUBLING), MAX_BUCKET)


def bucket_bounds(index: int) -> tuple[float, float]:
    """The (lower, upper] latency bounds of a bucket, in milliseconds."""
    return 2.0 ** ((index - 1) / BUCKETS_PER_DOUBLING), 2.0 ** (index / BUCKETS_PER_DOUBLING)


@dataclass
class LatencyHistogram:
    """Counts of latencies per exponential bucket; merging two adds their counts."""

    counts: dict[int, int] = field(default_factory=dict)

    def add(self, latency_ms: float, count: int = 1) -> None:
        index = latency_bucket(latency_ms)
        self.counts[index] = self.counts.get(index, 0) + count

    def merge(self, other: LatencyHistogram | Mapping[int, int]) -> None:
        counts = other.counts if isinstance(other, LatencyHistogram) else other
        for index, count in counts.items():
            self.counts[index] = self.counts.get(index, 0) + count

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0 < q <= 1) in milliseconds, interpolated geometrically inside its bucket; None if empty.

        Geometric interpolation suits exponential buckets: a bucket's count is spread evenly over the logarithm
        of latency, which keeps the relative error within half a bucket's width.
        """
        if not 0 < q <= 1:
            raise ValueError(f"A quantile must be in (0, 1], not {q}.")
        total = self.total
        if total == 0:
            return None
        rank = q * total
        seen = 0
        for index in sorted(self.counts):
            count = self.counts[index]
            if count <= 0:
                continue
            if seen + count >= rank:
                lower, upper = bucket_bounds(index)
                fraction = (rank - seen) / count
                return lower * (upper / lower) ** fraction
            seen += count
        return bucket_bounds(max(self.counts))[1]  # pragma: no cover  (rank <= total always stops above)

    def to_json(self) -> dict[str, int]:
        """JSON object keys must be strings: {"-3": 12, "17": 40}."""
        return {str(index): count for index, count in sorted(self.counts.items()) if count}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> LatencyHistogram:
        histogram = cls()
        for key, count in (data or {}).items():
            index = int(key)
            if not MIN_BUCKET <= index <= MAX_BUCKET:
                raise ValueError(f"Latency bucket {index} is outside {MIN_BUCKET}..{MAX_BUCKET}.")
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise ValueError(f"Latency bucket {index} has count {count!r}; counts are non-negative integers.")
            histogram.counts[index] = histogram.counts.get(index, 0) + count
        return histogram


@dataclass
class ArmWindow:
    """What one arm served over a window (a minute, or any sum of minutes)."""

    requests: int = 0
    errors: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    latency_sum_ms: float = 0.0
    success_count: int = 0  # outcomes that carried `success`
    successes: int = 0
    value_count: int = 0  # outcomes that carried `value`
    value_sum: float = 0.0
    value_sum_sq: float = 0.0

    def record_request(self, latency_ms: float, *, error: bool = False) -> None:
        self.requests += 1
        if error:
            self.errors += 1
        self.latency.add(latency_ms)
        self.latency_sum_ms += latency_ms

    def record_outcome(self, *, success: bool | None = None, value: float | None = None) -> None:
        if success is not None:
            self.success_count += 1
            self.successes += int(bool(success))
        if value is not None:
            if not math.isfinite(value):
                raise ValueError(f"An outcome value must be a finite number, not {value}.")
            self.value_count += 1
            self.value_sum += value
            self.value_sum_sq += value * value

    def merge(self, other: ArmWindow) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.latency.merge(other.latency)
        self.latency_sum_ms += other.latency_sum_ms
        self.success_count += other.success_count
        self.successes += other.successes
        self.value_count += other.value_count
        self.value_sum += other.value_sum
        self.value_sum_sq += other.value_sum_sq

    @classmethod
    def total(cls, windows: Iterable[ArmWindow]) -> ArmWindow:
        merged = cls()
        for window in windows:
            merged.merge(window)
        return merged

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.success_count if self.success_count else None

    @property
    def value_mean(self) -> float | None:
        return self.value_sum / self.value_count if self.value_count else None
