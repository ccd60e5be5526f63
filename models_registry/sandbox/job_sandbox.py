"""The job sandbox: a long-lived child of a worker process that runs parity and benchmark requests.

Speaks JSON lines: requests on stdin, events on stdout (`ready`, `device`, `progress`, then `result` or
`cancelled`). A `{"type": "cancel"}` line on stdin stops the running request at its next batch. Artifacts are
loaded with `torch.jit.load` only and kept in a bounded cache keyed by SHA-256. Anything else the libraries print
goes to stderr, so it cannot corrupt the protocol. No Django here.
"""

from __future__ import annotations

import json
import os
import resource
import select
import sys
import time
import traceback
from dataclasses import dataclass
from typing import IO, Any

from models_registry.input_spec import InputDecl, InputSpecError, parse_input_spec

PROGRESS_EVERY_S = 0.2
DEFAULT_THREADS = 0  # torch's own default, read when the sandbox starts (main)


class Refused(Exception):
    """The request cannot run as asked; the message says why."""


class Channel:
    """The sandbox's end of the pipe: events out, cancel requests in."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self._buffer = b""
        self._cancelled = False
        self._last_progress = 0.0

    def send(self, event: dict[str, Any]) -> None:
        self.out.write(json.dumps(event, default=str) + "\n")
        self.out.flush()

    def progress(self, percent: float, message: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress = now
            self.send({"type": "progress", "percent": int(max(0, min(99, percent))), "message": message})

    def cancel_requested(self) -> bool:
        """Non-blocking look at stdin for a cancel line."""
        while not self._cancelled and select.select([0], [], [], 0)[0]:
            chunk = os.read(0, 4096)
            if not chunk:
                self._cancelled = True  # the parent went away: stop
                break
            self._buffer += chunk
            while b"\n" in self._buffer:
                line, _, self._buffer = self._buffer.partition(b"\n")
                if line.strip() and json.loads(line).get("type") == "cancel":
                    self._cancelled = True
        return self._cancelled

    def next_request(self) -> dict[str, Any] | None:
        """Block for the next request line; None when stdin closes."""
        self._cancelled = False
        while b"\n" not in self._buffer:
            chunk = os.read(0, 1 << 16)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        request = json.loads(line)
        return request if request.get("type") != "cancel" else self.next_request()


def read_sample_arrays(path: str, decls: list[InputDecl] | None) -> list[Any]:
    """Uploaded sample inputs (.npz, read without pickle), in the input spec's order when there is one."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
            if decls and all(d.name in keys for d in decls):
                keys = [d.name for d in decls]
            elif decls and len(keys) != len(decls):
                missing = ", ".join(d.name for d in decls if d.name not in keys)
                raise Refused(f"The sample inputs lack arrays named {missing} (found {', '.join(keys)}).")
            return [np.asarray(npz[key]) for key in keys]
    except Refused:
        raise
    except Exception as exc:
        raise Refused(f"The sample inputs could not be read as .npz without pickle: {exc}") from exc


def _decls(request: dict[str, Any]) -> list[InputDecl] | None:
    if not request.get("input_spec"):
        return None
    try:
        return parse_input_spec(request["input_spec"])
    except InputSpecError as exc:
        raise Refused(f"The version's input spec is not usable: {exc}") from exc


def _input_source(request: dict[str, Any], decls: list[InputDecl] | None) -> tuple[str, list[Any] | None]:
    if request.get("sample_inputs"):
        return "sample_inputs", read_sample_arrays(request["sample_inputs"], decls)
    if decls:
        return "input_spec", None
    raise Refused("The version has neither an input spec nor sample inputs, so no inputs can be built.")


_checked: set[str] = set()


def _check_archive(path: str, sha256: str, request: dict[str, Any]) -> None:
    """Re-check an artifact's structure (no execution) before its first `torch.jit.load` in this process."""
    from models_registry.archive import ArchiveRejected, check_torchscript_archive

    if sha256 in _checked:
        return
    try:
        check_torchscript_archive(path, max_uncompressed=int(request.get("max_uncompressed") or 8 * 1024**3))
    except ArchiveRejected as exc:
        raise Refused(f"The artifact {sha256[:12]} failed its structural check: {exc}") from exc
    _checked.add(sha256)


