"""Celery's side of the metrics (connected in forge_site/celery.py).

A worker node is a process group of its own (`worker-gpu`, `worker-forge`): its main process empties the group's
folder when it starts, before it forks its pool, so that the pool processes (which count the jobs they run) write
there. The console's /metrics reads every worker group on its host. A worker on another host serves its own
group on FORGE_WORKER_METRICS_PORT when that is set (prometheus_client's HTTP server, in the main process)."""

from __future__ import annotations

import logging
import os
from typing import Any

from forge_site.observability import multiproc

logger = logging.getLogger(__name__)


def worker_metrics_prepare(sender: Any = None, **kwargs: Any) -> None:
    """worker_init: name and empty this node's folder before the pool forks."""
    multiproc.prepare(multiproc.worker_group(str(getattr(sender, "hostname", "") or "worker")), clean=True)
    port = os.environ.get("FORGE_WORKER_METRICS_PORT", "")
    if port:
        from prometheus_client import CollectorRegistry, start_http_server

        from forge_site.observability.metrics import FoldersCollector

        registry = CollectorRegistry()
        registry.register(FoldersCollector(multiproc.exposed_dirs(include_workers=False)))
        address = os.environ.get("FORGE_WORKER_METRICS_ADDR", "127.0.0.1")
        start_http_server(int(port), addr=address, registry=registry)
        logger.info("worker metrics on http://%s:%s/metrics", address, port)


def worker_process_exited(pid: int | None = None, **kwargs: Any) -> None:
    """worker_process_shutdown: a pool process is gone; drop its live gauges."""
    if pid:
        multiproc.process_exited(int(pid))
