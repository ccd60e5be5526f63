"""Registry tasks (queue "gpu"): thin wrappers that load ids and call services (inspect, parity, benchmark)."""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import Any

from celery import shared_task
from django.conf import settings

from forge_site.jobs import JobCancelled, JobContext, JobError, JobTask, job_run
from forge_site.models import Job
from forge_site.observability.tracing import sandbox_span
from models_registry.artifacts import artifact_local_copy
from models_registry.evaluation import benchmark_execute, parity_execute
from models_registry.models import ModelVersion
from models_registry.sandbox.inspection import run_inspection
from models_registry.services import version_record_inspection


@shared_task(bind=True, base=JobTask, name="models_registry.inspect_version", queue="gpu")
def inspect_version(self: Any, job_id: str) -> None:
    inspect_version_now(job_id)


class _Tick:
    """The inspection sandbox's tick: the job's heartbeat every FORGE_JOB_HEARTBEAT_S, and a cancel seen within a
    second (returning False stops the sandbox)."""

    def __init__(self, ctx: JobContext, message: str) -> None:
        self.ctx = ctx
        self.message = message
        self.beat = time.monotonic()

    def __call__(self, pid: int) -> bool:
        if time.monotonic() - self.beat >= settings.FORGE_JOB_HEARTBEAT_S:
            self.beat = time.monotonic()
            try:
                self.ctx.progress(self.ctx.job.progress, self.message)
            except JobCancelled:
                return False
            return True
        return not self.ctx.cancelled()


def _inspect_traced(ctx: JobContext, request: dict[str, Any], tick: _Tick) -> Any:
    """run_inspection inside a trace span (when tracing is on), so the time spent in the child shows in the trace."""
    with sandbox_span("sandbox inspect", **{"forge.job": str(ctx.job.pk)}):
        return run_inspection(**request, on_tick=tick)


def inspect_version_now(job_id: str) -> Job | None:
    """The inspection job's body: claim, inspect in the sandbox, record. The demo calls it without a worker."""
    outcome: dict[str, Any] = {}

    def work(ctx: JobContext) -> dict[str, Any]:
        version = ModelVersion.objects.get(pk=int(ctx.job.subject_id))
        ctx.set_device("cpu")
        ctx.progress(10, "loading the archive in a sandbox")
        tick = _Tick(ctx, "loading the archive in a sandbox")
        with ExitStack() as files:
            samples = files.enter_context(artifact_local_copy(version.sample_inputs)) if version.sample_inputs else None
            request: dict[str, Any] = {
                "artifact": files.enter_context(artifact_local_copy(version.artifact)),
                "size": version.size,
                "input_spec": version.input_spec,
                "sample_inputs": samples,
                "timeout_s": settings.FORGE_INSPECT_TIMEOUT_S,
                "memory_bytes": settings.FORGE_INSPECT_MEMORY_BYTES,
                "max_uncompressed": 4 * settings.FORGE_MAX_ARTIFACT_BYTES,
            }
            result = _inspect_traced(ctx, request, tick)
            first_kill = ""
            if result.killed:  # a kill from outside may not happen again (a neighbour's memory, an operator)
                first_kill = result.reason
                tick.message = "the sandbox was killed; inspecting once more"
                ctx.progress(20, tick.message)
                result = _inspect_traced(ctx, request, tick)
        if result.cancelled:
            raise JobCancelled("the job is no longer running")
        reason = result.reason
        inspection = result.inspection
        if first_kill and result.ok and inspection is not None:
            inspection = {**inspection, "retried_after": first_kill}
        elif first_kill:
            reason = f"Inspected twice. The first time: {first_kill} The second time: {result.reason}"
        outcome.update(version_id=version.pk, ok=result.ok, inspection=inspection, reason=reason)
        ctx.progress(90, "recording the result")
        if not result.ok:
            raise JobError(reason)
        return {"status": "ready", "inspection": inspection}

    def record(job: Job) -> None:
        if outcome:
            version_record_inspection(
                version_id=outcome["version_id"],
                ok=outcome["ok"],
                inspection=outcome["inspection"],
                reason=outcome["reason"],
            )
        elif job.subject_type == "models_registry.modelversion":
            version_record_inspection(
                version_id=int(job.subject_id),
                ok=False,
                inspection=None,
                reason=job.error or "Inspection did not complete.",
            )

    return job_run(job_id=job_id, work=work, on_success=record, on_failure=record)


# The run's own deadline (job params, at most FORGE_EVAL_MAX_TIME_LIMIT_S) is enforced by the sandbox; the task
# limits only catch a parent that is stuck itself.
_EVAL_SOFT_LIMIT = int(settings.FORGE_EVAL_MAX_TIME_LIMIT_S) + 120
_EVAL_HARD_LIMIT = int(settings.FORGE_EVAL_MAX_TIME_LIMIT_S) + 180


@shared_task(
    bind=True,
    base=JobTask,
    name="models_registry.run_parity",
    queue="gpu",
    soft_time_limit=_EVAL_SOFT_LIMIT,
    time_limit=_EVAL_HARD_LIMIT,
)
def run_parity(self: Any, job_id: str) -> None:
    job_run(job_id=job_id, work=parity_execute)


@shared_task(
    bind=True,
    base=JobTask,
    name="models_registry.run_benchmark",
    queue="gpu",
    soft_time_limit=_EVAL_SOFT_LIMIT,
    time_limit=_EVAL_HARD_LIMIT,
)
def run_benchmark(self: Any, job_id: str) -> None:
    job_run(job_id=job_id, work=benchmark_execute)
