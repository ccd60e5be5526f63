"""gunicorn settings of the serving process: `gunicorn -c rollouts/serving/gunicorn_conf.py` (the Procfile's `serve:`).

gthread workers: each worker process holds its loaded models once and serves FORGE_SERVING_THREADS requests at a
time (keep-alive connections, which a load balancer or gateway keeps open). A worker whose model call hung past the
deadline answers, then retires: the hook below lets the app stop the worker's loop, gunicorn's master starts a fresh
worker. `timeout` is the master's last resort for a worker that stops heart-beating altogether.
"""

from __future__ import annotations

import logging
import os
from typing import Any

# Before anything imports prometheus_client: the serving process's metrics live in their own folder
# (var/metrics/serving), neither mixed into nor emptied with the console's.
os.environ.setdefault("FORGE_METRICS_GROUP", "serving")

# on_starting empties this group's metrics folder before the first fork; child_exit drops a dead worker's live gauges.
from forge_site.gunicorn_conf import _log_format, child_exit, on_starting  # noqa: F401

bind = f"127.0.0.1:{os.environ.get('FORGE_SERVING_PORT', '8001')}"
worker_class = "gthread"
# Processes rather than threads: each request holds the GIL for most of its ~100 µs of Python, so threads of one
# process queue behind each other. Two processes per core and two threads each served the most on 2 cores
# (benchmarks/predict_serving.py, docs/performance.md); every worker holds its own copy of the loaded models.
workers = int(os.environ.get("FORGE_SERVING_WORKERS") or min(8, 2 * (os.cpu_count() or 1)))
threads = int(os.environ.get("FORGE_SERVING_THREADS", "2"))
timeout = 30
graceful_timeout = 5
keepalive = 5
# Access logs cost a formatted line per request; the per-arm counts, the inference log and /metrics carry what an
# operator needs. FORGE_SERVING_ACCESS_LOG=- turns them on.
accesslog = os.environ.get("FORGE_SERVING_ACCESS_LOG") or None
if _log_format() == "json":
    logger_class = "forge_site.observability.gunicorn_logging.JsonGunicornLogger"
proc_name = "forge-serving"


def post_worker_init(worker: Any) -> None:
    from rollouts.serving.app import SERVING

    def retire() -> None:
        worker.alive = False  # the worker's loop ends; gunicorn's master replaces it

    SERVING.retire = retire


def worker_exit(server: Any, worker: Any) -> None:
    try:
        from rollouts.serving.app import SERVING
    except Exception:  # the app never loaded in this worker
        return
    SERVING.shutdown()
    if SERVING.pool.tainted:
        # A thread is still inside a model: interpreter shutdown would abort on it (C++ terminate). What had to be
        # flushed is flushed; leave now.
        logging.shutdown()
        os._exit(0)
