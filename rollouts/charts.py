"""Plotly figures of a rollout's time series (data for static/js/charts.js; no HTML here)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

ARM_COLORS = {"champion": "#3b4fd8", "challenger": "#d9480f"}


def _chart(chart_id: str, title: str, series: dict[str, Any], key: str, axis: dict[str, Any]) -> dict[str, Any]:
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": arm,
            "x": series["minutes"],
            "y": series[arm][key],
            "line": {"color": ARM_COLORS[arm]},
            "connectgaps": False,
        }
        for arm in ("champion", "challenger")
    ]
    xaxis: dict[str, Any] = {"title": {"text": "minute (UTC)"}, "type": "date", "tickformat": "%H:%M"}
    if len(series["minutes"]) == 1:  # one point: show the minutes around it rather than milliseconds
        only = datetime.fromisoformat(series["minutes"][0])
        xaxis["range"] = [(only - timedelta(minutes=3)).isoformat(), (only + timedelta(minutes=3)).isoformat()]
    layout = {
        "height": 240,
        "xaxis": xaxis,
        "yaxis": axis,
        "legend": {"orientation": "h", "y": 1.15},
    }
    return {"id": chart_id, "script_id": f"{chart_id}-data", "title": title, "spec": {"data": data, "layout": layout}}


def rollout_charts(series: dict[str, Any], *, metric_name: str) -> list[dict[str, Any]]:
    if not series["minutes"]:
        return []
    metric_title = "Success rate of outcomes" if metric_name == "success" else "Mean outcome value"
    return [
        _chart(
            "chart-traffic",
            "Traffic per minute",
            series,
            "traffic",
            {"title": {"text": "requests"}, "rangemode": "tozero"},
        ),
        _chart(
            "chart-errors",
            "Error rate",
            series,
            "error_rate",
            {"title": {"text": "errors / requests"}, "tickformat": ".2%", "rangemode": "tozero"},
        ),
        _chart("chart-latency", "p95 latency", series, "p95_ms", {"title": {"text": "ms"}, "rangemode": "tozero"}),
        _chart(
            "chart-metric",
            metric_title,
            series,
            "metric",
            {"title": {"text": metric_name}, **({"tickformat": ".0%"} if metric_name == "success" else {})},
        ),
    ]
