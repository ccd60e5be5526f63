"""Benchmark and parity jobs on a GPU host, through the real job sandbox: the figures a GPU worker records.

    python3 benchmarks/gpu_jobs.py [--device cuda] [--var-dir DIR] [--json]

Needs torch, numpy, psutil and onnxruntime, no Django: it drives models_registry.sandbox.executor.Sandbox (the child
process a Celery worker talks to) with the requests a parity or benchmark job sends, for the credit-risk MLP and a small
CNN (tests/torchscript_models.py), and prints per dtype and batch size what the job's result holds: latency p50 and p99,
throughput, peak CUDA memory, the governance overhead at the largest batch, and for parity runs the max error against
the CPU in float32 and the time taken. `--device cpu` runs the same requests on the CPU, for contrast."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-sizes", default="1,64,1024")
    parser.add_argument("--samples", type=int, default=10_000, help="per parity run")
    parser.add_argument("--var-dir", type=Path, default=common.DEFAULT_VAR)
    parser.add_argument("--json", action="store_true", help="print the result as JSON too")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    import torch

    from models_registry.sandbox.executor import Sandbox
    from tests.torchscript_models import IMAGE_SPEC, MLP_SPEC, CreditMLP, SmallCNN, sandbox_artifact, scripted_bytes

    tmp = Path(tempfile.mkdtemp(prefix="forge-gpu-jobs-"))
    models = [
        ("credit-risk MLP", sandbox_artifact(tmp, "mlp.pt", scripted_bytes(CreditMLP().eval())), MLP_SPEC),
        ("small CNN 3x32x32", sandbox_artifact(tmp, "cnn.pt", scripted_bytes(SmallCNN().eval())), IMAGE_SPEC),
    ]
    sandbox = Sandbox()
    busy = common.BusyMeter()
    benchmarks, parities = [], []
    try:
        for name, model, spec in models:
            for dtype in ("float32", "float16", "bfloat16"):
                request = {
                    "type": "benchmark",
                    "candidate": model,
                    "input_spec": spec,
                    "device": args.device,
                    "dtype": dtype,
                    "batch_sizes": [int(b) for b in args.batch_sizes.split(",")],
                    "warmup": 10,
                    "window_ms": 100,
                    "time_cap_s": 4,
                }
                result = sandbox.run(request, timeout_s=300)
                benchmarks.append({"model": name, "dtype": dtype, **result})
            # a float32 CPU reference for a CPU candidate would be the candidate itself, which the sandbox refuses
            for ref_dtype in ("float32", "float16", "bfloat16") if args.device != "cpu" else ("bfloat16",):
                request = {
                    "type": "parity",
                    "candidate": model,
                    "input_spec": spec,
                    "device": args.device,
                    "dtype": "float32",
                    "reference": {"kind": "device", "device": "cpu", "dtype": ref_dtype},
                    "samples": args.samples,
                    "batch_size": 256,
                    "seed": 0,
                }
                result = sandbox.run(request, timeout_s=300)
                parities.append({"model": name, "reference_dtype": ref_dtype, **result})
    finally:
        sandbox.kill()
    result = {
        "benchmark": f"gpu_jobs_{args.device.split(':')[0]}",
        "device": args.device,
        "benchmarks": benchmarks,
        "parities": parities,
        "machine": common.machine_info() | {"torch": torch.__version__},
        "busy": busy.finish(),
        "command": " ".join(["benchmarks/gpu_jobs.py", *sys.argv[1:]]),
    }
    common.write_result(args.var_dir, result["benchmark"], result)
    fp = benchmarks[0]["fingerprint"]
    print(f"\nbenchmark jobs on {fp.get('gpu_name') or fp['cpu_model']} (driver {fp.get('gpu_driver')}), sandbox")
    common.print_table(
        [
            [
                b["model"],
                b["dtype"],
                row["batch_size"],
                f"{row['latency_ms']['p50']:.4f}",
                f"{row['latency_ms']['p99']:.4f}",
                f"{row['throughput_sps']:,.0f}",
                f"{row['peak_memory_bytes'] / 1024**2:.2f}",
                "y" if row["stable"] else "n",
            ]
            for b in benchmarks
            for row in b["results"]
        ],
        [
            "model",
            "dtype",
            "batch",
            "p50 ms",
            "p99 ms",
            "samples/s",
            f"peak MiB ({benchmarks[0]['results'][0]['memory_kind']})",
            "stable",
        ],
    )
    print(f"\nparity runs: {args.samples:,} samples, batch 256, candidate float32 on {args.device} vs the CPU")
    common.print_table(
        [
            [
                p["model"],
                p["reference_dtype"],
                "pass" if p["passed"] else "FAIL",
                f"{p['outputs'][0]['max_abs_error']:.3g}",
                f"{p['outputs'][0]['out_of_tolerance_share'] * 100:.2f}%",
                p["outputs"][0]["argmax_agreement"],
                f"{p['timing']['total_s'] * 1000:.0f}",
                f"{p['timing']['candidate_s'] * 1000:.0f} / {p['timing']['reference_s'] * 1000:.0f}",
            ]
            for p in parities
        ],
        ["model", "CPU reference", "result", "max abs err", "out of tol.", "argmax agree", "total ms", "cand / ref ms"],
    )
    print(f"busy: {result['busy']}")
    if args.json:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
