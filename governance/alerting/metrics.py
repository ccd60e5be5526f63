"""The numbers an alert rule can watch, read out of a drift or a fairness result.

A drift result has the job result shape of issue 12: `{"features": [{"name", "statistic", "p_value", "drifted",
...}], "prediction": {...} | None, "dataset": {"drifted_share", "drifted"}, "rows": {...}}`. A fairness result is one
report per segment attribute (governance.drift.fairness.fairness_report: `{"attribute", "demographic_parity_ratio",
...}`), given alone, as a list, or as `{"attributes": [...]}`.

Named metrics cover what people ask for; `drift:<path>` and `fairness:<key>` reach anything else a result holds
(`drift:features.psi` reads each feature entry's `psi`, `drift:rows.current` the current row count,
`fairness:selection_rate_min` a key of each attribute's report). Booleans count as 1 and 0.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

DRIFT = "drift"
FAIRNESS = "fairness"
KINDS = (DRIFT, FAIRNESS)


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str
    label: str
    per_feature: bool  # has one value per feature (drift) or per segment attribute (fairness)
    path: tuple[str, ...]  # inside the result, or inside each feature entry / attribute report


CATALOG: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("drift_share", DRIFT, "Share of drifted features (dataset drift)", False, ("dataset", "drifted_share")),
        Metric("feature_drift", DRIFT, "Feature drift statistic (per feature)", True, ("statistic",)),
        Metric("feature_p_value", DRIFT, "Feature drift p-value (per feature)", True, ("p_value",)),
        Metric("feature_drifted", DRIFT, "Feature drifted, 1 or 0 (per feature)", True, ("drifted",)),
        Metric("prediction_drift", DRIFT, "Prediction drift statistic", False, ("prediction", "statistic")),
        Metric("prediction_p_value", DRIFT, "Prediction drift p-value", False, ("prediction", "p_value")),
        Metric("prediction_drifted", DRIFT, "Prediction drifted, 1 or 0", False, ("prediction", "drifted")),
        Metric("demographic_parity_ratio", FAIRNESS, "Demographic parity ratio", True, ("demographic_parity_ratio",)),
        Metric(
            "demographic_parity_difference",
            FAIRNESS,
            "Demographic parity difference",
            True,
            ("demographic_parity_difference",),
        ),
        Metric("equalized_odds_gap", FAIRNESS, "Equalized-odds gap", True, ("equalized_odds_gap",)),
        Metric("tpr_gap", FAIRNESS, "True positive rate gap", True, ("tpr_gap",)),
        Metric("fpr_gap", FAIRNESS, "False positive rate gap", True, ("fpr_gap",)),
    )
}

_KEY = r"[A-Za-z_][A-Za-z0-9_]*"
CUSTOM_PATTERN = rf"(?:drift|fairness):{_KEY}(?:\.{_KEY})*"
METRIC_PATTERN = rf"^(?:{'|'.join(CATALOG)}|{CUSTOM_PATTERN})$"
_METRIC_RE = re.compile(METRIC_PATTERN)
MAX_METRIC_LENGTH = 200

COMPARISONS: dict[str, tuple[str, Callable[[float, float], bool]]] = {
    "gt": (">", operator.gt),
    "gte": (">=", operator.ge),
    "lt": ("<", operator.lt),
    "lte": ("<=", operator.le),
}


class MetricError(ValueError):
    pass


def metric_named(name: str) -> Metric:
    """The metric a rule names: from the catalog, or a custom path."""
    if not isinstance(name, str) or len(name) > MAX_METRIC_LENGTH or not _METRIC_RE.match(name):
        raise MetricError(
            f"Unknown metric {str(name)[:60]!r}: use one of {', '.join(CATALOG)}, or drift:<path> / fairness:<key>."
        )
    if name in CATALOG:
        return CATALOG[name]
    kind, _, path = name.partition(":")
    keys = tuple(path.split("."))
    if kind == FAIRNESS:
        return Metric(name, FAIRNESS, name, True, keys)
    if keys[0] == "features" and len(keys) > 1:
        return Metric(name, DRIFT, name, True, keys[1:])
    return Metric(name, DRIFT, name, False, keys)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _dig(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def fairness_reports(result: Any) -> list[Mapping[str, Any]]:
    """The per-attribute reports of a fairness result, whichever way it holds them."""
    if isinstance(result, list):
        return [r for r in result if isinstance(r, Mapping)]
    if not isinstance(result, Mapping):
        return []
    if "attribute" in result:
        return [result]
    for key in ("attributes", "reports"):
        if isinstance(result.get(key), list):
            return [r for r in result[key] if isinstance(r, Mapping)]
    by_attribute = result.get("by_attribute")
    if isinstance(by_attribute, Mapping):
        return [{"attribute": name, **r} for name, r in by_attribute.items() if isinstance(r, Mapping)]
    return []


def metric_values(metric: Metric, result: Any, feature: str = "") -> list[tuple[str, float]]:
    """(feature, value) pairs the metric has in `result` ("" as the feature of a whole-result metric); only the named
    feature when `feature` is given. Values that are missing, null or not finite are left out (not judged)."""
    pairs: list[tuple[str, Any]] = []
    if metric.kind == FAIRNESS:
        pairs = [(str(r.get("attribute", "")), _dig(r, metric.path)) for r in fairness_reports(result)]
    elif metric.per_feature:
        entries = result.get("features") if isinstance(result, Mapping) else None
        if isinstance(entries, list):
            pairs = [(str(e.get("name", "")), _dig(e, metric.path)) for e in entries if isinstance(e, Mapping)]
    else:
        pairs = [("", _dig(result, metric.path))]
    if feature:
        pairs = [(name, value) for name, value in pairs if name == feature]
    return [(name, number) for name, value in pairs if (number := _number(value)) is not None]


def breaches(comparison: str, value: float, threshold: float) -> bool:
    return COMPARISONS[comparison][1](value, threshold)


def worst(pairs: list[tuple[str, float]], comparison: str) -> tuple[str, float]:
    """The pair farthest past the threshold: the largest for > and >=, the smallest for < and <=."""
    pick = max if comparison in ("gt", "gte") else min
    return pick(pairs, key=lambda pair: pair[1])
