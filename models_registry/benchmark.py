"""Benchmark a forward pass per batch size with perf_analyzer-style stability windows; compare runs.

Pure module (no Django, no Celery). Timing follows what is right on a GPU: warm-up excluded, the device
synchronised after each call, `torch.inference_mode`. It also measures what Forge adds to one inference in-process
(routing, input hashing, log enqueue) against the bare forward.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import math
import platform
import queue
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


# ---------------------------------------------------------------- governance overhead


class GovernanceHooks:
    """What Forge adds to one inference in-process: sticky routing, an input digest, a log record enqueue."""

    def __init__(
        self, arms: Sequence[tuple[str, float]] = (("stable", 0.9), ("canary", 0.1)), *, salt: str = "forge"
    ) -> None:
        total = sum(weight for _, weight in arms)
        if not arms or total <= 0:
            raise ValueError("arms need positive weights")
        self.arm_names = [name for name, _ in arms]
        self._bounds: list[int] = []
        running = 0.0
        for _, weight in arms:
            running += weight / total
            self._bounds.append(min(2**64, int(running * 2**64)))
        self._salt = salt.encode()
        self.queue: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()

    def route(self, request_key: str) -> str:
        """The same request key always lands on the same arm."""
        bucket = int.from_bytes(hashlib.sha256(self._salt + request_key.encode()).digest()[:8], "big")
        return self.arm_names[min(bisect.bisect_right(self._bounds, bucket), len(self.arm_names) - 1)]

    def digest(self, inputs: list[torch.Tensor]) -> str:
        """SHA-256 over each input's dtype, shape and bytes."""
        digest = hashlib.sha256()
        for tensor in inputs:
            data = tensor.detach()
            if not data.is_cpu:
                data = data.cpu()
            if not data.is_contiguous():
                data = data.contiguous()
            digest.update(f"{data.dtype}{tuple(data.shape)};".encode())
            if data.dtype is torch.bfloat16:
                data = data.view(torch.int16)
            digest.update(data.numpy().reshape(-1).view(np.uint8).data)
        return digest.hexdigest()

    def enqueue(self, record: dict[str, Any]) -> None:
        self.queue.put(record)

    def drain(self) -> int:
        drained = 0
        while True:
            try:
                self.queue.get_nowait()
            except queue.Empty:
                return drained
            drained += 1

    def around(
        self,
        forward: Callable[[list[torch.Tensor]], Any],
        inputs: list[torch.Tensor],
        request_key: str,
        payload: list[torch.Tensor] | None = None,
    ) -> Any:
        """route + digest + forward + enqueue; `payload` is what is hashed (the request as received) if not inputs."""
        arm = self.route(request_key)
        input_digest = self.digest(payload if payload is not None else inputs)
        output = forward(inputs)
        self.enqueue({"request_key": request_key, "arm": arm, "input_sha256": input_digest, "at": time.time()})
        return output


def governance_overhead(
    forward: Callable[[list[torch.Tensor]], Any],
    inputs: list[torch.Tensor],
    *,
    sync: Callable[[], None] | None = None,
    repeats: int = 200,
    hooks: GovernanceHooks | None = None,
) -> dict[str, Any]:
    """The hooks' p50 against the bare forward's p50, their components, and an interleaved bare/governed A/B."""
    hooks = hooks or GovernanceHooks()
    payload = [tensor.detach().cpu() for tensor in inputs]  # a request is hashed as received, in host memory
    clock = time.perf_counter
    call = forward.bind(inputs) if isinstance(forward, TorchScriptRunner) else functools.partial(forward, inputs)

    def bound(_inputs: list[torch.Tensor]) -> Any:
        return call()

    def bare() -> None:
        call()
        if sync is not None:
            sync()

    def governed(key: str) -> None:
        hooks.around(bound, inputs, key, payload)
        if sync is not None:
            sync()

    forward_s: list[float] = []
    hooks_s: list[float] = []
    routing_s: list[float] = []
    hashing_s: list[float] = []
    enqueue_s: list[float] = []
    ab_bare_s: list[float] = []
    ab_governed_s: list[float] = []
    with torch.inference_mode():
        for i in range(min(10, repeats)):
            bare()
            governed(f"warmup-{i}")
        for _ in range(repeats):
            t0 = clock()
            bare()
            forward_s.append(clock() - t0)
        for i in range(repeats):
            key = f"request-{i}"
            t0 = clock()
            arm = hooks.route(key)
            t1 = clock()
            input_digest = hooks.digest(payload)
            t2 = clock()
            hooks.enqueue({"request_key": key, "arm": arm, "input_sha256": input_digest, "at": time.time()})
            t3 = clock()
            routing_s.append(t1 - t0)
            hashing_s.append(t2 - t1)
            enqueue_s.append(t3 - t2)
            hooks_s.append(t3 - t0)
        for i in range(repeats):  # alternate which goes first, so neither always follows the other
            for governed_turn in (i % 2 == 1, i % 2 == 0):
                t0 = clock()
                if governed_turn:
                    governed(f"ab-{i}")
                else:
                    bare()
                (ab_governed_s if governed_turn else ab_bare_s).append(clock() - t0)
    hooks.drain()
    forward_p50 = float(np.median(forward_s))
    hooks_p50 = float(np.median(hooks_s))
    bare_p50 = float(np.median(ab_bare_s))
    governed_p50 = float(np.median(ab_governed_s))
    first = inputs[0] if inputs else None
    return {
        "batch_size": int(first.shape[0]) if first is not None and first.dim() else 1,
        "repeats": repeats,
        "input_bytes": sum(t.numel() * t.element_size() for t in payload),
        "forward_p50_ms": forward_p50 * 1000,
        "hooks_p50_ms": hooks_p50 * 1000,
        "ratio": hooks_p50 / forward_p50 if forward_p50 > 0 else None,
        "bare_p50_ms": bare_p50 * 1000,
        "governed_p50_ms": governed_p50 * 1000,
        "ab_ratio": (governed_p50 - bare_p50) / bare_p50 if bare_p50 > 0 else None,
        "components_us": {
            "routing": float(np.median(routing_s)) * 1e6,
            "input_hash": float(np.median(hashing_s)) * 1e6,
            "log_enqueue": float(np.median(enqueue_s)) * 1e6,
        },
    }
