"""Drift methods, their thresholds and verdict rules, and Evidently's default choice of method per column.

Defaults follow Evidently's `DataDriftPreset` (evidently.legacy.calculations.stattests.registry
`_get_default_stattest`, and each stattest module), so a user coming from it gets the same verdict per column:

| reference rows (finite) | numeric column, > 5 distinct values | numeric, <= 5 values | categorical |
| --- | --- | --- | --- |
| <= 1,000 | KS, drift when p <= 0.05 | chi-squared (3-5 values) or z-test (<= 2), p < 0.05 | same as numeric <= 5 |
| > 1,000 | Wasserstein / ref. std >= 0.1 | Jensen-Shannon >= 0.1 | Jensen-Shannon >= 0.1 |

"distinct values" counts both sides together. Evidently's comparisons are kept exactly: KS drifts at p <= threshold,
chi-squared and z at p < threshold, distances at >= threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

from governance.drift.columns import CATEGORICAL, NUMERIC

SMALL_REFERENCE_ROWS = 1_000  # Evidently: at most this many reference rows -> statistical tests, else distances
FEW_VALUES = 5  # Evidently: a numeric column with at most this many distinct values is tested as categorical
BINNED_VALUES = 20  # Evidently: a numeric column with more distinct reference values is binned (Sturges) for JS/PSI
DEFAULT_DRIFT_SHARE = 0.5


@dataclass(frozen=True)
class Method:
    """A drift method: what it reports, which column kinds it takes, its default threshold and verdict rule."""

    name: str
    label: str
    kinds: frozenset[str]
    default_threshold: float
    tests_p_value: bool  # True: verdict on the p-value (small = drift); False: on the statistic (large = drift)
    inclusive: bool  # True: drift at equality (p <= t, or d >= t)

    def drifted(self, statistic: float, p_value: float | None, threshold: float) -> bool:
        if self.tests_p_value:
            assert p_value is not None
            return p_value <= threshold if self.inclusive else p_value < threshold
        return statistic >= threshold if self.inclusive else statistic > threshold


BOTH = frozenset({NUMERIC, CATEGORICAL})
METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method("ks", "Kolmogorov-Smirnov", frozenset({NUMERIC}), 0.05, tests_p_value=True, inclusive=True),
        Method("wasserstein", "Wasserstein (normed)", frozenset({NUMERIC}), 0.1, tests_p_value=False, inclusive=True),
        Method("jensenshannon", "Jensen-Shannon distance", BOTH, 0.1, tests_p_value=False, inclusive=True),
        Method("psi", "PSI", BOTH, 0.1, tests_p_value=False, inclusive=True),
        Method("chisquare", "chi-squared", BOTH, 0.05, tests_p_value=True, inclusive=False),
        Method("chi2_contingency", "chi-squared (homogeneity)", BOTH, 0.05, tests_p_value=True, inclusive=False),
        Method("z", "two-proportion z-test", BOTH, 0.05, tests_p_value=True, inclusive=False),
    )
}


class DriftConfigError(ValueError):
    """A method or threshold that cannot be used; the message names it."""


def method_named(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise DriftConfigError(f"unknown drift method {name!r}; known: {', '.join(METHODS)}") from None


def default_method(kind: str, reference_rows: int, distinct_values: int) -> str:
    """Evidently's default method for a column (reference_rows: finite reference values; distinct: both sides)."""
    if reference_rows <= SMALL_REFERENCE_ROWS:
        if kind == NUMERIC and distinct_values > FEW_VALUES:
            return "ks"
        return "chisquare" if distinct_values > 2 else "z"
    if kind == NUMERIC and distinct_values > FEW_VALUES:
        return "wasserstein"
    return "jensenshannon"


def validate_threshold(method: Method, threshold: float | None) -> float:
    if threshold is None:
        return method.default_threshold
    value = float(threshold)
    if not value == value or value < 0 or (method.tests_p_value and value > 1):
        raise DriftConfigError(
            f"threshold {threshold!r} does not fit {method.name}: "
            + ("a p-value threshold between 0 and 1 is needed" if method.tests_p_value else "use a number >= 0")
        )
    return value
