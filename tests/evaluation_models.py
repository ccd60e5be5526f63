"""Models for parity and benchmark tests: ONNX exports of real modules, and models that misbehave only at scale.

The misbehaving models pass inspection (its dry run uses a batch of 2) and go wrong on the larger batches a
parity or benchmark run uses, which is how such a model reaches production in real life.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence

import torch
from torch import nn

from tests.torchscript_models import CreditMLP, scripted_bytes


class LoopsOnLargeBatches(nn.Module):
    """Never returns once the batch has more than 4 rows."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = 0
        while x.size(0) > 4:
            steps += 1
        return self.net(x) + steps


class RaisesOnLargeBatches(nn.Module):
    """Raises inside forward once the batch has more than 4 rows."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.size(0) > 4:
            raise RuntimeError("feature store returned a batch with stale columns")
        return self.net(x)


class ThreeClassMLP(nn.Module):
    """Same inputs as CreditMLP, three outputs instead of two."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SlowMLP(nn.Module):
    """A forward that takes a noticeable moment per batch, so a run can be cancelled half-way."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(32, 512)
        self.body = nn.Linear(512, 512)
        self.out = nn.Linear(512, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for _ in range(200):
            h = torch.tanh(self.body(h))
        return self.out(h)


def seeded(module_type: type[nn.Module], seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return module_type().eval()


def onnx_bytes(module: nn.Module, example: Sequence[torch.Tensor], input_names: list[str]) -> bytes:
    """An ONNX export of the eager module (the legacy exporter: quick, and no onnxscript needed)."""
    buffer = io.BytesIO()
    output_names = ["out"]
    axes = {name: {0: "batch"} for name in [*input_names, *output_names]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            tuple(example),
            buffer,
            dynamo=False,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=axes,
        )
    return buffer.getvalue()


def mlp_with_onnx(seed: int = 0, input_name: str = "x") -> tuple[bytes, bytes]:
    """The credit-risk MLP as TorchScript and as ONNX, with the same weights."""
    module = seeded(CreditMLP, seed)
    return scripted_bytes(module, seed), onnx_bytes(module, [torch.randn(2, 32)], [input_name])
