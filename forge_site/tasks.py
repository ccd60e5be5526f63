"""Kernel tasks: the reaper that beat runs every minute."""

from __future__ import annotations

from celery import shared_task

from forge_site.jobs import jobs_reap_stale


@shared_task(name="forge_site.reap_stale_jobs", ignore_result=True)
def reap_stale_jobs() -> dict[str, int]:
    return jobs_reap_stale()
