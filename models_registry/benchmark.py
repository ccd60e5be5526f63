"""Benchmark a forward pass per batch size with perf_analyzer-style stability windows; compare runs.

Pure module (no Django, no Celery). Timing follows what is right on a GPU: warm-up excluded, the device
synchronised after each call, `torch.inference_mode`. What Forge's governance adds to a served request is measured
on the serving path itself (rollouts.serving.overhead), not here.
"""

from __future__ import annotations

import functools
import math
import platform
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch

from models_registry.benchmark_compare import compare_results, cpu_model, describe_machine, fingerprint_key
from models_registry.sandbox.runners import RunnerError, TorchScriptRunner, library_versions

__all__ = ["compare_results", "describe_machine", "fingerprint_key"]  # torch-free, re-exported here

CLEAR_REFS = Path("/proc/self/clear_refs")
PROC_STATUS = Path("/proc/self/status")


@dataclass(frozen=True)
class BenchmarkConfig:
    batch_sizes: tuple[int, ...] = (1, 8, 64)
    warmup: int = 10
    window_ms: float = 500.0
    stability_pct: float = 10.0
    stable_windows: int = 3
    min_window_iterations: int = 5
    max_windows: int = 20
    time_cap_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.batch_sizes or any(size < 1 for size in self.batch_sizes):
            raise ValueError("batch_sizes must be positive integers")
        if self.warmup < 0 or self.stable_windows < 1 or self.min_window_iterations < 1 or self.max_windows < 1:
            raise ValueError("warmup must be >= 0; stable_windows, min_window_iterations and max_windows >= 1")
        if self.window_ms <= 0 or self.time_cap_s <= 0 or self.stability_pct <= 0:
            raise ValueError("window_ms, time_cap_s and stability_pct must be positive")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["batch_sizes"] = list(self.batch_sizes)
        return data


class BenchmarkCancelled(Exception):
    """The benchmark was cancelled between measurement windows."""


def latency_summary(samples_s: Sequence[float]) -> dict[str, float]:
    """Milliseconds: p50 p90 p95 p99 mean min max std (numpy's linear-interpolation percentiles)."""
    if not samples_s:
        raise ValueError("latency_summary needs at least one sample")
    ms = np.asarray(samples_s, dtype=np.float64) * 1000.0
    p50, p90, p95, p99 = np.percentile(ms, [50, 90, 95, 99])
    return {
        "p50": float(p50),
        "p90": float(p90),
        "p95": float(p95),
        "p99": float(p99),
        "mean": float(ms.mean()),
        "min": float(ms.min()),
        "max": float(ms.max()),
        "std": float(ms.std()),
    }


def _read_status_kib(field: str) -> int | None:
    try:
        for line in PROC_STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class MemoryProbe:
    """Peak memory over a span: CUDA max allocated on a GPU; on the CPU the process's peak RSS (VmHWM)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.cuda = device.startswith("cuda")
        self.kind = "cuda_max_allocated" if self.cuda else "rss_peak"
        self.baseline = 0
        self._sampled_peak = 0

    def _rss(self) -> int:
        return int(psutil.Process().memory_info().rss)

    def reset(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.baseline = int(torch.cuda.memory_allocated(self.device))
            return
        try:
            CLEAR_REFS.write_text("5")  # resets VmHWM to the current RSS
            self.kind = "rss_peak"
        except OSError:
            self.kind = "rss"  # no peak tracking: the larger of the RSS at reset and at read
        self.baseline = self._rss()
        self._sampled_peak = self.baseline

    def peak(self) -> int:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            return int(torch.cuda.max_memory_allocated(self.device))
        if self.kind == "rss_peak":
            hwm = _read_status_kib("VmHWM")
            if hwm is not None:
                return hwm
        self._sampled_peak = max(self._sampled_peak, self._rss())
        return self._sampled_peak


def _spread_pct(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    if mean <= 0:
        return 0.0 if max(values) == min(values) else math.inf
    return (max(values) - min(values)) / mean * 100.0


def measure_batch(
    forward: Callable[[], Any],
    *,
    sync: Callable[[], None] | None,
    config: BenchmarkConfig,
    should_stop: Callable[[], bool] | None = None,
    batch_size: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Any]:
    """Time `forward` in windows until the last `stable_windows` agree (p50 and throughput) within stability_pct.

    Each call is timed on its own, with `sync` (torch.cuda.synchronize on a GPU) inside the timed span.
    A window lasts at least window_ms and min_window_iterations calls. Measuring stops unstable after
    max_windows windows or time_cap_s (warm-up not counted). `should_stop` is asked after every window;
    True raises BenchmarkCancelled. Statistics are over the calls of the last `stable_windows` windows.
    """
    started = clock()
    for _ in range(config.warmup):
        forward()
        if sync is not None:
            sync()
    measure_start = clock()
    windows: list[tuple[list[float], float]] = []
    stable = False
    spread: float | None = None
    window_s = config.window_ms / 1000.0
    while True:
        samples: list[float] = []
        window_start = clock()
        while True:
            t0 = clock()
            forward()
            if sync is not None:
                sync()
            t1 = clock()
            samples.append(t1 - t0)
            if len(samples) >= config.min_window_iterations and t1 - window_start >= window_s:
                break
            if t1 - measure_start >= config.time_cap_s:
                break
        windows.append((samples, t1 - window_start))
        if len(windows) >= config.stable_windows:
            recent = windows[-config.stable_windows :]
            p50s = [float(np.median(calls)) for calls, _ in recent]
            rates = [len(calls) / elapsed if elapsed > 0 else math.inf for calls, elapsed in recent]
            spread = max(_spread_pct(p50s), _spread_pct(rates))
            if spread <= config.stability_pct:
                stable = True
                break
        if len(windows) >= config.max_windows or clock() - measure_start >= config.time_cap_s:
            break
        if should_stop is not None and should_stop():
            raise BenchmarkCancelled(f"Benchmark cancelled after {len(windows)} measurement window(s).")
    used = windows[-config.stable_windows :]
    used_samples = [sample for calls, _ in used for sample in calls]
    used_seconds = sum(elapsed for _, elapsed in used)
    return {
        "latency_ms": latency_summary(used_samples),
        "throughput_sps": batch_size * len(used_samples) / used_seconds if used_seconds > 0 else None,
        "iterations": len(used_samples),
        "total_iterations": sum(len(calls) for calls, _ in windows),
        "warmup": config.warmup,
        "windows": len(windows),
        "stable": stable,
        "spread_pct": None if spread is None or not math.isfinite(spread) else spread,
        "window_p50_ms": [float(np.median(calls)) * 1000.0 for calls, _ in windows],
        "seconds": clock() - started,
    }


def cuda_sync(device: str) -> Callable[[], None] | None:
    if not device.startswith("cuda"):
        return None
    target = torch.device(device)
    return lambda: torch.cuda.synchronize(target)


class _WindowProgress:
    """measure_batch's should_stop: reports progress after each window and says whether to stop."""

    def __init__(
        self,
        on_progress: Callable[[int, str], bool] | None,
        *,
        position: int,
        count: int,
        batch_size: int,
        config: BenchmarkConfig,
    ) -> None:
        self.on_progress = on_progress
        self.position = position
        self.count = count
        self.batch_size = batch_size
        self.max_windows = config.max_windows
        self.windows = 0

    def __call__(self) -> bool:
        self.windows += 1
        if self.on_progress is None:
            return False
        share = min(0.99, self.windows / self.max_windows)
        percent = int(100 * (self.position + share) / self.count)
        return self.on_progress(percent, f"Batch size {self.batch_size}: window {self.windows}") is False


