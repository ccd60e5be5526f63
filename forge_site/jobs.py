"""Background jobs: create + enqueue on commit, claim with a conditional UPDATE, finish once, reap the stale."""

from __future__ import annotations

import json
import logging
import os
import socket
import traceback
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.dispatch import Signal
from django.utils import timezone

from forge_site.audit import audit_record
from forge_site.broker import job_ids_with_messages
from forge_site.models import Job, JobStatus
from forge_site.observability.metrics import job_observe
from forge_site.processes import process_gone, process_identity

logger = logging.getLogger(__name__)

# Sent inside the transaction that ends a job without its task's hooks having run: a cancel, or the reaper (or a
# redelivery) failing a job whose worker was lost. Arguments: job (the updated row), actor (who cancelled, or None).
# The app that owns the job's subject settles the subject (a cancelled inspection rejects its version).
job_ended = Signal()


def _count_ended(job: Job) -> None:
    """Count the job for /metrics (forge_jobs_total, its run time and queue wait) once its end is committed, in the
    process that ended it: the worker that ran it, or the web process or reaper that cancelled or failed it."""
    started, finished, created = job.started_at, job.finished_at, job.created_at
    transaction.on_commit(
        partial(
            job_observe,
            kind=job.kind,
            status=job.status,
            duration_s=(finished - started).total_seconds() if started and finished else None,
            queue_wait_s=(started - created).total_seconds() if started and created else None,
        )
    )


class JobError(Exception):
    """A failure whose message is meant for the person who started the job."""


class JobTimedOut(JobError):
    """The job's own deadline passed (e.g. a model that never returns); the job ends `timed_out` with this message."""


class JobCancelled(Exception):
    """Raised inside a job when someone asked for it to stop."""


class JobKeyReused(Exception):
    """An idempotency key that already named another request (other kind, subject or parameters)."""

    def __init__(self, job: Job) -> None:
        super().__init__(
            f"This idempotency key already started {job.kind} job {job.pk} with other parameters; "
            "use a new key for a new request."
        )
        self.job = job


def job_create(
    *,
    kind: str,
    task_name: str,
    queue: str,
    subject: models.Model,
    subject_label: str = "",
    params: dict[str, Any] | None = None,
    created_by: Any = None,
    idempotency_key: str = "",
) -> Job:
    """Write the job row and its audit event; the message is sent only once the transaction commits.

    With an `idempotency_key` (a form's one-time token, an API client's Idempotency-Key header), the same person
    sending the same request again (a double click, a retried POST) gets the job the first request created, with
    `replayed` set, not a second job; the key with another request raises JobKeyReused. A unique constraint settles
    two at once."""
    user = created_by if getattr(created_by, "is_authenticated", False) else None
    key = idempotency_key if user is not None else ""
    fields: dict[str, Any] = {
        "kind": kind,
        "subject_type": f"{subject._meta.app_label}.{subject._meta.model_name}",
        "subject_id": str(subject.pk),
        "params": params or {},
    }
    if key and (earlier := _job_for_key(user, key)) is not None:
        return _same_request(earlier, fields)
    try:
        with transaction.atomic():
            job = Job.objects.create(
                **fields,
                task_name=task_name,
                queue=queue,
                subject_label=subject_label or str(subject)[:255],
                created_by=user,
                idempotency_key=key,
            )
            audit_record(actor=created_by, action="job.queue", obj=job, after={"kind": kind, "params": job.params})
            transaction.on_commit(lambda: job_enqueue(job_id=job.pk))
    except IntegrityError:
        earlier = _job_for_key(user, key) if key else None
        if earlier is None:
            raise
        return _same_request(earlier, fields)  # the same request, sent twice at once: the other one won
    return job


def _job_for_key(user: Any, key: str) -> Job | None:
    return Job.objects.filter(created_by=user, idempotency_key=key).first()


def _same_request(job: Job, fields: dict[str, Any]) -> Job:
    """The earlier job, marked `replayed`, if it is this request (its parameters compared as stored: through JSON);
    else JobKeyReused."""
    asked = (fields["kind"], fields["subject_type"], fields["subject_id"], json.loads(json.dumps(fields["params"])))
    if (job.kind, job.subject_type, job.subject_id, job.params) != asked:
        raise JobKeyReused(job)
    job.replayed = True
    return job


