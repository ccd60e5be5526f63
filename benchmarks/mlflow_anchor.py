"""The anchor: MLflow's server and Forge's, same data, same client, requests interleaved in one run.

    .venv/bin/python benchmarks/mlflow_anchor.py [--requests 200] [--warmup 20] [--install]

MLflow lives in its own venv (var/mlflow-venv, `--install` creates it with pip install 'mlflow==3.17.*'); it never
touches .venv. Both registries hold the same 1,000 models and 10,000 versions (registry_list.py's plan: MLflow's
through MlflowClient on the SQLAlchemy store, Forge's with bulk_create), both on SQLite, each server with one
worker on a loopback port (MLflow: `mlflow server --workers 1`, its default uvicorn; Forge: one gunicorn sync
worker, DEBUG off). One requests.Session per server times each GET from send to last byte; the series are
interleaved request by request so both servers see the same machine load. The anchor stated in issue 2 is
48-57 ms for MLflow's 100-row version search; the goal is Forge >= 5x faster.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
import registry_list

MLFLOW_SPEC = "mlflow==3.17.*"
STATED_ANCHOR_MS = (48.0, 57.0)


def mlflow_venv(venv: Path, *, install: bool) -> tuple[Path | None, str]:
    """The MLflow venv's bin dir, or None and the reason it is not there."""
    binary = venv / "bin" / "mlflow"
    if binary.exists():
        return venv / "bin", ""
    if not install:
        return None, f"{binary} is missing (run with --install, or run_all.sh)"
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", MLFLOW_SPEC], capture_output=True, text=True)
    if pip.returncode != 0:
        return None, f"pip install {MLFLOW_SPEC!r} failed: {pip.stderr.strip().splitlines()[-1:]}"
    return venv / "bin", ""


def plan() -> dict[str, Any]:
    """The same models, version counts and aliases as registry_list.populate."""
    models = []
    for n, count in enumerate(registry_list.version_counts()):
        aliases: dict[str, int] = {}
        if n % 2 == 0:
            aliases["champion"] = count - 1
        if n % 4 == 0:
            aliases["challenger"] = count
        models.append(
            {
                "name": registry_list.model_name(n),
                "description": f"Benchmark model {n} for the {registry_list.TEAMS[n % 10]} team.",
                "tags": {"domain": registry_list.TAGS[n % 10], "team": registry_list.TEAMS[n % 10]},
                "versions": count,
                "aliases": aliases,
            }
        )
    return {"models": models}


def mlflow_counts(db: Path) -> tuple[int, int]:
    if not db.exists():
        return 0, 0
    with sqlite3.connect(db) as conn:
        try:
            models = conn.execute("SELECT count(*) FROM registered_models").fetchone()[0]
            versions = conn.execute("SELECT count(*) FROM model_versions").fetchone()[0]
        except sqlite3.OperationalError:
            return 0, 0
    return int(models), int(versions)