def _device_label(torch: Any, device: str) -> str:
    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return device


@dataclass
class _Prepared:
    """What both kinds of request start from: where the candidate runs, its inputs, and the loaded candidate."""

    runner: Any
    cache_hit: bool
    device: str
    dtype: str
    fallback: str | None
    decls: list[InputDecl] | None
    source: str
    arrays: list[Any] | None


def _prepare(request: dict[str, Any], channel: Channel, cache: Any, loading: str) -> _Prepared:
    import torch

    from models_registry.sandbox import runners

    device, fallback = runners.resolve_device(
        request.get("device") or "auto", allow_fallback=bool(request.get("allow_fallback"))
    )
    dtype = request.get("dtype") or "float32"
    torch.set_num_threads(int(request.get("threads") or DEFAULT_THREADS))  # never inherit the previous job's
    runners.strict_float32()
    channel.send({"type": "device", "device": _device_label(torch, device)})
    decls = _decls(request)
    source, arrays = _input_source(request, decls)
    channel.progress(1, loading, force=True)
    spec = request["candidate"]
    _check_archive(spec["path"], spec["sha256"], request)
    module, hit = cache.torchscript(path=spec["path"], sha256=spec["sha256"], device=device, dtype=dtype)
    runner = runners.TorchScriptRunner(module, device=device, dtype=dtype, label=spec["label"])
    return _Prepared(runner, hit, device, dtype, fallback, decls, source, arrays)


def run_parity_request(request: dict[str, Any], channel: Channel, cache: Any) -> dict[str, Any]:
    import torch

    from models_registry import parity
    from models_registry.sandbox import runners

    started = time.perf_counter()
    allow_fallback = bool(request.get("allow_fallback"))
    prepared = _prepare(request, channel, cache, "loading the candidate")
    candidate, device, dtype, fallback = prepared.runner, prepared.device, prepared.dtype, prepared.fallback
    decls, source, arrays, hit = prepared.decls, prepared.source, prepared.arrays, prepared.cache_hit
    candidate_spec = request["candidate"]
    ref = request["reference"]
    channel.progress(3, "loading the reference", force=True)
    reference: Any
    ref_out: dict[str, Any] = {"kind": ref["kind"]}
    if ref["kind"] == "onnx":
        session, _ = cache.onnx(path=ref["path"], sha256=ref["sha256"], device=device, threads=torch.get_num_threads())
        reference = runners.OnnxRunner(
            session, input_names=[d.name for d in decls] if decls else None, label="ONNX companion"
        )
        ref_out.update(provider=reference.provider, sha256=ref["sha256"])
    elif ref["kind"] == "version":
        _check_archive(ref["path"], ref["sha256"], request)
        other, _ = cache.torchscript(path=ref["path"], sha256=ref["sha256"], device=device, dtype=dtype)
        reference = runners.TorchScriptRunner(other, device=device, dtype=dtype, label=ref["label"])
        ref_out.update(sha256=ref["sha256"])
    else:
        ref_device, ref_fallback = runners.resolve_device(ref["device"], allow_fallback=allow_fallback)
        fallback = fallback or ref_fallback
        if (ref_device, ref["dtype"]) == (device, dtype):
            raise Refused(
                f"Both sides would run the same artifact on {device} in {dtype}"
                f"{' (after falling back to the CPU)' if fallback else ''}, which proves nothing; "
                "choose a reference device or dtype that differs from the candidate's."
            )
        other, _ = cache.torchscript(
            path=candidate_spec["path"], sha256=candidate_spec["sha256"], device=ref_device, dtype=ref["dtype"]
        )
        reference = runners.TorchScriptRunner(
            other, device=ref_device, dtype=ref["dtype"], label=f"{ref_device} {ref['dtype']}"
        )
        ref_out.update(sha256=candidate_spec["sha256"])
    ref_out.update(label=reference.label, runtime=reference.runtime, device=reference.device, dtype=reference.dtype)

    samples, batch_size = int(request["samples"]), int(request["batch_size"])
    if arrays is not None:
        rows = parity.available_rows(arrays)
        if rows == 0:
            raise Refused("The sample inputs hold no rows.")
        samples = min(samples, rows)
        batches = parity.array_batches(arrays, samples=samples, batch_size=batch_size)
        shapes = [
            {
                "name": decls[i].name if decls and i < len(decls) else f"input{i}",
                "shape": [None, *a.shape[1:]],
                "dtype": str(a.dtype),
            }
            for i, a in enumerate(arrays)
        ]
    else:
        assert decls is not None
        batches = parity.spec_batches(decls, samples=samples, batch_size=batch_size, seed=int(request["seed"]))
        shapes = [d.as_dict() for d in decls]
    total = parity.batch_count(samples, batch_size)

    def on_batch(done: int, total_batches: int) -> bool:
        channel.progress(5 + 94 * done / total_batches, f"batch {done} of {total_batches}")
        return not channel.cancel_requested()

    comparison = parity.ParityComparison(rtol=request.get("rtol"), atol=request.get("atol"))
    outcome = parity.run_parity(
        candidate=candidate,
        reference=reference,
        batches=batches,
        total_batches=total,
        comparison=comparison,
        on_batch=on_batch,
    )
    outcome["timing"]["total_s"] = round(time.perf_counter() - started, 4)
    return {
        "kind": "parity",
        **outcome,
        "candidate": {
            "label": candidate.label,
            "runtime": candidate.runtime,
            "device": candidate.device,
            "dtype": candidate.dtype,
            "sha256": candidate_spec["sha256"],
        },
        "reference": ref_out,
        "inputs": {
            "source": source,
            "samples": samples,
            "batch_size": batch_size,
            "batches": total,
            "seed": int(request["seed"]) if source == "input_spec" else None,
            "shapes": shapes,
        },
        "fallback": fallback,
        "versions": runners.library_versions(),
        "artifact_cache": "hit" if hit else "miss",
    }


