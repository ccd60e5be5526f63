"""Observability of every Forge process: Prometheus metrics (metrics.py, multiproc.py, views.py), JSON log lines
(forge_site.logs) and OpenTelemetry traces (tracing.py). The serving process calls `serving_observe` per request."""

from __future__ import annotations

from forge_site.observability.metrics import job_observe, serving_observe

__all__ = ["job_observe", "serving_observe"]
