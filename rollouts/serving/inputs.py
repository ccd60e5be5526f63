"""A predict request's inputs checked against a version's input spec and turned into tensors (no Django).

`{"x": [[0.1, …], …]}` becomes one tensor per declared input, in the spec's order, with the declared dtype, rank
and fixed sizes; integer inputs stay within their declared range. Anything else is an InputRejected naming the
input (`inputs.x`) and what the version takes, which the serving process answers as a 400.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from models_registry.input_spec import INT_DTYPES, InputDecl

TORCH_DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
    "int64": torch.int64,
    "int32": torch.int32,
    "int16": torch.int16,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}


class InputRejected(ValueError):
    """An input that does not fit the spec; `field` names it (`inputs` or `inputs.<name>`)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def _shape_text(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("n" if dim is None else str(dim) for dim in shape) + "]"


def _tensor(decl: InputDecl, value: Any, label: str) -> torch.Tensor:
    field = f"inputs.{decl.name}"
    expected = f"{label} takes {decl.name} as {decl.dtype} of shape {_shape_text(decl.shape)}"
    if not isinstance(value, list):
        raise InputRejected(f"{decl.name} must be a nested list of numbers: {expected}.", field)
    try:
        if decl.dtype in INT_DTYPES or decl.dtype == "bool":
            tensor = torch.tensor(value)
            if tensor.numel() == 0:
                raise InputRejected(f"{decl.name} has shape {list(tensor.shape)}; {expected}.", field)
            if tensor.is_floating_point() or (tensor.dtype == torch.bool) != (decl.dtype == "bool"):
                raise InputRejected(f"{decl.name} holds values of another type: {expected}.", field)
            tensor = tensor.to(TORCH_DTYPES[decl.dtype])
        else:
            tensor = torch.tensor(value, dtype=TORCH_DTYPES[decl.dtype])
    except InputRejected:
        raise
    except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
        # Ragged lists, strings, nulls, numbers beyond the dtype: torch says which in its own words.
        detail = str(exc).splitlines()[0][:160]
        raise InputRejected(f"{decl.name} is not a regular array of numbers ({detail}): {expected}.", field) from exc
    shape = tuple(tensor.shape)
    if len(shape) != len(decl.shape) or any(
        want is not None and got != want for got, want in zip(shape, decl.shape, strict=False)
    ):
        got = "[" + ", ".join(str(dim) for dim in shape) + "]"
        raise InputRejected(f"{decl.name} has shape {got}; {expected}.", field)
    if 0 in shape:
        raise InputRejected(f"{decl.name} is empty; {expected}.", field)
    if decl.low is not None and decl.high is not None:
        low, high = int(tensor.min()), int(tensor.max())
        if low < decl.low or high >= decl.high:
            raise InputRejected(
                f"{decl.name} holds {low if low < decl.low else high}, outside its range [{decl.low}, {decl.high}).",
                field,
            )
    return tensor


def tensors_from(inputs: Any, decls: list[InputDecl], *, label: str) -> list[torch.Tensor]:
    """The tensors for a model call, in the spec's order; InputRejected when the inputs do not fit. `label` names
    the version in messages ("credit-risk 1.1.0")."""
    names = [decl.name for decl in decls]
    if not isinstance(inputs, dict):
        raise InputRejected(f'inputs must be an object naming each input, such as {{"{names[0]}": [[…]]}}.', "inputs")
    if len(inputs) != len(decls) or any(name not in inputs for name in names):
        missing = [name for name in names if name not in inputs]
        if missing:
            raise InputRejected(f"{missing[0]} is missing: {label} takes {', '.join(names)}.", f"inputs.{missing[0]}")
        extra = sorted(set(inputs) - set(names))[0]
        raise InputRejected(
            f"{extra[:64]} is not an input of {label}, which takes {', '.join(names)}.", f"inputs.{extra[:64]}"
        )
    return [_tensor(decl, inputs[decl.name], label) for decl in decls]


def inputs_sha256(tensors: list[torch.Tensor]) -> str:
    """SHA-256 over each input's dtype, shape and bytes: the request's input hash in its log row."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(f"{tensor.dtype}{tuple(tensor.shape)};".encode())
        data = tensor.view(torch.int16) if tensor.dtype is torch.bfloat16 else tensor
        digest.update(data.numpy().tobytes())
    return digest.hexdigest()


def outputs_json(output: Any) -> Any:
    """A model's output as JSON values: a tensor as nested lists, tuples and lists element by element, dicts by key."""
    if isinstance(output, torch.Tensor):
        return output.detach().float().tolist() if output.dtype is torch.bfloat16 else output.detach().tolist()
    if isinstance(output, list | tuple):
        return [outputs_json(item) for item in output]
    if isinstance(output, dict):
        return {str(key): outputs_json(value) for key, value in output.items()}
    if isinstance(output, bool | int | float | str) or output is None:
        return output
    raise TypeError(f"the model returned a {type(output).__name__}, which has no JSON form")
