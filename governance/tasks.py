"""Governance tasks: thin wrappers that take a job id and call the job's body (reports on "default"; baselines and
drift on "gpu"; beat starts the due monitors)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from forge_site.jobs import JobTask, job_run
from forge_site.models import Job
from governance.reports.render import report_render_execute
from governance.services.baselines import baseline_prepare, baseline_record
from governance.services.monitoring import drift_execute, monitor_job_finished, monitors_run_due


@shared_task(bind=True, base=JobTask, name="governance.render_report_pdf", queue="default")
def render_report_pdf(self: Any, job_id: str) -> None:
    render_report_pdf_now(job_id)


def render_report_pdf_now(job_id: str) -> Job | None:
    """The PDF job's body (claim, render, store, record); the demo and tests call it without a worker."""
    return job_run(job_id=job_id, work=report_render_execute)


@shared_task(bind=True, base=JobTask, name="governance.prepare_baseline", queue="gpu")
def prepare_baseline(self: Any, job_id: str) -> None:
    prepare_baseline_now(job_id)


def prepare_baseline_now(job_id: str) -> Job | None:
    """The baseline job's body (the demo calls it without a worker)."""
    return job_run(job_id=job_id, work=baseline_prepare, on_success=baseline_record, on_failure=baseline_record)


@shared_task(bind=True, base=JobTask, name="governance.run_drift", queue="gpu", soft_time_limit=1800, time_limit=1900)
def run_drift(self: Any, job_id: str) -> None:
    run_drift_now(job_id)


def run_drift_now(job_id: str) -> Job | None:
    job = job_run(job_id=job_id, work=drift_execute)
    if job is not None:
        monitor_job_finished(job)
    return job


@shared_task(name="governance.monitors_due", ignore_result=True)
def monitors_due() -> int:
    return monitors_run_due()
