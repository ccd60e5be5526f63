"""The Celery app: configured from Django settings, tasks discovered in every app."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "forge_site.settings")

app = Celery("forge")
app.config_from_object("django.conf:settings", namespace="CELERY")
# "gpu": inspect, parity, benchmark, drift (one worker process per GPU); "default": reports, alerts, guardrails.
app.conf.task_queues = (
    Queue("default", Exchange("default"), routing_key="default"),
    Queue("gpu", Exchange("gpu"), routing_key="gpu"),
)
app.autodiscover_tasks()
