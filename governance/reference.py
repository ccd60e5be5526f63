"""A baseline's reference as the statistics need it: layout, reference sketch and prepared columns (cached)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from governance.drift.columns import CATEGORICAL, NUMERIC, CategoricalColumn, Column, NumericColumn
from governance.drift.sketch import SketchLayout, WindowSketch
from governance.models import Baseline
from governance.storage import load_arrays

_CACHE_SIZE = 8


@dataclass
class Reference:
    """What drift is computed against. Numeric columns load lazily from the .npz (only raw-row drift needs them)."""

    baseline_id: int
    layout: SketchLayout
    sketch: WindowSketch
    kinds: dict[str, str]
    features: list[str]
    prediction: str | None
    reference_columns: str
    _prepared: dict[str, Column] | None = field(default=None, repr=False)

    def prepared(self) -> dict[str, Column]:
        if self._prepared is None:
            numeric = [name for name, kind in self.kinds.items() if kind == NUMERIC]
            arrays = load_arrays(self.reference_columns, numeric) if numeric else {}
            prepared: dict[str, Column] = {}
            for index, feature in enumerate(self.layout.features):
                missing = int(self.sketch.tallies[index, 1])
                if feature.kind == NUMERIC:
                    prepared[feature.name] = NumericColumn(arrays[feature.name], missing)
                else:
                    counts = self.sketch.feature_counts(index)
                    prepared[feature.name] = CategoricalColumn(
                        {c: int(n) for c, n in zip(feature.categories, counts.tolist(), strict=True)}, missing
                    )
            self._prepared = prepared
        return self._prepared


# Keyed by the baseline's id and its stored columns' name (unique per upload): an id alone can come back (SQLite
# reuses the ids of rolled-back rows), a storage name cannot.
_cache: OrderedDict[tuple[int, str], Reference] = OrderedDict()


def reference_for(baseline: Baseline) -> Reference:
    """The baseline's reference, kept for the process's next calls (a worker checks one baseline many times)."""
    key = (baseline.pk, baseline.reference_columns)
    cached = _cache.get(key)
    if cached is not None:
        _cache.move_to_end(key)
        return cached
    layout = SketchLayout.from_json(baseline.layout or {"features": []})
    sketch = WindowSketch.from_bytes(layout, bytes(baseline.reference_sketch or b""))
    roles: dict[str, Any] = {c["name"]: c["role"] for c in baseline.columns}
    kinds = {f.name: f.kind for f in layout.features}
    reference = Reference(
        baseline_id=baseline.pk,
        layout=layout,
        sketch=sketch,
        kinds=kinds,
        features=[name for name in kinds if roles.get(name) == "feature"],
        prediction=baseline.prediction_column or None,
        reference_columns=baseline.reference_columns,
    )
    _cache[key] = reference
    while len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return reference


__all__ = ["CATEGORICAL", "NUMERIC", "Reference", "reference_for"]