def run_benchmark(
    *,
    forward: Callable[[list[torch.Tensor]], Any],
    make_inputs: Callable[[int], list[torch.Tensor]],
    device: str,
    config: BenchmarkConfig,
    on_progress: Callable[[int, str], bool] | None = None,
) -> list[dict[str, Any]]:
    """measure_batch for every batch size under torch.inference_mode; on_progress returning False cancels.

    `make_inputs(batch_size)` should return inputs already on the device and in the dtype: a TorchScriptRunner
    forward is then timed as its bare module call. An exception inside forward surfaces as RunnerError.
    """
    sync = cuda_sync(device)
    probe = MemoryProbe(device)
    results: list[dict[str, Any]] = []
    count = len(config.batch_sizes)
    for position, batch_size in enumerate(config.batch_sizes):
        if on_progress is not None and on_progress(int(100 * position / count), f"Batch size {batch_size}") is False:
            raise BenchmarkCancelled(
                f"Benchmark cancelled before batch size {batch_size} ({position} of {count} measured)."
            )
        should_stop = _WindowProgress(on_progress, position=position, count=count, batch_size=batch_size, config=config)
        inputs = make_inputs(batch_size)
        # a TorchScriptRunner prepares the inputs once, so its per-call input handling is not in the latency
        call = forward.bind(inputs) if isinstance(forward, TorchScriptRunner) else functools.partial(forward, inputs)
        probe.reset()
        try:
            with torch.inference_mode():
                measured = measure_batch(call, sync=sync, config=config, should_stop=should_stop, batch_size=batch_size)
        except (BenchmarkCancelled, RunnerError):
            raise
        except Exception as exc:
            if isinstance(forward, TorchScriptRunner):
                raise forward.forward_error(exc, inputs) from exc
            raise
        results.append(
            {
                "batch_size": batch_size,
                **measured,
                "peak_memory_bytes": probe.peak(),
                "memory_baseline_bytes": probe.baseline,
                "memory_kind": probe.kind,
            }
        )
        del inputs
    if on_progress is not None:
        on_progress(100, "Benchmark finished")
    return results


# ---------------------------------------------------------------- fingerprint


def _gpu_driver() -> str | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run(
            [smi, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().splitlines()[0].strip() if out.strip() else None


def fingerprint(*, device: str, threads: int) -> dict[str, Any]:
    """The hardware and software a result was measured on."""
    memory = psutil.virtual_memory()
    fp: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu_cores_logical": psutil.cpu_count(logical=True),
        "cpu_cores_physical": psutil.cpu_count(logical=False),
        "memory_bytes": int(memory.total),
        "gpu_name": None,
        "gpu_memory_bytes": None,
        "gpu_driver": None,
        **library_versions(),
        "platform": platform.platform(),
        "threads": threads,
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        fp["gpu_name"] = props.name
        fp["gpu_memory_bytes"] = int(props.total_memory)
        fp["gpu_driver"] = _gpu_driver()
    return fp
