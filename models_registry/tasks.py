"""Registry tasks (queue "gpu"): thin wrappers that load ids and call services (inspect, parity, benchmark)."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from celery import shared_task
from django.conf import settings

from forge_site.jobs import JobContext, JobError, JobTask, job_run
from forge_site.models import Job
from models_registry.artifacts import artifact_local_copy
from models_registry.evaluation import benchmark_execute, parity_execute
from models_registry.inspection import run_inspection
from models_registry.models import ModelVersion
from models_registry.services import version_record_inspection


@shared_task(bind=True, base=JobTask, name="models_registry.inspect_version", queue="gpu")
def inspect_version(self: Any, job_id: str) -> None:
    inspect_version_now(job_id)


def inspect_version_now(job_id: str) -> Job | None:
    """The inspection job's body: claim, inspect in the sandbox, record. The demo calls it without a worker."""
    outcome: dict[str, Any] = {}

    def work(ctx: JobContext) -> dict[str, Any]:
        version = ModelVersion.objects.get(pk=int(ctx.job.subject_id))
        ctx.set_device("cpu")
        ctx.progress(10, "loading the archive in a sandbox")
        with ExitStack() as files:
            samples = files.enter_context(artifact_local_copy(version.sample_inputs)) if version.sample_inputs else None
            result = run_inspection(
                artifact=files.enter_context(artifact_local_copy(version.artifact)),
                size=version.size,
                input_spec=version.input_spec,
                sample_inputs=samples,
                timeout_s=settings.FORGE_INSPECT_TIMEOUT_S,
                memory_bytes=settings.FORGE_INSPECT_MEMORY_BYTES,
                max_uncompressed=4 * settings.FORGE_MAX_ARTIFACT_BYTES,
            )
        outcome.update(version_id=version.pk, ok=result.ok, inspection=result.inspection, reason=result.reason)
        ctx.progress(90, "recording the result")
        if not result.ok:
            raise JobError(result.reason)
        return {"status": "ready", "inspection": result.inspection}

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
