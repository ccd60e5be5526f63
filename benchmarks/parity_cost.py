"""Cost of a parity run: 10,000 samples of the credit-risk MLP against its ONNX export, vs the two bare passes.

    .venv/bin/python benchmarks/parity_cost.py [--samples 10000] [--batch-sizes 64,256,1024] [--repeats 15]
                                              [--threads 1] [--device cpu|cuda] [--json]

Goal (issue 3): the parity run takes at most 1.5x the time of the two bare inference passes over the same inputs.

What it does: builds the credit-risk MLP (tests/torchscript_models.py CreditMLP, 32 features, seed 0), saves it
with torch.jit.save and exports it with torch.onnx.export into var/bench/parity/, and loads both the way a parity
job does (models_registry.sandbox.runners.ModelCache). For each batch size it draws the seeded inputs once
(models_registry.parity.spec_batches) and times, interleaved `--repeats` times (medians reported):
  - bare TorchScript: the loaded module called on every batch inside one torch.inference_mode();
  - bare ONNX Runtime: session.run on every batch, inputs already numpy arrays;
  - the parity run: models_registry.parity.run_parity with the job's runners, a ParityComparison, and the inputs
    generated on the fly by spec_batches (so input generation is inside the parity time, as in a job);
  - the input generation alone (spec_batches), to show the share it takes;
  - a lean loop, the floor of any parity run on this machine: the same seeded inputs drawn in one call, each side
    called directly on slices of them (no runner, no checks, no progress), every output kept as a host copy and
    compared once with a ParityComparison. On the CPU only (skipped with --device cuda).
Ratio = parity / (bare TorchScript + bare ONNX Runtime), from the fastest of the repeats (the least disturbed by
other processes) and from the medians; torch and ONNX Runtime both use `--threads` threads.

With `--device cuda` (a GPU host) the candidate runs on the GPU and ONNX Runtime uses its CUDA provider when the
installed onnxruntime has one (the result names the provider). The bare TorchScript pass then copies each host
batch to the GPU, as the parity run must, and synchronises once at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

GOAL = 1.5


def build(out_dir: Path, hidden: int = 64) -> tuple[Path, Path]:
    import torch

    from tests.evaluation_models import onnx_bytes
    from tests.torchscript_models import CreditMLP, scripted_bytes

    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = CreditMLP(hidden=hidden).eval()
    pt, onnx = out_dir / f"credit_mlp_h{hidden}.pt", out_dir / f"credit_mlp_h{hidden}.onnx"
    pt.write_bytes(scripted_bytes(model))
    onnx.write_bytes(onnx_bytes(model, [torch.randn(2, 32)], ["x"]))
    return pt, onnx


def measure(
    samples: int, batch_size: int, repeats: int, threads: int, pt: Path, onnx: Path, device: str = "cpu"
) -> dict[str, Any]:
    import torch

    from models_registry.input_spec import parse_input_spec
    from models_registry.parity import ParityComparison, batch_count, random_inputs, run_parity, spec_batches
    from models_registry.sandbox.runners import ModelCache, OnnxRunner, TorchScriptRunner
    from tests.torchscript_models import MLP_SPEC

    decls = parse_input_spec(MLP_SPEC)
    cache = ModelCache()
    module, _ = cache.torchscript(path=str(pt), sha256="bench-pt", device=device, dtype="float32")
    session, _ = cache.onnx(path=str(onnx), sha256="bench-onnx", device=device, threads=threads)
    candidate = TorchScriptRunner(module, device=device, dtype="float32", label="credit-risk")
    reference = OnnxRunner(session, input_names=["x"], label="ONNX companion")
    batches = list(spec_batches(decls, samples=samples, batch_size=batch_size, seed=0))
    arrays = [batch[0].numpy() for batch in batches]
    gpu = device.startswith("cuda")

    def bare_torchscript() -> None:
        with torch.inference_mode():
            if gpu:
                for batch in batches:
                    module(*[t.to(device, non_blocking=True) for t in batch])
                torch.cuda.synchronize()
            else:
                for batch in batches:
                    module(*batch)

    def bare_onnx() -> None:
        for array in arrays:
            session.run(None, {"x": array})

    def parity() -> dict[str, Any]:
        return run_parity(
            candidate=candidate,
            reference=reference,
            batches=spec_batches(decls, samples=samples, batch_size=batch_size, seed=0),
            total_batches=batch_count(samples, batch_size),
            comparison=ParityComparison(),
        )

    def generate() -> None:
        for _ in spec_batches(decls, samples=samples, batch_size=batch_size, seed=0):
            pass

    def lean() -> dict[str, Any]:
        (block,) = random_inputs(decls, samples, torch.Generator().manual_seed(0))
        array = block.numpy()
        with torch.inference_mode():
            cand = [module(block[i : i + batch_size]).numpy().copy() for i in range(0, samples, batch_size)]
        ref = [session.run(None, {"x": array[i : i + batch_size]})[0] for i in range(0, samples, batch_size)]
        comparison = ParityComparison()
        comparison.add_group(cand, ref, row_offset=0, rows=[len(out) for out in cand])
        return comparison.result()

    results: list[dict[str, Any]] = []
    timed: dict[str, Callable[[], Any]] = {
        "torchscript": bare_torchscript,
        "onnxruntime": bare_onnx,
        "generation": generate,
        "parity": lambda: results.append(parity()),
    }
    if not gpu:
        timed["lean"] = lean
    # two warm-up rounds: TorchScript's profiling executor optimises after the first calls
    times = common.interleaved(timed, repeats, warmup=2)
    med = {name: statistics.median(values) * 1000 for name, values in times.items()}
    low = {name: min(values) * 1000 for name, values in times.items()}
    last = results[-1]
    return {
        "batch_size": batch_size,
        "batches": len(batches),
        "median_ms": {name: round(value, 2) for name, value in med.items()},
        "min_ms": {name: round(value, 2) for name, value in low.items()},
        "ratio_median": round(med["parity"] / (med["torchscript"] + med["onnxruntime"]), 3),
        "ratio_min": round(low["parity"] / (low["torchscript"] + low["onnxruntime"]), 3),
        "ratio_min_without_generation": round(
            (low["parity"] - low["generation"]) / (low["torchscript"] + low["onnxruntime"]), 3
        ),
        # the floor must do the same work: the same inputs, outputs and statistics as the parity run
        "lean_same_result": None if gpu else lean()["outputs"] == last["outputs"],
        "ratio_min_lean": (
            round(low["lean"] / (low["torchscript"] + low["onnxruntime"]), 3) if "lean" in low else None
        ),
        "parity_timing_ms": {k: round(v * 1000, 2) for k, v in last["timing"].items()},
        "passed": last["passed"],
        "max_abs_error": last["outputs"][0]["max_abs_error"],
        "onnx_provider": reference.provider,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--batch-sizes", default="64,256,1024")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--hidden",
        type=int,
        default=64,
        help="hidden width of the MLP: 64 is the credit-risk model of the goal; wider shows a heavier forward",
    )
    parser.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU host (the candidate's device)")
    parser.add_argument("--var-dir", type=Path, default=common.DEFAULT_VAR)
    parser.add_argument("--json", action="store_true", help="print the result as JSON too")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch.jit / legacy ONNX export notices

    import torch

    from models_registry.sandbox.runners import strict_float32

    torch.set_num_threads(args.threads)
    strict_float32()  # as the job sandbox does
    pt, onnx = build(args.var_dir / "parity", args.hidden)
    busy = common.BusyMeter()
    rows = [
        measure(args.samples, int(size), args.repeats, args.threads, pt, onnx, args.device)
        for size in args.batch_sizes.split(",")
    ]
    name = "parity_cost" if args.hidden == 64 else f"parity_cost_h{args.hidden}"
    if args.device != "cpu":
        name += f"_{args.device.split(':')[0]}"
    result = {
        "benchmark": "parity_cost",
        "device": args.device,
        "goal_ratio": GOAL,
        "samples": args.samples,
        "hidden": args.hidden,
        "threads": args.threads,
        "repeats": args.repeats,
        "rows": rows,
        "machine": common.machine_info(),
        "busy": busy.finish(),
        "command": " ".join(["benchmarks/parity_cost.py", *sys.argv[1:]]),
    }
    common.write_result(args.var_dir, name, result)
    print(
        f"\nparity run vs bare passes: {args.samples:,} samples of the credit-risk MLP (32-{args.hidden}-2) "
        f"on {args.device} vs its ONNX export ({rows[0]['onnx_provider']}), "
        f"{args.threads} thread(s), fastest / median of {args.repeats} interleaved repeats"
    )
    common.print_table(
        [
            [
                r["batch_size"],
                f"{r['min_ms']['torchscript']} / {r['median_ms']['torchscript']}",
                f"{r['min_ms']['onnxruntime']} / {r['median_ms']['onnxruntime']}",
                f"{r['min_ms']['parity']} / {r['median_ms']['parity']}",
                f"{r['ratio_min']:.2f}x / {r['ratio_median']:.2f}x",
                f"{r['min_ms']['generation']}",
                f"{r['ratio_min_without_generation']:.2f}x",
                "-" if r["ratio_min_lean"] is None else f"{r['min_ms']['lean']} ({r['ratio_min_lean']:.2f}x)",
                "meets goal" if r["ratio_min"] <= GOAL else "MISSES goal",
            ]
            for r in rows
        ],
        [
            "batch",
            "TS ms min/med",
            "ORT ms min/med",
            "parity ms min/med",
            "ratio min/med",
            "inputs ms",
            "ratio w/o inputs",
            "lean loop ms (ratio)",
            f"goal <= {GOAL}x (min)",
        ],
    )
    print(f"parity breakdown (last run, ms): {[(r['batch_size'], r['parity_timing_ms']) for r in rows]}")
    print(f"busy: {result['busy']}")
    if args.json:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
