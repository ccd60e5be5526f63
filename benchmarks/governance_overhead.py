"""What governance adds to one served request, in microseconds and as a share of the forward (rollouts/serving).

    .venv/bin/python benchmarks/governance_overhead.py [--target-ms 10] [--repeats 2000] [--threads 1]
                                                      [--features 32,1024] [--json]

Measured on the serving process's own code (rollouts.serving.overhead.governance_overhead): the sticky router, the
input spec check (beyond a bare torch.tensor), the input SHA-256, the signed request id, the per-arm counters and the
inference log entry, each timed per request, against the bare path any server runs (JSON lists to tensors, the
forward, outputs to lists). Two kinds of model:

- the demo's credit-risk MLP (32-64-64-2) at batch 1: a forward of a few tens of microseconds, where any fixed cost
  is a large ratio; the absolute figure is what matters there;
- a wide MLP calibrated to about `--target-ms` ms at batch 64 (issue 3's goal: under 1% of a 10 ms forward), once
  per `--features` value (the input hash grows with the request's bytes).

This replaces the registry's stand-in (`GovernanceHooks` in models_registry/benchmark.py, removed): the registry may
not import rollouts, and the stand-in measured a router and a queue Forge does not use.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
from benchmark_accuracy import calibrated_model

GOAL = 0.01
BATCH = 64


def _decls(features: int) -> list[Any]:
    from models_registry.input_spec import parse_input_spec

    return parse_input_spec({"inputs": [{"name": "x", "shape": [None, features], "dtype": "float32"}]})


def measure_credit(repeats: int) -> dict[str, Any]:
    import torch

    from models_registry.management.commands import _demo_models as dm
    from rollouts.serving.overhead import governance_overhead

    module = torch.jit.load(__import__("io").BytesIO(dm.build_credit_versions()["1.1.0"].data)).eval()
    inputs = {"x": [[(i % 7) * 0.1 - 0.3 for i in range(32)]]}
    report = governance_overhead(module, inputs, _decls(32), repeats=repeats)
    return {"model": "credit-risk MLP 32-64-64-2", "features": 32, **report}


def measure_wide(features: int, target_ms: float, repeats: int) -> dict[str, Any]:
    import torch

    from rollouts.serving.overhead import governance_overhead

    module, name, calibrated_ms = calibrated_model(target_ms, batch=BATCH, features=features, device="cpu")
    inputs = {"x": torch.randn(BATCH, features).tolist()}
    report = governance_overhead(module, inputs, _decls(features), repeats=repeats)
    return {"model": name, "features": features, "calibrated_forward_ms": round(calibrated_ms, 3), **report}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target-ms", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=2000, help="requests timed for the small model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--features", default="32,1024")
    parser.add_argument("--var-dir", type=Path, default=common.DEFAULT_VAR)
    parser.add_argument("--json", action="store_true", help="print the result as JSON too")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch.jit notices
    common.django_setup(common.bench_env(args.var_dir))  # settings only: nothing here touches the database

    import torch

    torch.set_num_threads(args.threads)
    busy = common.BusyMeter()
    wide_repeats = max(50, args.repeats // 10)
    rows = [measure_credit(args.repeats)]
    rows += [measure_wide(int(f), args.target_ms, wide_repeats) for f in args.features.split(",")]
    result = {
        "benchmark": "governance_overhead",
        "goal_ratio": GOAL,
        "threads": args.threads,
        "rows": rows,
        "machine": common.machine_info(),
        "busy": busy.finish(),
        "command": " ".join(["benchmarks/governance_overhead.py", *sys.argv[1:]]),
    }
    common.write_result(args.var_dir, result["benchmark"], result)
    print(f"\ngovernance overhead per served request (rollouts/serving), {args.threads} thread(s), p50s")
    common.print_table(
        [
            [
                r["model"],
                str(r["batch_size"]),
                f"{r['bare_p50_us']:.1f}",
                f"{r['governance_p50_us']:.1f}",
                " / ".join(f"{r['components_us'][c]:.1f}" for c in r["components_us"]),
                f"{r['ratio'] * 100:.2f}%",
            ]
            for r in rows
        ],
        [
            "model",
            "batch",
            "bare p50 us",
            "governance us",
            "route / check / hash / id / count / log us",
            "ratio",
        ],
    )
    print(f"busy: {result['busy']}")
    if args.json:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
