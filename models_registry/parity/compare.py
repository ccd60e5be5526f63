"""Comparing two sides' outputs, streamed over batches: per-output error statistics and the tolerance rule.

An element is out of tolerance when |a - b| > atol + rtol * |b| (the rule of `torch.testing.assert_close`), b being
the reference. Batches are buffered and compared in vectorised chunks accumulated in float64.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-7),
    "float32": (1.3e-6, 1e-5),
    "float16": (1e-3, 1e-5),
    "bfloat16": (1.6e-2, 1e-5),
}
PRECISION_ORDER = ("bfloat16", "float16", "float32", "float64")  # lowest precision first
HISTOGRAM_LOW = -12.0
HISTOGRAM_HIGH = 2.0
HISTOGRAM_STEP = 0.25
HISTOGRAM_BINS = round((HISTOGRAM_HIGH - HISTOGRAM_LOW) / HISTOGRAM_STEP)
HISTOGRAM_EDGES = [HISTOGRAM_LOW + i * HISTOGRAM_STEP for i in range(HISTOGRAM_BINS + 1)]
HISTOGRAM_KEY_SHIFT = 52 - 8  # float64 bits kept as the lookup key: sign, exponent, 8 mantissa bits
WORST_ROW_VALUES = 8
CHUNK_ELEMENTS = 1 << 20  # per output and side: compare once this many elements are buffered
MAX_SUMMARY_FAILURES = 3
NARROW_COLUMNS = 32
_KIND_NAMES = {"f": "floating point", "i": "integer", "u": "integer", "b": "bool"}


class ParityError(Exception):
    """The two sides' outputs do not have the same structure (count, shape, dtype kind); names the output."""


class HostLeaf:
    """An output leaf copied off the model's memory: a numpy array and the name of the tensor's dtype."""

    __slots__ = ("array", "dtype")

    def __init__(self, array: np.ndarray, dtype: str) -> None:
        self.array = array
        self.dtype = dtype


def to_host(value: Any) -> Any:
    """The output with every tensor copied into a numpy array (structure kept). Holding torch's own output tensors
    while the next forward passes run makes those passes up to 2x slower here (an MLP with a 1024-wide hidden
    layer: the allocator cannot reuse that memory), so a parity run copies each output as it comes."""
    if isinstance(value, torch.Tensor):
        if value.dtype is not torch.bfloat16 and value.is_cpu and not value.requires_grad:
            return value.numpy().copy()  # numpy has the same dtype: nothing to remember
        array, name = _as_array(value)
        return HostLeaf(np.array(array, copy=True), name)
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, tuple | list):
        return type(value)(to_host(item) for item in value)
    if isinstance(value, dict):
        return {key: to_host(item) for key, item in value.items()}
    return value


def concat_outputs(outputs: list[Any], rows: list[int]) -> Any | None:
    """The outputs of consecutive batches joined along the first axis, structure kept, so a group of batches is
    compared in one pass; None when that would not be the same as comparing them one by one: a leaf that is a
    scalar, whose first axis is not the batch's rows, or whose dtype, trailing shape, device or structure changes."""
    first = outputs[0]
    if isinstance(first, HostLeaf):
        if any(not isinstance(out, HostLeaf) or out.dtype != first.dtype for out in outputs):
            return None
        joined = concat_outputs([out.array for out in outputs], rows)
        return None if joined is None else HostLeaf(joined, first.dtype)
    if isinstance(first, torch.Tensor | np.ndarray):
        kind, dtype, tail = type(first), first.dtype, tuple(first.shape[1:])
        for out, count in zip(outputs, rows, strict=True):
            if type(out) is not kind or out.dtype != dtype:
                return None
            shape = tuple(out.shape)
            if not shape or shape[0] != count or shape[1:] != tail:
                return None
        try:
            return torch.cat(outputs) if kind is torch.Tensor else np.concatenate(outputs)
        except RuntimeError:  # tensors on different devices
            return None
    if isinstance(first, tuple | list):
        if any(type(out) is not type(first) or len(out) != len(first) for out in outputs):
            return None
        parts = []
        for index in range(len(first)):
            part = concat_outputs([out[index] for out in outputs], rows)
            if part is None:
                return None
            parts.append(part)
        return tuple(parts) if isinstance(first, tuple) else parts
    if isinstance(first, dict):
        keys = list(first)
        if any(not isinstance(out, dict) or list(out) != keys for out in outputs):
            return None
        joined = {}
        for key in keys:
            part = concat_outputs([out[key] for out in outputs], rows)
            if part is None:
                return None
            joined[key] = part
        return joined
    return None


