"""Job rows holding parity and benchmark results in the shape the worker writes (docs: the issue 3 plan).

Parity comparisons are real: a real MLP's outputs against the same outputs with seeded noise, accumulated by
models_registry.parity.ParityComparison. Benchmark figures are inputs for rendering, built from the arguments.
"""

from __future__ import annotations

from typing import Any

import torch
from django.utils import timezone

from forge_site.models import Job, JobStatus
from models_registry.models import ModelVersion
from models_registry.parity import ParityComparison
from tests.torchscript_models import CreditMLP


def parity_result(
    *, noise: float = 0.0, samples: int = 256, batch_size: int = 64, seed: int = 0, reference: str = "ONNX companion"
) -> dict[str, Any]:
    torch.manual_seed(seed)
    model = CreditMLP().eval()
    comparison = ParityComparison()
    generator = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        for offset in range(0, samples, batch_size):
            x = torch.randn(min(batch_size, samples - offset), 32, generator=generator)
            out = model(x)
            comparison.add_batch(out, out + noise * torch.randn(out.shape, generator=generator), row_offset=offset)
    core = comparison.result()
    return {
        "kind": "parity",
        **core,
        "candidate": {
            "label": "credit-risk:1.1.0",
            "runtime": "torchscript",
            "device": "cpu",
            "dtype": "float32",
            "sha256": "c" * 64,
        },
        "reference": {
            "kind": "onnx",
            "label": reference,
            "runtime": "onnxruntime",
            "device": "cpu",
            "dtype": "float32",
            "provider": "CPUExecutionProvider",
            "sha256": "d" * 64,
        },
        "inputs": {
            "source": "input_spec",
            "samples": samples,
            "batch_size": batch_size,
            "batches": -(-samples // batch_size),
            "seed": seed,
            "shapes": [{"name": "x", "shape": [None, 32], "dtype": "float32"}],
        },
        "fallback": None,
        "versions": {"torch": torch.__version__, "onnxruntime": "1.32.0", "numpy": "2.3.0", "python": "3.11.2"},
        "timing": {"candidate_s": 0.01, "reference_s": 0.01, "compare_s": 0.002, "total_s": 0.03},
        "artifact_cache": "miss",
    }


def fingerprint(*, cpu: str = "AMD EPYC 9654", threads: int = 2, gpu: str | None = None) -> dict[str, Any]:
    return {
        "cpu_model": cpu,
        "cpu_cores_logical": 16,
        "cpu_cores_physical": 8,
        "memory_bytes": 64 * 1024**3,
        "gpu_name": gpu,
        "gpu_memory_bytes": 80 * 1024**3 if gpu else None,
        "gpu_driver": "575.51" if gpu else None,
        "cuda": "12.8" if gpu else None,
        "cudnn": "91000" if gpu else None,
        "torch": torch.__version__,
        "onnxruntime": "1.32.0",
        "numpy": "2.3.0",
        "python": "3.11.2",
        "platform": "Linux-6.1-x86_64",
        "threads": threads,
        "device": "cuda" if gpu else "cpu",
    }


def benchmark_result(
    *, p50_ms: dict[int, float], device: str = "cpu", key: str = "a1b2c3d4e5f60718", stable: bool = True, **fp: Any
) -> dict[str, Any]:
    """p50_ms maps batch size -> p50 latency; the other figures follow from it."""
    rows = []
    for size, p50 in sorted(p50_ms.items()):
        rows.append(
            {
                "batch_size": size,
                "latency_ms": {
                    "p50": p50,
                    "p90": p50 * 1.1,
                    "p95": p50 * 1.2,
                    "p99": p50 * 1.5,
                    "mean": p50 * 1.05,
                    "min": p50 * 0.9,
                    "max": p50 * 2,
                    "std": p50 * 0.05,
                },
                "throughput_sps": size / (p50 / 1000),
                "iterations": 300,
                "windows": 4,
                "stable": stable,
                "seconds": 1.5,
                "peak_memory_bytes": 200 * 1024**2,
                "memory_kind": "cuda_max_allocated" if device.startswith("cuda") else "rss_peak",
            }
        )
    return {
        "kind": "benchmark",
        "device": device,
        "dtype": "float32",
        "threads": fp.get("threads", 2),
        "fallback": None,
        "config": {
            "batch_sizes": sorted(p50_ms),
            "warmup": 10,
            "window_ms": 500,
            "stability_pct": 10,
            "stable_windows": 3,
            "time_cap_s": 30,
        },
        "results": rows,
        "fingerprint": fingerprint(**fp),
        "fingerprint_key": key,
        "artifact_cache": "hit",
        "versions": {"torch": torch.__version__, "onnxruntime": "1.32.0", "numpy": "2.3.0", "python": "3.11.2"},
    }


def evaluation_job(
    version: ModelVersion,
    kind: str,
    *,
    status: str = JobStatus.SUCCEEDED,
    result: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    created_by: Any = None,
    **fields: Any,
) -> Job:
    """A parity or benchmark job of the version, as the worker leaves it."""
    now = timezone.now()
    terminal = status not in (JobStatus.QUEUED, JobStatus.RUNNING)
    defaults: dict[str, Any] = {
        "parity": {"reference": {"kind": "onnx"}, "samples": 256, "batch_size": 64, "seed": 0, "device": "cpu"},
        "benchmark": {"batch_sizes": [1, 8, 64], "device": "cpu", "dtype": "float32"},
    }[kind]
    return Job.objects.create(
        kind=kind,
        task_name=f"models_registry.run_{kind}",
        queue="gpu",
        subject_type="models_registry.modelversion",
        subject_id=str(version.pk),
        subject_label=f"{version.model.name}:{version.version}",
        params=params if params is not None else defaults,
        status=status,
        progress=100 if status == JobStatus.SUCCEEDED else fields.pop("progress", 0),
        started_at=now if status != JobStatus.QUEUED else None,
        finished_at=now if terminal else None,
        device="cpu" if status != JobStatus.QUEUED else "",
        result=result,
        created_by=created_by,
        **fields,
    )
