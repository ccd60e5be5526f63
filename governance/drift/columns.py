"""One side of one column, prepared for the statistics: sorted finite values (numeric) or value counts.

A numeric column keeps its finite values sorted; NaN, +inf and -inf count as missing, like a row that lacks the
column (Evidently drops them before testing). A categorical column keeps a count per value (as text); None, NaN and
a missing entry count as missing. Both remember how many rows they came from, so a result can say what share of
the rows had no usable value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from governance.drift.numeric import sorted_finite, wasserstein_norm_scale

NUMERIC = "numeric"
CATEGORICAL = "categorical"
KINDS = (NUMERIC, CATEGORICAL)


@dataclass(frozen=True)
class NumericColumn:
    """Finite values sorted ascending, and how many rows had none (missing, NaN or infinite)."""

    sorted: np.ndarray
    missing: int = 0
    device_sorted: Any = None  # the same values as a torch tensor on a GPU, when the CUDA path prepared them

    @property
    def count(self) -> int:
        return len(self.sorted)

    @property
    def rows(self) -> int:
        return len(self.sorted) + self.missing

    @cached_property
    def wasserstein_scale(self) -> float:
        """Evidently's normaliser (std, at least 0.001), kept: a baseline's columns are compared many times."""
        return wasserstein_norm_scale(self.sorted)

    @classmethod
    def from_values(cls, values: np.ndarray | Iterable[float | None]) -> NumericColumn:
        array = _float_array(values)
        finite = sorted_finite(array)
        return cls(sorted=finite, missing=len(array) - len(finite))


@dataclass(frozen=True)
class CategoricalColumn:
    """Count per value (values as text), and how many rows had no value."""

    counts: Mapping[str, int] = field(default_factory=dict)
    missing: int = 0

    @property
    def count(self) -> int:
        return int(sum(self.counts.values()))

    @property
    def rows(self) -> int:
        return self.count + self.missing

    @classmethod
    def from_values(cls, values: np.ndarray | Iterable[object]) -> CategoricalColumn:
        array = values if isinstance(values, np.ndarray) else np.asarray(list(values), dtype=object)
        missing = 0
        if array.dtype.kind == "f":
            is_missing = np.isnan(array)
            missing = int(is_missing.sum())
            array = array[~is_missing]
        elif array.dtype.kind == "O" and (fast := _text_counts(array)) is not None:
            return fast
        elif array.dtype.kind == "O":
            is_missing = np.fromiter((_is_missing(v) for v in array), dtype=bool, count=len(array))
            missing = int(is_missing.sum())
            array = np.asarray([category_text(v) for v in array[~is_missing]], dtype=str)
        keys, counts = np.unique(array, return_counts=True)
        merged: dict[str, int] = {}
        for key, count in zip(keys.tolist(), counts.tolist(), strict=True):
            text = category_text(key)
            merged[text] = merged.get(text, 0) + int(count)
        return cls(counts=merged, missing=missing)


Column = NumericColumn | CategoricalColumn


def _text_counts(array: np.ndarray) -> CategoricalColumn | None:
    """Counts of an object array that holds only text and None, in one pyarrow pass; None when it holds anything
    else (numbers, NaN), which the general path handles."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        arrow = pa.array(array, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # objects that are not all text (numbers, NaN): the general path
        return None
    counted = pc.value_counts(arrow.drop_null())
    keys = counted.field("values").to_pylist()
    numbers = counted.field("counts").to_pylist()
    return CategoricalColumn(counts=dict(zip(keys, numbers, strict=True)), missing=arrow.null_count)


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def category_text(value: object) -> str:
    """The text a categorical value is counted under: 3, 3.0 and "3" are one category."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _float_array(values: np.ndarray | Iterable[float | None]) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        return values
    if isinstance(values, np.ndarray) and values.dtype.kind in "iub":
        return values.astype(np.float64)
    return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)


def prepare(values: np.ndarray | Iterable[object], kind: str) -> Column:
    """The prepared column of one side."""
    if kind == NUMERIC:
        return NumericColumn.from_values(values)  # type: ignore[arg-type]
    if kind == CATEGORICAL:
        return CategoricalColumn.from_values(values)
    raise ValueError(f"unknown column kind {kind!r} (expected one of {', '.join(KINDS)})")


def aligned_counts(
    reference: Mapping[Any, int], current: Mapping[Any, int]
) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """Both sides' counts over the sorted union of their values (a value one side lacks counts 0 there)."""
    keys = sorted(set(reference) | set(current))
    ref = np.fromiter((reference.get(key, 0) for key in keys), dtype=np.float64, count=len(keys))
    cur = np.fromiter((current.get(key, 0) for key in keys), dtype=np.float64, count=len(keys))
    return keys, ref, cur


def numeric_value_counts(column: NumericColumn) -> dict[float, int]:
    """Value counts of a numeric column with few distinct values (keys stay numbers, so they sort numerically)."""
    values, counts = np.unique(column.sorted, return_counts=True)
    return dict(zip(values.tolist(), counts.tolist(), strict=True))