def populate_mlflow(bin_dir: Path, db: Path) -> dict[str, Any]:
    if mlflow_counts(db) == (registry_list.MODELS, registry_list.VERSIONS):
        return {"populated": False}
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    plan_path = db.with_suffix(".plan.json")
    plan_path.write_text(json.dumps(plan()))
    out = subprocess.run(
        [
            str(bin_dir / "python"),
            str(Path(__file__).with_name("mlflow_populate.py")),
            f"sqlite:///{db}",
            str(plan_path),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    counts = mlflow_counts(db)
    if counts != (registry_list.MODELS, registry_list.VERSIONS):
        raise RuntimeError(f"MLflow holds {counts}, expected {(registry_list.MODELS, registry_list.VERSIONS)}")
    return {"populated": True, **json.loads(out.stdout.strip().splitlines()[-1])}


def start_mlflow(bin_dir: Path, db: Path, port: int, log: Path) -> subprocess.Popen[Any]:
    cmd = [
        str(bin_dir / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{db}",
        "--workers",
        "1",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    out = log.open("ab")
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL"}}
    proc = subprocess.Popen(cmd, cwd=db.parent, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    common.wait_http(f"http://127.0.0.1:{port}/health", timeout=120, proc=proc)
    return proc


def stop_group(proc: subprocess.Popen[Any]) -> None:
    """mlflow server forks its workers; end the process group it was started in."""
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def mlflow_page_tokens(session: Any, url: str, key: str, pages: int) -> list[str]:
    """Tokens for the first `pages` pages of a search, so later requests can cycle through them like ?page=N."""
    tokens = [""]
    while len(tokens) < pages:
        body = session.get(url + (f"&page_token={tokens[-1]}" if tokens[-1] else "")).json()
        if len(body.get(key, [])) != 100 or not body.get("next_page_token"):
            break
        tokens.append(body["next_page_token"])
    return tokens


def forge_session_cookie(user: Any) -> str:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    return str(store.session_key)


def series(forge: str, mlflow: str, token: str, tokens_mv: list[str], tokens_rm: list[str]) -> list[dict[str, Any]]:
    mv = f"{mlflow}/api/2.0/mlflow/model-versions/search?max_results=100"
    rm = f"{mlflow}/api/2.0/mlflow/registered-models/search?max_results=100"
    wide = f"{mv}&filter=name%3D%27{registry_list.WIDE_MODEL}%27"
    return [
        {
            "key": "mlflow_versions",
            "server": "MLflow",
            "name": "model-versions/search?max_results=100 (anchor)",
            "urls": [mv + (f"&page_token={t}" if t else "") for t in tokens_mv],
            "rows_key": "model_versions",
        },
        {
            "key": "mlflow_versions_one_model",
            "server": "MLflow",
            "name": f"model-versions/search?filter=name='{registry_list.WIDE_MODEL}'&max_results=100",
            "urls": [wide],
            "rows_key": "model_versions",
        },
        {
            "key": "mlflow_models",
            "server": "MLflow",
            "name": "registered-models/search?max_results=100",
            "urls": [rm + (f"&page_token={t}" if t else "") for t in tokens_rm],
            "rows_key": "registered_models",
        },
        {
            "key": "forge_versions",
            "server": "Forge",
            "name": f"GET /api/v1/models/{registry_list.WIDE_MODEL}/versions/",
            "urls": [f"{forge}/api/v1/models/{registry_list.WIDE_MODEL}/versions/"],
            "rows_key": "results",
            "headers": {"Authorization": f"Bearer {token}"},
        },
        {
            "key": "forge_models",
            "server": "Forge",
            "name": "GET /api/v1/models/?page=N",
            "urls": [f"{forge}/api/v1/models/?page={n}" for n in range(1, 11)],
            "rows_key": "results",
            "headers": {"Authorization": f"Bearer {token}"},
        },
        {
            "key": "forge_html",
            "server": "Forge",
            "name": "GET /registry/?page=N (HTML)",
            "urls": [f"{forge}/registry/?page={n}" for n in range(1, 11)],
            "rows_key": None,
        },
    ]


def time_interleaved(all_series: list[dict[str, Any]], sessions: dict[str, Any], *, requests: int, warmup: int) -> None:
    for s in all_series:
        s["samples"] = []
    for n in range(warmup + requests):
        for s in all_series:
            url = s["urls"][n % len(s["urls"])]
            session = sessions[s["server"]]
            started = time.perf_counter()
            response = session.get(url, headers=s.get("headers"))
            body = response.content
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"{url} answered {response.status_code}: {body[:300]!r}")
            if n == 0 and s["rows_key"]:
                rows = len(json.loads(body)[s["rows_key"]])
                if rows != 100:
                    raise RuntimeError(f"{url} returned {rows} rows, expected 100")
            if n >= warmup:
                s["samples"].append(elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--var-dir", type=Path, default=common.DEFAULT_VAR)
    parser.add_argument("--mlflow-venv", type=Path, default=common.REPO / "var" / "mlflow-venv")
    parser.add_argument("--install", action="store_true", help="create the MLflow venv if it is missing")
    args = parser.parse_args()

    bin_dir, why = mlflow_venv(args.mlflow_venv, install=args.install)
    result: dict[str, Any] = {
        "benchmark": "mlflow_anchor",
        "stated_anchor_ms": STATED_ANCHOR_MS,
        "command": " ".join(["benchmarks/mlflow_anchor.py", *sys.argv[1:]]),
    }
    if bin_dir is None:
        result["mlflow_unavailable"] = why
        common.write_result(args.var_dir, "mlflow_anchor", result)
        print(f"MLflow is not available ({why}); compare with the stated anchor {STATED_ANCHOR_MS} ms")
        return
    version = subprocess.run(
        [str(bin_dir / "python"), "-c", "import mlflow; print(mlflow.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    mdir = args.var_dir / "mlflow"
    mdir.mkdir(parents=True, exist_ok=True)
    db = mdir / "mlflow.db"
    print(f"MLflow {version}: populating {db} (skipped when already complete) …", flush=True)
    mpop = populate_mlflow(bin_dir, db)

    env = registry_list.list_env(args.var_dir, None)
    common.migrate(env)
    fpop = registry_list.populate(env, fresh=False)
    from django.db import connections

    user, token = registry_list.credentials()
    cookie = forge_session_cookie(user)
    connections.close_all()

    import requests

    mport, fport = common.free_port(), common.free_port()
    mlflow_proc = start_mlflow(bin_dir, db, mport, mdir / "server.log")
    forge_proc, _ = common.start_forge_server(env, fport, log=Path(env["FORGE_VAR_DIR"]) / "server.log")
    busy = common.BusyMeter()
    try:
        sessions = {"MLflow": requests.Session(), "Forge": requests.Session()}
        sessions["Forge"].cookies.set("sessionid", cookie, domain="127.0.0.1")
        base_m = f"http://127.0.0.1:{mport}"
        search = f"{base_m}/api/2.0/mlflow"
        tokens_mv = mlflow_page_tokens(
            sessions["MLflow"], f"{search}/model-versions/search?max_results=100", "model_versions", 10
        )
        tokens_rm = mlflow_page_tokens(
            sessions["MLflow"], f"{search}/registered-models/search?max_results=100", "registered_models", 10
        )
        all_series = series(f"http://127.0.0.1:{fport}", base_m, token, tokens_mv, tokens_rm)
        time_interleaved(all_series, sessions, requests=args.requests, warmup=args.warmup)
    finally:
        stop_group(mlflow_proc)
        common.stop(forge_proc)
    rows = [
        {k: v for k, v in s.items() if k not in {"samples", "headers", "urls"}}
        | common.summarize(s["samples"])
        | {"example": s["urls"][0]}
        for s in all_series
    ]
    by_key = {r["key"]: r for r in rows}
    comparisons = []
    for label, m, f in (
        ("100-row version search vs Forge 100-row versions list", "mlflow_versions", "forge_versions"),
        ("100 versions of one model, both", "mlflow_versions_one_model", "forge_versions"),
        ("100-row model search vs Forge 100-row models page", "mlflow_models", "forge_models"),
    ):
        comparisons.append(
            {
                "label": label,
                "mlflow": m,
                "forge": f,
                "ratio_p50": round(by_key[m]["p50"] / by_key[f]["p50"], 1),
                "ratio_p95": round(by_key[m]["p95"] / by_key[f]["p95"], 1),
            }
        )
    result.update(
        {
            "mlflow_version": version,
            "method": "HTTP round trip on loopback, requests.Session, interleaved series, one worker per server",
            "requests": args.requests,
            "warmup": args.warmup,
            "population": {"mlflow": mpop, "forge": fpop},
            "rows": rows,
            "comparisons": comparisons,
            "machine": common.machine_info(),
            "busy": busy.finish(),
        }
    )
    common.write_result(args.var_dir, "mlflow_anchor", result)
    print(
        f"\nMLflow {version} vs Forge, {args.requests} interleaved requests each after {args.warmup} warm-up, "
        "HTTP round trip on loopback"
    )
    common.print_table(
        [[r["server"], r["name"], r["p50"], r["p95"], r["p99"]] for r in rows],
        ["server", "request", "p50 ms", "p95 ms", "p99 ms"],
    )
    print()
    common.print_table(
        [[c["label"], c["ratio_p50"], c["ratio_p95"]] for c in comparisons],
        ["comparison (MLflow time / Forge time)", "x at p50", "x at p95"],
    )
    print(f"busy: {result['busy']}")


if __name__ == "__main__":
    main()
