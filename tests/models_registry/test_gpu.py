"""The GPU paths of parity and benchmark jobs, through the real job sandbox (models_registry.sandbox.executor).

These run only where torch sees a CUDA device (a GPU worker host); on a machine without one they are skipped, and
tests/models_registry/test_runners.py and test_evaluation_worker.py check the refusals and the fallback instead.
They need no Django: on a GPU host `bash benchmarks/gpu_host.sh` runs them with the machine's own torch, then the
benchmark scripts with --device cuda.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import onnxruntime
import pytest
import torch

from models_registry.sandbox.executor import Sandbox, SandboxCancelled, SandboxFailure, SandboxTimeout
from models_registry.sandbox.runners import RunnerError, resolve_device
from tests.evaluation_models import LoopsOnLargeBatches, SlowMLP, mlp_with_onnx, seeded
from tests.torchscript_models import (
    GATED_SPEC,
    IMAGE_SPEC,
    MLP_SPEC,
    TOKENS_SPEC,
    CreditMLP,
    Gated,
    SmallCNN,
    TokenBag,
    sandbox_artifact,
    scripted_bytes,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (a GPU worker host)")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(cache_entries=4)
    yield box
    box.kill()


def parity_request(candidate: dict[str, str], spec: dict[str, Any], reference: dict[str, Any], **extra: Any) -> dict:
    return {
        "type": "parity",
        "candidate": candidate,
        "input_spec": spec,
        "sample_inputs": None,
        "device": "cuda",
        "dtype": "float32",
        "reference": reference,
        "samples": 512,
        "batch_size": 64,
        "seed": 0,
        "rtol": None,
        "atol": None,
        **extra,
    }


def benchmark_request(candidate: dict[str, str], spec: dict[str, Any], **extra: Any) -> dict:
    return {
        "type": "benchmark",
        "candidate": candidate,
        "input_spec": spec,
        "sample_inputs": None,
        "device": "cuda",
        "dtype": "float32",
        "batch_sizes": [1, 256],
        "warmup": 5,
        "window_ms": 50,
        "time_cap_s": 5,
        **extra,
    }


def test_a_float32_cuda_benchmark_times_the_gpu_and_reports_its_memory(sandbox, tmp_path):
    mlp = sandbox_artifact(tmp_path, "mlp.pt", scripted_bytes(seeded(CreditMLP)))
    events: list[dict[str, Any]] = []

    def record(event: dict[str, Any] | None) -> bool:
        if event is not None:
            events.append(event)
        return True

    result = sandbox.run(benchmark_request(mlp, MLP_SPEC), timeout_s=120, on_event=record)

    assert result["device"] == "cuda" and result["dtype"] == "float32" and result["fallback"] is None
    device_events = [e["device"] for e in events if e["type"] == "device"]
    assert device_events == [f"cuda ({torch.cuda.get_device_name(0)})"]
    small, large = result["results"]
    assert (small["batch_size"], large["batch_size"]) == (1, 256)
    for row in (small, large):
        assert row["memory_kind"] == "cuda_max_allocated"
        assert 0 < row["latency_ms"]["p50"] <= row["latency_ms"]["p99"]
        assert row["throughput_sps"] > 0
    # 256 rows of 32 float32 inputs and 64 hidden activations need more device memory than one row
    assert large["peak_memory_bytes"] > small["peak_memory_bytes"] > 0
    fp = result["fingerprint"]
    assert fp["gpu_name"] == torch.cuda.get_device_name(0)
    assert fp["gpu_memory_bytes"] == torch.cuda.get_device_properties(0).total_memory
    assert fp["gpu_driver"]
    assert result["versions"]["fp32_precision"] == "ieee"
    assert "governance_overhead" not in result  # measured on the serving path (rollouts), not by the registry

    again = sandbox.run(benchmark_request(mlp, MLP_SPEC, batch_sizes=[8]), timeout_s=120)
    assert again["artifact_cache"] == "hit"
    cpu = sandbox.run(benchmark_request(mlp, MLP_SPEC, device="cpu", batch_sizes=[8]), timeout_s=120)
    assert cpu["results"][0]["memory_kind"] == "rss_peak"
    assert cpu["fingerprint_key"] != result["fingerprint_key"]  # a GPU result is never compared as if CPU


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_benchmarks_run_in_that_dtype_on_the_gpu(sandbox, tmp_path, dtype):
    cnn = sandbox_artifact(tmp_path, "cnn.pt", scripted_bytes(seeded(SmallCNN)))
    result = sandbox.run(benchmark_request(cnn, IMAGE_SPEC, dtype=dtype, batch_sizes=[16]), timeout_s=120)
    assert result["dtype"] == dtype and result["device"] == "cuda"
    (row,) = result["results"]
    assert row["peak_memory_bytes"] > 0 and row["latency_ms"]["p50"] > 0


def test_parity_of_float32_cuda_against_the_cpu_passes_at_float32_tolerances_for_convolutions(sandbox, tmp_path):
    # With cuDNN's default TF32 convolutions this comparison fails (errors near 1e-3 relative); strict float32 passes.
    cnn = sandbox_artifact(tmp_path, "cnn.pt", scripted_bytes(seeded(SmallCNN)))
    result = sandbox.run(
        parity_request(cnn, IMAGE_SPEC, {"kind": "device", "device": "cpu", "dtype": "float32"}, samples=256),
        timeout_s=180,
    )
    assert result["candidate"]["device"] == "cuda" and result["reference"]["device"] == "cpu"
    assert result["tolerance"] == {"rtol": 1.3e-6, "atol": 1e-5, "dtype": "float32", "source": "default"}
    (output,) = result["outputs"]
    assert output["out_of_tolerance"] == 0, output
    assert result["passed"] is True


def test_with_pytorchs_default_tf32_convolutions_that_comparison_would_fail():
    # Why the sandbox calls strict_float32(): the same float32 CNN on the same GPU, with cuDNN allowed TF32.
    model = seeded(SmallCNN)
    x = torch.randn(256, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = model(x)
        on_gpu = seeded(SmallCNN).cuda()
        previous = torch.backends.cudnn.conv.fp32_precision
        try:
            torch.backends.cudnn.conv.fp32_precision = "tf32"
            loose = on_gpu(x.cuda()).cpu()
            torch.backends.cudnn.conv.fp32_precision = "ieee"
            strict = on_gpu(x.cuda()).cpu()
        finally:
            torch.backends.cudnn.conv.fp32_precision = previous
    assert not torch.allclose(loose, expected, rtol=1.3e-6, atol=1e-5)
    torch.testing.assert_close(strict, expected)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_parity_of_a_half_precision_gpu_reference_uses_its_tolerances(sandbox, tmp_path, dtype):
    mlp = sandbox_artifact(tmp_path, "mlp.pt", scripted_bytes(seeded(CreditMLP)))
    result = sandbox.run(
        parity_request(mlp, MLP_SPEC, {"kind": "device", "device": "cuda", "dtype": dtype}, device="cpu"),
        timeout_s=180,
    )
    assert result["reference"]["device"] == "cuda" and result["reference"]["dtype"] == dtype
    assert result["tolerance"]["dtype"] == dtype and result["tolerance"]["source"] == "default"
    (output,) = result["outputs"]
    assert 0 < output["max_abs_error"] < 0.05  # the half-precision copy really ran, and it is close
    assert output["argmax_agreement"] > 0.95


def test_parity_with_integer_and_float_inputs_in_float16_on_the_gpu(sandbox, tmp_path):
    # The token ids must stay int64 on the GPU while the float input is cast to float16.
    bag = sandbox_artifact(tmp_path, "bag.pt", scripted_bytes(seeded(TokenBag)))
    result = sandbox.run(
        parity_request(bag, TOKENS_SPEC, {"kind": "device", "device": "cpu", "dtype": "float32"}, dtype="float16"),
        timeout_s=180,
    )
    assert result["candidate"]["dtype"] == "float16" and result["tolerance"]["dtype"] == "float16"
    assert [s["dtype"] for s in result["inputs"]["shapes"]] == ["int64", "float32"]
    assert result["outputs"][0]["max_abs_error"] < 0.05


def test_parity_of_a_scripted_model_with_control_flow_and_two_outputs_on_the_gpu(sandbox, tmp_path):
    gated = sandbox_artifact(tmp_path, "gated.pt", scripted_bytes(seeded(Gated)))
    result = sandbox.run(
        parity_request(gated, GATED_SPEC, {"kind": "device", "device": "cpu", "dtype": "float32"}),
        timeout_s=180,
    )
    assert [o["path"] for o in result["outputs"]] == ["output[0]", "output[1]"]
    assert result["passed"] is True


def test_parity_against_the_onnx_companion_from_a_gpu_candidate(sandbox, tmp_path):
    pt, onnx = mlp_with_onnx()
    candidate = sandbox_artifact(tmp_path, "mlp.pt", pt)
    companion = sandbox_artifact(tmp_path, "mlp.onnx", onnx)
    result = sandbox.run(
        parity_request(candidate, MLP_SPEC, {"kind": "onnx", "path": companion["path"], "sha256": companion["sha256"]}),
        timeout_s=180,
    )
    expected = (
        "CUDAExecutionProvider"
        if "CUDAExecutionProvider" in onnxruntime.get_available_providers()
        else "CPUExecutionProvider"
    )
    assert result["reference"]["provider"] == expected
    assert result["candidate"]["device"] == "cuda"
    assert result["passed"] is True, result["outputs"]


def test_a_model_that_never_returns_on_the_gpu_times_out_and_the_next_job_runs(sandbox, tmp_path):
    looping = sandbox_artifact(tmp_path, "loops.pt", scripted_bytes(seeded(LoopsOnLargeBatches)))
    with pytest.raises(SandboxTimeout):
        sandbox.run(
            parity_request(looping, MLP_SPEC, {"kind": "device", "device": "cpu", "dtype": "float32"}), timeout_s=15
        )
    assert not sandbox.alive  # killed with its process group, GPU context and all
    mlp = sandbox_artifact(tmp_path, "mlp.pt", scripted_bytes(seeded(CreditMLP)))
    result = sandbox.run(
        parity_request(mlp, MLP_SPEC, {"kind": "device", "device": "cpu", "dtype": "float32"}), timeout_s=180
    )
    assert result["passed"] is True and result["candidate"]["device"] == "cuda"
    assert result["artifact_cache"] == "miss"  # a fresh child


def test_cancelling_a_gpu_parity_run_stops_it_between_groups(sandbox, tmp_path):
    slow = sandbox_artifact(tmp_path, "slow.pt", scripted_bytes(seeded(SlowMLP)))
    progress: list[str] = []

    def cancel_after_first_batch(event: dict[str, Any] | None) -> bool:
        if event is not None and event["type"] == "progress" and event["message"].startswith("batch"):
            progress.append(event["message"])
        return not progress

    request = parity_request(
        slow, MLP_SPEC, {"kind": "device", "device": "cpu", "dtype": "float32"}, samples=1_000_000, batch_size=256
    )
    with pytest.raises(SandboxCancelled, match=r"cancelled after \d+ of 3907 batches"):
        sandbox.run(request, timeout_s=300, on_event=cancel_after_first_batch)
    assert sandbox.alive  # stopped at a group boundary, not killed


def test_a_device_the_worker_does_not_have(sandbox, tmp_path):
    missing = f"cuda:{torch.cuda.device_count()}"
    with pytest.raises(RunnerError, match=rf"{missing} was requested but this worker sees"):
        resolve_device(missing, allow_fallback=False)
    assert resolve_device(missing, allow_fallback=True)[0] == "cuda"
    mlp = sandbox_artifact(tmp_path, "mlp.pt", scripted_bytes(seeded(CreditMLP)))
    with pytest.raises(SandboxFailure, match="allow_fallback"):
        sandbox.run(benchmark_request(mlp, MLP_SPEC, device=missing), timeout_s=60)
