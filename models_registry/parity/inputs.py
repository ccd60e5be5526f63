"""The inputs of a parity run: seeded batches from the input spec, or batches of the uploaded sample inputs."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch

from models_registry.input_spec import InputDecl
from models_registry.parity.compare import ParityError

GENERATION_BLOCK_ELEMENTS = 1 << 22  # input elements drawn at once by spec_batches


def random_inputs(decls: list[InputDecl], batch: int, generator: torch.Generator) -> list[torch.Tensor]:
    """One batch from the input spec: floats ~ N(0, 1); integers in [low, high) (default [0, 2)); bools 0/1."""
    tensors = []
    for decl in decls:
        shape = [batch if dim is None else dim for dim in decl.shape]
        dtype: torch.dtype = getattr(torch, decl.dtype)
        if decl.dtype == "bool":
            tensor = torch.randint(0, 2, shape, generator=generator).bool()
        elif dtype.is_floating_point:
            tensor = torch.randn(shape, generator=generator, dtype=torch.float32).to(dtype)
        else:
            low = 0 if decl.low is None else decl.low
            high = 2 if decl.high is None else decl.high
            tensor = torch.randint(low, high, shape, generator=generator, dtype=torch.int64).to(dtype)
        tensors.append(tensor)
    return tensors


def batch_count(samples: int, batch_size: int) -> int:
    return -(-samples // batch_size) if samples > 0 else 0


def spec_batches(decls: list[InputDecl], *, samples: int, batch_size: int, seed: int) -> Iterator[list[torch.Tensor]]:
    """Seeded batches from the input spec; the same (seed, batch_size, samples) gives the same tensors.

    When only the leading axis is free, rows are drawn for many batches at once and sliced, which is several
    times cheaper than one draw per small batch.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    generator = torch.Generator().manual_seed(seed)
    sliceable = all(decl.shape and decl.shape[0] is None and None not in decl.shape[1:] for decl in decls)
    if not sliceable:
        for start in range(0, samples, batch_size):
            yield random_inputs(decls, min(batch_size, samples - start), generator)
        return
    row_elements = max(1, sum(math.prod(d for d in decl.shape[1:] if d is not None) for decl in decls))
    block_rows = max(1, GENERATION_BLOCK_ELEMENTS // row_elements // batch_size) * batch_size
    for block_start in range(0, samples, block_rows):
        rows = min(block_rows, samples - block_start)
        block = random_inputs(decls, rows, generator)
        for start in range(0, rows, batch_size):
            yield [tensor[start : start + batch_size] for tensor in block]


def array_batches(arrays: list[np.ndarray], *, samples: int, batch_size: int) -> Iterator[list[torch.Tensor]]:
    """Batches of uploaded sample inputs (rows along the first axis); `samples` is capped at the rows available."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if not arrays:
        raise ParityError("The sample inputs hold no arrays.")
    for index, array in enumerate(arrays):
        if array.ndim == 0:
            raise ParityError(f"Sample input array {index} is a scalar; each array needs a leading sample axis.")
    total = min(samples, *(array.shape[0] for array in arrays))
    for start in range(0, total, batch_size):
        stop = min(start + batch_size, total)
        yield [torch.from_numpy(np.ascontiguousarray(array[start:stop])) for array in arrays]


def available_rows(arrays: list[np.ndarray]) -> int:
    return min(array.shape[0] for array in arrays) if arrays else 0
