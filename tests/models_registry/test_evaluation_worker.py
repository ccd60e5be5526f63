"""Parity and benchmark runs on a real Celery worker, through its sandbox process, against real artifacts."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
import torch

from forge_site.jobs import job_cancel
from forge_site.models import AuditEvent, Job
from models_registry.models import ModelVersion, RegisteredModel, VersionStatus
from models_registry.services import RegistryError, benchmark_start, model_create, parity_start, version_create
from tests.api.helpers import temp_upload
from tests.conftest import wait_for
from tests.evaluation_models import (
    LoopsOnLargeBatches,
    RaisesOnLargeBatches,
    SlowMLP,
    ThreeClassMLP,
    mlp_with_onnx,
    onnx_bytes,
    seeded,
)
from tests.torchscript_models import (
    GATED_SPEC,
    MLP_SPEC,
    TOKENS_SPEC,
    Gated,
    TokenBag,
    mlp_bytes,
    scripted_bytes,
)

FLOAT64_CPU = {"kind": "device", "device": "cpu", "dtype": "float64"}

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


def _ready(
    model: RegisteredModel,
    version: str,
    artifact: bytes,
    actor: Any,
    *,
    spec: dict[str, Any] | None = MLP_SPEC,
    onnx: bytes | None = None,
    samples: bytes | None = None,
) -> ModelVersion:
    mv = version_create(
        model=model,
        version=version,
        artifact=temp_upload("model.pt", artifact),
        input_spec=spec,
        onnx=temp_upload("model.onnx", onnx) if onnx is not None else None,
        sample_inputs=temp_upload("samples.npz", samples) if samples is not None else None,
        created_by=actor,
    )

    def inspected() -> ModelVersion | None:
        mv.refresh_from_db()
        return mv if mv.status != VersionStatus.VALIDATING else None

    wait_for(inspected, timeout=90)
    assert mv.status == VersionStatus.READY, mv.reason
    return mv


def _finished(job: Job, timeout: float = 120) -> Job:
    def done() -> Job | None:
        job.refresh_from_db()
        return job if job.is_terminal else None

    wait_for(done, timeout=timeout)
    return job


def _succeeded(job: Job, timeout: float = 120) -> dict[str, Any]:
    _finished(job, timeout)
    assert job.status == "succeeded", job.error
    assert isinstance(job.result, dict)
    return job.result


def test_parity_against_the_onnx_companion_passes_and_records_its_evidence(celery_worker, engineer):
    model = model_create(name="credit-risk", owner=engineer, risk_tier="high")
    artifact, onnx = mlp_with_onnx()
    mv = _ready(model, "1.0.0", artifact, engineer, onnx=onnx)
    job = parity_start(version=mv, actor=engineer, reference={"kind": "onnx"}, samples=300, batch_size=64, seed=7)

    result = _succeeded(job)

    assert result["passed"] is True
    assert result["reference"]["runtime"] == "onnxruntime"
    assert result["reference"]["provider"] == "CPUExecutionProvider"
    assert result["candidate"]["device"] == "cpu" and job.device == "cpu"
    assert result["inputs"] == {
        "source": "input_spec",
        "samples": 300,
        "batch_size": 64,
        "batches": 5,
        "seed": 7,
        "shapes": MLP_SPEC["inputs"],
    }
    (output,) = result["outputs"]
    assert output["shape"] == [300, 2] and output["elements"] == 600
    assert output["out_of_tolerance"] == 0 and output["argmax_agreement"] == 1.0
    assert output["cosine_similarity"] > 0.999999
    assert output["max_abs_error"] < 1e-5  # ONNX Runtime and TorchScript differ only in float rounding
    assert sum(output["histogram"]["counts"]) + output["histogram"]["exact"] == 600
    assert {"torch", "onnxruntime", "numpy"} <= set(result["versions"])
    assert result["versions"]["fp32_precision"] == "ieee"  # the sandbox ran it without TF32 (torch's default: none)
    assert result["tolerance"] == {"rtol": 1.3e-06, "atol": 1e-05, "dtype": "float32", "source": "default"}
    actions = set(AuditEvent.objects.filter(object_id=str(job.pk)).values_list("action", flat=True))
    assert {"job.queue", "job.start", "job.finish"} <= actions

    again = _succeeded(parity_start(version=mv, actor=engineer, reference={"kind": "onnx"}, samples=64))
    assert again["artifact_cache"] == "hit"  # the worker's sandbox kept the loaded artifact


def test_regression_parity_between_versions_finds_a_retrained_model_and_accepts_a_re_export(celery_worker, engineer):
    model = model_create(name="credit-risk", owner=engineer)
    v1 = _ready(model, "1.0.0", mlp_bytes(seed=0), engineer)
    re_export = _ready(model, "1.0.1", mlp_bytes(seed=0), engineer)
    retrained = _ready(model, "2.0.0", mlp_bytes(seed=1), engineer)

    same = _succeeded(
        parity_start(version=re_export, actor=engineer, reference={"kind": "version", "version": "1.0.0"})
    )
    assert same["passed"] is True and same["outputs"][0]["max_abs_error"] == 0.0
    assert same["reference"]["label"] == "credit-risk:1.0.0" and same["reference"]["sha256"] == v1.sha256

    job = parity_start(
        version=retrained, actor=engineer, reference={"kind": "version", "version": "1.0.0"}, samples=256, seed=3
    )
    differs = _succeeded(job)
    assert differs["passed"] is False
    (output,) = differs["outputs"]
    assert 0 < output["out_of_tolerance_share"] <= 1 and output["out_of_tolerance"] > 0
    assert output["worst_rows"] and output["worst_rows"][0]["max_abs_error"] == pytest.approx(output["max_abs_error"])
    # The worst row's recorded values reproduce its recorded error.
    worst = output["worst_rows"][0]
    gap = np.abs(np.array(worst["candidate"]) - np.array(worst["reference"])).max()
    assert gap == pytest.approx(worst["max_abs_error"], rel=1e-5)


def test_device_and_dtype_parity_on_cpu_and_a_clear_answer_when_cuda_is_missing(celery_worker, engineer):
    model = model_create(name="credit-risk", owner=engineer)
    mv = _ready(model, "1.0.0", mlp_bytes(), engineer)

    half = _succeeded(
        parity_start(version=mv, actor=engineer, reference={"kind": "device", "device": "cpu", "dtype": "bfloat16"})
    )
    assert half["reference"]["dtype"] == "bfloat16" and half["candidate"]["dtype"] == "float32"
    assert half["tolerance"]["dtype"] == "bfloat16" and half["tolerance"]["rtol"] == 1.6e-2
    assert half["outputs"][0]["max_abs_error"] > 0  # bfloat16 really ran

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the no-GPU refusal is checked on CPU-only workers")
    # "auto" is the CPU here, so a float32 CPU reference is the candidate itself: refused before it is queued (it
    # used to be queued and then fail), not a trivial pass.
    with pytest.raises(RegistryError) as same:
        parity_start(version=mv, actor=engineer, reference={"kind": "device", "device": "cpu", "dtype": "float32"})
    assert same.value.code == "same_as_candidate" and "proves nothing" in same.value.message
    refused = _finished(
        parity_start(version=mv, actor=engineer, reference={"kind": "device", "device": "cuda", "dtype": "float16"})
    )
    assert refused.status == "failed"
    assert "CUDA was requested (cuda) but this worker sees no GPU" in refused.error
    assert "allow a fallback to the CPU (the form's fallback box, or allow_fallback in the API)" in refused.error

    fallback = _succeeded(
        parity_start(
            version=mv,
            actor=engineer,
            reference={"kind": "device", "device": "cuda", "dtype": "float16"},
            allow_fallback=True,
        )
    )
    assert fallback["fallback"] and fallback["reference"]["device"] == "cpu"


def test_parity_with_several_inputs_integer_tokens_and_an_onnx_export(celery_worker, engineer):
    model = model_create(name="ticket-router", owner=engineer)
    module = seeded(TokenBag)
    example = [torch.randint(0, 100, (2, 6)), torch.randn(2, 4)]
    mv = _ready(
        model,
        "1.0.0",
        scripted_bytes(module),
        engineer,
        spec=TOKENS_SPEC,
        onnx=onnx_bytes(module, example, ["tokens", "extra"]),
    )
    result = _succeeded(parity_start(version=mv, actor=engineer, reference={"kind": "onnx"}, samples=200))
    assert result["passed"] is True
    assert [s["name"] for s in result["inputs"]["shapes"]] == ["tokens", "extra"]
    assert result["inputs"]["shapes"][0]["range"] == [0, 100]
    assert result["outputs"][0]["shape"] == [200, 3]


def test_scripted_control_flow_with_a_tuple_output_is_compared_leaf_by_leaf(celery_worker, engineer):
    model = model_create(name="gated", owner=engineer)
    _ready(model, "1.0.0", scripted_bytes(seeded(Gated, 0)), engineer, spec=GATED_SPEC)
    second = _ready(model, "1.1.0", scripted_bytes(seeded(Gated, 1)), engineer, spec=GATED_SPEC)
    result = _succeeded(parity_start(version=second, actor=engineer, reference={"kind": "version", "version": "1.0.0"}))
    assert [o["path"] for o in result["outputs"]] == ["output[0]", "output[1]"]
    assert [o["shape"] for o in result["outputs"]] == [[1024, 2], [1024, 4]]
    assert result["passed"] is False and all(not o["passed"] for o in result["outputs"])


def test_parity_from_uploaded_sample_inputs(celery_worker, engineer, tmp_path):
    model = model_create(name="credit-risk", owner=engineer)
    rows = np.random.default_rng(0).standard_normal((40, 32)).astype("float32")
    path = tmp_path / "samples.npz"
    np.savez(path, x=rows)
    artifact, onnx = mlp_with_onnx()
    mv = _ready(model, "1.0.0", artifact, engineer, spec=None, onnx=onnx, samples=path.read_bytes())
    result = _succeeded(parity_start(version=mv, actor=engineer, reference={"kind": "onnx"}, samples=1000))
    assert result["inputs"]["source"] == "sample_inputs"
    assert result["inputs"]["samples"] == 40  # capped at the rows uploaded
    assert result["passed"] is True


def test_a_model_that_never_returns_times_out_and_the_worker_takes_the_next_job(celery_worker, engineer):
    model = model_create(name="looper", owner=engineer)
    looping = _ready(model, "1.0.0", scripted_bytes(seeded(LoopsOnLargeBatches)), engineer)
    fine = _ready(model, "1.0.1", mlp_bytes(), engineer)

    stuck = parity_start(
        version=looping, actor=engineer, reference={"kind": "version", "version": "1.0.1"}, time_limit_s=4
    )
    after = parity_start(version=fine, actor=engineer, reference=FLOAT64_CPU)

    _finished(stuck, timeout=60)
    assert stuck.status == "timed_out"
    assert "did not finish within its 4 s limit" in stuck.error
    assert _succeeded(after)["passed"] is True


def test_a_forward_that_raises_fails_with_the_models_own_message(celery_worker, engineer):
    model = model_create(name="raiser", owner=engineer)
    raising = _ready(model, "1.0.0", scripted_bytes(seeded(RaisesOnLargeBatches)), engineer)
    job = _finished(parity_start(version=raising, actor=engineer, reference=FLOAT64_CPU))
    assert job.status == "failed"
    assert "feature store returned a batch with stale columns" in job.error
    assert "raised inside forward" in job.error

    bench = _finished(benchmark_start(version=raising, actor=engineer, batch_sizes=[8], window_ms=20, time_cap_s=1))
    assert bench.status == "failed" and "stale columns" in bench.error


def test_a_reference_with_other_output_shapes_fails_with_a_clear_message(celery_worker, engineer):
    model = model_create(name="credit-risk", owner=engineer)
    _ready(model, "1.0.0", scripted_bytes(seeded(ThreeClassMLP)), engineer)
    two = _ready(model, "2.0.0", mlp_bytes(), engineer)
    job = _finished(parity_start(version=two, actor=engineer, reference={"kind": "version", "version": "1.0.0"}))
    assert job.status == "failed"
    assert "shape" in job.error and "[64, 2]" in job.error and "[64, 3]" in job.error


def test_a_corrupt_onnx_file_and_one_with_other_input_names_fail_clearly(celery_worker, engineer):
    model = model_create(name="credit-risk", owner=engineer)
    artifact, onnx = mlp_with_onnx()
    corrupt = _ready(model, "1.0.0", artifact, engineer, onnx=onnx[: len(onnx) // 3] + b"\x00garbage")
    _, renamed_onnx = mlp_with_onnx(input_name="features")
    renamed = _ready(model, "1.0.1", artifact, engineer, onnx=renamed_onnx)

    bad = _finished(parity_start(version=corrupt, actor=engineer, reference={"kind": "onnx"}))
    assert bad.status == "failed" and "could not be loaded by ONNX Runtime" in bad.error
    names = _finished(parity_start(version=renamed, actor=engineer, reference={"kind": "onnx"}))
    assert names.status == "failed"
    assert "features" in names.error and "x" in names.error


def test_a_reference_that_does_not_fit_the_inputs_is_refused_or_fails_clearly(celery_worker, engineer, tmp_path):
    model = model_create(name="credit-risk", owner=engineer)
    _ready(model, "1.0.0", scripted_bytes(seeded(Gated)), engineer, spec=GATED_SPEC)
    mlp = _ready(model, "2.0.0", mlp_bytes(), engineer)
    with pytest.raises(RegistryError) as refused:
        parity_start(version=mlp, actor=engineer, reference={"kind": "version", "version": "1.0.0"})
    assert refused.value.field == "reference.version" and "other inputs" in refused.value.message

    # Without a declared spec the mismatch shows only when the reference runs: the job fails and says which side.
    rows = np.random.default_rng(1).standard_normal((16, 32)).astype("float32")
    path = tmp_path / "samples.npz"
    np.savez(path, x=rows)
    no_spec = _ready(model, "2.1.0", mlp_bytes(), engineer, spec=None, samples=path.read_bytes())
    job = _finished(parity_start(version=no_spec, actor=engineer, reference={"kind": "version", "version": "1.0.0"}))
    assert job.status == "failed"
    assert "credit-risk:1.0.0 raised inside forward" in job.error


def test_cancelling_a_running_parity_run_stops_it_at_the_next_batch(celery_worker, engineer):
    model = model_create(name="slow", owner=engineer)
    slow = _ready(model, "1.0.0", scripted_bytes(seeded(SlowMLP)), engineer)
    job = parity_start(
        version=slow,
        actor=engineer,
        reference=FLOAT64_CPU,
        samples=50_000,
        batch_size=64,
    )

    def advanced() -> bool:
        job.refresh_from_db()
        return job.status == "running" and job.progress >= 6

    wait_for(advanced, timeout=90)
    job_cancel(job=job, actor=engineer)

    def said_where() -> bool:
        job.refresh_from_db()
        return job.message.startswith("Parity run cancelled after")

    wait_for(said_where, timeout=60)
    assert job.status == "cancelled"
    assert "batches" in job.message and "samples" in job.message
    after = parity_start(version=slow, actor=engineer, reference=FLOAT64_CPU, samples=8)
    assert _succeeded(after)["inputs"]["samples"] == 8


def test_cancelling_a_running_benchmark_stops_it_and_says_where(celery_worker, engineer):
    model = model_create(name="slow", owner=engineer)
    slow = _ready(model, "1.0.0", scripted_bytes(seeded(SlowMLP)), engineer)
    job = benchmark_start(
        version=slow, actor=engineer, batch_sizes=[16, 64], window_ms=300, stability_pct=0.1, time_cap_s=60
    )

    def measuring() -> bool:
        job.refresh_from_db()
        return job.status == "running" and "window" in job.message

    wait_for(measuring, timeout=90)
    job_cancel(job=job, actor=engineer)

    def said_where() -> bool:
        job.refresh_from_db()
        return job.message.startswith("Benchmark cancelled during batch size 16: window")

    wait_for(said_where, timeout=30)
    assert job.status == "cancelled"
    after = benchmark_start(version=slow, actor=engineer, batch_sizes=[1], window_ms=20, time_cap_s=1)
    assert _succeeded(after)["results"][0]["batch_size"] == 1


def test_a_benchmark_reports_latency_throughput_memory_and_fingerprint(celery_worker, engineer):
    model = model_create(name="credit-risk", owner=engineer)
    mv = _ready(model, "1.0.0", mlp_bytes(), engineer)
    single = _succeeded(benchmark_start(version=mv, actor=engineer, batch_sizes=[4], threads=1, window_ms=20))
    assert single["threads"] == 1 and single["fingerprint"]["threads"] == 1
    job = benchmark_start(version=mv, actor=engineer, batch_sizes=[8, 1], window_ms=50, time_cap_s=3, warmup=3)
    result = _succeeded(job)
    assert result["threads"] > 1 or (os.cpu_count() or 1) == 1  # torch's default again, not the previous job's
    assert result["artifact_cache"] == "hit"

    assert [r["batch_size"] for r in result["results"]] == [1, 8]
    for row in result["results"]:
        latency = row["latency_ms"]
        assert (
            0 < latency["min"] <= latency["p50"] <= latency["p90"] <= latency["p95"] <= latency["p99"] <= latency["max"]
        )
        assert row["throughput_sps"] > 0 and row["iterations"] >= 5
        assert row["peak_memory_bytes"] > 0 and row["memory_kind"] == "rss_peak"
    fingerprint = result["fingerprint"]
    assert fingerprint["torch"] == torch.__version__ and fingerprint["threads"] == result["threads"]
    assert fingerprint["cpu_cores_logical"] >= 1 and result["fingerprint_key"]
    assert "governance_overhead" not in result  # measured on the serving path (rollouts), not by the registry
    assert job.device == "cpu"
