"""Gunicorn settings for Forge's HTTP processes (`gunicorn -c python:forge_site.gunicorn_conf ...`): the console's
web process, and the serving process with FORGE_METRICS_GROUP=serving. Command-line options still apply on top.

- Metrics (prometheus_client multiprocess mode): the master empties its group's metrics folder when it starts, before
  it forks a worker, and drops a worker's live gauges when that worker exits (forge_site.observability.multiproc).
- Logs: with FORGE_LOG_FORMAT=json (the production profile's default), gunicorn's error and access lines are JSON
  objects like the application's.
"""

from __future__ import annotations

import os
from typing import Any

from forge_site.observability import multiproc


def _log_format() -> str:
    explicit = os.environ.get("FORGE_LOG_FORMAT", "")
    return explicit or ("json" if os.environ.get("FORGE_PROFILE") == "production" else "plain")


if _log_format() == "json":
    logger_class = "forge_site.observability.gunicorn_logging.JsonGunicornLogger"


def on_starting(server: Any) -> None:
    multiproc.prepare(multiproc.current_group(), clean=True)


def child_exit(server: Any, worker: Any) -> None:
    multiproc.process_exited(worker.pid)