def run_benchmark_request(request: dict[str, Any], channel: Channel, cache: Any) -> dict[str, Any]:
    import torch

    from models_registry import benchmark, parity
    from models_registry.sandbox import runners

    prepared = _prepare(request, channel, cache, "loading the model")
    runner, device, dtype, fallback = prepared.runner, prepared.device, prepared.dtype, prepared.fallback
    decls, arrays, hit = prepared.decls, prepared.arrays, prepared.cache_hit

    def make_inputs(batch: int) -> list[Any]:
        if arrays is not None:
            rows = len(arrays[0])
            index = torch.arange(batch) % rows
            tensors = [torch.from_numpy(a)[index] for a in arrays]
        else:
            assert decls is not None
            tensors = parity.random_inputs(decls, batch, torch.Generator().manual_seed(0))
        return runner.prepare(tensors)

    config = benchmark.BenchmarkConfig(
        batch_sizes=tuple(int(b) for b in request["batch_sizes"]),
        warmup=int(request.get("warmup", 10)),
        window_ms=float(request.get("window_ms", 500)),
        stability_pct=float(request.get("stability_pct", 10.0)),
        time_cap_s=float(request.get("time_cap_s", 30.0)),
    )

    seen = {"message": "before the first measurement"}

    def on_progress(percent: int, message: str) -> bool:
        seen["message"] = message
        channel.progress(2 + 0.9 * percent, message)
        return not channel.cancel_requested()

    try:
        results = benchmark.run_benchmark(
            forward=runner, make_inputs=make_inputs, device=device, config=config, on_progress=on_progress
        )
    except benchmark.BenchmarkCancelled as exc:
        where = seen["message"][:1].lower() + seen["message"][1:]
        raise benchmark.BenchmarkCancelled(f"Benchmark cancelled during {where}.") from exc
    # What governance adds to a served request is measured on the serving path itself (rollouts.serving.overhead,
    # benchmarks/governance_overhead.py), which the registry may not import.
    threads = torch.get_num_threads()
    fp = benchmark.fingerprint(device=device, threads=threads)
    return {
        "kind": "benchmark",
        "device": device,
        "dtype": dtype,
        "threads": threads,
        "fallback": fallback,
        "config": {
            "batch_sizes": list(config.batch_sizes),
            "warmup": config.warmup,
            "window_ms": config.window_ms,
            "stability_pct": config.stability_pct,
            "stable_windows": config.stable_windows,
            "time_cap_s": config.time_cap_s,
        },
        "results": results,
        "fingerprint": fp,
        "fingerprint_key": benchmark.fingerprint_key(fp),
        "artifact_cache": "hit" if hit else "miss",
        "versions": runners.library_versions(),
    }


