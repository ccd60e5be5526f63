"""Parity and benchmark evidence as people and scripts see it: run labels, comparisons and plotly chart specs.

The pages and the API both read job results through here; nothing in this module writes.
"""

from __future__ import annotations

import itertools
import math
import uuid
from dataclasses import dataclass
from typing import Any

from forge_site.models import Job
from models_registry import selectors
from models_registry.benchmark_compare import compare_results
from models_registry.models import RegisteredModel

MAX_COMPARED = 8
PICKER_RUNS = 100
VERSION_SUBJECT = "models_registry.modelversion"


class CompareError(ValueError):
    """The runs asked for cannot be compared; the message says which and why. `status` is the API's answer: 400 for
    a request that names too few or too many runs, 404 for a run that is not a succeeded benchmark of the model."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Comparison:
    jobs: list[Job]
    versions: dict[str, str]  # job id -> version string
    result: dict[str, Any]  # benchmark.compare_results(...)


def reference_text(reference: dict[str, Any] | None) -> str:
    """What a parity run compared against, in words: 'ONNX companion', 'version 1.0.0', 'cuda float16'."""
    reference = reference or {}
    kind = reference.get("kind")
    if kind == "onnx":
        return "ONNX companion"
    if kind == "version":
        return f"version {reference.get('version', '?')}"
    if kind == "device":
        return f"{reference.get('device', '?')} {reference.get('dtype', '')}".strip()
    return "—"


def parse_job_ids(raw_ids: list[str]) -> list[str]:
    """Distinct job ids in the order given; a malformed one is a CompareError naming it."""
    ids: list[str] = []
    for raw in raw_ids:
        for part in str(raw).replace(",", " ").split():
            try:
                job_id = str(uuid.UUID(part))
            except ValueError as exc:
                raise CompareError(f"{part[:40]!r} is not a job id.") from exc
            if job_id not in ids:
                ids.append(job_id)
    return ids


def run_labels(jobs: list[Job], versions: dict[str, str]) -> dict[str, str]:
    """'1.1.0 · cpu float32 · 2 threads' per job; runs that would read the same get their short id appended."""
    labels = {}
    for job in jobs:
        result = job.result or {}
        device = result.get("device") or job.params.get("device", "")
        dtype = result.get("dtype") or job.params.get("dtype", "")
        threads = result.get("threads") or job.params.get("threads")
        label = f"{versions[str(job.pk)]} · {device} {dtype}".strip()
        labels[str(job.pk)] = f"{label} · {threads} thread{'s' if threads != 1 else ''}" if threads else label
    seen: dict[str, int] = {}
    for label in labels.values():
        seen[label] = seen.get(label, 0) + 1
    return {pk: f"{label} · {pk[:8]}" if seen[label] > 1 else label for pk, label in labels.items()}


def compare(*, model: RegisteredModel, raw_ids: list[str]) -> Comparison:
    """Compare two or more succeeded benchmark runs of the model's versions; the first is the baseline."""
    ids = parse_job_ids(raw_ids)
    if len(ids) < 2:
        raise CompareError("Pick at least two benchmark runs to compare.")
    if len(ids) > MAX_COMPARED:
        raise CompareError(f"Compare at most {MAX_COMPARED} runs at a time ({len(ids)} were asked for).")
    runs = selectors.benchmark_runs(model=model, job_ids=ids)
    jobs = [job for job, _ in runs]
    found = {str(job.pk) for job in jobs}
    missing = [job_id for job_id in ids if job_id not in found]
    if missing:
        raise CompareError(
            f"Job {missing[0]} is not a succeeded benchmark run of {model.name}; only those can be compared.",
            status=404,
        )
    versions = {str(job.pk): version for job, version in runs}
    labels = run_labels(jobs, versions)
    result = compare_results(
        [{"label": labels[str(job.pk)], "job_id": str(job.pk), "result": job.result or {}} for job in jobs]
    )
    return Comparison(jobs=jobs, versions=versions, result=result)


