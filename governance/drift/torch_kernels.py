"""The CUDA path: the same kernels in torch, used when a GPU is visible to the worker.

On a CPU numpy is the faster choice (its AVX-512 sort is ~8x torch.sort on CPU here), so the drift job uses these
only on a GPU. They are written device-agnostic, and the tests run them on the CPU device against the numpy kernels,
so the code a GPU worker runs is exercised everywhere; tests on a real GPU skip where CUDA is absent.
"""

from __future__ import annotations

import numpy as np
import torch


def cuda_available() -> bool:
    return torch.cuda.is_available()


def sorted_finite_columns(matrix: np.ndarray, device: str | torch.device) -> list[torch.Tensor]:
    """Each column's finite values sorted, on `device` (one batched sort; NaN/inf dropped per column)."""
    tensor = torch.as_tensor(np.ascontiguousarray(np.asarray(matrix).T), device=device)
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.float64)
    finite = torch.isfinite(tensor)
    # Non-finite values sort last as +inf; each column's finite run is then its first `count` values.
    ordered, _ = torch.sort(torch.where(finite, tensor, torch.full_like(tensor, float("inf"))), dim=1)
    counts = finite.sum(dim=1).tolist()
    return [ordered[index, :count] for index, count in enumerate(counts)]


def ks_statistic(reference: torch.Tensor, current: torch.Tensor) -> float:
    """Two-sample KS statistic of two sorted 1-D tensors (the algorithm of numeric.ks_statistic)."""
    n, m = reference.numel(), current.numel()
    if n == 0 or m == 0:
        raise ValueError("both samples need at least one finite value")
    right = torch.searchsorted(reference, current, right=True)
    left = torch.searchsorted(reference, current, right=False)
    positions = torch.arange(m, device=current.device, dtype=torch.float64)
    new_value = torch.ones(m, dtype=torch.bool, device=current.device)
    new_value[1:] = current[1:] != current[:-1]
    last_of_value = torch.ones(m, dtype=torch.bool, device=current.device)
    last_of_value[:-1] = new_value[1:]
    above = left[new_value].to(torch.float64) / n - positions[new_value] / m
    below = -(right[last_of_value].to(torch.float64) / n - (positions[last_of_value] + 1) / m)
    return float(max(float(above.max()), float(below.max()), 0.0))


def wasserstein(reference: torch.Tensor, current: torch.Tensor) -> float:
    """W1 between two sorted 1-D tensors over the merged quantile grid (numeric.wasserstein's method)."""
    n, m = reference.numel(), current.numel()
    if n == 0 or m == 0:
        raise ValueError("both samples need at least one finite value")
    if n == m:
        return float((reference.to(torch.float64) - current.to(torch.float64)).abs().mean())
    device = reference.device
    starts = torch.unique(
        torch.cat(
            (
                torch.arange(n, device=device, dtype=torch.int64) * m,
                torch.arange(m, device=device, dtype=torch.int64) * n,
            )
        )
    )
    ends = torch.cat((starts[1:], torch.tensor([n * m], device=device, dtype=torch.int64)))
    widths = (ends - starts).to(torch.float64) / (float(n) * float(m))
    gaps = (reference[starts // m].to(torch.float64) - current[starts // n].to(torch.float64)).abs()
    return float(gaps @ widths)


def std(reference: torch.Tensor) -> float:
    return max(float(reference.to(torch.float64).std(correction=0)), 0.001)
