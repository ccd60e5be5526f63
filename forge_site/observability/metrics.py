"""Prometheus metrics of every Forge process, in prometheus_client's multiprocess mode (gunicorn workers, Celery's
prefork pool and the serving workers each write their own files; a /metrics answer adds them up).

What is counted, and who calls it:
- served predictions: `serving_observe()`, by the serving process once per answered request;
- jobs: `job_observe()`, by forge_site.jobs when a job ends (in the worker that ran it; a cancel in the web process);
- console requests: `http_observe()`, by forge_site.observability.middleware.HttpMetricsMiddleware.

The metric objects are not registered in prometheus_client's global registry: in multiprocess mode their values live
in the files, and `metrics_exposition()` reads those back.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from forge_site.observability import multiproc

multiproc.ensure_configured()  # before prometheus_client's first import (it picks its value class then)

from prometheus_client import (  # noqa: E402
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.metrics_core import Metric  # noqa: E402
from prometheus_client.multiprocess import MultiProcessCollector  # noqa: E402

if not getattr(values.ValueClass, "_multiprocess", False):
    # Something imported prometheus_client before the folder was named, and it chose in-memory values: every Forge
    # process counts in files, which /metrics adds up, so choose those now (prometheus_client reads the class at
    # each metric's creation).
    values.ValueClass = values.MultiProcessValue()

__all__ = ["CONTENT_TYPE_LATEST", "http_observe", "job_observe", "metrics_exposition", "serving_observe"]

# Predict answers in about a millisecond for a small MLP; the goal is a p99 under 25 ms.
SERVING_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
JOB_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

SERVING_REQUESTS = Counter(
    "forge_serving_requests",
    "Predict requests answered by the serving process, per rollout, version and arm; outcome ok or error.",
    ["rollout", "version", "arm", "outcome"],
    registry=None,
)
SERVING_LATENCY = Histogram(
    "forge_serving_latency_seconds",
    "Time to answer a predict request (model run included), per rollout, version and arm.",
    ["rollout", "version", "arm"],
    buckets=SERVING_BUCKETS,
    registry=None,
)
JOBS = Counter("forge_jobs", "Jobs that ended, by kind and final status.", ["kind", "status"], registry=None)
JOB_DURATION = Histogram(
    "forge_job_duration_seconds",
    "Run time of jobs that ended (claimed to finished), by kind and final status.",
    ["kind", "status"],
    buckets=JOB_BUCKETS,
    registry=None,
)
JOB_QUEUE_WAIT = Histogram(
    "forge_job_queue_wait_seconds",
    "Time a job waited in its queue (created to claimed), by kind.",
    ["kind"],
    buckets=JOB_BUCKETS,
    registry=None,
)
HTTP_REQUESTS = Counter(
    "forge_http_requests",
    "Requests answered by the console (web process), by method, URL route and status code.",
    ["method", "route", "status"],
    registry=None,
)
HTTP_DURATION = Histogram(
    "forge_http_request_duration_seconds",
    "Time the console took to answer, by method and URL route.",
    ["method", "route"],
    buckets=HTTP_BUCKETS,
    registry=None,
)
HTTP_IN_PROGRESS = Gauge(
    "forge_http_requests_in_progress",
    "Console requests being answered now, by method (the live processes' sum: a worker that died is dropped).",
    ["method"],
    multiprocess_mode="livesum",
    registry=None,
)

# Looking up a labelled child costs more than the increment itself: keep them per label set. Bounded, so that a
# stream of label values (rollouts come and go) cannot grow it without end.
_MAX_CACHED = 10_000
_serving: dict[tuple[int, str, str], tuple[Any, Any, Any]] = {}
_http: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def serving_observe(*, rollout_id: int, version: str, arm: str, latency_s: float, error: bool) -> None:
    """Count one answered predict request (the serving process calls this once per request; a few µs)."""
    key = (rollout_id, version, arm)
    children = _serving.get(key)
    if children is None:
        if len(_serving) >= _MAX_CACHED:
            _serving.clear()
        labels = (str(rollout_id), version, arm)
        children = (
            SERVING_REQUESTS.labels(*labels, "ok"),
            SERVING_REQUESTS.labels(*labels, "error"),
            SERVING_LATENCY.labels(*labels),
        )
        _serving[key] = children
    (children[1] if error else children[0]).inc()
    children[2].observe(latency_s)


def job_observe(*, kind: str, status: str, duration_s: float | None, queue_wait_s: float | None) -> None:
    """Count one job that ended (succeeded, failed, timed_out or cancelled)."""
    JOBS.labels(kind, status).inc()
    if duration_s is not None:
        JOB_DURATION.labels(kind, status).observe(max(0.0, duration_s))
    if queue_wait_s is not None:
        JOB_QUEUE_WAIT.labels(kind).observe(max(0.0, queue_wait_s))


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


_in_progress: dict[str, Any] = {}


def http_in_progress(method: str) -> Any:
    """The in-progress gauge of a console request's method (inc() when it starts, dec() when it is answered)."""
    method = method if method in _METHODS else "other"
    gauge = _in_progress.get(method)
    if gauge is None:
        gauge = _in_progress[method] = HTTP_IN_PROGRESS.labels(method)
    return gauge


def http_observe(*, method: str, route: str, status: int, duration_s: float) -> None:
    """Count one console request; `route` is the URL pattern (never the path, whose values have no bound)."""
    method = method if method in _METHODS else "other"
    key = (method, route, status)
    children = _http.get(key)
    if children is None:
        if len(_http) >= _MAX_CACHED:
            _http.clear()
        children = (HTTP_REQUESTS.labels(method, route, str(status)), HTTP_DURATION.labels(method, route))
        _http[key] = children
    children[0].inc()
    children[1].observe(duration_s)


class FoldersCollector:
    """Every metric file of the given folders, merged as one multiprocess collector merges one folder (series with
    the same labels add up across processes and folders)."""

    def __init__(self, folders: Iterable[Path]) -> None:
        self.folders = list(folders)

    def collect(self) -> Iterable[Metric]:
        files = sorted(str(path) for folder in self.folders for path in folder.glob("*.db"))
        return MultiProcessCollector.merge(files, accumulate=True)


def metrics_exposition(*, include_workers: bool) -> bytes:
    """The Prometheus text exposition of this process's group (every process of it), and of the Celery workers on
    this host when `include_workers` (the console's /metrics shows the jobs they ran)."""
    registry = CollectorRegistry()
    registry.register(FoldersCollector(multiproc.exposed_dirs(include_workers=include_workers)))
    return generate_latest(registry)
