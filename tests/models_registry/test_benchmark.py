"""Benchmark measurement: stability windows (on a controlled clock and on a real one), memory, fingerprints,
governance overhead and the comparison of runs."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from models_registry.benchmark import (
    BenchmarkCancelled,
    BenchmarkConfig,
    MemoryProbe,
    compare_results,
    fingerprint,
    fingerprint_key,
    latency_summary,
    measure_batch,
    run_benchmark,
)
from models_registry.sandbox.runners import RunnerError, TorchScriptRunner
from tests.torchscript_models import mlp_bytes


@pytest.fixture(autouse=True)
def _one_thread():
    # two intra-op threads on a CPU shared with other processes stall tiny forwards for a scheduler slice
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class FakeClock:
    """A clock that only moves when the fake forward says its call took so long."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls = 0

    def __call__(self) -> float:
        return self.now

    def forward(self, duration: Callable[[int], float]) -> Callable[[], None]:
        def run() -> None:
            self.now += duration(self.calls)
            self.calls += 1

        return run


def config(**overrides) -> BenchmarkConfig:
    base = {
        "batch_sizes": (1,),
        "warmup": 2,
        "window_ms": 125.0,
        "stability_pct": 10.0,
        "stable_windows": 3,
        "min_window_iterations": 5,
        "max_windows": 20,
        "time_cap_s": 30.0,
    }
    return BenchmarkConfig(**{**base, **overrides})


def mlp_runner() -> TorchScriptRunner:
    module = torch.jit.load(io.BytesIO(mlp_bytes()))
    return TorchScriptRunner(module, device="cpu", dtype="float32", label="credit-risk:1.0.0")


def test_latency_summary_uses_numpy_percentiles_in_milliseconds():
    samples = [n / 1000 for n in range(1, 101)]
    summary = latency_summary(samples)
    ms = np.arange(1, 101, dtype=np.float64)
    assert summary == pytest.approx(
        {
            "p50": np.percentile(ms, 50),
            "p90": np.percentile(ms, 90),
            "p95": np.percentile(ms, 95),
            "p99": np.percentile(ms, 99),
            "mean": ms.mean(),
            "min": 1.0,
            "max": 100.0,
            "std": ms.std(),
        }
    )
    with pytest.raises(ValueError):
        latency_summary([])


def test_a_steady_forward_is_stable_after_the_first_agreeing_windows():
    clock = FakeClock()
    warmup = 2
    forward = clock.forward(lambda n: 1.0 if n < warmup else 1 / 64)  # warm-up calls are slow and must not count
    syncs: list[int] = []
    result = measure_batch(
        forward, sync=lambda: syncs.append(1), config=config(warmup=warmup), batch_size=4, clock=clock
    )
    assert result["stable"] is True and result["windows"] == 3
    assert result["iterations"] == result["total_iterations"] == 24  # 125 ms windows of 1/64 s calls
    assert result["latency_ms"]["p50"] == result["latency_ms"]["max"] == 1000 / 64
    assert result["throughput_sps"] == pytest.approx(4 * 64)
    assert result["window_p50_ms"] == [1000 / 64] * 3
    assert result["spread_pct"] == 0.0
    assert len(syncs) == warmup + 24
    assert result["seconds"] == pytest.approx(2.0 + 24 / 64)


def test_statistics_come_from_the_last_stable_windows_only():
    clock = FakeClock()
    # the first two windows are slow (a cold cache), the rest steady
    forward = clock.forward(lambda n: 1 / 16 if n < 2 + 10 else 1 / 64)
    result = measure_batch(forward, sync=None, config=config(), clock=clock)
    assert result["stable"] is True
    assert result["windows"] > 3 and result["total_iterations"] > result["iterations"] == 24
    assert result["latency_ms"]["max"] == 1000 / 64


def test_windows_that_never_agree_stop_unstable_at_max_windows():
    clock = FakeClock()
    forward = clock.forward(lambda n: (n + 1) / 1024)  # every call slower than the last
    result = measure_batch(forward, sync=None, config=config(stability_pct=1.0, max_windows=6), clock=clock)
    assert result["stable"] is False and result["windows"] == 6
    assert result["spread_pct"] > 1.0
    p50s = result["window_p50_ms"]
    assert p50s == sorted(p50s) and len(set(p50s)) == 6


def test_the_time_cap_ends_measuring_even_inside_a_window():
    clock = FakeClock()
    forward = clock.forward(lambda n: 0.0 if n < 2 else 0.25)
    capped = config(time_cap_s=1.0, window_ms=10_000.0, max_windows=50)
    result = measure_batch(forward, sync=None, config=capped, clock=clock)
    assert result["stable"] is False and result["windows"] == 1
    assert result["total_iterations"] == 4  # the call that crosses 1.0 s is the last


