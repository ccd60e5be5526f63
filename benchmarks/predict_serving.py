"""Predict through Forge's serving process against the anchor, in one run (issue 13's serving numbers).

    .venv/bin/python benchmarks/predict_serving.py [--duration 10] [--workers 4] [--threads 2] [--rounds 2]
                                                   [--redis redis://127.0.0.1:6399/4]

Anchor: a bare DRF view that parses the JSON and runs a 32-128-2 TorchScript MLP (benchmarks/predict_anchor_app.py),
no auth, no routing, no logging. Forge: the serving process (rollouts/serving/, as the Procfile starts it) serving a
running rollout of the demo's credit-risk MLP (32-64-64-2), 50% to the challenger, with everything a request costs
there: token check, machine rate limit, sticky assignment, input spec check, the model call on its deadline
thread, request id, per-arm counts and the inference log entry. Both are gunicorn gthread processes with the same
workers and threads, on loopback, driven by wrk (bounded: a fixed number of connections, each with one request in
flight), 32 connections and then 1, in alternating rounds; each request carries another unit id.

Goals (issue 13): Forge >= 1,500 req/s with p99 <= 25 ms at 32 connections; governance costs at most a third of the
anchor's throughput; at one connection Forge adds <= 0.3 ms p50. The machine is shared: the load average at the
start is printed and recorded with the results.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

GUNICORN = str(common.REPO / ".venv" / "bin" / "gunicorn")
ROW = "[" + ",".join(f"{(i % 7) * 0.1 - 0.3:.2f}" for i in range(32)) + "]"
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
local counter = 0
request = function()
  counter = counter + 1
  local body = '{{"unit":"user-' .. (counter % 20000) .. '","inputs":{{"x":[{row}]}}}}'
  return wrk.format(nil, "{path}", nil, body)
end
"""
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _anchor_model(path: Path) -> None:
    import torch
    from torch import nn

    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, 2)).eval()
    torch.jit.save(torch.jit.script(module), str(path))


def _setup_rollout(env: dict[str, str]) -> tuple[int, str]:
    """A running rollout of credit-risk 1.0.0 (champion) against 1.1.0 at 50%, and an engineer's token."""
    common.django_setup(env)
    from forge_site.roles import Role
    from forge_site.tokens import token_create
    from forge_site.users import user_upsert
    from models_registry.artifacts import HashedUploadedFile
    from models_registry.demo import CREDIT_SPEC
    from models_registry.management.commands import _demo_models as dm
    from models_registry.services import alias_set, model_create, version_create, version_record_inspection
    from rollouts.services import rollout_create, rollout_start

    engineer = user_upsert(username="bench-engineer", role=Role.ENGINEER, password="x" * 20).user
    manager = user_upsert(username="bench-manager", role=Role.MANAGER, password="x" * 20).user
    model = model_create(name="credit-risk", owner=engineer)
    versions = {}
    for name, built in dm.build_credit_versions().items():
        upload = HashedUploadedFile("credit.pt", "application/octet-stream", len(built.data), None, None)
        upload.write(built.data)
        upload.seek(0)
        mv = version_create(model=model, version=name, artifact=upload, input_spec=CREDIT_SPEC, created_by=engineer)
        versions[name] = version_record_inspection(version_id=mv.pk, ok=True, inspection={"bench": True}, reason="")
    alias_set(model=model, alias="champion", version=versions["1.0.0"], actor=manager, reason="benchmark")
    rollout = rollout_create(model=model, challenger=versions["1.1.0"], plan=[50, 100], actor=engineer)
    rollout_start(rollout=rollout, actor=engineer)
    _, token = token_create(user=engineer, name="bench")
    return rollout.pk, token


def _serve(cmd: list[str], env: dict[str, str], log: Path, port: int) -> subprocess.Popen[Any]:
    out = log.open("ab")
    proc = subprocess.Popen(cmd, cwd=common.REPO, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    common.wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc, timeout=90)
    return proc


def _latency_ms(text: str, label: str) -> float:
    match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no {label} latency:\n{text}")
    return float(match.group(1)) * UNITS[match.group(2)]


