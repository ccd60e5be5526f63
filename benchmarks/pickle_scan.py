"""What the archive check costs the web process on upload, now that it follows every pickle symbolically.

    .venv/bin/python benchmarks/pickle_scan.py [--repeat 15]

For three real TorchScript archives (an MLP, a small CNN, a 12-layer transformer encoder of 38 MB), times
models_registry.archive.check_torchscript_archive (zip checks plus the symbolic run of every pickle: data.pkl,
constants.pkl and each code/*.debug_pkl) against its floor, a bare pickletools.genops walk over the same pickles
(reading opcodes and doing nothing with them). Runs are interleaved; the table gives medians in milliseconds.
"""

from __future__ import annotations

import argparse
import functools
import io
import statistics
import sys
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from torch import nn

from models_registry.archive import check_torchscript_archive, is_pickle_member


def _archive(module: nn.Module) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(module.eval()), buffer)
    return buffer.getvalue()


def _models() -> dict[str, bytes]:
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 2))
    cnn = nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(256, 8, 1024, batch_first=True), num_layers=12)
    return {"mlp": _archive(mlp), "cnn": _archive(cnn), "transformer-12": _archive(encoder)}


def _genops_floor(path: Path) -> None:
    import pickletools

    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if is_pickle_member(name):
                for _ in pickletools.genops(archive.read(name)):
                    pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    print(f"{'archive':<16} {'MB':>6} {'pickles':>8} {'genops floor ms':>16} {'check ms':>9}")
    with tempfile.TemporaryDirectory() as folder:
        for name, data in _models().items():
            path = Path(folder) / f"{name}.pt"
            path.write_bytes(data)
            facts = check_torchscript_archive(path, max_uncompressed=10 * len(data))
            timings: dict[str, list[float]] = {"floor": [], "check": []}
            limit = 10 * len(data)
            runs: list[tuple[str, Callable[[], object]]] = [
                ("floor", functools.partial(_genops_floor, path)),
                ("check", functools.partial(check_torchscript_archive, path, max_uncompressed=limit)),
            ]
            for _ in range(args.repeat):
                for label, run in runs:
                    started = time.perf_counter()
                    run()
                    timings[label].append((time.perf_counter() - started) * 1000)
            print(
                f"{name:<16} {len(data) / 1e6:>6.1f} {facts.pickles:>8} "
                f"{statistics.median(timings['floor']):>16.2f} {statistics.median(timings['check']):>9.2f}"
            )


if __name__ == "__main__":
    main()
