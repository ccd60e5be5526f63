"""Drift and fairness statistics, pure: numpy, scipy and torch only (no Django, no Celery, no forge_site).

- `report.drift_report`: drift per column and for the dataset from raw values (exact);
- `sketch`: per-window mergeable sketches on the baseline's bins, and `drift_from_sketches`;
- `fairness`: per-segment rates and gaps from mergeable tallies;
- `methods`: the methods, thresholds and Evidently's default rule; `numeric`, `counts`: the kernels;
- `torch_kernels`: the CUDA path.
"""

from governance.drift.columns import CATEGORICAL, NUMERIC, CategoricalColumn, NumericColumn, prepare
from governance.drift.methods import METHODS, DriftConfigError
from governance.drift.report import DriftOptions, column_drift, drift_report
from governance.drift.sketch import SketchLayout, WindowSketch, drift_from_sketches, merge_sketches, sketch_of

__all__ = [
    "CATEGORICAL",
    "METHODS",
    "NUMERIC",
    "CategoricalColumn",
    "DriftConfigError",
    "DriftOptions",
    "NumericColumn",
    "SketchLayout",
    "WindowSketch",
    "column_drift",
    "drift_from_sketches",
    "drift_report",
    "merge_sketches",
    "prepare",
    "sketch_of",
]