def test_should_stop_cancels_between_windows():
    clock = FakeClock()
    asked: list[int] = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) >= 2

    forward = clock.forward(lambda n: (n + 1) / 1024)
    with pytest.raises(BenchmarkCancelled, match="after 2 measurement window"):
        measure_batch(forward, sync=None, config=config(stability_pct=1.0), should_stop=should_stop, clock=clock)


def test_a_sleeping_forward_is_measured_on_the_real_clock():
    result = measure_batch(
        lambda: time.sleep(0.002),
        sync=None,
        config=config(window_ms=30.0, stability_pct=60.0, max_windows=40, time_cap_s=1.5),
    )
    assert result["stable"] is True
    assert result["latency_ms"]["min"] >= 2.0 and result["latency_ms"]["p50"] >= 2.0
    assert result["iterations"] >= 3 * 5


def test_a_real_forward_that_never_settles_ends_unstable_at_a_tiny_cap():
    calls = [0]

    def slower() -> None:
        calls[0] += 1
        time.sleep(0.0005 * calls[0])

    result = measure_batch(
        slower, sync=None, config=config(warmup=0, window_ms=5.0, stability_pct=0.5, max_windows=1000, time_cap_s=0.3)
    )
    assert result["stable"] is False and result["windows"] < 1000
    assert result["total_iterations"] == calls[0]


def test_run_benchmark_measures_each_batch_size_in_inference_mode():
    runner = mlp_runner()
    modes: list[bool] = []
    progress: list[tuple[int, str]] = []

    def forward(inputs: list[torch.Tensor]) -> torch.Tensor:
        modes.append(torch.is_inference_mode_enabled())
        return runner(inputs)

    def on_progress(percent: int, message: str) -> bool:
        progress.append((percent, message))
        return True

    cfg = config(
        batch_sizes=(1, 16),
        warmup=3,
        window_ms=20.0,
        stability_pct=50.0,
        stable_windows=2,
        max_windows=20,
        time_cap_s=5.0,
    )
    results = run_benchmark(
        forward=forward,
        make_inputs=lambda n: [torch.randn(n, 32)],
        device="cpu",
        config=cfg,
        on_progress=on_progress,
    )
    assert [r["batch_size"] for r in results] == [1, 16]
    assert all(modes)
    for row in results:
        assert row["latency_ms"]["p50"] > 0 and row["throughput_sps"] > 0
        assert (
            row["memory_kind"] in {"rss_peak", "rss"} and row["peak_memory_bytes"] >= row["memory_baseline_bytes"] > 0
        )
        assert row["iterations"] >= 2 * 5
    percents = [p for p, _ in progress]
    assert percents == sorted(percents) and progress[-1] == (100, "Benchmark finished")
    assert progress[0] == (0, "Batch size 1")


def test_on_progress_returning_false_cancels_the_benchmark():
    runner = mlp_runner()
    asked: list[int] = []

    def on_progress(percent: int, message: str) -> bool:
        asked.append(percent)
        return len(asked) < 3

    cfg = config(batch_sizes=(1, 8), warmup=1, window_ms=5.0, stability_pct=0.001, time_cap_s=2.0)
    with pytest.raises(BenchmarkCancelled):
        run_benchmark(
            forward=runner,
            make_inputs=lambda n: [torch.randn(n, 32)],
            device="cpu",
            config=cfg,
            on_progress=on_progress,
        )
    assert len(asked) == 3


def test_a_forward_that_raises_during_a_benchmark_is_a_runner_error():
    class Fragile(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[0] > 4:
                raise RuntimeError("batch too large for this model")
            return x * 2

    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(Fragile()), buffer)
    buffer.seek(0)
    runner = TorchScriptRunner(torch.jit.load(buffer), device="cpu", dtype="float32", label="fragile:1.0.0")
    cfg = config(batch_sizes=(2, 8), warmup=1, window_ms=5.0, stability_pct=50.0, time_cap_s=1.0)
    with pytest.raises(RunnerError) as caught:
        run_benchmark(forward=runner, make_inputs=lambda n: [torch.ones(n, 3)], device="cpu", config=cfg)
    assert str(caught.value).startswith("fragile:1.0.0 raised inside forward on inputs [[8, 3] float32]: ")
    assert str(caught.value).endswith("batch too large for this model")


