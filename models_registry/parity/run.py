"""A parity run: both sides on the same batches, their outputs compared as they come, cancellable between batches."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import torch

from models_registry.parity.compare import ParityComparison, to_host

BLOCK_TARGET_S = 0.1  # run_parity groups batches so that one group's forward passes take about this long
BLOCK_MAX_BATCHES = 64
BLOCK_MAX_INPUT_BYTES = 64 * 1024**2


class ParityCancelled(Exception):
    """The run was cancelled between batches."""

    def __init__(self, message: str, *, done: int = 0, total: int = 0) -> None:
        super().__init__(message)
        self.done = done
        self.total = total


def _input_bytes(inputs: list[torch.Tensor]) -> int:
    return sum(tensor.numel() * tensor.element_size() for tensor in inputs)


def run_parity(
    *,
    candidate: Callable[[list[torch.Tensor]], Any],
    reference: Callable[[list[torch.Tensor]], Any],
    batches: Iterable[list[torch.Tensor]],
    total_batches: int,
    comparison: ParityComparison,
    on_batch: Callable[[int, int], bool] | None = None,
) -> dict[str, Any]:
    """Feed each batch to both sides and compare; `on_batch` returning False cancels before the next batch.

    Batches are run in small groups, all through the candidate and then all through the reference: alternating
    two runtimes on every batch thrashes caches and costs tiny models up to half again their bare time. A group
    lasts about BLOCK_TARGET_S, so a cancel is seen within that time.
    """
    timing = {"candidate_s": 0.0, "reference_s": 0.0, "compare_s": 0.0}
    started = time.perf_counter()
    state = {"row_offset": 0, "done": 0}
    group: list[list[torch.Tensor]] = []
    group_bytes = 0
    group_limit = 1

    def run_group() -> float:
        t0 = time.perf_counter()
        cand_outs = [to_host(candidate(inputs)) for inputs in group]
        t1 = time.perf_counter()
        ref_outs = [to_host(reference(inputs)) for inputs in group]
        t2 = time.perf_counter()
        timing["candidate_s"] += t1 - t0
        timing["reference_s"] += t2 - t1
        for inputs, cand_out, ref_out in zip(group, cand_outs, ref_outs, strict=True):
            rows = int(inputs[0].shape[0]) if inputs and inputs[0].dim() else 1
            c0 = time.perf_counter()
            comparison.add_batch(cand_out, ref_out, row_offset=state["row_offset"], rows=rows)
            timing["compare_s"] += time.perf_counter() - c0
            state["row_offset"] += rows
            state["done"] += 1
            if on_batch is not None and on_batch(state["done"], total_batches) is False:
                raise ParityCancelled(
                    f"Parity run cancelled after {state['done']} of {total_batches} batches "
                    f"({state['row_offset']:,} samples).",
                    done=state["done"],
                    total=total_batches,
                )
        return (t2 - t0) / len(group)

    with torch.inference_mode():
        for inputs in batches:
            group.append(inputs)
            group_bytes += _input_bytes(inputs)
            if len(group) >= group_limit or group_bytes >= BLOCK_MAX_INPUT_BYTES:
                per_batch = run_group()
                group, group_bytes = [], 0
                group_limit = max(1, min(BLOCK_MAX_BATCHES, int(BLOCK_TARGET_S / max(per_batch, 1e-9))))
        if group:
            run_group()
    c0 = time.perf_counter()
    result = comparison.result()
    finished = time.perf_counter()
    timing["compare_s"] += finished - c0
    result["timing"] = {key: round(value, 6) for key, value in timing.items()}
    result["timing"]["total_s"] = round(finished - started, 6)
    return result
