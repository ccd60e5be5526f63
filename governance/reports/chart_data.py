"""Which charts a report carries, as data copied from its evidence (the snapshot keeps this data, not pictures).

Each chart: {"id", "title", "type", "cites": [subcategory IDs], "data"}; governance.reports.charts draws it as SVG.
A chart appears only when its evidence exists. Pure: no Django.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from governance.nist_rmf.mapping import Kind, KindEvidence

MAX_SERIES = 8
MAX_BARS = 24


def _coverage(subcategories: list[dict[str, Any]]) -> dict[str, Any]:
    order = ("met", "partially_met", "not_met", "attestation_required", "not_applicable")
    rows = []
    for function in ("GOVERN", "MAP", "MEASURE", "MANAGE"):
        subs = [s for s in subcategories if s["function"] == function]
        rows.append(
            {"label": function, "counts": {status: sum(1 for s in subs if s["status"] == status) for status in order}}
        )
    return {
        "id": "chart-coverage",
        "title": "Status of the 72 subcategories, per function",
        "type": "stacked_bars",
        "cites": [],
        "data": {"rows": rows, "order": list(order)},
    }


def _parity(items: tuple[Mapping[str, Any], ...]) -> dict[str, Any] | None:
    bars = []
    for item in items[-MAX_BARS:]:
        outputs = item["values"].get("outputs") or []
        errors = [o.get("max_abs_error") for o in outputs if isinstance(o.get("max_abs_error"), int | float)]
        if not errors:
            continue
        tolerance = item["values"].get("tolerance") or {}
        bars.append(
            {
                "label": f"{item['version']} vs {item['values'].get('reference')} ({item['id']})",
                "value": max(errors),
                "ok": bool(item.get("ok")),
                "threshold": tolerance.get("atol"),
            }
        )
    if not bars:
        return None
    return {
        "id": "chart-parity",
        "title": "Parity: largest absolute error of each run (log scale; dotted: atol)",
        "type": "log_bars",
        "cites": ["MEASURE 2.1", "MEASURE 2.5"],
        "data": {"bars": bars, "unit": "|candidate - reference|"},
    }


def _benchmark(items: tuple[Mapping[str, Any], ...], field: str) -> dict[str, Any] | None:
    series = []
    for item in [i for i in items if i.get("ok")][-MAX_SERIES:]:
        values = item["values"]
        points = []
        for row in values.get("rows") or []:
            y = (row.get("latency_ms") or {}).get("p50") if field == "p50" else row.get("throughput_sps")
            if isinstance(y, int | float) and isinstance(row.get("batch_size"), int):
                points.append([row["batch_size"], y])
        if points:
            series.append(
                {
                    "name": f"{item['version']} {values.get('device')} {values.get('dtype')} ({item['id']})",
                    "points": points,
                }
            )
    if not series:
        return None
    if field == "p50":
        return {
            "id": "chart-latency",
            "title": "Latency by batch size (p50, ms per batch)",
            "type": "lines",
            "cites": ["MEASURE 2.3", "MEASURE 2.12"],
            "data": {
                "series": series,
                "x_label": "batch size",
                "y_label": "p50 ms per batch",
                "log_x": True,
                "log_y": True,
            },
        }
    return {
        "id": "chart-throughput",
        "title": "Throughput by batch size (samples per second)",
        "type": "lines",
        "cites": ["MEASURE 2.3", "MEASURE 2.12"],
        "data": {"series": series, "x_label": "batch size", "y_label": "samples / s", "log_x": True, "log_y": False},
    }


P_VALUE_FLOOR = 1e-12  # a p-value of 0 (printed as such) still draws a finite bar


def _drift_ratio(feature: Mapping[str, Any]) -> float | None:
    """How far past its threshold a feature is, on one scale for every method: statistic ÷ threshold where a large
    statistic means drift, threshold ÷ p-value where a small p-value does; 1 is the threshold either way."""
    threshold, statistic, p_value = feature.get("threshold"), feature.get("statistic"), feature.get("p_value")
    if not isinstance(threshold, int | float) or threshold <= 0:
        return None
    if isinstance(p_value, int | float):
        return threshold / max(p_value, P_VALUE_FLOOR)
    if isinstance(statistic, int | float):
        return statistic / threshold
    return None


def _drift(items: tuple[Mapping[str, Any], ...]) -> dict[str, Any] | None:
    """The latest successful drift run in the period, one bar per feature (worst first, as the run sorted them)."""
    runs = [i for i in items if str(i.get("key", "")).startswith("job:") and i["values"].get("status") == "succeeded"]
    if not runs:
        return None
    run = runs[-1]
    bars = []
    for feature in run["values"].get("features") or []:
        ratio = _drift_ratio(feature)
        if ratio is None or feature.get("drifted") is None:
            continue
        p_value = feature.get("p_value")
        figure = f"p {p_value:.2g}" if isinstance(p_value, int | float) else f"{feature.get('statistic', 0):.2g}"
        bars.append(
            {
                "label": f"{feature['name']} ({feature.get('method')})",
                "value": ratio,
                "ok": not feature["drifted"],
                "threshold": 1.0,
                "text": figure,
            }
        )
    if not bars:
        return None
    window = run["values"].get("window") or {}
    when = f"{str(window.get('start', ''))[:10]} to {str(window.get('end', ''))[:10]}" if window else "an uploaded file"
    return {
        "id": "chart-drift",
        "title": (
            f"Drift per feature: {run['model']} {run['version']}, {when} ({run['id']}); statistic ÷ threshold, or "
            "threshold ÷ p-value for tests, log scale; dotted: the threshold; red: drifted"
        ),
        "type": "log_bars",
        "cites": ["MEASURE 2.4", "MEASURE 3.1", "MANAGE 4.1"],
        "data": {"bars": bars[:MAX_BARS], "unit": "distance from the feature's drift threshold (1 = at it)"},
    }


def _rollout_traffic(items: tuple[Mapping[str, Any], ...]) -> dict[str, Any] | None:
    """The challenger's share of traffic over each rollout's life, from its audit events (start, each step, pause,
    resume, rollback, promotion)."""
    series = []
    for item in items[-MAX_SERIES:]:
        values = item["values"]
        points = [[s["at"], s["share"]] for s in values.get("steps") or [] if isinstance(s.get("share"), int | float)]
        if not points:
            continue
        series.append(
            {
                "name": f"#{values['rollout']} {values['model']} {values['challenger']} vs {values['champion']}"
                + (f", {values['ended']}" if values.get("ended") else "")
                + f" ({item['id']})",
                "points": points,
                "until": values.get("ended_at") or values.get("open_until"),
            }
        )
    if not series:
        return None
    return {
        "id": "chart-rollout-traffic",
        "title": "Rollouts: the challenger's share of traffic over time (0 after a pause or a rollback, 100 once "
        "promoted)",
        "type": "steps_over_time",
        "cites": ["MANAGE 2.2", "MEASURE 2.6"],
        "data": {"series": series, "y_label": "challenger share", "y_suffix": "%", "y_max": 100},
    }


def _aliases(items: tuple[Mapping[str, Any], ...]) -> dict[str, Any] | None:
    history = next((i for i in items if i.get("key") == "alias-history"), None)
    if history is None:
        return None
    lanes: dict[str, list[dict[str, Any]]] = {}
    for period in history["values"].get("periods") or []:
        lanes.setdefault(f"{period['model']} {period['alias']}", []).append(
            {"from": period["from"], "to": period["to"], "label": period["version"]}
        )
    if not lanes:
        return None
    return {
        "id": "chart-aliases",
        "title": "Which version served as champion or challenger, over the period",
        "type": "timeline",
        "cites": ["MANAGE 1.1", "MANAGE 2.4"],
        "data": {"lanes": [{"label": label, "segments": segments} for label, segments in lanes.items()][:MAX_BARS]},
    }


def _activity(items: tuple[Mapping[str, Any], ...]) -> dict[str, Any] | None:
    trail = next(iter(items), None)
    per_day = (trail or {}).get("values", {}).get("per_day") or []
    if not per_day:
        return None
    return {
        "id": "chart-activity",
        "title": "Audit events about the scope, per day",
        "type": "columns",
        "cites": ["MEASURE 2.8"],
        "data": {"columns": [{"label": row["day"], "value": row["events"]} for row in per_day]},
    }


def charts_for(found: Mapping[Kind, KindEvidence], subcategories: list[dict[str, Any]]) -> list[dict[str, Any]]:
    charts = [
        _coverage(subcategories),
        _parity(found[Kind.PARITY].items),
        _benchmark(found[Kind.BENCHMARK].items, "p50"),
        _benchmark(found[Kind.BENCHMARK].items, "throughput"),
        _drift(found[Kind.DRIFT].items),
        _rollout_traffic(found[Kind.ROLLOUTS].items),
        _aliases(found[Kind.APPROVALS].items),
        _activity(found[Kind.AUDIT_TRAIL].items),
    ]
    return [chart for chart in charts if chart is not None]