def job_enqueue(*, job_id: Any) -> None:
    """Send the job's message. Safe to call again: the worker's claim makes a duplicate a no-op."""
    from forge_site.celery import app

    job = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).first()
    if job is None:
        return
    try:
        app.send_task(job.task_name, args=[str(job.pk)], queue=job.queue)
    except Exception:  # broker down: the reaper re-sends queued jobs, nothing is lost
        logger.exception("could not enqueue job %s; the reaper will retry", job.pk)
        return
    Job.objects.filter(pk=job.pk).update(enqueued_at=timezone.now())


class JobContext:
    """What a running job can do: report progress (which is also its heartbeat) and notice cancellation."""

    def __init__(self, job: Job) -> None:
        self.job = job

    def progress(self, percent: int, message: str = "") -> None:
        percent = max(0, min(100, int(percent)))
        updated = Job.objects.filter(pk=self.job.pk, status=JobStatus.RUNNING, attempts=self.job.attempts).update(
            progress=percent, message=message[:255], heartbeat_at=timezone.now()
        )
        if not updated:
            raise JobCancelled("the job is no longer running")
        self.job.progress, self.job.message = percent, message

    def cancelled(self) -> bool:
        """Whether someone cancelled the job (a cheap check that does not touch the heartbeat)."""
        return Job.objects.filter(pk=self.job.pk, status=JobStatus.CANCELLED).exists()

    def note_cancelled(self, message: str, result: dict[str, Any] | None = None) -> None:
        """Say where a cancelled job stopped (and keep what it had measured so far)."""
        Job.objects.filter(pk=self.job.pk, status=JobStatus.CANCELLED).update(message=message[:255], result=result)

    def set_device(self, device: str) -> None:
        Job.objects.filter(pk=self.job.pk).update(device=device)
        self.job.device = device


FinishHook = Callable[[Job], None]


def job_run(
    *,
    job_id: str,
    work: Callable[[JobContext], dict[str, Any]],
    on_success: FinishHook | None = None,
    on_failure: FinishHook | None = None,
) -> Job | None:
    """Claim the job, run `work`, record the outcome. Returns None when another worker already has it.

    A message delivered again (Celery re-sends the message of a task whose pool process was killed) finds its job
    `running`: if the process recorded as running it is certainly gone, the job is taken back at once instead of
    waiting for the reaper; if that process is alive, or cannot be checked from here, the delivery is skipped."""
    if not _claim(job_id) and not _take_back(job_id):
        logger.info("job %s was not queued (already claimed or finished); skipping", job_id)
        return None
    job = Job.objects.get(pk=job_id)
    with transaction.atomic():
        audit_record(actor=None, action="job.start", obj=job, after={"worker": job.worker_host, "pid": job.worker_pid})
    context = JobContext(job)
    try:
        result = work(context)
    except SoftTimeLimitExceeded:
        return _finish(
            job, JobStatus.TIMED_OUT, error="The job ran past its time limit and was stopped.", hook=on_failure
        )
    except JobCancelled:
        return Job.objects.get(pk=job.pk)
    except JobTimedOut as exc:
        return _finish(job, JobStatus.TIMED_OUT, error=str(exc), hook=on_failure)
    except JobError as exc:
        return _finish(job, JobStatus.FAILED, error=str(exc), hook=on_failure)
    except Exception as exc:
        logger.error("job %s crashed:\n%s", job.pk, traceback.format_exc())
        return _finish(job, JobStatus.FAILED, error=f"Internal error: {type(exc).__name__}: {exc}", hook=on_failure)
    return _finish(job, JobStatus.SUCCEEDED, result=result, hook=on_success)


def _claim(job_id: str) -> bool:
    now = timezone.now()
    return (
        Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
            status=JobStatus.RUNNING,
            started_at=now,
            heartbeat_at=now,
            worker_host=socket.gethostname()[:255],
            worker_pid=os.getpid(),
            worker_process=process_identity()[:200],
            attempts=models.F("attempts") + 1,
            progress=0,
            message="started",
            error="",
        )
        == 1
    )


def _take_back(job_id: str) -> bool:
    """Claim a running job whose recorded process is certainly gone (see job_run); False otherwise."""
    held = Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).first()
    if held is None or process_gone(held.worker_process) is not True:
        return False
    # This delivery holds the job's message, so it runs the job itself rather than sending another message.
    return _recover_lost(held, resend=False) == JobStatus.QUEUED and _claim(job_id)


