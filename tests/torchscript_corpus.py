"""Legitimate TorchScript archives of many kinds, for the pickle scan: every one must pass it and inspect ready.

What they cover was chosen from what torch's pickler writes differently: tracing and scripting, convolutions and
recurrent layers (whose weights are also kept as lists), dynamically and statically quantized int8 layers (qint8
storages, per-tensor and per-channel quantization schemes, packed-parameter objects rebuilt with BUILD), fp16, bf16
and fp64 weights, `_extra_files`, outputs as tuples, lists and dicts, buffers of several dtypes, a sparse buffer,
an enum, a complex number and typed containers as attributes, tensor constants (constants.pkl), and a frozen module.
"""

from __future__ import annotations

import enum
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch
from torch import nn

from tests.torchscript_models import CreditMLP, SmallCNN

FLOAT32_32 = {"inputs": [{"name": "x", "shape": [None, 32], "dtype": "float32"}]}


@dataclass(frozen=True)
class CorpusArchive:
    name: str
    data: bytes
    input_spec: dict[str, Any]
    weight_dtypes: frozenset[str]  # what inspection must report
    quantization: tuple[str, ...] = ()


def _save(module: torch.jit.ScriptModule, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(module, buffer, _extra_files=extra or {})
    return buffer.getvalue()


def _spec(shape: list[int | None], dtype: str = "float32", name: str = "x") -> dict[str, Any]:
    return {"inputs": [{"name": name, "shape": shape, "dtype": dtype}]}


class Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.gru = nn.GRU(16, 8, batch_first=True)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(x)
        z, _ = self.gru(y)
        return self.head(z[:, -1])


class StaticQuantCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.conv = nn.Conv2d(3, 8, 3)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(8 * 6 * 6, 4)
        self.dequant = torch.ao.quantization.DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv(self.quant(x)))
        return self.dequant(self.fc(torch.flatten(x, 1)))


class Level(enum.Enum):
    LOW = 1
    HIGH = 2


