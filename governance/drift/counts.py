"""Statistics on aligned count vectors (bins or categories): Jensen-Shannon, PSI, chi-squared, two-proportion z.

The same functions serve raw rows (counts taken from the data) and sketches (counts summed over windows), which is
why everything that only needs counts is exact from sketches.
"""

from __future__ import annotations

import numpy as np
from scipy.special import rel_entr
from scipy.stats import distributions


def _proportions(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    if total <= 0:
        raise ValueError("a count vector with no observations")
    return counts / total


def jensenshannon(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen-Shannon distance (natural log, as scipy.spatial.distance.jensenshannon with base=None)."""
    p = _proportions(np.asarray(reference_counts, dtype=np.float64))
    q = _proportions(np.asarray(current_counts, dtype=np.float64))
    mixture = (p + q) / 2.0
    divergence = float(rel_entr(p, mixture).sum() + rel_entr(q, mixture).sum())
    return float(np.sqrt(max(divergence, 0.0) / 2.0))


def _fill_zeroes(proportions: np.ndarray) -> np.ndarray:
    # Evidently's rule for empty bins in PSI: a millionth of the smallest non-zero share when that share is at most
    # 0.0001, else 0.0001, so log(p/q) stays finite.
    filled = proportions.copy()
    nonzero = filled[filled != 0]
    smallest = float(nonzero.min())
    filled[filled == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return filled


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Population stability index sum((r - c) * ln(r / c)) over shares, empty bins filled as Evidently fills them."""
    r = _fill_zeroes(_proportions(np.asarray(reference_counts, dtype=np.float64)))
    c = _fill_zeroes(_proportions(np.asarray(current_counts, dtype=np.float64)))
    return float(np.sum((r - c) * np.log(r / c)))


def chisquare_goodness_of_fit(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Evidently's chi-squared: current counts against the reference shares scaled to the current total.

    Equals scipy.stats.chisquare(f_obs=current, f_exp=reference * m / n). A category the reference never saw has
    an expected count of 0: the statistic is infinite and p = 0 (drift), which is what a new category means.
    """
    ref = np.asarray(reference_counts, dtype=np.float64)
    cur = np.asarray(current_counts, dtype=np.float64)
    expected = ref * (cur.sum() / ref.sum())
    if len(ref) < 2:
        return 0.0, 1.0  # one category on both sides: nothing can have moved
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(expected > 0, (cur - expected) ** 2 / np.where(expected > 0, expected, 1.0), np.inf)
    terms = np.where((expected == 0) & (cur == 0), 0.0, terms)
    statistic = float(terms.sum())
    p_value = 0.0 if np.isinf(statistic) else float(distributions.chi2.sf(statistic, len(ref) - 1))
    return statistic, p_value


def chisquare_homogeneity(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Pearson's chi-squared test of homogeneity on the 2 x k table (reference, current) without Yates' correction.

    Equals scipy.stats.chi2_contingency([reference, current], correction=False) after dropping categories that
    neither side has. Unlike the goodness-of-fit form it treats the reference as a sample too.
    """
    table = np.vstack([np.asarray(reference_counts, dtype=np.float64), np.asarray(current_counts, dtype=np.float64)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    return statistic, float(distributions.chi2.sf(statistic, table.shape[1] - 1))


def two_proportion_z(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Evidently's z-test for a two-valued column: share of the first (sorted) value on each side, pooled variance.

    Its counts must list the first sorted value first. Two sides holding one and the same value: p = 1.
    """
    ref = np.asarray(reference_counts, dtype=np.float64)
    cur = np.asarray(current_counts, dtype=np.float64)
    n1, n2 = ref.sum(), cur.sum()
    # Evidently codes the first sorted value as 0 and every other value as 1, and compares the shares of 1.
    p1 = (n1 - ref[0]) / n1
    p2 = (n2 - cur[0]) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2)
    if variance <= 0:
        return 0.0, 1.0
    z = (p1 - p2) / np.sqrt(variance)
    return float(z), float(2 * (1 - distributions.norm.cdf(abs(z))))
