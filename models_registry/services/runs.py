"""Parity and benchmark runs: validate a request and queue its job on the gpu queue (sent when the transaction
commits). The job row and its audit event are written together by forge_site.jobs.job_create."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from forge_site.jobs import JobKeyReused, job_create
from forge_site.models import Job
from models_registry.models import ModelVersion, VersionStatus
from models_registry.services.registry import RegistryError

PARITY_TASK = "models_registry.run_parity"
BENCHMARK_TASK = "models_registry.run_benchmark"
EVAL_DTYPES = ("float32", "float16", "bfloat16", "float64")
MAX_SAMPLES = 1_000_000
MAX_BATCH = 65_536


def _int_in(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RegistryError(f"{field} must be a whole number between {low} and {high}.", field=field)
    try:
        number = int(value)
    except ValueError:
        raise RegistryError(f"{field} must be a whole number between {low} and {high}.", field=field) from None
    if not low <= number <= high:
        raise RegistryError(f"{field} must be between {low:,} and {high:,} (got {number:,}).", field=field)
    return number


def _float_in(value: Any, field: str, low: float, high: float) -> float:
    if isinstance(value, bool):
        raise RegistryError(f"{field} must be a number.", field=field)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RegistryError(f"{field} must be a number.", field=field) from None
    if not low <= number <= high:  # also refuses NaN
        raise RegistryError(f"{field} must be between {low:g} and {high:g} (got {number:g}).", field=field)
    return number


def _device(value: Any, field: str, *, auto: bool = True) -> str:
    device = str(value or "").strip().lower()
    if device == "auto" and auto:
        return device
    if device == "cpu" or device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        return device
    allowed = "auto, cpu, cuda or cuda:N" if auto else "cpu, cuda or cuda:N"
    raise RegistryError(f"{field} must be {allowed} (got {value!r}).", field=field)


def _dtype(value: Any, field: str) -> str:
    dtype = str(value or "").strip().lower()
    if dtype not in EVAL_DTYPES:
        raise RegistryError(f"{field} must be one of {', '.join(EVAL_DTYPES)} (got {value!r}).", field=field)
    return dtype


def _time_limit(value: Any) -> int:
    if value in (None, ""):
        return int(settings.FORGE_EVAL_TIME_LIMIT_S)
    return _int_in(value, "time_limit_s", 1, int(settings.FORGE_EVAL_MAX_TIME_LIMIT_S))


def _require_ready(version: ModelVersion) -> None:
    if version.is_retired:
        raise RegistryError(
            f"{version.unusable_reason()}: a retired version cannot be evaluated.", code="retired", status=409
        )
    if version.status != VersionStatus.READY:
        raise RegistryError(
            f"{version} is {version.status}, not ready: parity and benchmark runs need an inspected version.",
            code="not_ready",
            status=409,
        )


def _spec_signature(spec: Any) -> list[tuple[Any, Any]]:
    return [(tuple(item.get("shape") or ()), item.get("dtype")) for item in (spec or {}).get("inputs", [])]


def _parity_reference(version: ModelVersion, raw: Any, device: str, dtype: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or raw.get("kind") not in ("onnx", "version", "device"):
        raise RegistryError(
            'reference must be {"kind": "onnx"}, {"kind": "version", "version": "…"} or '
            '{"kind": "device", "device": "cuda", "dtype": "float16"}.',
            field="reference",
        )
    kind = raw["kind"]
    if kind == "onnx":
        if not version.onnx:
            raise RegistryError(
                f"{version} has no ONNX companion to compare against; upload the version with an ONNX file.",
                field="reference",
                code="no_onnx",
                status=409,
            )
        return {"kind": "onnx", "sha256": version.onnx_sha256}
    if kind == "version":
        name = str(raw.get("version") or "").strip()
        other = ModelVersion.objects.filter(model_id=version.model_id, version=name).first() if name else None
        if other is None:
            raise RegistryError(
                f"{version.model.name} has no version {name!r} to compare against.",
                field="reference.version",
                code="not_found",
                status=404,
            )
        if other.pk == version.pk:
            raise RegistryError(
                "A version cannot be its own reference.",
                field="reference.version",
                code="same_as_candidate",
                status=422,
            )
        if other.is_retired:
            raise RegistryError(
                f"{other.unusable_reason()}: a retired version cannot be evaluated, not even as a reference.",
                field="reference.version",
                code="retired",
                status=409,
            )
        if other.status != VersionStatus.READY:
            raise RegistryError(
                f"{other} is {other.status}, not ready.", field="reference.version", code="not_ready", status=409
            )
        if (
            version.input_spec
            and other.input_spec
            and _spec_signature(version.input_spec) != _spec_signature(other.input_spec)
        ):
            raise RegistryError(
                f"{other} declares other inputs ({_spec_text(other.input_spec)}) than {version} "
                f"({_spec_text(version.input_spec)}); parity needs the same inputs on both sides.",
                field="reference.version",
                code="incompatible",
                status=409,
            )
        return {"kind": "version", "version": other.version, "version_id": other.pk, "sha256": other.sha256}
    ref_device = _device(raw.get("device") or "cpu", "reference.device", auto=False)
    ref_dtype = _dtype(raw.get("dtype") or "float32", "reference.dtype")
    if ref_dtype == dtype and _same_device(device, ref_device):
        worker = "without a GPU" if ref_device == "cpu" else "with one"
        where = (
            f"and the candidate's device auto is {ref_device} on a worker {worker}"
            if device == "auto"
            else f"as does the candidate ({device})"
        )
        raise RegistryError(
            f"The reference runs this same artifact on {ref_device} in {ref_dtype}, {where}: the same computation "
            "twice proves nothing. Give one side another dtype (a float64 reference, say) or another device, and "
            "name the candidate's device rather than auto.",
            field="reference",
            code="same_as_candidate",
            status=422,
        )
    return {"kind": "device", "device": ref_device, "dtype": ref_dtype}


def _same_device(candidate: str, reference: str) -> bool:
    """Whether the candidate may run where the reference runs: "cuda" is "cuda:0", and "auto" is cpu or cuda:0,
    whichever the worker has, so it may be either."""
    first_gpu = {"cuda", "cuda:0"}
    if candidate == "auto":
        return reference == "cpu" or reference in first_gpu
    return candidate == reference or (candidate in first_gpu and reference in first_gpu)


def _spec_text(spec: Any) -> str:
    return ", ".join(f"{i.get('name')} {i.get('shape')} {i.get('dtype')}" for i in (spec or {}).get("inputs", []))


def parity_start(
    *,
    version: ModelVersion,
    actor: Any,
    reference: Any,
    samples: Any = 1024,
    batch_size: Any = 64,  # a batch larger than the samples is cut to the samples
    rtol: Any = None,
    atol: Any = None,
    seed: Any = 0,
    device: Any = "auto",
    dtype: Any = "float32",
    allow_fallback: bool = False,
    time_limit_s: Any = None,
    idempotency_key: str = "",
) -> Job:
    """Validate a parity request and queue it on the gpu queue (sent when the transaction commits); the same
    `idempotency_key` again from the same person returns the first request's job (forge_site.jobs.job_create)."""
    _require_ready(version)
    device = _device(device, "device")
    dtype = _dtype(dtype, "dtype")
    samples = _int_in(samples, "samples", 1, MAX_SAMPLES)
    params: dict[str, Any] = {
        "reference": _parity_reference(version, reference, device, dtype),
        "samples": samples,
        "batch_size": min(samples, _int_in(batch_size, "batch_size", 1, MAX_BATCH)),
        "seed": _int_in(seed, "seed", 0, 2**63 - 1),
        "rtol": None if rtol in (None, "") else _float_in(rtol, "rtol", 0.0, 1e6),
        "atol": None if atol in (None, "") else _float_in(atol, "atol", 0.0, 1e6),
        "device": device,
        "dtype": dtype,
        "allow_fallback": bool(allow_fallback),
        "time_limit_s": _time_limit(time_limit_s),
        "sha256": version.sha256,
    }
    return _queue_run(version, "parity", PARITY_TASK, params, actor, idempotency_key)


