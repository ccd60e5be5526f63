"""Drift of a current dataset against a reference, column by column, from raw values.

The result is the job result shape of issue 12:

    {"features": [{"name", "kind", "method", "statistic", "p_value", "threshold", "drifted", ...}],
     "prediction": {... same ...} | None, "dataset": {"drifted_share", "drifted", "threshold", ...},
     "rows": {"reference", "current"}, "source": "raw"}

Each feature also carries `rows` and `missing` per side, `exact` (true from raw rows), `ks_mode` for KS, and a
`note` when something needs saying (a category the baseline never saw, a column with no usable value). A column
with no usable value on either side has `drifted: null` and does not count in the dataset share.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from governance.drift import counts as count_stats
from governance.drift.columns import (
    CATEGORICAL,
    NUMERIC,
    CategoricalColumn,
    Column,
    NumericColumn,
    aligned_counts,
    numeric_value_counts,
    prepare,
)
from governance.drift.methods import (
    BINNED_VALUES,
    DEFAULT_DRIFT_SHARE,
    FEW_VALUES,
    DriftConfigError,
    Method,
    default_method,
    method_named,
    validate_threshold,
)
from governance.drift.numeric import (
    histogram_sorted,
    ks_pvalue,
    ks_statistic,
    sorted_finite,
    sturges_edges,
    union_distinct_count,
    wasserstein,
)

MAX_NAMED_NEW_CATEGORIES = 5


@dataclass(frozen=True)
class DriftOptions:
    """What a request or monitor may choose: one method and threshold for all columns, or per column."""

    method: str | None = None
    threshold: float | None = None
    per_feature: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    drift_share: float = DEFAULT_DRIFT_SHARE
    ks_mode: str = "auto"

    def __post_init__(self) -> None:
        if self.method is not None:
            method = method_named(self.method)
            validate_threshold(method, self.threshold)
        elif self.threshold is not None:
            raise DriftConfigError("a threshold needs a method (thresholds of different methods mean different things)")
        for name, choice in self.per_feature.items():
            if "method" not in choice:
                raise DriftConfigError(f"feature {name!r}: a per-feature choice needs a method")
            validate_threshold(method_named(str(choice["method"])), choice.get("threshold"))
        if not 0 < self.drift_share <= 1:
            raise DriftConfigError("drift_share must be in (0, 1]")
        if self.ks_mode not in ("auto", "exact", "asymp"):
            raise DriftConfigError("ks_mode must be auto, exact or asymp")

    def choice_for(self, name: str) -> tuple[str | None, float | None]:
        if name in self.per_feature:
            choice = self.per_feature[name]
            return str(choice["method"]), choice.get("threshold")
        return self.method, self.threshold


def _distinct(reference: Column, current: Column, limit: int) -> int:
    if isinstance(reference, NumericColumn) and isinstance(current, NumericColumn):
        return union_distinct_count(reference.sorted, current.sorted, limit)
    assert isinstance(reference, CategoricalColumn) and isinstance(current, CategoricalColumn)
    return len(set(reference.counts) | set(current.counts))


def _value_counts(column: Column) -> Mapping[Any, int]:
    return numeric_value_counts(column) if isinstance(column, NumericColumn) else column.counts


def _binned_counts(reference: Column, current: Column) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """Evidently's binning for JS and PSI: Sturges bins over both sides for a numeric column with more than 20
    distinct reference values, value counts over the union of values otherwise."""
    if (
        isinstance(reference, NumericColumn)
        and isinstance(current, NumericColumn)
        and union_distinct_count(reference.sorted, reference.sorted, BINNED_VALUES) > BINNED_VALUES
    ):
        edges = sturges_edges(reference.sorted, current.sorted)
        return histogram_sorted(reference.sorted, edges), histogram_sorted(current.sorted, edges), []
    keys, ref, cur = aligned_counts(_value_counts(reference), _value_counts(current))
    return ref, cur, keys


def column_drift(
    name: str,
    kind: str,
    reference: Column,
    current: Column,
    *,
    method: str | None = None,
    threshold: float | None = None,
    ks_mode: str = "auto",
) -> dict[str, Any]:
    """Drift of one column: the method (named, or Evidently's default), its statistic, p-value and verdict."""
    entry: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "rows": {"reference": reference.rows, "current": current.rows},
        "missing": {"reference": reference.missing, "current": current.missing},
        "exact": True,
    }
    notes: list[str] = []
    if reference.count == 0 or current.count == 0:
        side = "baseline" if reference.count == 0 else "current data"
        entry.update(method=None, statistic=None, p_value=None, threshold=None, drifted=None)
        entry["note"] = f"no usable value in the {side} (all missing, NaN or infinite)"
        return entry
    chosen: Method | None = method_named(method) if method else None
    if chosen is not None and kind not in chosen.kinds:
        notes.append(f"{chosen.name} does not apply to {kind} columns; the default method was used")
        chosen, threshold = None, None
    if chosen is None:
        chosen = method_named(default_method(kind, reference.count, _distinct(reference, current, FEW_VALUES)))
    limit = validate_threshold(chosen, threshold)
    statistic, p_value = _statistic(chosen.name, reference, current, entry, ks_mode)
    if isinstance(reference, CategoricalColumn) and isinstance(current, CategoricalColumn):
        unseen = sorted(set(current.counts) - set(reference.counts))
        if unseen:
            shown = ", ".join(repr(value) for value in unseen[:MAX_NAMED_NEW_CATEGORIES])
            extra = len(unseen) - MAX_NAMED_NEW_CATEGORIES
            more = f" and {extra} more" if extra > 0 else ""
            notes.append(f"categories not in the baseline: {shown}{more}")
            entry["new_categories"] = unseen[:MAX_NAMED_NEW_CATEGORIES]
    entry.update(
        method=chosen.name,
        statistic=statistic,
        p_value=p_value,
        threshold=limit,
        drifted=bool(chosen.drifted(statistic, p_value, limit)),
    )
    if notes:
        entry["note"] = "; ".join(notes)
    return entry


