"""The input spec of a version: `{"inputs": [{"name", "shape", "dtype", "range"?}]}`. Pure validation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

FLOAT_DTYPES = frozenset({"float32", "float16", "bfloat16", "float64"})
INT_DTYPES = frozenset({"int64", "int32", "int16", "int8", "uint8"})
DTYPES = FLOAT_DTYPES | INT_DTYPES | {"bool"}
MAX_INPUTS = 32
MAX_RANK = 8
MAX_DIM = 1_000_000


class InputSpecError(ValueError):
    """The spec is malformed; the message says what to fix."""


@dataclass(frozen=True)
class InputDecl:
    name: str
    shape: tuple[int | None, ...]
    dtype: str
    low: int | None = None
    high: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}
        if self.low is not None:
            out["range"] = [self.low, self.high]
        return out


def parse_input_spec(raw: Any) -> list[InputDecl]:
    """Accept a dict or a JSON string; return the declared inputs or raise InputSpecError."""
    if isinstance(raw, str | bytes):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise InputSpecError(f"input_spec is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("inputs"), list):
        raise InputSpecError(
            'input_spec must be an object like {"inputs": [{"name": "x", "shape": [null, 32], "dtype": "float32"}]}'
        )
    items = raw["inputs"]
    if not items:
        raise InputSpecError("input_spec.inputs must name at least one input.")
    if len(items) > MAX_INPUTS:
        raise InputSpecError(f"input_spec.inputs has {len(items)} inputs; at most {MAX_INPUTS} are supported.")
    decls: list[InputDecl] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        where = f"input_spec.inputs[{index}]"
        if not isinstance(item, dict):
            raise InputSpecError(f"{where} must be an object with name, shape and dtype.")
        name = item.get("name")
        if not isinstance(name, str) or not name.isidentifier():
            raise InputSpecError(f"{where}.name must be an identifier such as 'x' or 'token_ids'.")
        if name in seen:
            raise InputSpecError(f"{where}.name {name!r} is used twice.")
        seen.add(name)
        shape = item.get("shape")
        if not isinstance(shape, list) or len(shape) > MAX_RANK:
            raise InputSpecError(f"{where}.shape must be a list of at most {MAX_RANK} sizes (null for any size).")
        dims: list[int | None] = []
        for dim in shape:
            if dim is None:
                dims.append(None)
            elif isinstance(dim, int) and not isinstance(dim, bool) and 0 < dim <= MAX_DIM:
                dims.append(dim)
            else:
                raise InputSpecError(f"{where}.shape has {dim!r}; sizes are positive integers or null.")
        dtype = item.get("dtype")
        if dtype not in DTYPES:
            raise InputSpecError(f"{where}.dtype {dtype!r} is not one of {', '.join(sorted(DTYPES))}.")
        low = high = None
        if "range" in item:
            rng = item["range"]
            if dtype not in INT_DTYPES:
                raise InputSpecError(f"{where}.range applies to integer inputs only.")
            if (
                not isinstance(rng, list)
                or len(rng) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in rng)
                or rng[0] >= rng[1]
            ):
                raise InputSpecError(f"{where}.range must be [low, high) with integers low < high.")
            low, high = rng
        decls.append(InputDecl(name=name, shape=tuple(dims), dtype=dtype, low=low, high=high))
    return decls


def normalize_input_spec(raw: Any) -> dict[str, Any]:
    return {"inputs": [decl.as_dict() for decl in parse_input_spec(raw)]}