def benchmark_start(
    *,
    version: ModelVersion,
    actor: Any,
    batch_sizes: Any = (1, 8, 64),
    device: Any = "auto",
    dtype: Any = "float32",
    threads: Any = None,
    warmup: Any = 10,
    window_ms: Any = 500,
    stability_pct: Any = 10.0,
    time_cap_s: Any = 30.0,
    allow_fallback: bool = False,
    time_limit_s: Any = None,
    idempotency_key: str = "",
) -> Job:
    """Validate a benchmark request and queue it on the gpu queue (sent when the transaction commits); the same
    `idempotency_key` again from the same person returns the first request's job."""
    _require_ready(version)
    if isinstance(batch_sizes, str):
        batch_sizes = [part for part in batch_sizes.replace(",", " ").split() if part]
    if not isinstance(batch_sizes, list | tuple) or not 1 <= len(batch_sizes) <= 16:
        raise RegistryError("batch_sizes must be a list of 1 to 16 batch sizes.", field="batch_sizes")
    sizes = sorted({_int_in(size, "batch_sizes", 1, MAX_BATCH) for size in batch_sizes})
    params: dict[str, Any] = {
        "batch_sizes": sizes,
        "device": _device(device, "device"),
        "dtype": _dtype(dtype, "dtype"),
        "threads": None if threads in (None, "") else _int_in(threads, "threads", 1, 256),
        "warmup": _int_in(warmup, "warmup", 0, 100_000),
        "window_ms": _float_in(window_ms, "window_ms", 10, 60_000),
        "stability_pct": _float_in(stability_pct, "stability_pct", 0.1, 100),
        "time_cap_s": _float_in(time_cap_s, "time_cap_s", 0.1, 3600),
        "allow_fallback": bool(allow_fallback),
        "time_limit_s": _time_limit(time_limit_s),
        "sha256": version.sha256,
    }
    return _queue_run(version, "benchmark", BENCHMARK_TASK, params, actor, idempotency_key)


def _queue_run(
    version: ModelVersion, kind: str, task_name: str, params: dict[str, Any], actor: Any, idempotency_key: str
) -> Job:
    """A parity or benchmark job on the gpu queue, about the version; sent when the transaction commits."""
    try:
        return job_create(
            kind=kind,
            task_name=task_name,
            queue="gpu",
            subject=version,
            subject_label=f"{version.model.name}:{version.version}",
            params=params,
            created_by=actor,
            idempotency_key=idempotency_key,
        )
    except JobKeyReused as exc:
        raise RegistryError(str(exc), code="idempotency_key_reused", status=409) from exc
