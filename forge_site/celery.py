"""The Celery app: configured from Django settings, tasks discovered in every app."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Exchange, Queue

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