HANDLERS: dict[str, Any] = {"parity": run_parity_request, "benchmark": run_benchmark_request}
HANDLERS_ENV = "FORGE_SANDBOX_HANDLERS"


def load_extra_handlers(spec: str) -> dict[str, Any]:
    """The request kinds an app above the registry adds: JSON {kind: "package.module:function"}, which the worker
    passes from settings.FORGE_SANDBOX_HANDLERS (the allow-list: the child imports nothing else). Each function
    takes (request, channel, cache) like the built-in handlers and returns the result's JSON. A built-in kind
    cannot be replaced."""
    import importlib

    table = json.loads(spec) if spec else {}
    handlers: dict[str, Any] = {}
    for kind, target in table.items():
        if kind in HANDLERS:
            raise ValueError(f"sandbox request kind {kind!r} is built in")
        module_name, _, function = str(target).partition(":")
        if not module_name or not function:
            raise ValueError(f"sandbox handler {target!r} must be 'package.module:function'")
        handlers[kind] = getattr(importlib.import_module(module_name), function)
    return handlers


def _message(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:1000]


def handle(request: dict[str, Any], channel: Channel, cache: Any) -> None:
    from models_registry import benchmark, parity
    from models_registry.sandbox import runners

    handler = HANDLERS.get(request.get("type", ""))
    if handler is None:
        channel.send({"type": "result", "ok": False, "error": f"unknown request type {request.get('type')!r}"})
        return
    try:
        result = handler(request, channel, cache)
    except (parity.ParityCancelled, benchmark.BenchmarkCancelled) as exc:
        channel.send({"type": "cancelled", "message": str(exc) or "Cancelled."})
        return
    except (Refused, runners.RunnerError, parity.ParityError) as exc:
        channel.send({"type": "result", "ok": False, "error": str(exc), "code": type(exc).__name__})
        return
    except MemoryError:
        channel.send({"type": "result", "ok": False, "error": "The run needs more memory than the sandbox allows."})
        return
    except Exception as exc:
        traceback.print_exc()
        channel.send(
            {
                "type": "result",
                "ok": False,
                "error": f"Internal error in the sandbox: {type(exc).__name__}: {_message(exc)}",
            }
        )
        return
    channel.send({"type": "result", "ok": True, "result": result})


def main() -> int:
    # Keep the real stdout for the protocol; anything printed by a library goes to stderr instead.
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    import torch

    from models_registry.sandbox.runners import ModelCache

    global DEFAULT_THREADS
    DEFAULT_THREADS = torch.get_num_threads()

    memory = int(os.environ.get("FORGE_SANDBOX_MEMORY_BYTES", "0") or 0)
    if memory > 0 and not torch.cuda.is_available():  # CUDA reserves huge virtual ranges: no RLIMIT_AS on GPU hosts
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    cache = ModelCache(max_entries=int(os.environ.get("FORGE_SANDBOX_CACHE_ENTRIES", "4")))
    HANDLERS.update(load_extra_handlers(os.environ.get(HANDLERS_ENV, "")))
    channel = Channel(protocol)
    channel.send(
        {
            "type": "ready",
            "pid": os.getpid(),
            "cuda": torch.cuda.is_available(),
            "gpus": torch.cuda.device_count(),
            "torch": torch.__version__,
        }
    )
    while True:
        request = channel.next_request()
        if request is None:
            return 0
        handle(request, channel, cache)


if __name__ == "__main__":
    sys.exit(main())
