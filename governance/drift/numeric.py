"""Kernels on sorted numeric columns: the two-sample KS statistic and p-value, Wasserstein-1, histograms.

Every statistic here starts from each side's finite values sorted once (`sorted_finite`): the sort is the only
O(n log n) step, and everything after it is a gather, a searchsorted of one side into the other, or a few
searchsorted calls against bin edges. Non-finite values (NaN, +inf, -inf) are dropped, as Evidently drops them
before its tests; the caller counts them.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.stats import distributions

# scipy's own exact two-sample KS distribution (Hodges' lattice-path counting, compiled with pythran). It is not
# public API, but it is the honest reference: `ks_2samp(method="auto")` uses exactly this for samples of at most
# 10,000 values, and re-implementing the lattice counting in Python would be slower and differ in rounding.
# If a future scipy moves it, the p-value falls back to the asymptotic distribution and says so ("asymp").
try:
    from scipy.stats._stats_py import _attempt_exact_2kssamp
except ImportError:  # pragma: no cover - depends on the scipy version
    _attempt_exact_2kssamp = None

KS_EXACT_MAX_N = 10_000  # scipy's MAX_AUTO_N: 'auto' tries the exact distribution when both sides are this small


def sorted_finite(values: np.ndarray) -> np.ndarray:
    """The finite values of a 1-D array, sorted ascending (float32 stays float32: numpy sorts it ~2x faster)."""
    array = np.asarray(values)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"a numeric column is needed, got dtype {array.dtype}")
    if array.dtype.kind in "iub":
        return np.sort(array.astype(np.float64))
    ordered = np.sort(array)
    # After the sort: -inf..., finite..., +inf..., nan... (numpy sorts NaN last), so the finite run is one slice.
    if len(ordered) == 0 or (np.isfinite(ordered[0]) and np.isfinite(ordered[-1])):
        return ordered
    # The bounds in the array's own dtype: a float64 scalar would make searchsorted convert the whole array.
    infinity = ordered.dtype.type(np.inf)
    low = int(np.searchsorted(ordered, -infinity, side="right"))
    high = int(np.searchsorted(ordered, infinity, side="left"))
    return ordered[low:high]


def sorted_finite_columns(matrix: np.ndarray) -> list[np.ndarray]:
    """`sorted_finite` for each column of a 2-D (rows, columns) array, sorting all columns in one call."""
    array = np.asarray(matrix)
    if array.ndim != 2:
        raise ValueError("a 2-D (rows, columns) array is needed")
    if array.shape[0] == 0:
        return [np.empty(0, dtype=np.float64) for _ in range(array.shape[1])]
    if array.dtype.kind in "iub":
        array = array.astype(np.float64)
    # Sort along contiguous rows of the transpose: a feature's values are then adjacent in memory.
    ordered = np.sort(np.ascontiguousarray(array.T), axis=1)
    columns = []
    for row in ordered:
        infinity = row.dtype.type(np.inf)
        low = int(np.searchsorted(row, -infinity, side="right")) if row[0] == -infinity else 0
        high = len(row) if np.isfinite(row[-1]) else int(np.searchsorted(row, infinity, side="left"))
        columns.append(row[low:high])
    return columns


def distinct_count(sorted_values: np.ndarray, limit: int | None = None) -> int:
    """Number of distinct values of a sorted array; with `limit`, any count above it may be returned as limit+1."""
    if len(sorted_values) == 0:
        return 0
    if limit is not None and sorted_values[0] != sorted_values[-1]:
        # Cheap early answer for continuous data: more than `limit` distinct values among the first few thousand.
        head = sorted_values[:: max(1, len(sorted_values) // 4096)]
        if int(np.count_nonzero(np.diff(head))) + 1 > limit:
            return limit + 1
    return int(np.count_nonzero(np.diff(sorted_values))) + 1


def union_distinct_count(reference: np.ndarray, current: np.ndarray, limit: int) -> int:
    """Distinct values over both sorted sides, exactly when at most `limit`, else any number above `limit`."""
    if distinct_count(reference, limit) > limit or distinct_count(current, limit) > limit:
        return limit + 1
    return len(np.union1d(reference, current))


# --- Kolmogorov-Smirnov -----------------------------------------------------------------------------------------


KS_BLOCK = 64  # current values per block in the bounded search


def _ks_candidates(reference: np.ndarray, current: np.ndarray, positions: np.ndarray) -> float:
    """The largest ECDF gap among the candidates at the given current positions (see ks_statistic)."""
    n, m = len(reference), len(current)
    values = current[positions]
    right = np.searchsorted(reference, values, side="right")  # #ref <= c_j
    left = right.copy()  # #ref < c_j: differs from `right` only where c_j equals a reference value
    tied = right > 0
    tied[tied] = reference[right[tied] - 1] == values[tied]
    if tied.any():
        left[tied] = np.searchsorted(reference, values[tied], side="left")
    new_value = positions == 0
    inner = ~new_value
    new_value[inner] = current[positions[inner] - 1] != values[inner]
    last_of_value = positions == m - 1
    inner = ~last_of_value
    last_of_value[inner] = current[positions[inner] + 1] != values[inner]
    best = 0.0
    if new_value.any():
        # F_ref - F_cur just below a new current value: #ref < c_j over n, minus #cur < c_j = j over m.
        best = max(best, float((left[new_value] / n - positions[new_value] / m).max()))
    if last_of_value.any():
        # F_cur - F_ref at a current value (after its ties), written as scipy's cdf1 - cdf2 negated: the same float.
        best = max(best, float((-(right[last_of_value] / n - (positions[last_of_value] + 1) / m)).max()))
    return best


def ks_statistic(reference: np.ndarray, current: np.ndarray) -> float:
    """Two-sided two-sample KS statistic sup |F_ref - F_cur| of two sorted finite arrays, as scipy's ks_2samp.

    scipy evaluates both ECDFs at all n + m points (two searchsorted of n + m values). Here F_cur only jumps at
    current values, so on [c_(j-1), c_j) the gap F_ref - F_cur is largest just before c_j (#ref < c_j, then j/m),
    and F_cur - F_ref is largest at a current value (#cur <= c_j, #ref <= c_j). Each candidate is the same
    a/n - b/m with the same integers as scipy's, so the statistic is the same float.

    For large samples the candidates are searched in blocks of 64 current values: a search at each block's ends
    bounds every gap inside the block (F_ref and F_cur are monotone), and exact values at the block starts bound the
    statistic from below, so only blocks whose bound reaches that lower bound are searched value by value. The result
    is exact; a million values cost tens of thousands of searches instead of a million.
    """
    n, m = len(reference), len(current)
    if n == 0 or m == 0:
        raise ValueError("both samples need at least one finite value")
    if m <= 16 * KS_BLOCK:
        return _ks_candidates(reference, current, np.arange(m))
    starts = np.arange(0, m, KS_BLOCK)
    ends = np.minimum(starts + KS_BLOCK, m)  # exclusive
    first = current[starts]
    left_first = np.searchsorted(reference, first, side="left")
    right_first = np.searchsorted(reference, first, side="right")
    right_last = np.searchsorted(reference, current[ends - 1], side="right")
    # Lower bound: at c_a, F_cur >= (a+1)/m and F_ref = right/n; just below c_a, F_cur <= a/m and F_ref -> left/n.
    lower = max(float(((starts + 1) / m - right_first / n).max()), float((left_first / n - starts / m).max()), 0.0)
    # Upper bound of any candidate inside [a, e): F_ref ranges over [left(c_a), right(c_(e-1))], F_cur over [a, e].
    bound = np.maximum(right_last / n - starts / m, ends / m - left_first / n)
    chosen = np.flatnonzero(bound >= lower - 1e-12)
    lengths = ends[chosen] - starts[chosen]
    offsets = np.repeat(starts[chosen] - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    positions = np.arange(int(lengths.sum())) + offsets
    return _ks_candidates(reference, current, positions)


def ks_pvalue(statistic: float, n: int, m: int, mode: str = "auto") -> tuple[float, str]:
    """Two-sided p-value of a KS statistic for sample sizes n and m, chosen as scipy's ks_2samp chooses it.

    `auto`: the exact distribution when max(n, m) <= 10,000, else the asymptotic one (scipy's `kstwo` at the
    effective size round(n*m/(n+m))). Returns (p_value, mode used).
    """
    if mode not in ("auto", "exact", "asymp"):
        raise ValueError(f"unknown KS mode {mode!r}")
    if mode == "auto":
        mode = "exact" if max(n, m) <= KS_EXACT_MAX_N else "asymp"
    g = math.gcd(n, m)
    if mode == "exact" and (n // g) >= np.iinfo(np.int32).max / (m // g):
        mode = "asymp"
    if mode == "exact" and _attempt_exact_2kssamp is not None:
        with np.errstate(all="ignore"):
            success, _, probability = _attempt_exact_2kssamp(n, m, g, statistic, "two-sided")
        if success:
            return float(np.clip(probability, 0.0, 1.0)), "exact"
    larger, smaller = max(n, m), min(n, m)
    effective = larger * smaller / (larger + smaller)
    return float(np.clip(distributions.kstwo.sf(statistic, np.round(effective)), 0.0, 1.0)), "asymp"


# --- Wasserstein-1 ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _quantile_grid(n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For sample sizes n and m: the index into each sorted side on every piece of the merged quantile grid, and
    the width of each piece. Data-independent, so it is built once per (n, m) and shared by every column.

    W1 = integral over q in (0, 1) of |Q_ref(q) - Q_cur(q)|. Q_ref is constant on [i/n, (i+1)/n) and Q_cur on
    [j/m, (j+1)/m); in units of 1/(n*m) the breakpoints are the integers i*m and j*n, so the merge is exact.
    """
    starts = np.union1d(np.arange(n, dtype=np.int64) * m, np.arange(m, dtype=np.int64) * n)
    widths = np.diff(np.append(starts, np.int64(n) * m)) / (float(n) * float(m))
    return starts // m, starts // n, widths


def wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    """First Wasserstein distance between the empirical distributions of two sorted finite arrays."""
    n, m = len(reference), len(current)
    if n == 0 or m == 0:
        raise ValueError("both samples need at least one finite value")
    if n == m:
        return float(np.abs(reference.astype(np.float64) - current).mean())
    ref_index, cur_index, widths = _quantile_grid(n, m)
    gaps = np.abs(reference[ref_index].astype(np.float64) - current[cur_index])
    return float(np.einsum("i,i->", gaps, widths))  # not BLAS: its threads spin on a busy machine


def wasserstein_norm_scale(reference: np.ndarray) -> float:
    """Evidently's normaliser: the reference's population standard deviation, at least 0.001."""
    return max(float(np.std(reference, dtype=np.float64)), 0.001)


# --- bins -------------------------------------------------------------------------------------------------------


def sturges_edges(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    """`np.histogram_bin_edges(concat(reference, current), bins="sturges")` from the two sorted arrays."""
    low = float(min(reference[0], current[0]))
    high = float(max(reference[-1], current[-1]))
    size = len(reference) + len(current)
    if low == high:
        low, high = low - 0.5, high + 0.5
        return np.linspace(low, high, 2)
    width = (high - low) / (np.log2(size) + 1.0)
    bins = int(np.ceil((high - low) / width))
    return np.linspace(low, high, bins + 1, endpoint=True)


def histogram_sorted(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """np.histogram(values, edges)[0] for sorted values: bins [e_i, e_i+1), the last one closed."""
    cuts = np.searchsorted(sorted_values, edges, side="left")
    cuts[-1] = np.searchsorted(sorted_values, edges[-1], side="right")
    return np.diff(cuts)


def open_histogram_sorted(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts in len(edges) + 1 bins (-inf, e0), [e0, e1), ..., [e_last, +inf) of sorted values."""
    cuts = np.searchsorted(sorted_values, edges, side="left")
    return np.diff(np.concatenate(([0], cuts, [len(sorted_values)])))


def open_histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """`open_histogram_sorted` for unsorted finite values."""
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)


def quantile_edges(sorted_values: np.ndarray, bins: int) -> np.ndarray:
    """Inner edges at the reference's 1/bins ... (bins-1)/bins quantiles, duplicates dropped (ties, constants)."""
    if len(sorted_values) == 0:
        return np.empty(0)
    probabilities = np.arange(1, bins) / bins
    return np.unique(np.quantile(sorted_values.astype(np.float64), probabilities))