def model_benchmark_runs(*, model: RegisteredModel, limit: int = PICKER_RUNS) -> list[dict[str, Any]]:
    """The model's latest succeeded benchmark runs, as rows to pick from: job, version and label."""
    runs = selectors.benchmark_runs(model=model, limit=limit)
    versions = {str(job.pk): version for job, version in runs}
    labels = run_labels([job for job, _ in runs], versions)
    return [{"job": job, "version": version, "label": labels[str(job.pk)]} for job, version in runs]


# --- plotly chart specs (drawn by static/js/charts.js from json_script data) -----------------------------------------

COLORS = ["#3b4fd8", "#d9480f", "#167a46", "#9a6200", "#7048e8", "#0b7285", "#c2255c", "#5d6675"]


def _chart(chart_id: str, title: str, data: list[dict[str, Any]], layout: dict[str, Any]) -> dict[str, Any]:
    return {"id": chart_id, "script_id": f"{chart_id}-data", "title": title, "spec": {"data": data, "layout": layout}}


def _batch_axis(batch_sizes: list[int]) -> dict[str, Any]:
    axis: dict[str, Any] = {"title": {"text": "batch size"}, "tickvals": batch_sizes, "ticktext": batch_sizes}
    if len(batch_sizes) > 1 and min(batch_sizes) > 0 and max(batch_sizes) / min(batch_sizes) >= 8:
        axis["type"] = "log"
    return axis


def parity_charts(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One histogram per output of log10 |candidate - reference| over all its elements."""
    charts = []
    atol = (result.get("tolerance") or {}).get("atol")
    for index, output in enumerate(result.get("outputs") or []):
        histogram = output.get("histogram") or {}
        edges, counts = histogram.get("log10_edges") or [], histogram.get("counts") or []
        if len(edges) != len(counts) + 1 or not counts:
            continue
        bins = list(itertools.pairwise(edges))
        centers = [(low + high) / 2 for low, high in bins]
        widths = [high - low for low, high in bins]
        ranges = [f"1e{low:g} to 1e{high:g}" for low, high in bins]
        exact = int(histogram.get("exact") or 0)
        layout: dict[str, Any] = {
            "margin": {"t": 28},
            "xaxis": {"title": {"text": "log10 |candidate - reference|"}},
            "yaxis": {"title": {"text": "elements"}},
            "bargap": 0.05,
            "showlegend": False,
        }
        if isinstance(atol, int | float) and atol > 0:
            x = math.log10(atol)
            layout["shapes"] = [
                {"type": "line", "x0": x, "x1": x, "yref": "paper", "y0": 0, "y1": 1, "line": {"dash": "dot"}}
            ]
            layout["annotations"] = [
                {"x": x, "y": 1, "yref": "paper", "text": f"atol {atol:g}", "showarrow": False, "yanchor": "bottom"}
            ]
        data = [
            {
                "type": "bar",
                "x": centers,
                "y": counts,
                "width": widths,
                "customdata": ranges,
                "hovertemplate": "%{customdata}: %{y} elements<extra></extra>",
                "marker": {"color": COLORS[0] if output.get("passed") else "#b42323"},
            }
        ]
        elements = int(output.get("elements") or 0)
        title = f"Absolute error per element ({exact:,} of {elements:,} exactly equal, not drawn)"
        charts.append(_chart(f"parity-hist-{index}", title, data, layout))
    return charts


LOG_AXIS_DIGITS_UP_TO = 1000  # a log axis labels 1, 2 and 5 of each power of ten up to this span, only 1 beyond


def _log_ticks(low: float, high: float) -> list[float]:
    """1, 2 and 5 times each power of ten from below `low` to above `high` (plotly shows those inside its range)."""
    return [
        float(f"{digit}e{power}")
        for power in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
        for digit in (1, 2, 5)
    ]


def _latency_axis(values: list[Any]) -> dict[str, Any]:
    """Milliseconds; logarithmic when the figures span more than a factor of 10, so the small ones stay visible.

    A log axis is labelled at 1, 2 and 5 times each power of ten, written out (0.02, 0.05, 0.1), while the figures
    span up to three powers of ten: with one label per power, figures from 0.02 to 0.4 ms would carry one label."""
    axis: dict[str, Any] = {"title": {"text": "ms per batch"}}
    positive = [v for v in values if isinstance(v, int | float) and v > 0]
    if positive and max(positive) / min(positive) > 10:
        axis["type"] = "log"
        if max(positive) / min(positive) <= LOG_AXIS_DIGITS_UP_TO:
            ticks = _log_ticks(min(positive), max(positive))
            axis.update(tickvals=ticks, ticktext=[f"{tick:g}" for tick in ticks])
        else:
            axis["dtick"] = 1  # one label per power of ten
    else:
        axis["rangemode"] = "tozero"
    return axis


def benchmark_charts(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Latency percentiles and throughput against batch size."""
    rows = sorted(result.get("results") or [], key=lambda row: row.get("batch_size", 0))
    if not rows:
        return []
    sizes = [row["batch_size"] for row in rows]
    latency = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": name,
            "x": sizes,
            "y": [(row.get("latency_ms") or {}).get(name) for row in rows],
            "line": {"color": COLORS[i]},
        }
        for i, name in enumerate(("p50", "p95", "p99"))
    ]
    throughput = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "throughput",
            "x": sizes,
            "y": [row.get("throughput_sps") for row in rows],
            "line": {"color": COLORS[2]},
        }
    ]
    return [
        _chart(
            "bench-latency",
            "Latency vs batch size",
            latency,
            {"xaxis": _batch_axis(sizes), "yaxis": _latency_axis([y for line in latency for y in line["y"]])},
        ),
        _chart(
            "bench-throughput",
            "Throughput vs batch size",
            throughput,
            {
                "xaxis": _batch_axis(sizes),
                "yaxis": {"title": {"text": "samples / s"}, "rangemode": "tozero"},
                "showlegend": False,
            },
        ),
    ]


