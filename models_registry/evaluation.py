"""The bodies of the parity and benchmark jobs: turn a Job row into a sandbox request, relay progress, map outcomes.

The computation happens in the worker's sandbox process (`executor.Sandbox` -> `job_sandbox`); this module only
knows the rows and the files. The sandbox is kept per worker process, so its artifact cache outlives a job.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import Any

from django.conf import settings

from forge_site.jobs import JobCancelled, JobContext, JobError, JobTimedOut
from forge_site.observability.tracing import sandbox_span, traceparent
from models_registry.artifacts import artifact_local_copy
from models_registry.models import ModelVersion
from models_registry.sandbox.executor import Sandbox, SandboxCancelled, SandboxError, SandboxFailure, SandboxTimeout

PROGRESS_WRITE_S = 0.5  # at most two progress writes a second, each of which also notices a cancellation

_sandbox: Sandbox | None = None


def worker_sandbox() -> Sandbox:
    """This worker process's sandbox (started on first use, and again after it was killed)."""
    global _sandbox
    if _sandbox is None:
        _sandbox = Sandbox(
            cache_entries=settings.FORGE_MODEL_CACHE_ENTRIES,
            memory_bytes=settings.FORGE_SANDBOX_MEMORY_BYTES,
            handlers=settings.FORGE_SANDBOX_HANDLERS,
        )
    return _sandbox


class _Relay:
    """The sandbox's event hook: progress and device go to the job row; a cancelled row stops the sandbox."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.written = 0.0
        self.checked = time.monotonic()
        self.percent = 0
        self.message = "starting"

    def __call__(self, event: dict[str, Any] | None) -> bool:
        now = time.monotonic()
        try:
            if event is None:
                if now - self.written >= settings.FORGE_JOB_HEARTBEAT_S:
                    self.written = now
                    self.ctx.progress(self.percent, self.message)
                elif now - self.checked >= 1.0:
                    self.checked = now
                    return not self.ctx.cancelled()
            elif event["type"] == "device":
                self.ctx.set_device(str(event["device"])[:64])
            elif event["type"] == "progress":
                self.percent, self.message = int(event["percent"]), str(event["message"])
                if now - self.written >= PROGRESS_WRITE_S:
                    self.written = self.checked = now
                    self.ctx.progress(self.percent, self.message)
        except JobCancelled:
            return False
        return True


def sandbox_execute(ctx: JobContext, request: dict[str, Any]) -> dict[str, Any]:
    """Run one request in this worker's job sandbox for a job: progress and device to its row, cancel honoured,
    failures as JobError / JobTimedOut (apps above use it for the request kinds they add)."""
    return _execute(ctx, request)


def _execute(ctx: JobContext, request: dict[str, Any]) -> dict[str, Any]:
    limit = int(ctx.job.params.get("time_limit_s") or settings.FORGE_EVAL_TIME_LIMIT_S)
    try:
        with sandbox_span(f"sandbox {request.get('type', 'run')}", **{"forge.job": str(ctx.job.pk)}):
            # the persistent sandbox outlives one trace, so the context travels in the request, not its environment
            context = traceparent()
            request = {**request, "traceparent": context} if context else request
            return worker_sandbox().run(request, timeout_s=limit, on_event=_Relay(ctx))
    except SandboxTimeout as exc:
        raise JobTimedOut(
            f"The run did not finish within its {limit} s limit (a model that never returns ends this way); "
            "its sandbox process was stopped and the worker went on to the next job."
        ) from exc
    except SandboxFailure as exc:
        raise JobError(exc.message) from exc
    except SandboxCancelled as exc:
        ctx.note_cancelled(exc.message, exc.partial)
        raise JobCancelled(exc.message) from exc
    except SandboxError as exc:
        raise JobError(str(exc)) from exc


def _version(ctx: JobContext) -> ModelVersion:
    return ModelVersion.objects.select_related("model").get(pk=int(ctx.job.subject_id))


def _common(version: ModelVersion, files: ExitStack, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "candidate": {
            "path": files.enter_context(artifact_local_copy(version.artifact)),
            "sha256": version.sha256,
            "label": f"{version.model.name}:{version.version}",
        },
        "input_spec": version.input_spec,
        "sample_inputs": files.enter_context(artifact_local_copy(version.sample_inputs))
        if version.sample_inputs
        else None,
        "device": params.get("device", "auto"),
        "dtype": params.get("dtype", "float32"),
        "allow_fallback": bool(params.get("allow_fallback")),
        "threads": params.get("threads"),
        "max_uncompressed": 4 * settings.FORGE_MAX_ARTIFACT_BYTES,
    }


def parity_execute(ctx: JobContext) -> dict[str, Any]:
    params = ctx.job.params
    version = _version(ctx)
    ctx.progress(0, "preparing the inputs and the reference")
    with ExitStack() as files:
        request = {"type": "parity", **_common(version, files, params)}
        reference = dict(params["reference"])
        if reference["kind"] == "onnx":
            if not version.onnx:
                raise JobError(f"{version} has no ONNX companion any more.")
            reference.update(path=files.enter_context(artifact_local_copy(version.onnx)), sha256=version.onnx_sha256)
        elif reference["kind"] == "version":
            other = ModelVersion.objects.select_related("model").get(pk=reference["version_id"])
            reference.update(
                path=files.enter_context(artifact_local_copy(other.artifact)),
                sha256=other.sha256,
                label=f"{other.model.name}:{other.version}",
            )
        request.update(
            reference=reference,
            samples=params["samples"],
            batch_size=params["batch_size"],
            seed=params["seed"],
            rtol=params.get("rtol"),
            atol=params.get("atol"),
        )
        return _execute(ctx, request)


def benchmark_execute(ctx: JobContext) -> dict[str, Any]:
    params = ctx.job.params
    version = _version(ctx)
    ctx.progress(0, "preparing the benchmark")
    with ExitStack() as files:
        request = {"type": "benchmark", **_common(version, files, params)}
        request.update(
            {
                key: params[key]
                for key in ("batch_sizes", "warmup", "window_ms", "stability_pct", "time_cap_s")
                if key in params
            }
        )
        return _execute(ctx, request)
