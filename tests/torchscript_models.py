"""Real TorchScript models and hostile files, built by the tests themselves."""

from __future__ import annotations

import hashlib
import io
import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn


class CreditMLP(nn.Module):
    def __init__(self, features: int = 32, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TokenBag(nn.Module):
    """Two inputs, one of them integer token ids."""

    def __init__(self, vocab: int = 100, dim: int = 8) -> None:
        super().__init__()
        self.emb = nn.EmbeddingBag(vocab, dim, mode="mean")
        self.head = nn.Linear(dim + 4, 3)

    def forward(self, tokens: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.emb(tokens), extra], dim=1))


class Gated(nn.Module):
    """Control flow that tracing would lose: scripted."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.a(x)
        for _ in range(2):
            h = torch.relu(h) if bool(h.sum() > 0) else h * -1.0
        return self.b(h), h


class SmallCNN(nn.Module):
    """Convolutions: what cuDNN would run in TF32 unless the sandbox forbids it."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(64, 10)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(image).flatten(1))


class FailingMLP(nn.Module):
    """A challenger that raises on every call (the serving process falls back to the champion)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool(x.abs().sum() >= 0):
            raise RuntimeError("the challenger broke")
        return self.net(x)


class HangingMLP(nn.Module):
    """A challenger that never answers in practice: a scripted loop of about 10**12 steps."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = x.sum()
        steps = 0
        while steps < 1_000_000_000_000:
            total = total * 1.0
            steps += 1
        return self.net(x) + total


MLP_SPEC = {"inputs": [{"name": "x", "shape": [None, 32], "dtype": "float32"}]}
TOKENS_SPEC = {
    "inputs": [
        {"name": "tokens", "shape": [None, 6], "dtype": "int64", "range": [0, 100]},
        {"name": "extra", "shape": [None, 4], "dtype": "float32"},
    ]
}
GATED_SPEC = {"inputs": [{"name": "x", "shape": [None, 4], "dtype": "float32"}]}
IMAGE_SPEC = {"inputs": [{"name": "image", "shape": [None, 3, 32, 32], "dtype": "float32"}]}


def scripted_bytes(module: nn.Module, seed: int = 0) -> bytes:
    torch.manual_seed(seed)
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(module.eval()), buffer)
    return buffer.getvalue()


def mlp_bytes(seed: int = 0) -> bytes:
    torch.manual_seed(seed)
    return scripted_bytes(CreditMLP(), seed)


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("touch /tmp/forge-pwned",))


def hostile_pickle_bytes() -> bytes:
    return pickle.dumps(_Exploit())


def state_dict_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save(CreditMLP().state_dict(), buffer)
    return buffer.getvalue()


def swapped_pickle_archive(original: bytes) -> bytes:
    """A real TorchScript archive whose data.pkl was replaced by a code-execution payload."""
    src = zipfile.ZipFile(io.BytesIO(original))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("/data.pkl"):
                data = pickle.dumps(_Exploit(), protocol=2)
            dst.writestr(info, data)
    return out.getvalue()


def zip_bomb_bytes() -> bytes:
    """A tiny zip that claims to expand to gigabytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model/data.pkl", b"\x80\x02}q\x00.")
        with archive.open("model/data/0", "w", force_zip64=True) as member:
            zeros = bytes(16 * 1024**2)
            for _ in range(64):  # 1 GiB of zeros deflates to about 1 MiB
                member.write(zeros)
    return out.getvalue()


def sandbox_artifact(tmp: Path, name: str, data: bytes) -> dict[str, str]:
    """A file written for the job sandbox, described as a parity or benchmark request names it."""
    path = write(tmp, name, data)
    return {"path": str(path), "sha256": hashlib.sha256(data).hexdigest(), "label": name}


def write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def with_extra_file(archive: bytes, name: str, content: bytes) -> bytes:
    """The same TorchScript archive with one more `extra/` member (what torch.jit.save's _extra_files writes):
    new bytes, hence a new SHA-256, for the same model."""
    src = zipfile.ZipFile(io.BytesIO(archive))
    root = src.namelist()[0].split("/")[0]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info.filename))
        dst.writestr(f"{root}/extra/{name}", content)
    return out.getvalue()