def _recover_lost(job: Job, *, now: Any = None, resend: bool = True) -> str | None:
    """Take back a running job whose worker is gone: queued again (its message re-sent on commit unless the caller
    claims it itself), or failed after its last attempt. Only while the row is still the attempt judged lost.
    Returns the new status, or None when the row had moved on (recovered elsewhere, or finished)."""
    now = now or timezone.now()
    who = f"{job.worker_host or 'an unknown host'}" + (f" (pid {job.worker_pid})" if job.worker_pid else "")
    lost = Job.objects.filter(
        pk=job.pk, status=JobStatus.RUNNING, attempts=job.attempts, worker_process=job.worker_process
    )
    with transaction.atomic():
        if job.attempts >= settings.FORGE_JOB_MAX_ATTEMPTS:
            message = (
                f"The worker on {who} stopped responding "
                f"(last heartbeat {job.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC) after {job.attempts} attempts."
            )
            if not lost.update(status=JobStatus.FAILED, error=message, finished_at=now, message="worker lost"):
                return None
            job.refresh_from_db()
            audit_record(actor=None, action="job.reap", obj=job, after={"status": "failed", "error": message})
            job_ended.send(sender=Job, job=job, actor=None)
            _count_ended(job)
            return JobStatus.FAILED
        if not lost.update(status=JobStatus.QUEUED, message="re-queued: worker lost", enqueued_at=None):
            return None
        audit_record(actor=None, action="job.reap", obj=job, after={"status": "queued", "worker": who})
        if resend:
            transaction.on_commit(partial(job_enqueue, job_id=job.pk))
    return JobStatus.QUEUED


def _finish(job: Job, status: str, *, result: Any = None, error: str = "", hook: FinishHook | None = None) -> Job:
    with transaction.atomic():
        # Only the attempt that claimed the job may finish it: a worker the reaper gave up on cannot overwrite
        # the outcome of the attempt that replaced it.
        finished = Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, attempts=job.attempts).update(
            status=status,
            result=result,
            error=error[:10_000],
            progress=100 if status == JobStatus.SUCCEEDED else models.F("progress"),
            message={"succeeded": "done", "timed_out": "timed out", "failed": "failed"}.get(status, status),
            finished_at=timezone.now(),
        )
        job.refresh_from_db()
        if finished:
            audit_record(
                actor=None,
                action="job.finish",
                obj=job,
                after={"status": status, "error": error[:500] or None, "device": job.device or None},
            )
            if hook is not None:
                hook(job)
            _count_ended(job)
    return job


def job_cancel(*, job: Job, actor: Any) -> Job:
    with transaction.atomic():
        updated = Job.objects.filter(pk=job.pk, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(
            status=JobStatus.CANCELLED, finished_at=timezone.now(), message="cancelled"
        )
        job.refresh_from_db()
        if updated:
            audit_record(actor=actor, action="job.cancel", obj=job, after={"status": JobStatus.CANCELLED})
            job_ended.send(sender=Job, job=job, actor=actor)
            _count_ended(job)
    return job


def jobs_reap_stale(*, now: Any = None) -> dict[str, int]:
    """Re-queue or fail running jobs whose worker stopped beating; re-send queued jobs whose message was lost.

    A queued job is re-sent only when its message is really gone: it has waited longer than
    FORGE_JOB_QUEUED_STALE_S since it was last sent, and the broker holds no message for it (neither waiting in
    its queue nor delivered to a worker recently). A backlog that merely waits is left alone, so the queue cannot
    grow by re-sends. Where the broker cannot be read, each such job is re-sent at most once per stale period."""
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.FORGE_JOB_HEARTBEAT_STALE_S)
    requeued = failed = resent = 0
    for job in Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=stale_before):
        outcome = _recover_lost(job, now=now)
        requeued += outcome == JobStatus.QUEUED
        failed += outcome == JobStatus.FAILED
    queued_before = now - timedelta(seconds=settings.FORGE_JOB_QUEUED_STALE_S)
    lost = list(
        Job.objects.filter(status=JobStatus.QUEUED)
        .filter(
            models.Q(enqueued_at__lt=queued_before) | models.Q(enqueued_at__isnull=True, created_at__lt=queued_before)
        )
        .values_list("pk", "queue")
    )
    in_broker = (
        job_ids_with_messages({queue for _, queue in lost}, delivered_within_s=settings.FORGE_JOB_QUEUED_STALE_S)
        if lost
        else set()
    )
    waiting = 0
    for pk, _queue in lost:
        if in_broker is not None and str(pk) in in_broker:
            waiting += 1
            continue
        job_enqueue(job_id=pk)
        resent += 1
    if waiting:
        logger.info("%d queued jobs have waited past the stale period; their messages are in the broker", waiting)
    return {"requeued": requeued, "failed": failed, "resent": resent}


class JobTask(Task):
    """Base for job tasks: late ack, one at a time, time limits from settings."""

    acks_late = True
    reject_on_worker_lost = True
    ignore_result = True
