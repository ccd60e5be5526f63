"""Comparing benchmark results: side by side series, ratios against a baseline, different-hardware warnings.

Pure and light (no torch, no Django): the web process imports it to render the compare page and API.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

HARDWARE_KEYS = ("cpu_model", "cpu_cores_logical", "cpu_cores_physical", "gpu_name", "device", "threads")


def fingerprint_key(fp: dict[str, Any]) -> str:
    """16 hex characters naming the hardware and thread count; equal keys mean comparable timings."""
    part = {key: fp.get(key) for key in HARDWARE_KEYS}
    part["device"] = str(part["device"] or "").split(":", 1)[0]
    return hashlib.sha256(json.dumps(part, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cpu_model() -> str:
    """This machine's CPU model name, as /proc/cpuinfo gives it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def describe_machine(fp: dict[str, Any]) -> str:
    device = str(fp.get("device") or "?").split(":", 1)[0]
    parts = [device]
    if fp.get("gpu_name"):
        parts.append(str(fp["gpu_name"]))
    parts.append(f"{fp.get('cpu_model') or 'unknown CPU'}, {fp.get('cpu_cores_logical')} cores")
    parts.append(f"{fp.get('threads')} thread{'s' if fp.get('threads') != 1 else ''}")
    return ", ".join(parts)


def _by_batch(result: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {int(row["batch_size"]): row for row in result.get("results", [])}


def _ratio(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base == 0:
        return None
    return value / base


def compare_results(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Side by side series per run and ratios against the first run; warns when hardware differs."""
    if not runs:
        raise ValueError("compare_results needs at least one run")
    tables = [_by_batch(run["result"]) for run in runs]
    batch_sizes = sorted({size for table in tables for size in table})
    series = []
    for run, table in zip(runs, tables, strict=True):
        result = run["result"]
        fp = result.get("fingerprint") or {}
        key = result.get("fingerprint_key") or (fingerprint_key(fp) if fp else None)
        series.append(
            {
                "label": run["label"],
                "job_id": run.get("job_id"),
                "device": result.get("device"),
                "dtype": result.get("dtype"),
                "fingerprint_key": key,
                "p50_ms": [table[b]["latency_ms"]["p50"] if b in table else None for b in batch_sizes],
                "p95_ms": [table[b]["latency_ms"]["p95"] if b in table else None for b in batch_sizes],
                "throughput_sps": [table[b].get("throughput_sps") if b in table else None for b in batch_sizes],
            }
        )
    base = series[0]
    ratios = []
    for item in series[1:]:
        for index, size in enumerate(batch_sizes):
            ratios.append(
                {
                    "label": item["label"],
                    "batch_size": size,
                    "p50_ratio": _ratio(item["p50_ms"][index], base["p50_ms"][index]),
                    "throughput_ratio": _ratio(item["throughput_sps"][index], base["throughput_sps"][index]),
                }
            )
    warnings = []
    base_fp = runs[0]["result"].get("fingerprint") or {}
    comparable = True
    for run, item in zip(runs[1:], series[1:], strict=True):
        fp = run["result"].get("fingerprint") or {}
        if item["fingerprint_key"] != base["fingerprint_key"]:
            comparable = False
            warnings.append(
                f"{item['label']} ran on different hardware ({describe_machine(fp)}) than "
                f"{base['label']} ({describe_machine(base_fp)}); its ratios compare machines, not versions."
            )
        if fp.get("torch") and base_fp.get("torch") and fp["torch"] != base_fp["torch"]:
            warnings.append(f"{item['label']} used torch {fp['torch']}, {base['label']} torch {base_fp['torch']}.")
    return {
        "batch_sizes": batch_sizes,
        "series": series,
        "ratios": ratios,
        "comparable": comparable,
        "warnings": warnings,
    }