def _statistic(
    method: str, reference: Column, current: Column, entry: dict[str, Any], ks_mode: str
) -> tuple[float, float | None]:
    if method in ("ks", "wasserstein"):
        assert isinstance(reference, NumericColumn) and isinstance(current, NumericColumn)
        if reference.device_sorted is not None and current.device_sorted is not None:
            from governance.drift import torch_kernels

            entry["device"] = str(current.device_sorted.device)
            ref_t, cur_t = reference.device_sorted, current.device_sorted
            if method == "ks":
                statistic = torch_kernels.ks_statistic(ref_t, cur_t)
                p_value, entry["ks_mode"] = ks_pvalue(statistic, reference.count, current.count, ks_mode)
                return statistic, p_value
            return torch_kernels.wasserstein(ref_t, cur_t) / reference.wasserstein_scale, None
        if method == "ks":
            statistic = ks_statistic(reference.sorted, current.sorted)
            p_value, entry["ks_mode"] = ks_pvalue(statistic, reference.count, current.count, ks_mode)
            return statistic, p_value
        return wasserstein(reference.sorted, current.sorted) / reference.wasserstein_scale, None
    if method in ("jensenshannon", "psi"):
        ref, cur, _ = _binned_counts(reference, current)
        return (count_stats.jensenshannon if method == "jensenshannon" else count_stats.psi)(ref, cur), None
    _, ref, cur = aligned_counts(_value_counts(reference), _value_counts(current))
    if method == "chisquare":
        return count_stats.chisquare_goodness_of_fit(ref, cur)
    if method == "chi2_contingency":
        return count_stats.chisquare_homogeneity(ref, cur)
    return count_stats.two_proportion_z(ref, cur)


def dataset_verdict(features: list[dict[str, Any]], drift_share: float) -> dict[str, Any]:
    """Dataset drift: the share of judged features that drifted, against `drift_share` (>=, as Evidently)."""
    judged = [entry for entry in features if entry["drifted"] is not None]
    drifted = sum(1 for entry in judged if entry["drifted"])
    share = drifted / len(judged) if judged else 0.0
    return {
        "drifted_share": share,
        "drifted": bool(judged) and share >= drift_share,
        "threshold": drift_share,
        "drifted_features": drifted,
        "judged_features": len(judged),
    }


def _prepare_side(values: Any, kind: str) -> Column:
    if isinstance(values, NumericColumn | CategoricalColumn):
        return values
    return prepare(values, kind)


