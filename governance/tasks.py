"""Governance tasks: thin wrappers that take ids and call a job's body or a service (reports and alert deliveries
on "default"; baselines and drift on "gpu"; beat starts the due monitors and alert evaluations)."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from forge_site.jobs import JobTask, job_run
from forge_site.models import Job
from governance.reports.render import report_render_execute
from governance.services.alert_delivery import (
    DELIVER_TASK,
    alert_deliveries_sweep,
    alert_delivery_attempt,
    delivery_enqueue,
)
from governance.services.alerts import EVALUATE_TASK, alert_rules_evaluate_due
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


# An attempt's own timeouts bound it (FORGE_ALERT_TOTAL_TIMEOUT_S); these limits only catch a defect.
_DELIVERY_SOFT_LIMIT_S = int(settings.FORGE_ALERT_TOTAL_TIMEOUT_S + settings.FORGE_ALERT_DNS_TIMEOUT_S) + 30


@shared_task(
    name=DELIVER_TASK,
    queue="default",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=_DELIVERY_SOFT_LIMIT_S,
    time_limit=_DELIVERY_SOFT_LIMIT_S + 30,
)
def deliver_alert(delivery_id: int) -> None:
    """One attempt of an alert delivery; a retry is queued with the delay the attempt chose."""
    delay = alert_delivery_attempt(delivery_id)
    if delay is not None:
        delivery_enqueue(delivery_id, countdown=delay)


@shared_task(name="governance.sweep_alert_deliveries", queue="default", ignore_result=True)
def sweep_alert_deliveries() -> dict[str, int]:
    return alert_deliveries_sweep()


@shared_task(name=EVALUATE_TASK, queue="default", ignore_result=True)
def evaluate_alert_rules(rule_id: int | None = None) -> int:
    return alert_rules_evaluate_due(rule_id=rule_id)