def flatten_output(value: Any, path: str = "output") -> list[tuple[str, Any]]:
    """Leaves of a model output with their paths: tensors and arrays; tuples/lists/dicts walked in order."""
    if isinstance(value, torch.Tensor | np.ndarray | HostLeaf):
        return [(path, value)]
    if isinstance(value, tuple | list):
        leaves: list[tuple[str, Any]] = []
        for index, item in enumerate(value):
            leaves.extend(flatten_output(item, f"{path}[{index}]"))
        return leaves
    if isinstance(value, dict):
        leaves = []
        for key, item in value.items():
            leaves.extend(flatten_output(item, f"{path}[{key!r}]"))
        return leaves
    if isinstance(value, bool | int | float | np.generic):
        return [(path, np.asarray(value))]
    if value is None:
        return [(path, None)]
    raise ParityError(f"Output {path} is a {type(value).__name__}, which cannot be compared; return tensors.")


_DTYPE_NAMES: dict[Any, str] = {}


def _dtype_name(dtype: Any) -> str:
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = _DTYPE_NAMES[dtype] = str(dtype).removeprefix("torch.")
    return name


def _as_array(value: Any) -> tuple[np.ndarray, str]:
    """A CPU numpy view of a leaf and the name of its original dtype (bfloat16 is widened to float32)."""
    if isinstance(value, HostLeaf):
        return value.array, value.dtype
    if isinstance(value, torch.Tensor):
        name = _dtype_name(value.dtype)
        tensor = value.detach() if value.requires_grad else value
        if tensor.dtype is torch.bfloat16:
            tensor = tensor.float()
        if not tensor.is_cpu:
            tensor = tensor.cpu()
        return tensor.numpy(), name
    array = np.asarray(value)
    return array, _dtype_name(array.dtype)


def _kind(array: np.ndarray) -> str:
    return array.dtype.kind if array.dtype.kind != "u" else "i"


def _check_kinds(path: str, cand: np.ndarray, cand_dtype: str, ref: np.ndarray, ref_dtype: str) -> None:
    for array, dtype, side in ((cand, cand_dtype, "candidate"), (ref, ref_dtype, "reference")):
        if array.dtype.kind not in _KIND_NAMES:
            raise ParityError(f"Output {path} has dtype {dtype} in the {side}, which cannot be compared.")
    if _kind(cand) != _kind(ref):
        raise ParityError(
            f"Output {path} is {cand_dtype} ({_KIND_NAMES[cand.dtype.kind]}) in the candidate but "
            f"{ref_dtype} ({_KIND_NAMES[ref.dtype.kind]}) in the reference, shape {list(cand.shape)}."
        )


def tolerance_for(dtypes: Iterable[str], *, rtol: float | None, atol: float | None) -> tuple[float, float, str, str]:
    """(rtol, atol, dtype, source): the defaults of the lowest-precision float dtype, or the overrides."""
    names = list(dtypes)
    floats = [name for name in names if name in DEFAULT_TOLERANCES]
    if not floats:
        return 0.0, 0.0, names[0] if names else "none", "exact"
    lowest = min(floats, key=PRECISION_ORDER.index)
    default_rtol, default_atol = DEFAULT_TOLERANCES[lowest]
    source = "default" if rtol is None and atol is None else "override"
    return (
        default_rtol if rtol is None else float(rtol),
        default_atol if atol is None else float(atol),
        lowest,
        source,
    )


def _row_max(matrix: np.ndarray) -> np.ndarray:
    """Max of each row; numpy's axis=1 reduction is slow for the narrow rows of classifier outputs."""
    if matrix.shape[1] > NARROW_COLUMNS:
        return matrix.max(axis=1)
    best = matrix[:, 0].copy()
    for column in range(1, matrix.shape[1]):
        np.maximum(best, matrix[:, column], out=best)
    return best