def _prepare_on_device(columns: Mapping[str, Any], kinds: Mapping[str, str], device: str) -> dict[str, Column]:
    """Numeric raw columns sorted on `device` in one batched torch sort (the CUDA path); others as usual."""
    from governance.drift import torch_kernels

    raw = [n for n in kinds if n in columns and kinds[n] == NUMERIC and not isinstance(columns[n], NumericColumn)]
    prepared: dict[str, Column] = {}
    lengths = {len(columns[n]) for n in raw}
    if raw and len(lengths) == 1:
        matrix = np.column_stack([np.asarray(columns[n], dtype=np.float64) for n in raw])
        for name, tensor in zip(raw, torch_kernels.sorted_finite_columns(matrix, device), strict=True):
            host = tensor.cpu().numpy()
            prepared[name] = NumericColumn(host, len(columns[name]) - len(host), device_sorted=tensor)
    for name in kinds:
        if name in columns and name not in prepared:
            prepared[name] = _prepare_side(columns[name], kinds[name])
    return prepared


def _prepare_all(
    columns: Mapping[str, Any], kinds: Mapping[str, str], threads: int, device: str | None = None
) -> dict[str, Column]:
    if device is not None:
        return _prepare_on_device(columns, kinds, device)
    names = [name for name in kinds if name in columns]
    # numpy's sort and searchsorted release the GIL: columns prepared on a thread per core run side by side.
    if threads > 1 and len(names) > 1:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            prepared = list(pool.map(lambda name: _prepare_side(columns[name], kinds[name]), names))
        return dict(zip(names, prepared, strict=True))
    return {name: _prepare_side(columns[name], kinds[name]) for name in names}


def drift_report(
    reference: Mapping[str, Any],
    current: Mapping[str, Any],
    kinds: Mapping[str, str],
    options: DriftOptions | None = None,
    *,
    prediction: str | None = None,
    threads: int | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Drift of every column in `kinds` (name -> "numeric" | "categorical") from raw values or prepared columns.

    `reference` and `current` map names to 1-D arrays (or prepared columns, e.g. the baseline's sorted values kept
    from its upload). A column the current data lacks entirely counts as all missing. `prediction` names the column
    reported as the prediction (not counted in the dataset share). `device` ("cuda", "cuda:0"; "cpu" for tests)
    sorts raw numeric columns with torch on that device and runs KS/Wasserstein there (the GPU worker's path);
    None keeps numpy, the faster choice on a CPU.
    """
    options = options or DriftOptions()
    unknown = [name for name in options.per_feature if name not in kinds]
    if unknown:
        raise DriftConfigError(f"per-feature choice for unknown column(s): {', '.join(sorted(unknown))}")
    workers = threads if threads is not None else min(4, os.cpu_count() or 1)
    ref = _prepare_all(reference, kinds, workers, device)
    cur = _prepare_all(current, kinds, workers, device)
    missing_reference = [name for name in kinds if name not in ref]
    if missing_reference:
        raise DriftConfigError(f"the baseline has no column(s) {', '.join(missing_reference)}")
    rows_current = max((column.rows for column in cur.values()), default=0)
    for name, kind in kinds.items():
        if name not in cur:  # a column absent from every current row: all missing
            empty = sorted_finite(np.empty(0)) if kind == NUMERIC else None
            cur[name] = NumericColumn(empty, rows_current) if empty is not None else CategoricalColumn({}, rows_current)

    def one(name: str) -> dict[str, Any]:
        method, threshold = options.choice_for(name)
        return column_drift(
            name, kinds[name], ref[name], cur[name], method=method, threshold=threshold, ks_mode=options.ks_mode
        )

    features = [one(name) for name in kinds if name != prediction]
    features.sort(key=_drift_order)
    return {
        "features": features,
        "prediction": one(prediction) if prediction is not None else None,
        "dataset": dataset_verdict(features, options.drift_share),
        "rows": {
            "reference": max((column.rows for column in ref.values()), default=0),
            "current": rows_current,
        },
        "source": "raw",
    }


def _drift_order(entry: dict[str, Any]) -> tuple[int, float, str]:
    """Drifted first, then by how far past (or short of) the threshold, so the worst features lead."""
    if entry["drifted"] is None:
        return (2, 0.0, entry["name"])
    method = method_named(entry["method"])
    if method.tests_p_value:
        severity = -float(entry["p_value"])
    else:
        severity = float(entry["statistic"]) / entry["threshold"] if entry["threshold"] else float(entry["statistic"])
    return (0 if entry["drifted"] else 1, -severity, entry["name"])


__all__ = [
    "CATEGORICAL",
    "NUMERIC",
    "DriftOptions",
    "column_drift",
    "dataset_verdict",
    "drift_report",
]
