"""What governance adds to one served request, measured on the serving process's own code (no database, no HTTP).

The registry's benchmark used to report this on a stand-in (`GovernanceHooks`: a SHA-256 router, a digest and a
queue); the registry may not import rollouts, so the measurement lives here, on the real parts: the sticky router
(rollouts.routing), the input spec check (against a bare `torch.tensor`), the input hash, the signed request id,
the per-arm counters and the inference log entry. Reported in microseconds per request beside the bare forward, so a
tiny model's large ratio reads as what it is: a few microseconds. benchmarks/governance_overhead.py prints it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from models_registry.input_spec import InputDecl
from rollouts import request_ids
from rollouts.routing import Router
from rollouts.serving.counters import ServingCounters
from rollouts.serving.inputs import TORCH_DTYPES, inputs_sha256, outputs_json, tensors_from
from rollouts.serving.logsink import InferenceLog, LogEntry

COMPONENTS = ("routing", "input_check", "input_hash", "request_id", "counters", "log_enqueue")


def _p50_us(samples: list[int]) -> float:
    return statistics.median(samples) / 1000


def governance_overhead(
    module: Any,
    inputs: dict[str, Any],
    decls: list[InputDecl],
    *,
    repeats: int = 2000,
    share: float = 50.0,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> dict[str, Any]:
    """Per-request cost of each governance step and of the bare forward (p50 over `repeats`), in microseconds.

    The bare path is what any server does: tensors from the JSON lists (`torch.tensor`, no spec check), the forward,
    the outputs as lists. The governed path adds each step below; `input_check` is counted as what the spec check
    costs beyond the bare `torch.tensor`.
    """
    router = Router("overhead-salt", share)
    key = request_ids.signing_key("overhead")
    counters = ServingCounters()
    log = InferenceLog(batch=1 << 30, interval_s=3600.0, capacity=1 << 30)  # never flushed: the enqueue alone
    names = [decl.name for decl in decls]
    dtypes = [TORCH_DTYPES[decl.dtype] for decl in decls]
    samples: dict[str, list[int]] = {name: [] for name in ("forward", "bare_tensors", *COMPONENTS)}

    def bare_tensors() -> list[torch.Tensor]:
        return [torch.tensor(inputs[name], dtype=dtype) for name, dtype in zip(names, dtypes, strict=True)]

    with torch.inference_mode():
        for index in range(repeats + 50):
            record = index >= 50  # the first 50 warm caches and the allocator
            unit = f"user-{index}"
            t0 = clock()
            tensors = bare_tensors()
            t1 = clock()
            outputs = outputs_json(module(*tensors))
            t2 = clock()
            assignment, point = router.assign_with_point(unit)
            t3 = clock()
            bare_tensors()  # again, beside the check, so both run with the same caches
            t3b = clock()
            checked = tensors_from(inputs, decls, label="overhead")
            t4 = clock()
            digest = inputs_sha256(checked)
            t5 = clock()
            now = time.time()
            minute = int(now // 60)
            request_id = request_ids.issue(key, 1, assignment.arm, minute)
            t6 = clock()
            counters.record(
                rollout_id=1,
                arm=assignment.arm,
                minute=minute,
                latency_ms=(t2 - t0) / 1e6,
                error=False,
                fallback=False,
                share=share,
                point=point,
                now=now,
            )
            t7 = clock()
            meta = {"rollout": 1, "arm": assignment.arm, "version": "v", "latency_ms": 0.1, "input_sha256": digest}
            log.append(LogEntry(1, request_id, now, inputs, outputs, meta))
            t8 = clock()
            if record:
                samples["bare_tensors"].append(t1 - t0)
                samples["forward"].append(t2 - t1)
                samples["routing"].append(t3 - t2)
                samples["input_check"].append(max(0, (t4 - t3b) - (t3b - t3)))
                samples["input_hash"].append(t5 - t4)
                samples["request_id"].append(t6 - t5)
                samples["counters"].append(t7 - t6)
                samples["log_enqueue"].append(t8 - t7)
    components = {name: _p50_us(samples[name]) for name in COMPONENTS}
    total = sum(components.values())
    forward = _p50_us(samples["forward"]) + _p50_us(samples["bare_tensors"])
    return {
        "repeats": repeats,
        "batch_size": len(next(iter(inputs.values()))),
        "bare_p50_us": forward,
        "governance_p50_us": total,
        "ratio": total / forward if forward > 0 else None,
        "components_us": components,
    }