def _row_argmax(matrix: np.ndarray) -> np.ndarray:
    """np.argmax(axis=1) (first index of the maximum), column by column for narrow rows."""
    if matrix.shape[1] > NARROW_COLUMNS:
        return matrix.argmax(axis=1)
    if matrix.shape[1] == 2:  # binary classifiers: column 1 wins only when strictly greater
        return (matrix[:, 1] > matrix[:, 0]).view(np.int8)
    best = matrix[:, 0].copy()
    index = np.zeros(matrix.shape[0], dtype=np.int64)
    for column in range(1, matrix.shape[1]):
        values = matrix[:, column]
        index = np.where(values > best, column, index)
        np.maximum(best, values, out=best)
    return index


def _histogram_table() -> tuple[int, np.ndarray, np.ndarray]:
    """Lookup tables that bin a positive float64 by the top bits of its representation instead of a log10.

    Keys are the exponent and 8 leading mantissa bits: each key spans a factor of at most 2**(1/256), far less than
    a bin's 10**0.25, so it holds at most one bin edge, which one comparison with the exact edge settles.
    """
    low_key = int(np.array([10.0**HISTOGRAM_LOW / 2], dtype=np.float64).view(np.int64)[0]) >> HISTOGRAM_KEY_SHIFT
    high_key = int(np.array([10.0**HISTOGRAM_HIGH * 2], dtype=np.float64).view(np.int64)[0]) >> HISTOGRAM_KEY_SHIFT
    keys = np.arange(low_key, high_key + 1, dtype=np.int64)
    starts = (keys << HISTOGRAM_KEY_SHIFT).view(np.float64)
    key_bins = np.floor((np.log10(starts) - HISTOGRAM_LOW) / HISTOGRAM_STEP).astype(np.int64)
    np.clip(key_bins, 0, HISTOGRAM_BINS - 1, out=key_bins)
    upper_edges = np.append(10.0 ** np.array(HISTOGRAM_EDGES[1:-1]), [np.inf, np.inf])
    return low_key, key_bins, upper_edges


def log10_bins(values: np.ndarray) -> np.ndarray:
    """For positive finite float64 values: floor((log10(v) - HISTOGRAM_LOW) / HISTOGRAM_STEP), clipped to the bins."""
    keys = (values.view(np.int64) >> HISTOGRAM_KEY_SHIFT) - _HIST_LOW_KEY
    np.clip(keys, 0, len(_HIST_KEY_BINS) - 1, out=keys)
    bins = np.take(_HIST_KEY_BINS, keys)
    bins += values >= _HIST_UPPER[bins]
    return bins


_HIST_LOW_KEY, _HIST_KEY_BINS, _HIST_UPPER = _histogram_table()