class ManyOutputs(nn.Module):
    """Outputs as a dict, a list and a tuple; buffers of three dtypes; typed attributes, an enum, a complex."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.register_buffer("running", torch.zeros(4))
        self.register_buffer("count", torch.tensor(3, dtype=torch.int64))
        self.register_buffer("mask", torch.tensor([True, False, True, True]))
        self.register_buffer("sparse", torch.eye(4).to_sparse())
        self.names = ["a", "b"]
        self.table = {"w": torch.ones(4)}
        self.level = Level.HIGH
        self.rotation = complex(1.0, 2.0)
        self.steps = [1, 2]
        self.scales = [0.5, 1.5]

    def forward(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], list[torch.Tensor], torch.Tensor]:
        y = self.linear(x) + self.running + self.table["w"] * self.scales[0]
        if self.level == Level.HIGH:
            y = y * self.mask.float()
        return {"a": y, "b": torch.sparse.mm(self.sparse, y.t()).t()}, [y, y * 2.0], self.count + len(self.steps)


class WithConstants(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.tensor([1.0, 2.0, 3.0, 4.0])


def _static_quantized(engine: str) -> nn.Module:
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    try:
        model = StaticQuantCNN().eval()
        model.qconfig = torch.ao.quantization.get_default_qconfig(engine)
        prepared = torch.ao.quantization.prepare(model)
        prepared(torch.randn(8, 3, 8, 8))
        return torch.ao.quantization.convert(prepared)
    finally:
        torch.backends.quantized.engine = previous


def _builders() -> dict[str, Callable[[], CorpusArchive]]:
    def mlp() -> nn.Module:
        return CreditMLP().eval()

    dynamic = lambda: torch.ao.quantization.quantize_dynamic(mlp(), {nn.Linear}, dtype=torch.qint8)  # noqa: E731
    return {
        "scripted-mlp": lambda: CorpusArchive(
            "scripted-mlp", _save(torch.jit.script(mlp())), FLOAT32_32, frozenset({"float32"})
        ),
        "traced-mlp": lambda: CorpusArchive(
            "traced-mlp", _save(torch.jit.trace(mlp(), torch.randn(2, 32))), FLOAT32_32, frozenset({"float32"})
        ),
        "cnn": lambda: CorpusArchive(
            "cnn", _save(torch.jit.script(SmallCNN().eval())), _spec([None, 3, 32, 32]), frozenset({"float32"})
        ),
        "lstm-gru": lambda: CorpusArchive(
            "lstm-gru", _save(torch.jit.script(Recurrent().eval())), _spec([None, 5, 8]), frozenset({"float32"})
        ),
        "dynamic-int8-mlp-scripted": lambda: CorpusArchive(
            "dynamic-int8-mlp-scripted",
            _save(torch.jit.script(dynamic())),
            FLOAT32_32,
            frozenset({"qint8", "float32"}),
            ("per_tensor_affine",),
        ),
        "dynamic-int8-mlp-traced": lambda: CorpusArchive(
            "dynamic-int8-mlp-traced",
            _save(torch.jit.trace(dynamic(), torch.randn(2, 32))),
            FLOAT32_32,
            frozenset({"qint8", "float32"}),
            ("per_tensor_affine",),
        ),
        "dynamic-int8-lstm": lambda: CorpusArchive(
            "dynamic-int8-lstm",
            _save(
                torch.jit.script(
                    torch.ao.quantization.quantize_dynamic(Recurrent().eval(), {nn.LSTM, nn.Linear}, dtype=torch.qint8)
                )
            ),
            _spec([None, 5, 8]),
            frozenset({"qint8", "float32"}),
            ("per_tensor_affine",),
        ),
        "static-int8-per-channel": lambda: CorpusArchive(
            "static-int8-per-channel",
            _save(torch.jit.script(_static_quantized("fbgemm"))),
            _spec([None, 3, 8, 8]),
            frozenset({"qint8", "float32"}),
            ("per_channel_affine",),
        ),
        "static-int8-per-tensor-traced": lambda: CorpusArchive(
            "static-int8-per-tensor-traced",
            _save(torch.jit.trace(_static_quantized("qnnpack"), torch.randn(2, 3, 8, 8))),
            _spec([None, 3, 8, 8]),
            frozenset({"qint8", "float32"}),
            ("per_tensor_affine",),
        ),
        "bf16-mlp": lambda: CorpusArchive(
            "bf16-mlp",
            _save(torch.jit.script(mlp().to(torch.bfloat16))),
            _spec([None, 32], "bfloat16"),
            frozenset({"bfloat16"}),
        ),
        "fp16-mlp": lambda: CorpusArchive(
            "fp16-mlp", _save(torch.jit.script(mlp().half())), _spec([None, 32], "float16"), frozenset({"float16"})
        ),
        "fp64-mlp": lambda: CorpusArchive(
            "fp64-mlp", _save(torch.jit.script(mlp().double())), _spec([None, 32], "float64"), frozenset({"float64"})
        ),
        "extra-files": lambda: CorpusArchive(
            "extra-files",
            _save(
                torch.jit.script(mlp()),
                {"forge_producer.json": b'{"torch_version": "2.13.0"}', "notes/README.txt": b"trained on 2024q1"},
            ),
            FLOAT32_32,
            frozenset({"float32"}),
        ),
        "outputs-buffers-attributes": lambda: CorpusArchive(
            "outputs-buffers-attributes",
            _save(torch.jit.script(ManyOutputs().eval())),
            _spec([None, 4]),
            frozenset({"float32"}),
        ),
        "tensor-constants": lambda: CorpusArchive(
            "tensor-constants",
            _save(torch.jit.trace(WithConstants(), torch.randn(2, 4))),
            _spec([None, 4]),
            frozenset(),
        ),
        "frozen": lambda: CorpusArchive(
            "frozen", _save(torch.jit.freeze(torch.jit.script(mlp()))), FLOAT32_32, frozenset()
        ),
    }


CORPUS_NAMES = list(_builders())


@cache
def corpus_archive(name: str) -> CorpusArchive:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracing and quantization warn about things these models do on purpose
        return _builders()[name]()
