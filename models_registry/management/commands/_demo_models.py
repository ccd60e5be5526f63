"""The demo's PyTorch models, built and (briefly) trained in-process, saved as TorchScript.

Only `manage.py forge_demo` imports this module; the web process never imports torch.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

PRODUCER_FILE = "forge_producer.json"
CREDIT_FEATURES = 32


class CreditMLP(nn.Module):
    """Probability of default from 32 standardised application features (2 logits: repay, default)."""

    def __init__(self, features: int = CREDIT_FEATURES, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.net(x))


class DigitsCNN(nn.Module):
    """A small LeNet-style classifier of 28x28 grey images into 10 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.classifier = nn.Linear(16 * 5 * 5, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class FraudGate(nn.Module):
    """Data-dependent control flow (a loop with an early exit and a branch) that only scripting keeps."""

    def __init__(self, features: int = 12, max_steps: int = 4) -> None:
        super().__init__()
        self.encode = nn.Linear(features, 16)
        self.refine = nn.Linear(16, 16)
        self.score = nn.Linear(16, 1)
        self.max_steps = max_steps

    def forward(self, x: torch.Tensor, threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.tanh(self.encode(x))
        steps = torch.zeros(x.size(0), dtype=torch.int64)
        for _ in range(self.max_steps):
            update = torch.tanh(self.refine(h))
            if bool((update - h).abs().max() < 1e-3):
                break
            h = update
            steps = steps + 1
        p = torch.sigmoid(self.score(h)).squeeze(1)
        if x.size(0) == 0:
            return p, steps
        return torch.where(p > threshold, p, torch.zeros_like(p)), steps


class TicketRouter(nn.Module):
    """Two inputs: integer token ids of a support ticket and 4 float account features -> 5 queues."""

    def __init__(self, vocab: int = 1000, dim: int = 16) -> None:
        super().__init__()
        self.embed = nn.EmbeddingBag(vocab, dim, mode="mean")
        self.head = nn.Sequential(nn.Linear(dim + 4, 32), nn.ReLU(), nn.Linear(32, 5))

    def forward(self, tokens: torch.Tensor, account: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.embed(tokens), account], dim=1))


@dataclass
class Built:
    """A saved TorchScript archive and what training measured."""

    data: bytes
    metrics: dict[str, Any] = field(default_factory=dict)
    onnx: bytes | None = None


def onnx_bytes(module: nn.Module, example: tuple[torch.Tensor, ...], input_names: list[str]) -> bytes:
    """The same module exported to ONNX (the TorchScript-based exporter: fast, no onnxscript needed)."""
    buffer = io.BytesIO()
    axes = {name: {0: "batch"} for name in [*input_names, "output"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            example,
            buffer,  # type: ignore[arg-type]  # a file object works; the stubs name only paths
            dynamo=False,
            input_names=input_names,
            output_names=["output"],
            dynamic_axes=axes,
        )
    return buffer.getvalue()


def torchscript_bytes(module: nn.Module) -> bytes:
    buffer = io.BytesIO()
    producer = json.dumps({"torch_version": torch.__version__, "producer": "forge_demo"})
    torch.jit.save(torch.jit.script(module.eval()), buffer, _extra_files={PRODUCER_FILE: producer})
    return buffer.getvalue()


def _credit_data(seed: int, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic applications whose default risk depends on a few features and one interaction."""
    truth = torch.Generator().manual_seed(1234)
    weights = torch.randn(CREDIT_FEATURES, generator=truth) * (torch.rand(CREDIT_FEATURES, generator=truth) > 0.6)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, CREDIT_FEATURES, generator=g)
    logit = x @ weights + 1.5 * x[:, 0] * x[:, 1] - 1.0
    y = (torch.rand(rows, generator=g) < torch.sigmoid(logit)).long()
    return x, y


def _auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) formula."""
    ranks = torch.empty_like(scores)
    ranks[scores.argsort()] = torch.arange(1, len(scores) + 1, dtype=scores.dtype)
    positives = labels.bool()
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, seed: int) -> None:
    torch.manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for _ in range(steps):
        optimiser.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimiser.step()
    model.eval()


def _credit_metrics(model: nn.Module, rows: int) -> dict[str, Any]:
    x, y = _credit_data(seed=99, rows=4000)  # the same holdout for every version, so metrics compare
    with torch.no_grad():
        logits = model(x)
    p_default = torch.softmax(logits, dim=1)[:, 1]
    accuracy = float((logits.argmax(dim=1) == y).float().mean())
    return {
        "auc": round(_auc(p_default, y), 4),
        "accuracy": round(accuracy, 4),
        "holdout_rows": len(y),
        "training_rows": rows,
    }


def build_credit_versions() -> dict[str, Built]:
    """1.0.0 trained briefly on a first extract; 1.1.0 starts from 1.0.0 and is retrained on more data."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: one thread is as fast and gives the same numbers on every machine
    try:
        torch.manual_seed(7)
        model = CreditMLP()
        x1, y1 = _credit_data(seed=1, rows=4000)
        _train(model, x1, y1, steps=15, seed=1)
        example = (torch.randn(2, CREDIT_FEATURES),)
        first = Built(torchscript_bytes(model), _credit_metrics(model, rows=len(y1)), onnx_bytes(model, example, ["x"]))
        x2, y2 = _credit_data(seed=2, rows=8000)
        _train(model, torch.cat([x1, x2]), torch.cat([y1, y2]), steps=35, seed=2)
        second = Built(
            torchscript_bytes(model),
            _credit_metrics(model, rows=len(y1) + len(y2)),
            onnx_bytes(model, example, ["x"]),
        )
    finally:
        torch.set_num_threads(threads)
    return {"1.0.0": first, "1.1.0": second}


def build_untrained(module: nn.Module, seed: int) -> Built:
    torch.manual_seed(seed)
    for parameter in module.parameters():
        nn.init.normal_(parameter, std=0.1)
    return Built(torchscript_bytes(module))