def _json_float(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _values(row: np.ndarray) -> list[float | int | bool | None]:
    out: list[float | int | bool | None] = []
    for item in row[:WORST_ROW_VALUES].tolist():
        out.append(item if not isinstance(item, float) or math.isfinite(item) else None)
    return out


class _RowMap:
    """Maps positions in a buffered chunk back to global sample indexes, from the batches' (offset, rows)."""

    def __init__(self, batches: list[tuple[int, int]]) -> None:
        self.offsets = np.array([offset for offset, _ in batches], dtype=np.int64)
        self.ends = np.cumsum([count for _, count in batches], dtype=np.int64)
        self.starts = self.ends - np.array([count for _, count in batches], dtype=np.int64)

    def global_rows(self, positions: np.ndarray) -> np.ndarray:
        batch = np.searchsorted(self.ends, positions, side="right")
        return self.offsets[batch] + positions - self.starts[batch]


class _OutputStats:
    """Running statistics of one output leaf over all batches."""

    def __init__(
        self, *, path: str, row_shape: tuple[int, ...], dtype: str, reference_dtype: str, kind: str, worst: int
    ) -> None:
        self.path = path
        self.row_shape = row_shape
        self.row_shapes = {row_shape}
        self.dtype = dtype
        self.reference_dtype = reference_dtype
        self.kind = kind
        self.worst_keep = worst
        self.rtol = 0.0
        self.atol = 0.0
        self.scalar = False
        self.cand_np_dtype: np.dtype[Any] | None = None
        self.ref_np_dtype: np.dtype[Any] | None = None
        self._pending_c: list[np.ndarray] = []
        self._pending_r: list[np.ndarray] = []
        self._pending_rows: list[tuple[int, int]] = []
        self._pending_elements = 0
        self.rows = 0
        self.elements = 0
        self.max_abs = 0.0
        self.max_rel = 0.0
        self.sum_abs = 0.0
        self.compared = 0
        self.out_of_tolerance = 0
        self.nan_mismatch = 0
        self.inf_mismatch = 0
        self.exact = 0
        self.dot_cr = 0.0
        self.dot_cc = 0.0
        self.dot_rr = 0.0
        self.argmax_agree = 0
        self.argmax_total = 0
        self.histogram = np.zeros(HISTOGRAM_BINS, dtype=np.int64)
        self.worst: list[dict[str, Any]] = []

    def add(self, candidate: np.ndarray, reference: np.ndarray, row_offset: int) -> None:
        if candidate.ndim == 0:
            self.scalar = True
            candidate = candidate.reshape(1)
            reference = reference.reshape(1)
        row_shape = tuple(candidate.shape[1:])
        if row_shape != self.row_shape:
            self.flush()  # rows of another width cannot share a chunk
            self.row_shape = row_shape
            self.row_shapes.add(row_shape)
        rows = candidate.shape[0]
        self._pending_c.append(candidate)
        self._pending_r.append(reference)
        self._pending_rows.append((row_offset, rows))
        self._pending_elements += candidate.size
        if self._pending_elements >= CHUNK_ELEMENTS:
            self.flush()

    def flush(self) -> None:
        if not self._pending_c:
            return
        width = math.prod(self.row_shape)
        if len(self._pending_c) == 1:
            cand = self._pending_c[0].reshape(self._pending_c[0].shape[0], width)
            ref = self._pending_r[0].reshape(cand.shape)
        else:
            cand = np.concatenate([p if p.ndim == 2 else p.reshape(p.shape[0], width) for p in self._pending_c])
            ref = np.concatenate([p if p.ndim == 2 else p.reshape(p.shape[0], width) for p in self._pending_r])
        rows = _RowMap(self._pending_rows)
        self._pending_c.clear()
        self._pending_r.clear()
        self._pending_rows = []
        self._pending_elements = 0
        if width == 0 or cand.shape[0] == 0:
            self.rows += cand.shape[0]
            return
        step = max(1, CHUNK_ELEMENTS // width)
        for start in range(0, cand.shape[0], step):
            stop = start + step
            self._accumulate(cand[start:stop].astype(np.float64), ref[start:stop].astype(np.float64), rows, start)

    def _accumulate(self, cand: np.ndarray, ref: np.ndarray, rows: _RowMap, first: int) -> None:
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf and overflow are handled as mismatches
            self._accumulate_chunk(cand, ref, rows, first)

    def _accumulate_chunk(self, cand: np.ndarray, ref: np.ndarray, rows: _RowMap, first: int) -> None:
        self.rows += cand.shape[0]
        self.elements += cand.size
        diff = np.abs(cand - ref)
        bad: np.ndarray | None = None
        if not np.isfinite(diff).all():
            nan_c = np.isnan(cand)
            nan_r = np.isnan(ref)
            same = (cand == ref) | (nan_c & nan_r)  # equal infinities and NaN on both sides agree
            nan_mismatch = nan_c ^ nan_r
            bad = ~np.isfinite(diff) & ~same
            diff = np.where(same | bad, 0.0, diff)
            self.nan_mismatch += int(nan_mismatch.sum())
            self.inf_mismatch += int((bad & ~nan_mismatch).sum())
            usable = np.isfinite(cand) & np.isfinite(ref)
            cand_dot = np.where(usable, cand, 0.0)
            ref_dot = np.where(usable, ref, 0.0)
        else:
            cand_dot, ref_dot = cand, ref
        bad_count = int(bad.sum()) if bad is not None else 0
        abs_ref = np.abs(ref)
        allowed = abs_ref * self.rtol
        allowed += self.atol
        self.out_of_tolerance += int(np.count_nonzero(diff > allowed)) + bad_count
        self.max_abs = max(self.max_abs, float(diff.max()))
        self.sum_abs += float(diff.sum())
        self.compared += diff.size - bad_count
        nonzero = diff > 0
        differing = int(np.count_nonzero(nonzero))
        self.exact += diff.size - differing - bad_count
        if differing:
            if abs_ref.min() > 0:
                relative = diff / abs_ref
            else:  # the relative error is taken over elements whose reference is not zero
                relative = np.divide(diff, abs_ref, out=np.zeros_like(diff), where=abs_ref > 0)
            self.max_rel = max(self.max_rel, float(relative.max()))
            self.histogram += np.bincount(log10_bins(diff[nonzero]), minlength=HISTOGRAM_BINS)
        # einsum, not np.dot: BLAS threads contend badly with the forward passes on a busy CPU
        self.dot_cr += float(np.einsum("ij,ij->", cand_dot, ref_dot))
        self.dot_cc += float(np.einsum("ij,ij->", cand_dot, cand_dot))
        self.dot_rr += float(np.einsum("ij,ij->", ref_dot, ref_dot))
        if self.kind == "f" and len(self.row_shape) >= 1 and self.row_shape[-1] >= 2:
            classes = self.row_shape[-1]
            picks_c = _row_argmax(cand.reshape(-1, classes))
            picks_r = _row_argmax(ref.reshape(-1, classes))
            self.argmax_agree += int(np.count_nonzero(picks_c == picks_r))
            self.argmax_total += picks_c.size
        self._track_worst(cand, ref, diff, bad, rows, first)

    def _track_worst(
        self, cand: np.ndarray, ref: np.ndarray, diff: np.ndarray, bad: np.ndarray | None, rows: _RowMap, first: int
    ) -> None:
        row_error = _row_max(diff)
        row_bad = bad.sum(axis=1) if bad is not None else None
        key = np.where(row_bad > 0, np.inf, row_error) if row_bad is not None else row_error
        if len(key) > self.worst_keep:
            # the k largest keys; among ties at the boundary the earliest rows, so the choice is deterministic
            threshold = np.partition(key, len(key) - self.worst_keep)[len(key) - self.worst_keep]
            above = np.flatnonzero(key > threshold)
            tied = np.flatnonzero(key == threshold)[: self.worst_keep - len(above)]
            picked = np.concatenate([above, tied])
        else:
            picked = np.arange(len(key))
        picked = picked[key[picked] > 0]
        for index, row in zip(picked.tolist(), rows.global_rows(picked + first).tolist(), strict=True):
            entry: dict[str, Any] = {
                "row": row,
                "max_abs_error": float(row_error[index]),
                "candidate": _values(cand[index]),
                "reference": _values(ref[index]),
                "_key": float(key[index]),
            }
            if row_bad is not None and row_bad[index]:
                entry["nonfinite_mismatch"] = int(row_bad[index])
            self.worst.append(entry)
        self.worst.sort(key=lambda item: (-item["_key"], item["row"]))
        del self.worst[self.worst_keep :]

    def shape(self) -> list[int | None]:
        if self.scalar:
            return []
        dims: list[int | None] = [self.rows]
        ranks = {len(shape) for shape in self.row_shapes}
        if len(ranks) != 1:
            return [self.rows, None]
        for axis in range(len(self.row_shape)):
            sizes = {shape[axis] for shape in self.row_shapes}
            dims.append(sizes.pop() if len(sizes) == 1 else None)
        return dims

    def cosine(self) -> float | None:
        if self.dot_cc == 0.0 and self.dot_rr == 0.0:
            return 1.0
        if self.dot_cc == 0.0 or self.dot_rr == 0.0:
            return 0.0
        value = self.dot_cr / math.sqrt(self.dot_cc * self.dot_rr)
        return _json_float(min(1.0, max(-1.0, value)))

    def result(self) -> dict[str, Any]:
        self.flush()
        passed = self.out_of_tolerance == 0
        return {
            "path": self.path,
            "shape": self.shape(),
            "dtype": self.dtype,
            "reference_dtype": self.reference_dtype,
            "kind": _KIND_NAMES.get(self.kind, self.kind),
            "elements": self.elements,
            "rtol": self.rtol,
            "atol": self.atol,
            "max_abs_error": _json_float(self.max_abs),
            "max_rel_error": _json_float(self.max_rel),
            "mean_abs_error": _json_float(self.sum_abs / self.compared) if self.compared else 0.0,
            "out_of_tolerance": self.out_of_tolerance,
            "out_of_tolerance_share": self.out_of_tolerance / self.elements if self.elements else 0.0,
            "cosine_similarity": self.cosine(),
            "argmax_agreement": self.argmax_agree / self.argmax_total if self.argmax_total else None,
            "nan_mismatch": self.nan_mismatch,
            "inf_mismatch": self.inf_mismatch,
            "passed": passed,
            "worst_rows": [{k: v for k, v in item.items() if k != "_key"} for item in self.worst],
            "histogram": {
                "log10_edges": HISTOGRAM_EDGES,
                "counts": self.histogram.tolist(),
                "exact": self.exact,
            },
        }


class ParityComparison:
    """Accumulates the comparison of candidate and reference outputs batch by batch."""

    def __init__(self, *, rtol: float | None = None, atol: float | None = None, worst_rows: int = 5) -> None:
        if worst_rows < 1:
            raise ValueError("worst_rows must be at least 1")
        self.rtol_override = rtol
        self.atol_override = atol
        self.worst_rows = worst_rows
        self._outputs: list[_OutputStats] | None = None
        self.samples = 0
        self.batches = 0

    def add_group(self, candidates: list[Any], references: list[Any], *, row_offset: int, rows: list[int]) -> None:
        """Compare consecutive batches: one output per batch on each side, `rows` samples each, the first at
        `row_offset`.

        When both sides' outputs can be joined along the batch axis (concat_outputs), the group is compared in one
        pass, which is the same as comparing the batches one by one; otherwise, or when the joined outputs do not
        match, batch by batch, so that a ParityError names the batch and its shapes."""
        if len(rows) > 1:
            cand, ref = concat_outputs(candidates, rows), concat_outputs(references, rows)
            if cand is not None and ref is not None:
                try:
                    self.add_batch(cand, ref, row_offset=row_offset, rows=sum(rows), batches=len(rows))
                    return
                except ParityError:
                    pass  # nothing was recorded: add_batch checks every output before it accumulates any
        for cand_out, ref_out, count in zip(candidates, references, rows, strict=True):
            self.add_batch(cand_out, ref_out, row_offset=row_offset, rows=count)
            row_offset += count

    def add_batch(
        self, candidate: Any, reference: Any, *, row_offset: int, rows: int | None = None, batches: int = 1
    ) -> None:
        """Compare one batch's raw outputs (or `batches` consecutive batches joined); ParityError when their
        structure differs."""
        cand_leaves = flatten_output(candidate)
        ref_leaves = flatten_output(reference)
        if len(cand_leaves) != len(ref_leaves):
            raise ParityError(
                f"The candidate returns {len(cand_leaves)} output(s) ({', '.join(p for p, _ in cand_leaves)}) "
                f"but the reference returns {len(ref_leaves)} ({', '.join(p for p, _ in ref_leaves)})."
            )
        first = self._outputs is None
        outputs: list[_OutputStats] = [] if self._outputs is None else self._outputs
        pairs: list[tuple[_OutputStats, np.ndarray, np.ndarray]] = []
        for (path, cand_value), (_, ref_value) in zip(cand_leaves, ref_leaves, strict=True):
            if cand_value is None or ref_value is None:
                if cand_value is None and ref_value is None:
                    continue
                side = "candidate" if cand_value is None else "reference"
                raise ParityError(f"Output {path} is None in the {side} but a tensor on the other side.")
            cand, cand_dtype = _as_array(cand_value)
            ref, ref_dtype = _as_array(ref_value)
            if cand.shape != ref.shape:
                raise ParityError(
                    f"Output {path} has shape {list(cand.shape)} ({cand_dtype}) in the candidate but "
                    f"{list(ref.shape)} ({ref_dtype}) in the reference."
                )
            index = len(pairs)
            if index < len(outputs):
                stats = outputs[index]
                if cand.dtype != stats.cand_np_dtype or ref.dtype != stats.ref_np_dtype:
                    _check_kinds(path, cand, cand_dtype, ref, ref_dtype)
            elif first:
                _check_kinds(path, cand, cand_dtype, ref, ref_dtype)
                stats = self._new_output(path, cand, cand_dtype, ref, ref_dtype)
                outputs.append(stats)
            else:
                raise ParityError(
                    f"Batch {self.batches + 1} returned more outputs than earlier batches ({len(outputs)})."
                )
            pairs.append((stats, cand, ref))
        if len(pairs) != len(outputs):
            raise ParityError(
                f"Batch {self.batches + 1} returned {len(pairs)} output(s) where earlier batches returned "
                f"{len(outputs)}."
            )
        self._outputs = outputs
        for stats, cand, ref in pairs:
            stats.add(cand, ref, row_offset)
        if rows is None:
            rows = next((cand.shape[0] for _, cand, _ in pairs if cand.ndim), 1)
        self.samples = max(self.samples, row_offset + rows)
        self.batches += batches

    def _new_output(
        self, path: str, cand: np.ndarray, cand_dtype: str, ref: np.ndarray, ref_dtype: str
    ) -> _OutputStats:
        stats = _OutputStats(
            path=path,
            row_shape=tuple(cand.shape[1:]),
            dtype=cand_dtype,
            reference_dtype=ref_dtype,
            kind=_kind(cand),
            worst=self.worst_rows,
        )
        stats.cand_np_dtype = cand.dtype
        stats.ref_np_dtype = ref.dtype
        if stats.kind == "f":
            stats.rtol, stats.atol, _, _ = tolerance_for(
                [cand_dtype, ref_dtype], rtol=self.rtol_override, atol=self.atol_override
            )
        return stats

    def tolerance(self) -> dict[str, Any]:
        dtypes = [d for o in self._outputs or [] for d in (o.dtype, o.reference_dtype)]
        rtol, atol, dtype, source = tolerance_for(dtypes, rtol=self.rtol_override, atol=self.atol_override)
        return {"rtol": rtol, "atol": atol, "dtype": dtype, "source": source}

    def result(self) -> dict[str, Any]:
        outputs = [stats.result() for stats in self._outputs or []]
        passed = bool(outputs) and all(item["passed"] for item in outputs)
        return {
            "passed": passed,
            "summary": self._summary(outputs),
            "samples": self.samples,
            "batches": self.batches,
            "tolerance": self.tolerance(),
            "outputs": outputs,
        }

    def _summary(self, outputs: list[dict[str, Any]]) -> str:
        if not outputs:
            return "Nothing was compared: no batch produced a tensor output."
        count = len(outputs)
        head = f"{count} output{'s' if count != 1 else ''} compared on {self.samples:,} samples"
        failed = [item for item in outputs if not item["passed"]]
        if not failed:
            return f"{head}: all within tolerance."
        parts = []
        for item in failed[:MAX_SUMMARY_FAILURES]:
            detail = (
                f"{item['path']} has {item['out_of_tolerance']:,} of {item['elements']:,} elements "
                f"({item['out_of_tolerance_share']:.2%}) out of tolerance"
            )
            if item["max_abs_error"] is not None:
                detail += f", max abs error {item['max_abs_error']:.3g}"
            if item["nan_mismatch"]:
                count = item["nan_mismatch"]
                detail += f", {count:,} NaN mismatch{'es' if count != 1 else ''}"
            parts.append(detail)
        if len(failed) > MAX_SUMMARY_FAILURES:
            parts.append(f"and {len(failed) - MAX_SUMMARY_FAILURES} more")
        return f"{head}: {'; '.join(parts)}."
