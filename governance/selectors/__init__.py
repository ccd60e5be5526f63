"""Governance reads, one module per concern (selectors/reports.py, selectors/monitoring.py).

The monitoring reads are also importable from here (`governance.selectors.baseline_feature_names` is a contract in
INTERFACES.md)."""

from governance.selectors.monitoring import (
    baseline_feature_names,
    current_baseline,
    drift_runs,
    latest_baseline,
    latest_drift,
    monitor_of,
    sketch_windows,
    window_rows,
)

__all__ = [
    "baseline_feature_names",
    "current_baseline",
    "drift_runs",
    "latest_baseline",
    "latest_drift",
    "monitor_of",
    "sketch_windows",
    "window_rows",
]
