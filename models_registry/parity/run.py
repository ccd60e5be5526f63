"""A parity run: both sides on the same batches, their outputs compared group by group, cancellable between groups."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from models_registry.parity.compare import ParityComparison, to_host

BLOCK_TARGET_S = 0.1  # run_parity groups batches so that one group's forward passes take about this long
BLOCK_MAX_BATCHES = 64
BLOCK_MAX_INPUT_BYTES = 64 * 1024**2
BLOCK_MAX_OUTPUT_BYTES = 16 * 1024**2  # host copies of both sides' outputs held until their group is compared


class ParityCancelled(Exception):
    """The run was cancelled between batches."""

    def __init__(self, message: str, *, done: int = 0, total: int = 0) -> None:
        super().__init__(message)
        self.done = done
        self.total = total


def _input_bytes(inputs: list[torch.Tensor]) -> int:
    return sum(tensor.numel() * tensor.element_size() for tensor in inputs)


def _output_bytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, tuple | list):
        return sum(_output_bytes(item) for item in value)
    if isinstance(value, dict):
        return sum(_output_bytes(item) for item in value.values())
    return 0


def _rows(inputs: list[torch.Tensor]) -> int:
    return int(inputs[0].shape[0]) if inputs and inputs[0].dim() else 1


def run_parity(
    *,
    candidate: Callable[[list[torch.Tensor]], Any],
    reference: Callable[[list[torch.Tensor]], Any],
    batches: Iterable[list[torch.Tensor]],
    total_batches: int,
    comparison: ParityComparison,
    on_batch: Callable[[int, int], bool] | None = None,
) -> dict[str, Any]:
    """Feed each batch to both sides and compare; `on_batch(done, total)` returning False cancels the run.

    Batches run in groups: all of a group through the candidate, then all through the reference (alternating two
    runtimes on every batch thrashes caches and costs tiny models up to half again their bare time). Each output
    is copied to the host as it comes (to_host); a group's copies are joined and compared in one pass
    (ParityComparison.add_group), which keeps the per-batch work to the two calls and a copy.
    A group lasts about BLOCK_TARGET_S and holds at most BLOCK_MAX_OUTPUT_BYTES of outputs; progress is reported
    and a cancel is seen after each group.
    """
    timing = {"candidate_s": 0.0, "reference_s": 0.0, "compare_s": 0.0}
    started = time.perf_counter()
    state = {"row_offset": 0, "done": 0}
    group: list[list[torch.Tensor]] = []
    group_bytes = 0
    group_limit = 1

    def run_group() -> int:
        t0 = time.perf_counter()
        rows = [_rows(inputs) for inputs in group]
        cand_outs = [to_host(candidate(inputs)) for inputs in group]
        t1 = time.perf_counter()
        ref_outs = [to_host(reference(inputs)) for inputs in group]
        t2 = time.perf_counter()
        held = _output_bytes(cand_outs[0]) + _output_bytes(ref_outs[0])
        comparison.add_group(cand_outs, ref_outs, row_offset=state["row_offset"], rows=rows)
        timing["candidate_s"] += t1 - t0
        timing["reference_s"] += t2 - t1
        timing["compare_s"] += time.perf_counter() - t2
        state["row_offset"] += sum(rows)
        state["done"] += len(group)
        if on_batch is not None and on_batch(state["done"], total_batches) is False:
            raise ParityCancelled(
                f"Parity run cancelled after {state['done']} of {total_batches} batches "
                f"({state['row_offset']:,} samples).",
                done=state["done"],
                total=total_batches,
            )
        per_batch_s = (t2 - t0) / len(group)
        by_time = int(BLOCK_TARGET_S / max(per_batch_s, 1e-9))
        return max(1, min(BLOCK_MAX_BATCHES, by_time, BLOCK_MAX_OUTPUT_BYTES // max(1, held)))

    with torch.inference_mode():
        for inputs in batches:
            group.append(inputs)
            group_bytes += _input_bytes(inputs)
            if len(group) >= group_limit or group_bytes >= BLOCK_MAX_INPUT_BYTES:
                group_limit = run_group()
                group, group_bytes = [], 0
        if group:
            run_group()
    c0 = time.perf_counter()
    result = comparison.result()
    finished = time.perf_counter()
    timing["compare_s"] += finished - c0
    result["timing"] = {key: round(value, 6) for key, value in timing.items()}
    result["timing"]["total_s"] = round(finished - started, 6)
    return result
