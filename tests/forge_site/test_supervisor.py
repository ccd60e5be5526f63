"""`make run`'s supervisor: a process that dies comes back while the web server keeps serving, and stopping the
supervisor stops everything it started. Runs scripts/supervise.py with the Procfile's real commands for Redis, the
gpu worker and the web server, on spare ports."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BASE_DIR, wait_for

pytestmark = pytest.mark.e2e  # the whole stack: once, in the PostgreSQL pass

SUPERVISORCTL = str(Path(sys.executable).parent / "supervisorctl")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stack:
    def __init__(self, var_dir: Path, web_port: int, redis_port: int, proc: subprocess.Popen[bytes]) -> None:
        self.config = var_dir / "supervisor" / "supervisord.conf"
        self.web_port = web_port
        self.redis_port = redis_port
        self.proc = proc

    def ctl(self, *args: str) -> str:
        result = subprocess.run(
            [SUPERVISORCTL, "-c", str(self.config), *args], capture_output=True, text=True, timeout=30
        )
        return result.stdout.strip()

    def pid(self, name: str) -> int:
        """The process's pid while supervisord has it RUNNING, else 0."""
        if not self.config.exists() or "RUNNING" not in self.ctl("status", name):
            return 0
        text = self.ctl("pid", name)
        return int(text) if text.isdigit() else 0

    def health(self, scope: str = "") -> dict[str, Any] | None:
        url = f"http://127.0.0.1:{self.web_port}/healthz" + (f"?scope={scope}" if scope else "")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return dict(json.loads(response.read()))
        except OSError:
            return None

    def redis_answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.redis_port), timeout=2) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def group(self, pid: int) -> list[int]:
        """Every process in the process group supervisord gave this program (its children included)."""
        members = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getpgid(int(entry.name)) == pid:
                        members.append(int(entry.name))
                except ProcessLookupError:
                    continue
        return members


def alive(pid: int) -> bool:
    """Running, not a zombie (a process that outlived its parent waits, exited, for init to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    web_port, redis_port = free_port(), free_port()
    var_dir = tmp_path / "var"
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL", "FORGE_DEBUG"}}
    env.update(
        FORGE_VAR_DIR=str(var_dir),
        FORGE_WEB_PORT=str(web_port),
        FORGE_REDIS_PORT=str(redis_port),
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        DJANGO_SETTINGS_MODULE="forge_site.settings",
    )
    log = (tmp_path / "supervise.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "scripts/supervise.py", "redis", "gpu", "web"],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    yield Stack(var_dir, web_port, redis_port, proc)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # only if the test failed before stopping it
    log.close()


def test_a_dead_process_comes_back_the_web_keeps_serving_and_ctrl_c_stops_everything(stack: Stack) -> None:
    wait_for(lambda: all(stack.pid(name) for name in ("redis", "gpu", "web")), timeout=90)
    wait_for(lambda: (stack.health() or {}).get("status") == "ok", timeout=120)  # the worker answers through Redis
    web = stack.pid("web")

    redis = stack.pid("redis")
    os.kill(redis, signal.SIGKILL)
    assert stack.health("web") is not None  # the web server did not go down with it (honcho stopped everything)
    wait_for(lambda: stack.pid("redis") not in (0, redis) and stack.redis_answers(), timeout=60)

    gpu = stack.pid("gpu")
    os.kill(gpu, signal.SIGKILL)  # the worker's main process, as the OOM killer would
    assert stack.health("web") is not None
    wait_for(lambda: stack.pid("gpu") not in (0, gpu), timeout=60)
    wait_for(lambda: (stack.health() or {}).get("status") == "ok", timeout=120)  # and it answers again
    assert stack.pid("web") == web  # served throughout, never restarted

    started = [pid for name in ("redis", "gpu", "web") for pid in stack.group(stack.pid(name))]
    assert len(started) >= 5  # the programs, their pool and gunicorn workers, the output prefixers
    stack.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends to `make run`
    assert stack.proc.wait(timeout=90) == 0
    assert [pid for pid in started if alive(pid)] == []
    assert not stack.redis_answers() and stack.health("web") is None
    assert not (stack.config.parent / "supervisor.sock").exists()
