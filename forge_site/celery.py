"""The Celery app: configured from Django settings, tasks discovered in every app."""

from __future__ import annotations

import os

from celery import Celery, signals
from kombu import Exchange, Queue

from forge_site.observability.celery_hooks import worker_metrics_prepare, worker_process_exited
from forge_site.observability.tracing import tracing_install_worker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "forge_site.settings")

app = Celery("forge")
app.config_from_object("django.conf:settings", namespace="CELERY")
# "gpu": inspection, parity and benchmark runs (one worker process per GPU); "default": the stale-job reaper that beat
# sends. Reserved for what is not built yet: drift recomputation on "gpu"; reports, alerts, guardrails on "default".
app.conf.task_queues = (
    Queue("default", Exchange("default"), routing_key="default"),
    Queue("gpu", Exchange("gpu"), routing_key="gpu"),
)
app.autodiscover_tasks()

# Metrics of the pool processes (forge_site.observability.celery_hooks): one folder per worker node, emptied at start.
signals.worker_init.connect(worker_metrics_prepare, weak=False)
signals.worker_process_shutdown.connect(worker_process_exited, weak=False)
# Traces (only with OTEL_EXPORTER_OTLP_ENDPOINT set), installed in each pool process after the fork.
signals.worker_process_init.connect(tracing_install_worker, weak=False)
