"""Governance tasks: thin wrappers that take a job id and call the job's body."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from forge_site.jobs import JobTask, job_run
from forge_site.models import Job
from governance.reports.render import report_render_execute


@shared_task(bind=True, base=JobTask, name="governance.render_report_pdf", queue="default")
def render_report_pdf(self: Any, job_id: str) -> None:
    render_report_pdf_now(job_id)


def render_report_pdf_now(job_id: str) -> Job | None:
    """The PDF job's body (claim, render, store, record); the demo and tests call it without a worker."""
    return job_run(job_id=job_id, work=report_render_execute)
