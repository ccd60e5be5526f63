"""Shared plumbing for the benchmark scripts: an isolated environment, servers, timing, results.

Every script runs against its own database and var dir (default var/bench/), never the developer's.
Results are written as JSON under <var dir>/results/ so run_all.sh can print one table.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
PYTHON = str(REPO / ".venv" / "bin" / "python")
DEFAULT_VAR = REPO / "var" / "bench"
DEFAULT_REDIS = "redis://127.0.0.1:6399/4"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from models_registry.benchmark_compare import cpu_model  # noqa: E402  (torch-free; needs REPO on sys.path)


def bench_env(var_dir: Path, database_url: str | None = None, *, redis_url: str = DEFAULT_REDIS) -> dict[str, str]:
    """Environment for a Forge like `make run` serves (embedded profile, DEBUG off) confined to `var_dir`."""
    (var_dir / "staticfiles").mkdir(parents=True, exist_ok=True)  # whitenoise warns when STATIC_ROOT is missing
    return {
        "FORGE_VAR_DIR": str(var_dir),
        "DATABASE_URL": database_url or f"sqlite:///{var_dir / 'forge_bench.sqlite3'}",
        "REDIS_URL": redis_url,
        "SECRET_KEY": "forge-benchmark-key-not-secret-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "forge_site.settings",
    }


def ensure_redis(redis_url: str) -> None:
    """The upload path enqueues an inspection job on commit; a dead broker would add retry delays."""
    import redis

    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=1).ping()
    except Exception:
        subprocess.run(["bash", str(REPO / "scripts" / "test-services.sh"), "start"], check=True, capture_output=True)


def fresh_sqlite(env: dict[str, str]) -> None:
    """Delete the benchmark's own SQLite file (and its WAL) so each run starts from the same state."""
    url = env["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, env={**os.environ, **env}, check=True
    )


def django_setup(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen[Any] | None = None) -> None:
    """Until the server answers anything at all (a redirect or an error page counts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"no answer from {url} within {timeout} s")


def start_forge_server(
    env: dict[str, str], port: int, *, server: str = "gunicorn", log: Path
) -> tuple[subprocess.Popen[Any], int]:
    """Start one Forge web process; return the Popen and the pid that handles requests."""
    if server == "gunicorn":
        cmd = [
            str(REPO / ".venv" / "bin" / "gunicorn"),
            "forge_site.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--worker-class",
            "sync",
            "--timeout",
            "300",
            "--log-level",
            "warning",
            "--config",
            str(REPO / "benchmarks" / "gunicorn_bench.py"),
        ]
    elif server == "runserver":
        cmd = [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]  # as the Procfile runs it
    else:
        raise ValueError(server)
    out = log.open("ab")
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    wait_http(f"http://127.0.0.1:{port}/accounts/login/", proc=proc)
    handler = proc.pid
    if server == "gunicorn":
        children = psutil.Process(proc.pid).children()
        if len(children) != 1:
            raise RuntimeError(f"expected one gunicorn worker, found {len(children)}")
        handler = children[0].pid
    return proc, handler


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def summarize(samples_s: list[float]) -> dict[str, float]:
    """Milliseconds: p50, p95, p99, mean, min, max (nearest-rank percentiles)."""
    ms = sorted(s * 1000 for s in samples_s)

    def rank(p: float) -> float:
        return ms[max(0, min(len(ms) - 1, round(p / 100 * len(ms) + 0.5) - 1))]

    return {
        "n": len(ms),
        "p50": round(rank(50), 2),
        "p95": round(rank(95), 2),
        "p99": round(rank(99), 2),
        "mean": round(statistics.fmean(ms), 2),
        "min": round(ms[0], 2),
        "max": round(ms[-1], 2),
    }


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int, *, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each function, timed in turn `repeats` times (so a slow phase of the machine touches them
    all alike), after `warmup` untimed rounds."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    return times


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),  # the name Forge's benchmark fingerprints record
        "cores": psutil.cpu_count(logical=True),
        "ram_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "python": platform.python_version(),
        "django": None,  # the in-process scripts also run on GPU hosts that have torch but no Django
        "kernel": platform.release(),
    }
    try:
        import django

        info["django"] = django.get_version()
    except ImportError:
        pass
    torch = sys.modules.get("torch")  # only when the script already uses it
    if torch is not None:
        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    return info


def speed_probe() -> float:
    """Seconds for a fixed piece of pure-Python work like a list page's (dicts, f-strings, a sort, JSON): 0.85-1 ms
    here when the machine is quiet. This virtual machine's speed changes by up to 2x within minutes with nothing else
    running; a probe timed between the requests shows which speed a row of figures was measured at."""
    started = time.perf_counter()
    rows = [{"pk": n, "name": f"model-{n * 7919 % 1000:04d}", "tags": ["credit", "eu"], "n": n / 3} for n in range(200)]
    rows.sort(key=lambda row: row["name"])
    json.loads(json.dumps(rows))
    return time.perf_counter() - started


class BusyMeter:
    """How busy the machine was while a benchmark ran: load average and CPU use by everything else."""

    def __init__(self) -> None:
        self.load_before = os.getloadavg()
        psutil.cpu_percent(None)
        self.started = time.monotonic()

    def finish(self) -> dict[str, Any]:
        return {
            "loadavg_before": [round(x, 2) for x in self.load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "cpu_percent_during": round(psutil.cpu_percent(None), 1),
            "seconds": round(time.monotonic() - self.started, 1),
        }


def write_result(var_dir: Path, name: str, data: dict[str, Any]) -> Path:
    out = var_dir / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str))
    return path


def print_table(rows: list[list[Any]], header: list[str]) -> None:
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def have(cmd: str) -> bool:
    return shutil.which(cmd) is not None
