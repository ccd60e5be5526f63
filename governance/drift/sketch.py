"""Mergeable per-window sketches of logged data, and drift computed from them.

A `SketchLayout` is fixed by the baseline: per numeric feature the inner bin edges (the reference's quantiles at
1/30 ... 29/30, or its distinct values when it has at most 20) with open outer bins (-inf, e0) and [e_last, +inf),
the reference's standard deviation and row count; per categorical feature the reference's categories. A
`WindowSketch` holds, per feature, the bin or category counts, the count of finite values, the missing count
(absent, None, NaN or infinite), and the sum, sum of squares, min and max of the finite values; categories the
baseline never saw are counted by name.

Merging adds counts and takes min/max, so sketches written by different workers, in any order, merge exactly.
Sums of floats merge to within float64 rounding (they feed the displayed mean and spread, never a verdict).

From sketches (both sides binned on the same edges):
- exact: PSI and Jensen-Shannon on the baseline's bins, chi-squared and z on categories (and on the values of a
  numeric feature with at most 20 distinct reference values);
- approximate, with bounds in the result: Wasserstein (CDFs interpolated linearly inside each bin; the true value
  lies in [lower, upper], from each CDF's range inside each bin) and KS (the largest gap at the bin edges is a lower
  bound; the upper bound adds the largest bin mass). Exact KS needs raw rows: the drift job reads the window's raw
  batch files when the window holds few enough rows, and says which source it used.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from governance.drift import counts as count_stats
from governance.drift.columns import CATEGORICAL, NUMERIC, CategoricalColumn, Column, NumericColumn, category_text
from governance.drift.methods import (
    BINNED_VALUES,
    FEW_VALUES,
    DriftConfigError,
    default_method,
    method_named,
    validate_threshold,
)
from governance.drift.numeric import (
    distinct_count,
    ks_pvalue,
    open_histogram_sorted,
    quantile_edges,
    wasserstein_norm_scale,
)
from governance.drift.report import DriftOptions, _drift_order, dataset_verdict

SKETCH_BINS = 30
_MAGIC = b"FSK1"
_STATS = 4  # sum, sum of squares, min, max


@dataclass(frozen=True)
class FeatureLayout:
    """How one feature is sketched: numeric bins (inner edges) or categorical values, with reference facts."""

    name: str
    kind: str
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    discrete: bool = False  # numeric with <= 20 distinct reference values: one bin per value
    reference_rows: int = 0  # finite/non-missing reference values
    scale: float = 1.0  # Evidently's Wasserstein normaliser: reference std, at least 0.001

    @property
    def width(self) -> int:
        """Counts this feature takes in a sketch: len(edges) + 1 bins, or one per category."""
        return len(self.edges) + 1 if self.kind == NUMERIC else len(self.categories)


@dataclass(frozen=True)
class SketchLayout:
    """The baseline-derived layout every window sketch of a version follows; `fingerprint` names it."""

    features: tuple[FeatureLayout, ...]

    @cached_property
    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()

    @cached_property
    def offsets(self) -> list[int]:
        positions = [0]
        for feature in self.features:
            positions.append(positions[-1] + feature.width)
        return positions

    @cached_property
    def edge_arrays(self) -> list[np.ndarray]:
        return [np.asarray(feature.edges, dtype=np.float64) for feature in self.features]

    def index(self, name: str) -> int:
        for position, feature in enumerate(self.features):
            if feature.name == name:
                return position
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "features": [
                {
                    "name": f.name,
                    "kind": f.kind,
                    "edges": list(f.edges),
                    "categories": list(f.categories),
                    "discrete": f.discrete,
                    "reference_rows": f.reference_rows,
                    "scale": f.scale,
                }
                for f in self.features
            ]
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SketchLayout:
        return cls(
            tuple(
                FeatureLayout(
                    name=f["name"],
                    kind=f["kind"],
                    edges=tuple(float(e) for e in f["edges"]),
                    categories=tuple(f["categories"]),
                    discrete=bool(f["discrete"]),
                    reference_rows=int(f["reference_rows"]),
                    scale=float(f["scale"]),
                )
                for f in data["features"]
            )
        )

    @classmethod
    def from_reference(cls, reference: Mapping[str, Column], bins: int = SKETCH_BINS) -> SketchLayout:
        """The layout of a baseline, from its prepared columns (in the order given)."""
        features = []
        for name, column in reference.items():
            if isinstance(column, NumericColumn):
                values = column.sorted
                discrete = 0 < distinct_count(values, BINNED_VALUES) <= BINNED_VALUES
                edges = np.unique(values) if discrete else quantile_edges(values, bins)
                features.append(
                    FeatureLayout(
                        name,
                        NUMERIC,
                        edges=tuple(float(e) for e in edges),
                        discrete=discrete,
                        reference_rows=column.count,
                        scale=wasserstein_norm_scale(values) if column.count else 1.0,
                    )
                )
            else:
                features.append(
                    FeatureLayout(
                        name, CATEGORICAL, categories=tuple(sorted(column.counts)), reference_rows=column.count
                    )
                )
        return cls(tuple(features))


class SketchLayoutMismatch(ValueError):
    """Sketches of different layouts (baselines) cannot be merged or compared."""


@dataclass
class WindowSketch:
    """Per-feature counts and moments of one window (or of a merge of windows, or of the baseline itself)."""

    layout: SketchLayout
    counts: np.ndarray  # int64, the features' bins/categories back to back (layout.offsets)
    bin_sums: np.ndarray  # float64 beside `counts`: the sum of the values in each numeric bin (0 for categories)
    tallies: np.ndarray  # int64 (features, 2): finite/present values, missing values
    moments: np.ndarray  # float64 (features, 4): sum, sum of squares, min, max of finite values
    unseen: dict[str, dict[str, int]]  # categorical feature -> category the baseline never saw -> count

    @classmethod
    def empty(cls, layout: SketchLayout) -> WindowSketch:
        moments = np.zeros((len(layout.features), _STATS))
        moments[:, 2] = np.inf
        moments[:, 3] = -np.inf
        return cls(
            layout,
            np.zeros(layout.offsets[-1], dtype=np.int64),
            np.zeros(layout.offsets[-1], dtype=np.float64),
            np.zeros((len(layout.features), 2), dtype=np.int64),
            moments,
            {},
        )

    @property
    def rows(self) -> int:
        return int(self.tallies.sum(axis=1).max()) if len(self.tallies) else 0

    def feature_sums(self, index: int) -> np.ndarray:
        offsets = self.layout.offsets
        return self.bin_sums[offsets[index] : offsets[index + 1]]

    def feature_counts(self, index: int) -> np.ndarray:
        offsets = self.layout.offsets
        return self.counts[offsets[index] : offsets[index + 1]]

    # --- building ------------------------------------------------------------------------------------------------

    def add_columns(self, columns: Mapping[str, Any], rows: int) -> None:
        """Add `rows` rows given as columns (name -> 1-D array of length rows; an absent name: all missing)."""
        for position, feature in enumerate(self.layout.features):
            values = columns.get(feature.name)
            if values is None:
                self.tallies[position, 1] += rows
            elif feature.kind == NUMERIC:
                # Sorting first is faster than binning unsorted values: numpy's vectorised sort of 100,000 values
                # takes less than one searchsorted pass over them, and bins, sums, min and max then come from cuts.
                self._add_numeric(position, NumericColumn.from_values(np.asarray(values)))
            else:
                self._add_categorical(position, feature, CategoricalColumn.from_values(values))

    def add_prepared(self, columns: Mapping[str, Column]) -> None:
        """Add prepared columns (a baseline's, or a dataset's): sorted numerics bin without another sort."""
        for position, feature in enumerate(self.layout.features):
            column = columns.get(feature.name)
            if column is None:
                continue
            if isinstance(column, NumericColumn):
                self._add_numeric(position, column)
            else:
                self._add_categorical(position, feature, column)

    def _add_numeric(self, position: int, column: NumericColumn) -> None:
        values = column.sorted
        start, end = self.layout.offsets[position], self.layout.offsets[position + 1]
        counts = open_histogram_sorted(values, self.layout.edge_arrays[position])
        cuts = np.concatenate(([0], np.cumsum(counts)))
        running = np.concatenate(([0.0], np.cumsum(values, dtype=np.float64)))
        self.counts[start:end] += counts
        self.bin_sums[start:end] += running[cuts[1:]] - running[cuts[:-1]]
        self.tallies[position] += (column.count, column.missing)
        if len(values):
            row = self.moments[position]
            row[0] += float(running[-1])
            wide = values.astype(np.float64, copy=False)
            row[1] += float(np.einsum("i,i->", wide, wide))  # not BLAS: its threads spin on a busy machine
            row[2] = min(row[2], float(values[0]))
            row[3] = max(row[3], float(values[-1]))

    def _add_categorical(self, position: int, feature: FeatureLayout, column: CategoricalColumn) -> None:
        known = {category: index for index, category in enumerate(feature.categories)}
        block = self.counts[self.layout.offsets[position] : self.layout.offsets[position + 1]]
        for category, count in column.counts.items():
            index = known.get(category)
            if index is None:
                named = self.unseen.setdefault(feature.name, {})
                named[category] = named.get(category, 0) + int(count)
            else:
                block[index] += int(count)
        self.tallies[position] += (column.count, column.missing)

    # --- merging and storage -------------------------------------------------------------------------------------

    def merge(self, other: WindowSketch) -> WindowSketch:
        return merge_sketches([self, other])

    def to_bytes(self) -> bytes:
        """A compact binary form: magic, header JSON (layout fingerprint, unseen categories), then the arrays."""
        header = json.dumps(
            {"layout": self.layout.fingerprint, "unseen": self.unseen}, sort_keys=True, separators=(",", ":")
        ).encode()
        return b"".join(
            (
                _MAGIC,
                struct.pack("<I", len(header)),
                header,
                self.counts.astype("<i8").tobytes(),
                self.bin_sums.astype("<f8").tobytes(),
                self.tallies.astype("<i8").tobytes(),
                self.moments.astype("<f8").tobytes(),
            )
        )

    @classmethod
    def from_bytes(cls, layout: SketchLayout, data: bytes) -> WindowSketch:
        if data[:4] != _MAGIC:
            raise ValueError("not a Forge sketch")
        (length,) = struct.unpack("<I", data[4:8])
        header = json.loads(data[8 : 8 + length])
        if header["layout"] != layout.fingerprint:
            raise SketchLayoutMismatch("the sketch was written for another baseline layout")
        features = len(layout.features)
        start = 8 + length
        counts = np.frombuffer(data, dtype="<i8", count=layout.offsets[-1], offset=start)
        start += counts.nbytes
        bin_sums = np.frombuffer(data, dtype="<f8", count=layout.offsets[-1], offset=start)
        start += bin_sums.nbytes
        tallies = np.frombuffer(data, dtype="<i8", count=features * 2, offset=start).reshape(features, 2)
        start += tallies.nbytes
        moments = np.frombuffer(data, dtype="<f8", count=features * _STATS, offset=start).reshape(features, _STATS)
        return cls(
            layout,
            counts.astype(np.int64),
            bin_sums.astype(np.float64),
            tallies.astype(np.int64),
            moments.astype(np.float64),
            header["unseen"],
        )


def merge_sketches(sketches: Sequence[WindowSketch]) -> WindowSketch:
    """One sketch holding every row of the given ones (same layout); exact for counts, min and max."""
    if not sketches:
        raise ValueError("nothing to merge")
    layout = sketches[0].layout
    fingerprint = layout.fingerprint
    for sketch in sketches[1:]:
        if sketch.layout is not layout and sketch.layout.fingerprint != fingerprint:
            raise SketchLayoutMismatch("sketches of different baseline layouts cannot be merged")
    moments = np.stack([s.moments for s in sketches])
    merged_moments = np.empty_like(sketches[0].moments)
    merged_moments[:, :2] = moments[:, :, :2].sum(axis=0)
    merged_moments[:, 2] = moments[:, :, 2].min(axis=0)
    merged_moments[:, 3] = moments[:, :, 3].max(axis=0)
    unseen: dict[str, dict[str, int]] = {}
    for sketch in sketches:
        for name, named in sketch.unseen.items():
            target = unseen.setdefault(name, {})
            for category, count in named.items():
                target[category] = target.get(category, 0) + count
    return WindowSketch(
        layout,
        np.asarray(np.sum([s.counts for s in sketches], axis=0, dtype=np.int64)),
        np.asarray(np.sum([s.bin_sums for s in sketches], axis=0, dtype=np.float64)),
        np.asarray(np.sum([s.tallies for s in sketches], axis=0, dtype=np.int64)),
        merged_moments,
        unseen,
    )


def merge_sketch_bytes(layout: SketchLayout, blobs: Iterable[bytes]) -> WindowSketch | None:
    """Merge stored sketches straight from their bytes (the fast path for a 30-day window of hourly sketches)."""
    parsed = [WindowSketch.from_bytes(layout, blob) for blob in blobs]
    return merge_sketches(parsed) if parsed else None


# --- drift from sketches -----------------------------------------------------------------------------------------


def _cdf(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return np.concatenate(([0.0], np.cumsum(counts) / total))


def _bin_bounds(feature: FeatureLayout, reference: WindowSketch, current: WindowSketch, index: int) -> np.ndarray:
    low = min(reference.moments[index, 2], current.moments[index, 2])
    high = max(reference.moments[index, 3], current.moments[index, 3])
    edges = np.asarray(feature.edges, dtype=np.float64)
    if len(edges) == 0:
        return np.array([low, high])
    return np.concatenate(([min(low, edges[0])], edges, [max(high, edges[-1])]))


def wasserstein_from_bins(
    bounds: np.ndarray,
    reference_counts: np.ndarray,
    current_counts: np.ndarray,
    reference_sums: np.ndarray,
    current_sums: np.ndarray,
) -> tuple[float, float, float]:
    """(estimate, lower, upper) of W1 between two distributions known by their counts and value sums per bin.

    W1 = integral |F_r - F_c| dx. Inside a bin [a, b] the integral of a CDF is known exactly from the bin's sum:
    integral_a^b F = b F(b) - a F(a) - (sum of the values in the bin) / N. So |integral (F_r - F_c)| over the bin is
    exact, and it is the bin's whole contribution whenever F_r - F_c keeps its sign there, which is certain when the
    two CDFs' ranges over the bin do not overlap. It is always a lower bound; the upper bound takes, in bins where
    the ranges overlap, width * max(r1 - c0, c1 - r0). The estimate is the lower bound: it errs only in bins where
    the CDFs cross, where the gap between them is small.
    """
    n_r, n_c = float(reference_counts.sum()), float(current_counts.sum())
    r = _cdf(reference_counts.astype(np.float64))
    c = _cdf(current_counts.astype(np.float64))
    a, b = bounds[:-1], bounds[1:]
    integral_r = b * r[1:] - a * r[:-1] - reference_sums / n_r
    integral_c = b * c[1:] - a * c[:-1] - current_sums / n_c
    exact_part = np.abs(integral_r - integral_c)
    separated = (r[:-1] >= c[1:]) | (c[:-1] >= r[1:])
    widest = (b - a) * np.maximum(np.abs(r[1:] - c[:-1]), np.abs(c[1:] - r[:-1]))
    lower = float(exact_part.sum())
    upper = float(np.where(separated, exact_part, np.maximum(widest, exact_part)).sum())
    return lower, lower, upper


def ks_from_bins(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """(lower, upper) bounds of the KS statistic from counts on shared bins (lower = largest gap at the edges)."""
    r = _cdf(reference_counts.astype(np.float64))
    c = _cdf(current_counts.astype(np.float64))
    gaps = np.abs(r - c)
    lower = float(gaps.max())
    masses = np.maximum(np.diff(r), np.diff(c))
    upper = float(np.max(np.maximum(gaps[:-1], gaps[1:]) + masses))
    return lower, min(upper, 1.0)


def _feature_from_sketches(
    feature: FeatureLayout,
    index: int,
    reference: WindowSketch,
    current: WindowSketch,
    method_name: str | None,
    threshold: float | None,
) -> dict[str, Any]:
    ref_counts = reference.feature_counts(index).astype(np.float64)
    cur_counts = current.feature_counts(index).astype(np.float64)
    ref_n, cur_n = int(reference.tallies[index, 0]), int(current.tallies[index, 0])
    entry: dict[str, Any] = {
        "name": feature.name,
        "kind": feature.kind,
        "rows": {"reference": int(reference.tallies[index].sum()), "current": int(current.tallies[index].sum())},
        "missing": {"reference": int(reference.tallies[index, 1]), "current": int(current.tallies[index, 1])},
    }
    if ref_n == 0 or cur_n == 0:
        side = "baseline" if ref_n == 0 else "current data"
        entry.update(method=None, statistic=None, p_value=None, threshold=None, drifted=None, exact=True)
        entry["note"] = f"no usable value in the {side} (all missing, NaN or infinite)"
        return entry
    notes = []
    unseen = current.unseen.get(feature.name, {})
    if unseen:
        ref_counts = np.concatenate((ref_counts, np.zeros(len(unseen))))
        cur_counts = np.concatenate((cur_counts, np.asarray(list(unseen.values()), dtype=np.float64)))
        names = sorted(unseen)
        notes.append("categories not in the baseline: " + ", ".join(repr(n) for n in names[:5]))
        entry["new_categories"] = names[:5]
    method = method_named(method_name) if method_name else None
    if method is not None and feature.kind not in method.kinds:
        notes.append(f"{method.name} does not apply to {feature.kind} columns; the default method was used")
        method, threshold = None, None
    if method is None:
        if feature.kind == NUMERIC and not feature.discrete:
            distinct = FEW_VALUES + 1
        else:
            distinct = int(np.count_nonzero(ref_counts + cur_counts))
        method = method_named(default_method(feature.kind, feature.reference_rows, distinct))
    limit = validate_threshold(method, threshold)
    exact = True
    p_value: float | None = None
    if method.name == "wasserstein":
        bounds = _bin_bounds(feature, reference, current, index)
        estimate, lower, upper = wasserstein_from_bins(
            bounds,
            ref_counts,
            cur_counts,
            reference.feature_sums(index),
            current.feature_sums(index),
        )
        statistic = estimate / feature.scale
        entry["bounds"] = [lower / feature.scale, upper / feature.scale]
        exact = False
    elif method.name == "ks":
        lower, upper = ks_from_bins(ref_counts, cur_counts)
        statistic = lower
        p_value, entry["ks_mode"] = ks_pvalue(statistic, ref_n, cur_n, "asymp")
        entry["bounds"] = [lower, upper]
        exact = False
    elif method.name == "jensenshannon":
        statistic = count_stats.jensenshannon(ref_counts, cur_counts)
    elif method.name == "psi":
        statistic = count_stats.psi(ref_counts, cur_counts)
    else:
        nonzero = (ref_counts + cur_counts) > 0
        if feature.kind == NUMERIC and not feature.discrete:
            notes.append(f"{method.name} on the baseline's bins of a continuous feature")
        ref_counts, cur_counts = ref_counts[nonzero], cur_counts[nonzero]
        if method.name == "chisquare":
            statistic, p_value = count_stats.chisquare_goodness_of_fit(ref_counts, cur_counts)
        elif method.name == "chi2_contingency":
            statistic, p_value = count_stats.chisquare_homogeneity(ref_counts, cur_counts)
        else:
            statistic, p_value = count_stats.two_proportion_z(ref_counts, cur_counts)
    entry.update(
        method=method.name,
        statistic=statistic,
        p_value=p_value,
        threshold=limit,
        drifted=bool(method.drifted(statistic, p_value, limit)),
        exact=exact,
    )
    if notes:
        entry["note"] = "; ".join(notes)
    return entry


def drift_from_sketches(
    reference: WindowSketch,
    current: WindowSketch,
    options: DriftOptions | None = None,
    *,
    prediction: str | None = None,
) -> dict[str, Any]:
    """The drift result shape of `report.drift_report`, from a reference sketch and a (merged) current sketch."""
    options = options or DriftOptions()
    if reference.layout.fingerprint != current.layout.fingerprint:
        raise SketchLayoutMismatch("the current sketches were written for another baseline layout")
    names = {feature.name for feature in reference.layout.features}
    unknown = [name for name in options.per_feature if name not in names]
    if unknown:
        raise DriftConfigError(f"per-feature choice for unknown column(s): {', '.join(sorted(unknown))}")
    features = []
    predicted = None
    for index, feature in enumerate(reference.layout.features):
        method, threshold = options.choice_for(feature.name)
        entry = _feature_from_sketches(feature, index, reference, current, method, threshold)
        if feature.name == prediction:
            predicted = entry
        else:
            features.append(entry)
    features.sort(key=_drift_order)
    return {
        "features": features,
        "prediction": predicted,
        "dataset": dataset_verdict(features, options.drift_share),
        "rows": {"reference": reference.rows, "current": current.rows},
        "source": "sketches",
    }


def sketch_of(layout: SketchLayout, columns: Mapping[str, Any], rows: int | None = None) -> WindowSketch:
    """A sketch of raw columns (arrays) or prepared columns."""
    sketch = WindowSketch.empty(layout)
    prepared = {k: v for k, v in columns.items() if isinstance(v, NumericColumn | CategoricalColumn)}
    raw = {k: v for k, v in columns.items() if k not in prepared}
    if prepared:
        sketch.add_prepared(prepared)
    if raw:
        length = rows if rows is not None else len(next(iter(raw.values())))
        sketch.add_columns(raw, length)
    return sketch


__all__ = [
    "SKETCH_BINS",
    "FeatureLayout",
    "SketchLayout",
    "SketchLayoutMismatch",
    "WindowSketch",
    "category_text",
    "drift_from_sketches",
    "ks_from_bins",
    "merge_sketch_bytes",
    "merge_sketches",
    "sketch_of",
    "wasserstein_from_bins",
]