def compare_charts(comparison: dict[str, Any]) -> list[dict[str, Any]]:
    """p50 latency and throughput against batch size, one line per compared run."""
    sizes = list(comparison.get("batch_sizes") or [])
    series = comparison.get("series") or []
    if not sizes or not series:
        return []

    def lines(key: str) -> list[dict[str, Any]]:
        return [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": run["label"],
                "x": sizes,
                "y": run.get(key) or [],
                "line": {"color": COLORS[i % len(COLORS)]},
                # runs measured at different batch sizes leave gaps in the shared x axis: each run is still one
                # line through its own points (unconnected, a run measured at 1, 16 and 128 showed three dots)
                "connectgaps": True,
            }
            for i, run in enumerate(series)
        ]

    legend = {"orientation": "h", "y": -0.25}
    return [
        _chart(
            "compare-latency",
            "p50 latency vs batch size",
            lines("p50_ms"),
            {
                "xaxis": _batch_axis(sizes),
                "yaxis": _latency_axis([y for run in series for y in run.get("p50_ms") or []]),
                "legend": legend,
            },
        ),
        _chart(
            "compare-throughput",
            "Throughput vs batch size",
            lines("throughput_sps"),
            {
                "xaxis": _batch_axis(sizes),
                "yaxis": {"title": {"text": "samples / s"}, "rangemode": "tozero"},
                "legend": legend,
            },
        ),
    ]


def compare_table(comparison: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows per batch size: each run's p50, p95 and throughput, with its ratios to the baseline (the first run)."""
    series = comparison.get("series") or []
    ratios = {(row["label"], row["batch_size"]): row for row in comparison.get("ratios") or []}
    rows = []
    for index, size in enumerate(comparison.get("batch_sizes") or []):
        cells = []
        for position, run in enumerate(series):
            ratio = ratios.get((run["label"], size), {}) if position else {}
            cells.append(
                {
                    "p50_ms": _at(run.get("p50_ms"), index),
                    "p95_ms": _at(run.get("p95_ms"), index),
                    "throughput_sps": _at(run.get("throughput_sps"), index),
                    "p50_ratio": ratio.get("p50_ratio"),
                    "throughput_ratio": ratio.get("throughput_ratio"),
                    "baseline": position == 0,
                }
            )
        rows.append({"batch_size": size, "cells": cells})
    return rows


def _at(values: list[Any] | None, index: int) -> Any:
    return values[index] if values and index < len(values) else None
