"""What drawing a parity run's seeded inputs costs on this machine, by generator, next to the two bare passes.

    .venv/bin/python benchmarks/input_draw.py [--samples 10000] [--features 32] [--repeats 40]

Context for the parity-cost goal (issue 3; parity_cost.py): a run of 10,000 samples of the credit-risk MLP draws
320,000 seeded float32 normals. This script times, interleaved, fastest and median of `--repeats`, one thread:
  - torch.randn, as models_registry.parity.spec_batches draws them (one call, a seeded torch.Generator);
  - torch.rand, the same generator's raw uniform draws (what is left once the normal transform is free);
  - numpy's generators (PCG64, SFC64, Philox): standard_normal and the raw uniform `random`, float32;
  - a scrambled Sobol sequence (torch.quasirandom.SobolEngine, its set-up included) mapped to normals with erfinv;
and whether a second thread buys throughput here: torch.randn on a helper thread while the main thread runs the
credit-risk MLP's bare TorchScript pass (build it first with parity_cost.py), against the two one after the other.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common


def timings(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, dict[str, float]]:
    return {
        name: {"min_ms": round(min(v) * 1000, 3), "median_ms": round(statistics.median(v) * 1000, 3)}
        for name, v in common.interleaved(fns, repeats).items()
    }


def draws(samples: int, features: int) -> dict[str, Callable[[], Any]]:
    import numpy as np
    import torch

    generator = torch.Generator().manual_seed(0)
    fns: dict[str, Callable[[], Any]] = {
        "torch.randn (spec_batches)": lambda: torch.randn(samples, features, generator=generator),
        "torch.rand (uniform only)": lambda: torch.rand(samples, features, generator=generator),
    }
    for bit_generator in (np.random.PCG64, np.random.SFC64, np.random.Philox):
        rng = np.random.Generator(bit_generator(0))
        name = bit_generator.__name__
        fns[f"numpy {name} standard_normal"] = lambda rng=rng: rng.standard_normal(
            (samples, features), dtype=np.float32
        )
        fns[f"numpy {name} random (uniform only)"] = lambda rng=rng: rng.random((samples, features), dtype=np.float32)

    def sobol() -> torch.Tensor:
        points = torch.quasirandom.SobolEngine(features, scramble=True, seed=0).draw(samples)
        return torch.erfinv(points.mul_(2).sub_(1)).mul_(2**0.5)

    fns["Sobol + erfinv"] = sobol
    return fns


def second_thread(samples: int, features: int, repeats: int, pt: Path) -> dict[str, Any] | None:
    """The bare TorchScript pass and a draw, one after the other and on two threads at once (min of repeats)."""
    import torch

    if not pt.exists():
        return None
    module = torch.jit.load(str(pt)).eval()
    blocks = list(torch.randn(samples, features).split(1024))

    def forward() -> None:
        with torch.inference_mode():
            for block in blocks:
                module(block)

    def draw() -> None:
        torch.randn(samples, features, generator=torch.Generator().manual_seed(0))

    def both() -> None:
        helper = threading.Thread(target=draw)
        helper.start()
        forward()
        helper.join()

    figures = timings({"forward": forward, "draw": draw, "both on two threads": both}, repeats)
    serial = figures["forward"]["min_ms"] + figures["draw"]["min_ms"]
    return {
        **figures,
        "serial_min_ms": round(serial, 3),
        "speedup": round(serial / figures["both on two threads"]["min_ms"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--var-dir", type=Path, default=common.DEFAULT_VAR)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    import torch

    torch.set_num_threads(1)
    busy = common.BusyMeter()
    figures = timings(draws(args.samples, args.features), args.repeats)
    threads = second_thread(args.samples, args.features, args.repeats, args.var_dir / "parity" / "credit_mlp_h64.pt")
    result = {
        "benchmark": "input_draw",
        "samples": args.samples,
        "features": args.features,
        "repeats": args.repeats,
        "draws": figures,
        "second_thread": threads,
        "machine": common.machine_info(),
        "busy": busy.finish(),
        "command": " ".join(["benchmarks/input_draw.py", *sys.argv[1:]]),
    }
    common.write_result(args.var_dir, "input_draw", result)
    elements = args.samples * args.features
    print(f"\ndrawing {args.samples:,} x {args.features} seeded float32 inputs, one thread, {args.repeats} repeats")
    common.print_table(
        [
            [name, f"{f['min_ms']} / {f['median_ms']}", f"{f['min_ms'] * 1e6 / elements:.1f}"]
            for name, f in figures.items()
        ],
        ["generator", "ms min / median", "ns per value (min)"],
    )
    if threads is None:
        print("second thread: skipped (run parity_cost.py first to build the credit-risk MLP)")
    else:
        print(
            f"second thread: bare TorchScript pass {threads['forward']['min_ms']} ms + draw "
            f"{threads['draw']['min_ms']} ms = {threads['serial_min_ms']} ms one after the other; "
            f"{threads['both on two threads']['min_ms']} ms on two threads ({threads['speedup']}x)"
        )
    print(f"busy: {result['busy']}")


if __name__ == "__main__":
    main()
