"""A job task for the worker-kill test: slow on its first attempt, quick after. Imported by a worker with -I."""

from __future__ import annotations

import time
from typing import Any

from celery import shared_task

from forge_site.jobs import JobContext, JobTask, job_run

SLOW_TASK = "tests.slow_job"


@shared_task(bind=True, base=JobTask, name=SLOW_TASK)
def slow_job(self: Any, job_id: str) -> None:
    def work(ctx: JobContext) -> dict[str, Any]:
        steps = 600 if ctx.job.attempts == 1 else 3
        for step in range(steps):
            ctx.progress(1 + 98 * step // steps, f"step {step + 1} of {steps}")
            time.sleep(0.1)
        return {"attempt": ctx.job.attempts, "steps": steps}

    job_run(job_id=job_id, work=work)