def _wrk(url: str, script: Path, connections: int, duration: int) -> dict[str, float]:
    threads = min(2, connections)
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if rps is None:
        raise RuntimeError(f"wrk printed no rate:\n{out}")
    return {
        "rps": float(rps.group(1)),
        "p50_ms": _latency_ms(out, "50%"),
        "p99_ms": _latency_ms(out, "99%"),
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--rounds", type=int, default=2, help="alternating anchor/Forge rounds per connection count")
    parser.add_argument("--workers", type=int, default=min(8, 2 * (os.cpu_count() or 1)))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--redis", default=common.DEFAULT_REDIS)
    parser.add_argument(
        "--var-dir", type=Path, default=common.DEFAULT_VAR / "serving", help="database, artifacts, logs"
    )
    parser.add_argument("--results-dir", type=Path, default=common.DEFAULT_VAR, help="results/predict_serving.json")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk; scripts/install-system.sh installs it)")

    var_dir = args.var_dir.resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    env = common.bench_env(var_dir, redis_url=args.redis)
    env.update(FORGE_STORAGE=str(var_dir / "artifacts"), FORGE_UPLOAD_DIR=str(var_dir / "uploads"))
    common.ensure_redis(args.redis)
    common.fresh_sqlite(env)
    shutil.rmtree(var_dir / "artifacts", ignore_errors=True)
    common.migrate(env)
    rollout_id, token = _setup_rollout(env)
    anchor_model = var_dir / "anchor-mlp.pt"
    _anchor_model(anchor_model)

    load = Path("/proc/loadavg").read_text().split()[:3]
    print(
        f"== predict serving: {os.cpu_count()} cores, load {' '.join(load)}, {args.workers} workers x "
        f"{args.threads} threads each, wrk {args.duration} s per run, {args.rounds} rounds"
    )
    path = f"/api/v1/rollouts/{rollout_id}/predict/"
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(LUA.format(token=token, row=ROW, path=path))
    anchor_port, forge_port = common.free_port(), common.free_port()
    worker_args = ["--workers", str(args.workers), "--threads", str(args.threads)]
    anchor = _serve(
        [
            GUNICORN,
            "benchmarks.predict_anchor_app:application",
            "-k",
            "gthread",
            "--keep-alive",
            "5",
            "--bind",
            f"127.0.0.1:{anchor_port}",
            "--log-level",
            "warning",
            *worker_args,
        ],
        {**env, "FORGE_ANCHOR_MODEL": str(anchor_model)},
        var_dir / "anchor.log",
        anchor_port,
    )
    forge = _serve(
        [
            GUNICORN,
            "rollouts.serving.app:application",
            "-c",
            "rollouts/serving/gunicorn_conf.py",
            "--bind",
            f"127.0.0.1:{forge_port}",
            "--log-level",
            "warning",
            *worker_args,
        ],
        {**env, "FORGE_SERVING_WORKERS": str(args.workers), "FORGE_SERVING_THREADS": str(args.threads)},
        var_dir / "forge-serving.log",
        forge_port,
    )
    targets = {"anchor": f"http://127.0.0.1:{anchor_port}", "forge": f"http://127.0.0.1:{forge_port}"}
    results: dict[str, dict[int, list[dict[str, float]]]] = {name: {32: [], 1: []} for name in targets}
    try:
        for url in targets.values():  # warm-up: models loaded in every worker, connections and caches warm
            _wrk(url, script, 32, 3)
        for connections in (32, 1):
            for round_index in range(args.rounds):
                order = list(targets) if round_index % 2 == 0 else list(reversed(targets))
                for name in order:
                    run = _wrk(targets[name], script, connections, args.duration)
                    results[name][connections].append(run)
                    print(
                        f"   {name:6} c={connections:<2} {run['rps']:8.0f} req/s  p50 {run['p50_ms']:6.2f} ms  "
                        f"p99 {run['p99_ms']:6.2f} ms  non-2xx {run['errors']}"
                    )
    finally:
        common.stop(anchor)
        common.stop(forge)
        script.unlink(missing_ok=True)

    def best(name: str, connections: int, key: str) -> float:
        runs = results[name][connections]
        values = sorted(run[key] for run in runs)
        return values[len(values) // 2] if key != "rps" else max(values)

    rows = []
    summary: dict[str, Any] = {}
    for name in targets:
        summary[name] = {
            "rps_32": best(name, 32, "rps"),
            "p50_32_ms": best(name, 32, "p50_ms"),
            "p99_32_ms": best(name, 32, "p99_ms"),
            "p50_1_ms": best(name, 1, "p50_ms"),
            "non_2xx": sum(run["errors"] for runs in results[name].values() for run in runs),
        }
        s = summary[name]
        rows.append(
            [name, f"{s['rps_32']:.0f}", f"{s['p50_32_ms']:.2f}", f"{s['p99_32_ms']:.2f}", f"{s['p50_1_ms']:.3f}"]
        )
    cost = 1 - summary["forge"]["rps_32"] / summary["anchor"]["rps_32"]
    added = summary["forge"]["p50_1_ms"] - summary["anchor"]["p50_1_ms"]
    print()
    common.print_table(rows, ["", "req/s (32 conn)", "p50 ms", "p99 ms", "p50 ms (1 conn)"])
    print(
        f"\nForge vs anchor: throughput {-cost:+.0%} (goal: governance costs at most 33%), "
        f"1-connection p50 {added * 1000:+.0f} µs (goal: <= +300 µs); "
        f"Forge goals: >= 1,500 req/s {'met' if summary['forge']['rps_32'] >= 1500 else 'NOT met'}, "
        f"p99 <= 25 ms {'met' if summary['forge']['p99_32_ms'] <= 25 else 'NOT met'}"
    )
    common.write_result(
        args.results_dir,
        "predict_serving",
        {
            "benchmark": "predict_serving",
            "command": " ".join(["benchmarks/predict_serving.py", *sys.argv[1:]]),
            "load_at_start": load,
            "workers": args.workers,
            "threads": args.threads,
            "summary": summary,
            "runs": {name: {str(c): runs for c, runs in by_c.items()} for name, by_c in results.items()},
            "governance_throughput_cost": cost,
            "added_p50_1conn_ms": added,
        },
    )


if __name__ == "__main__":
    main()
