"""Upload a 1 GiB TorchScript artifact to a real Forge web process; report its peak RSS growth and throughput.

    .venv/bin/python benchmarks/upload_memory.py [--size-mib 1024] [--repeat 3] [--server gunicorn|runserver]

Goals (issue 2): peak RSS growth of the web process < 64 MiB; throughput on loopback >= 150 MB/s.

What it does: migrates a fresh SQLite database under var/bench/upload/, creates an ML engineer, an API token
(forge_site.tokens.token_create) and a model, builds a real TorchScript archive whose buffer pads it to the
requested size (cached under var/bench/), starts one web process (one gunicorn sync worker by default),
uploads a small artifact once to warm the process up, samples the worker's RSS every 10 ms for 1 s as the
baseline, then uploads the big artifact `--repeat` times with curl (`-F artifact=@file`: curl streams the
file from disk and sends a Content-Length) to POST /api/v1/models/{name}/versions/, sampling RSS throughout.

`--mode direct` (chosen automatically while the API endpoint does not exist yet) measures the same bytes through
Django's MultiPartParser + HashingUploadHandler + the version_create service in a child process, with the
multipart body streamed from disk instead of a socket: no HTTP server, so its throughput is an upper bound.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

MODEL = "bench-upload"
INPUT_SPEC = {"inputs": [{"name": "x", "shape": [None, 4], "dtype": "float32"}]}
BOUNDARY = "forgebench" + "7" * 20
MIB = 1024**2


# ---------------------------------------------------------------- the artifact


def build_artifact(path: Path, size_bytes: int) -> Path:
    """A real TorchScript archive (torch.jit.save of a scripted module) padded by a registered buffer."""
    from models_registry.archive import check_torchscript_archive

    if path.exists():
        try:
            check_torchscript_archive(path, max_uncompressed=8 * size_bytes)
            if size_bytes <= path.stat().st_size < size_bytes + MIB:
                return path
        except Exception:
            pass
    import torch
    from torch import nn

    class Padded(nn.Module):
        def __init__(self, pad: int) -> None:
            super().__init__()
            self.linear = nn.Linear(4, 2)
            generator = torch.Generator().manual_seed(0)
            self.register_buffer("pad", torch.randint(0, 256, (pad,), dtype=torch.uint8, generator=generator))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x)

    small = io.BytesIO()
    torch.jit.save(torch.jit.script(Padded(1)), small)
    overhead = len(small.getvalue())
    module = torch.jit.script(Padded(max(1, size_bytes - overhead + 64)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.jit.save(module, str(tmp))
    del module
    tmp.rename(path)
    check_torchscript_archive(path, max_uncompressed=8 * size_bytes)
    return path


def small_artifact(path: Path) -> Path:
    return build_artifact(path, 64 * 1024)


# ---------------------------------------------------------------- RSS sampling


class RssSampler(threading.Thread):
    """Samples one process's RSS every `interval` seconds until stopped."""

    def __init__(self, pid: int, interval: float = 0.010) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.samples.append((time.monotonic(), self.proc.memory_info().rss))
            except psutil.NoSuchProcess:
                return
            time.sleep(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def window(self, start: float, end: float) -> list[int]:
        return [rss for t, rss in self.samples if start <= t <= end]


# ---------------------------------------------------------------- setup in the benchmark's own database


def setup_forge(env: dict[str, str]) -> str:
    """Create the engineer, the token and the model; return the plain token."""
    common.django_setup(env)
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from forge_site.roles import ROLE_GROUPS, Role
    from forge_site.tokens import token_create
    from models_registry.services import model_create

    user = get_user_model().objects.create_user("bench-engineer", password=uuid.uuid4().hex)
    user.groups.add(Group.objects.get(name=ROLE_GROUPS[Role.ENGINEER]))
    _token, plain = token_create(user=user, name="benchmark")
    model_create(name=MODEL, owner=user, description="upload benchmark", tags=["benchmark"])
    from django.db import connections

    connections.close_all()
    return plain


# ---------------------------------------------------------------- through the HTTP API


def curl_upload(port: int, token: str, artifact: Path, version: str) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/api/v1/models/{MODEL}/versions/"
    cmd = [
        "curl",
        "-sS",
        "-o",
        "-",
        "-w",
        "\n%{http_code} %{time_total} %{size_upload}",
        "-H",
        f"Authorization: Bearer {token}",
        "-H",
        "Expect:",  # send the body at once; runserver does not answer 100-continue
        "-F",
        f"version={version}",
        "-F",
        f"input_spec={json.dumps(INPUT_SPEC)}",
        "-F",
        f"artifact=@{artifact};type=application/octet-stream",
        url,
    ]
    started = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    ended = time.monotonic()
    body, _, tail = out.rpartition("\n")
    status, total, uploaded = tail.split()
    return {
        "status": int(status),
        "body": body[:500],
        "seconds": float(total),
        "bytes": int(float(uploaded)),
        "started": started,
        "ended": ended,
    }


def curl_command_text(artifact: Path) -> str:
    return (
        "curl -H 'Authorization: Bearer $TOKEN' -H 'Expect:' -F version=vN "
        f"-F 'input_spec={json.dumps(INPUT_SPEC)}' -F artifact=@{artifact.name} "
        f"http://127.0.0.1:PORT/api/v1/models/{MODEL}/versions/"
    )


def run_http(args: argparse.Namespace, env: dict[str, str], token: str, big: Path, small: Path) -> dict[str, Any]:
    port = common.free_port()
    log = Path(env["FORGE_VAR_DIR"]) / "server.log"
    proc, pid = common.start_forge_server(env, port, server=args.server, log=log)
    sampler = RssSampler(pid)
    sampler.start()
    try:
        warm = curl_upload(port, token, small, "warmup")
        if warm["status"] in (404, 405):
            return {"endpoint_missing": True, "status": warm["status"]}
        if warm["status"] != 201:
            raise RuntimeError(f"warm-up upload failed: {warm['status']} {warm['body']}")
        runs = []
        for n in range(args.repeat):
            _drop_stored_artifacts(env)
            time.sleep(1.0)
            t0 = time.monotonic()
            baseline = max(sampler.window(t0 - 1.0, t0))
            spy = _start_profiler(args, pid, n)
            cpu0 = _cpu_seconds(pid)
            result = curl_upload(port, token, big, f"big-{n}-{uuid.uuid4().hex[:6]}")
            result["cpu_s"] = _cpu_seconds(pid) - cpu0
            if spy is not None:
                spy.send_signal(2)
                spy.wait(timeout=60)
            time.sleep(0.2)
            during = sampler.window(result["started"], result["ended"] + 0.2)
            if result["status"] != 201:
                raise RuntimeError(f"upload failed: {result['status']} {result['body']}")
            runs.append(_run_row(result, baseline, during))
    finally:
        sampler.stop()
        common.stop(proc)
    return {"endpoint_missing": False, "runs": runs, "client": "curl -F artifact=@file", "pid_sampled": "worker"}


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _start_profiler(args: argparse.Namespace, pid: int, n: int) -> subprocess.Popen[Any] | None:
    """Optional: py-spy samples the web process during the upload (collapsed stacks, for summarize_profile)."""
    if not args.py_spy:
        return None
    out = args.var_dir / "results" / f"upload-profile-{n}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen(
        [
            args.py_spy,
            "record",
            "--pid",
            str(pid),
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    return spy


def _run_row(result: dict[str, Any], baseline: int, during: list[int]) -> dict[str, Any]:
    peak = max(during) if during else baseline
    return {
        "bytes": result["bytes"],
        "seconds": round(result["seconds"], 3),
        "mb_per_s": round(result["bytes"] / result["seconds"] / 1e6, 1),
        "baseline_rss_mib": round(baseline / MIB, 1),
        "peak_rss_mib": round(peak / MIB, 1),
        "peak_growth_mib": round((peak - baseline) / MIB, 1),
        "samples": len(during),
        "server_cpu_s": round(result.get("cpu_s", 0.0), 3),
        "mb_per_cpu_s": round(result["bytes"] / result["cpu_s"] / 1e6, 1) if result.get("cpu_s") else None,
    }


def _drop_stored_artifacts(env: dict[str, str]) -> None:
    """Content addressing would turn a repeat upload into a no-op store; remove the copy so each run writes it."""
    import shutil

    shutil.rmtree(Path(env["FORGE_VAR_DIR"]) / "artifacts" / "torchscript", ignore_errors=True)


# ---------------------------------------------------------------- direct: parser + handler + service, no HTTP


class MultipartStream(io.RawIOBase):
    """A multipart/form-data body read lazily: the fields, then the file straight from disk, then the closing."""

    def __init__(self, fields: dict[str, str], file_field: str, path: Path) -> None:
        head = b"".join(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        )
        head += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{path.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self.parts: list[Any] = [io.BytesIO(head), path.open("rb"), io.BytesIO(f"\r\n--{BOUNDARY}--\r\n".encode())]
        self.length = len(head) + path.stat().st_size + len(f"\r\n--{BOUNDARY}--\r\n")

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        out = b""
        while self.parts and (size < 0 or len(out) < size):
            chunk = self.parts[0].read(-1 if size < 0 else size - len(out))
            if not chunk:
                self.parts.pop(0).close()
                continue
            out += chunk
        return out


def direct_child(artifact: Path, version: str) -> None:
    """Runs in the measured process: waits for 'go', parses the body, stores the version, prints timings."""
    common.django_setup(common.bench_env(Path(os.environ["FORGE_VAR_DIR"]), os.environ["DATABASE_URL"]))
    from django.contrib.auth import get_user_model
    from django.core.handlers.wsgi import WSGIRequest

    from models_registry.models import RegisteredModel
    from models_registry.services import version_create

    user = get_user_model().objects.get(username="bench-engineer")
    model = RegisteredModel.objects.get(name=MODEL)

    def one(path: Path, ver: str) -> dict[str, Any]:
        stream = MultipartStream({"version": ver, "input_spec": json.dumps(INPUT_SPEC)}, "artifact", path)
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": f"/api/v1/models/{MODEL}/versions/",
            "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
            "CONTENT_LENGTH": str(stream.length),
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "wsgi.input": stream,
            "wsgi.url_scheme": "http",
        }
        started = time.perf_counter()
        request = WSGIRequest(environ)
        files = request.FILES
        parsed = time.perf_counter()
        version_create(
            model=model,
            version=request.POST["version"],
            artifact=files["artifact"],
            created_by=user,
            input_spec=json.loads(request.POST["input_spec"]),
        )
        request.close()
        return {"bytes": stream.length, "seconds": time.perf_counter() - started, "parse_s": parsed - started}

    small = Path(sys.argv[sys.argv.index("--small") + 1])
    one(small, f"warmup-{version}")
    print("ready", flush=True)
    sys.stdin.readline()
    result = one(artifact, version)
    print(json.dumps(result), flush=True)


def run_direct(args: argparse.Namespace, env: dict[str, str], big: Path, small: Path) -> dict[str, Any]:
    runs = []
    for n in range(args.repeat):
        _drop_stored_artifacts(env)
        child = subprocess.Popen(
            [
                common.PYTHON,
                __file__,
                "--direct-child",
                str(big),
                f"direct-{n}-{uuid.uuid4().hex[:6]}",
                "--small",
                str(small),
            ],
            cwd=common.REPO,
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None and child.stdin is not None
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("direct child did not start")
        sampler = RssSampler(child.pid)
        sampler.start()
        time.sleep(1.0)
        t0 = time.monotonic()
        baseline = max(sampler.window(t0 - 1.0, t0))
        cpu0 = _cpu_seconds(child.pid)
        child.stdin.write("go\n")
        child.stdin.flush()
        line = child.stdout.readline()
        t1 = time.monotonic()
        cpu_s = _cpu_seconds(child.pid) - cpu0
        sampler.stop()
        child.wait()
        result = json.loads(line)
        row = _run_row({**result, "cpu_s": cpu_s}, baseline, sampler.window(t0, t1))
        row["parse_s"] = round(result["parse_s"], 3)
        runs.append(row)
    return {"endpoint_missing": False, "runs": runs, "client": "in-process WSGIRequest, body streamed from disk"}


# ---------------------------------------------------------------- main


def main() -> None:
    if "--direct-child" in sys.argv:
        i = sys.argv.index("--direct-child")
        direct_child(Path(sys.argv[i + 1]), sys.argv[i + 2])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--server", choices=["gunicorn", "runserver"], default="gunicorn")
    parser.add_argument("--mode", choices=["auto", "http", "direct"], default="auto")
    parser.add_argument("--var-dir", type=Path, default=common.DEFAULT_VAR)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file in the var dir")
    parser.add_argument(
        "--chunk-size", type=int, default=0, help="experiment (gunicorn only): override the handler's chunk size"
    )
    parser.add_argument("--py-spy", default="", help="path to a py-spy binary: profile the web process (http mode)")
    args = parser.parse_args()

    var = args.var_dir / "upload"
    env = common.bench_env(var, args.database_url)
    if args.chunk_size:
        env["FORGE_BENCH_UPLOAD_CHUNK"] = str(args.chunk_size)
    common.ensure_redis(env["REDIS_URL"])
    common.fresh_sqlite(env)
    common.migrate(env)
    busy = common.BusyMeter()
    big = build_artifact(args.var_dir / "artifacts-src" / f"padded-{args.size_mib}MiB.pt", args.size_mib * MIB)
    small = small_artifact(args.var_dir / "artifacts-src" / "small.pt")
    token = setup_forge(env)

    mode = args.mode
    result: dict[str, Any] = {}
    if mode in ("auto", "http"):
        result = run_http(args, env, token, big, small)
        if result.get("endpoint_missing"):
            if mode == "http":
                raise SystemExit(f"POST /api/v1/models/{MODEL}/versions/ answered {result['status']}")
            print("! the upload endpoint is not there yet: measuring parser + handler + service directly")
            mode = "direct"
        else:
            mode = "http"
    if mode == "direct":
        result = run_direct(args, env, big, small)

    runs = result["runs"]
    best = max(runs, key=lambda r: r["mb_per_s"])
    worst_growth = max(r["peak_growth_mib"] for r in runs)
    summary = {
        "benchmark": "upload_memory",
        "mode": mode,
        "server": args.server if mode == "http" else "none (in-process)",
        "client": result["client"],
        "artifact_bytes": big.stat().st_size,
        "runs": runs,
        "peak_growth_mib_max": worst_growth,
        "mb_per_s_median": sorted(r["mb_per_s"] for r in runs)[len(runs) // 2],
        "mb_per_s_best": best["mb_per_s"],
        "goal_growth_mib": 64,
        "goal_mb_per_s": 150,
        "chunk_size": args.chunk_size or _chunk_size(),
        "machine": common.machine_info(),
        "busy": busy.finish(),
        "command": " ".join(["benchmarks/upload_memory.py", *sys.argv[1:]]),
        "curl": curl_command_text(big) if mode == "http" else None,
    }
    common.write_result(args.var_dir, "upload_memory", summary)
    print(f"\nupload of {summary['artifact_bytes']:,} bytes, mode={mode}, server={summary['server']}")
    common.print_table(
        [
            [
                n + 1,
                r["seconds"],
                r["mb_per_s"],
                r["server_cpu_s"],
                r["mb_per_cpu_s"],
                r["baseline_rss_mib"],
                r["peak_rss_mib"],
                r["peak_growth_mib"],
            ]
            for n, r in enumerate(runs)
        ],
        ["run", "seconds", "MB/s", "server CPU s", "MB per CPU s", "RSS before MiB", "RSS peak MiB", "growth MiB"],
    )
    print(
        f"\npeak RSS growth (worst run) {worst_growth} MiB (goal < 64); "
        f"throughput median {summary['mb_per_s_median']} MB/s (goal >= 150)"
    )
    print(f"busy: {summary['busy']}")


def _chunk_size() -> int:
    from models_registry.artifacts import HashingUploadHandler

    return int(HashingUploadHandler.chunk_size)


if __name__ == "__main__":
    main()
