"""Plotly figures (plain dicts) for the monitoring page: reference vs current per feature, drift over time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np

from governance.drift.columns import NUMERIC
from governance.drift.methods import method_named
from governance.drift.sketch import WindowSketch

REFERENCE_COLOR = "#64748b"
CURRENT_COLOR = "#2563eb"
PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"]


def overlay(reference: WindowSketch, current: WindowSketch, name: str) -> dict[str, Any] | None:
    """Reference vs current distribution of one feature on the baseline's bins (density for numeric features,
    shares for categories), or None when the current window has no value for it."""
    layout = reference.layout
    index = layout.index(name)
    feature = layout.features[index]
    ref = reference.feature_counts(index).astype(np.float64)
    cur = current.feature_counts(index).astype(np.float64)
    if cur.sum() == 0 or ref.sum() == 0:
        return None
    if feature.kind == NUMERIC:
        low = min(reference.moments[index, 2], current.moments[index, 2])
        high = max(reference.moments[index, 3], current.moments[index, 3])
        edges = np.asarray(feature.edges)
        bounds = np.concatenate(
            ([min(low, edges[0] if len(edges) else low)], edges, [max(high, edges[-1] if len(edges) else high)])
        )
        widths = np.maximum(np.diff(bounds), 1e-12)
        centers = (bounds[:-1] + bounds[1:]) / 2
        keep = (ref + cur) > 0
        traces = [
            {
                "type": "bar",
                "name": label,
                "x": centers[keep].tolist(),
                "width": widths[keep].tolist(),
                "y": (counts / counts.sum() / widths)[keep].tolist(),
                "marker": {"color": color},
                "opacity": 0.55,
            }
            for label, counts, color in (("baseline", ref, REFERENCE_COLOR), ("current", cur, CURRENT_COLOR))
        ]
        axis: dict[str, Any] = {"title": {"text": name}}
        y_title = "density"
    else:
        unseen = current.unseen.get(name, {})
        labels = list(feature.categories) + sorted(unseen)
        ref_all = np.concatenate((ref, np.zeros(len(unseen))))
        cur_all = np.concatenate((cur, [unseen[k] for k in sorted(unseen)]))
        traces = [
            {
                "type": "bar",
                "name": label,
                "x": labels,
                "y": (counts / counts.sum()).tolist(),
                "marker": {"color": color},
            }
            for label, counts, color in (("baseline", ref_all, REFERENCE_COLOR), ("current", cur_all, CURRENT_COLOR))
        ]
        axis = {"title": {"text": name}, "type": "category"}
        y_title = "share of rows"
    return {
        "data": traces,
        "layout": {
            "barmode": "overlay",
            "height": 240,
            "xaxis": axis,
            "yaxis": {"title": {"text": y_title}},
            "legend": {"orientation": "h", "y": 1.15},
            "margin": {"t": 28, "r": 12, "b": 44, "l": 56},
        },
    }


def timeline(days: list[tuple[datetime, dict[str, Any] | None]], names: list[str]) -> dict[str, Any]:
    """Drift per feature per day, as statistic / threshold (p-value tests: threshold / p-value), so 1 is the line
    each method draws between drift and no drift whatever its scale."""
    traces = []
    for number, name in enumerate(names):
        xs, ys = [], []
        for day, result in days:
            entry = next((f for f in (result or {}).get("features", []) if f["name"] == name), None)
            if entry is None or entry.get("drifted") is None:
                continue
            xs.append(day.strftime("%Y-%m-%d"))
            ys.append(severity(entry))
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": name,
                "x": xs,
                "y": ys,
                "line": {"color": PALETTE[number % len(PALETTE)]},
            }
        )
    if days:
        first = days[0][0].strftime("%Y-%m-%d")
        last = (days[-1][0]).strftime("%Y-%m-%d")
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "threshold",
                "x": [first, last],
                "y": [1, 1],
                "line": {"color": "#94a3b8", "dash": "dash"},
                "hoverinfo": "skip",
            }
        )
    return {
        "data": traces,
        "layout": {
            "height": 300,
            "yaxis": {"title": {"text": "drift / threshold"}, "rangemode": "tozero"},
            "xaxis": {"type": "date"},
            "legend": {"orientation": "h", "y": -0.25},
        },
    }


def severity(entry: dict[str, Any]) -> float:
    """How far a feature is from its threshold: above 1 means drift."""
    method = method_named(entry["method"])
    if method.tests_p_value:
        return float(min(entry["threshold"] / max(entry["p_value"], 1e-12), 1e3))
    return float(entry["statistic"] / entry["threshold"]) if entry["threshold"] else float(entry["statistic"])


def day_starts(start: datetime, end: datetime) -> list[datetime]:
    days = []
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    while day < end:
        days.append(day)
        day += timedelta(days=1)
    return days