def test_the_memory_probe_sees_a_transient_allocation():
    probe = MemoryProbe("cpu")
    probe.reset()
    block = np.ones(64 * 1024**2 // 8)  # 64 MiB, touched
    del block
    peak = probe.peak()
    if probe.kind == "rss_peak":
        assert peak - probe.baseline >= 60 * 1024**2
    else:  # /proc/self/clear_refs not writable: only the RSS at reset and read are seen
        assert peak >= probe.baseline


def test_bad_configs_are_refused():
    for bad in ({"batch_sizes": ()}, {"batch_sizes": (0,)}, {"stable_windows": 0}, {"window_ms": 0.0}):
        with pytest.raises(ValueError):
            config(**bad)
    assert config().as_dict()["batch_sizes"] == [1]


def test_the_fingerprint_key_follows_hardware_and_threads_not_software():
    fp = fingerprint(device="cpu", threads=2)
    cpuinfo = Path("/proc/cpuinfo").read_text()
    if "model name" in cpuinfo:
        assert f": {fp['cpu_model']}\n" in cpuinfo
    assert fp["threads"] == 2 and fp["device"] == "cpu" and fp["torch"] == torch.__version__
    assert fp["cpu_cores_logical"] >= 1 and fp["memory_bytes"] > 0 and fp["gpu_name"] is None
    key = fingerprint_key(fp)
    assert len(key) == 16 and int(key, 16) >= 0
    assert fingerprint_key({**fp, "torch": "9.9.9", "numpy": "0"}) == key
    assert fingerprint_key({**fp, "threads": 4}) != key
    assert fingerprint_key({**fp, "cpu_model": "Other CPU"}) != key
    gpu = {**fp, "device": "cuda", "gpu_name": "NVIDIA H100"}
    assert fingerprint_key({**gpu, "device": "cuda:1"}) == fingerprint_key(gpu) != key


def _result(cpu: str, rows: list[tuple[int, float, float]], *, torch_version: str = "2.13.0") -> dict:
    fp = {
        "cpu_model": cpu,
        "cpu_cores_logical": 2,
        "cpu_cores_physical": 1,
        "gpu_name": None,
        "device": "cpu",
        "threads": 2,
        "torch": torch_version,
    }
    return {
        "device": "cpu",
        "dtype": "float32",
        "fingerprint": fp,
        "fingerprint_key": fingerprint_key(fp),
        "results": [
            {"batch_size": b, "latency_ms": {"p50": p50, "p95": p50 * 1.5}, "throughput_sps": b * 1000 / p50}
            for b, p50, _ in rows
        ],
    }


def test_compare_results_gives_ratios_against_the_first_run():
    base = _result("AMD EPYC", [(1, 2.0, 0), (8, 4.0, 0)])
    faster = _result("AMD EPYC", [(1, 1.0, 0), (64, 10.0, 0)])
    compared = compare_results(
        [{"label": "1.0.0", "job_id": "a", "result": base}, {"label": "1.1.0", "job_id": "b", "result": faster}]
    )
    assert compared["batch_sizes"] == [1, 8, 64]
    assert [s["p50_ms"] for s in compared["series"]] == [[2.0, 4.0, None], [1.0, None, 10.0]]
    assert compared["series"][1]["p95_ms"] == [1.5, None, 15.0]
    assert compared["ratios"] == [
        {"label": "1.1.0", "batch_size": 1, "p50_ratio": 0.5, "throughput_ratio": 2.0},
        {"label": "1.1.0", "batch_size": 8, "p50_ratio": None, "throughput_ratio": None},
        {"label": "1.1.0", "batch_size": 64, "p50_ratio": None, "throughput_ratio": None},
    ]
    assert compared["comparable"] is True and compared["warnings"] == []


def test_compare_results_flags_runs_from_different_hardware():
    base = _result("AMD EPYC", [(1, 2.0, 0)])
    other = _result("Intel Xeon Gold", [(1, 1.0, 0)], torch_version="2.12.0")
    compared = compare_results(
        [{"label": "1.0.0", "job_id": "a", "result": base}, {"label": "1.1.0", "job_id": "b", "result": other}]
    )
    assert compared["comparable"] is False
    hardware, software = compared["warnings"]
    assert hardware.startswith("1.1.0 ran on different hardware (cpu, Intel Xeon Gold, 2 cores, 2 threads) than 1.0.0 ")
    assert "(cpu, AMD EPYC, 2 cores, 2 threads)" in hardware
    assert software == "1.1.0 used torch 2.12.0, 1.0.0 torch 2.13.0."
