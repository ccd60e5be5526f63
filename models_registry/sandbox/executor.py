"""The worker's side of the job sandbox: one long-lived child process per worker process, spoken to in JSON lines.

The child (`models_registry.sandbox.job_sandbox`) keeps loaded artifacts in a bounded cache, so ten runs on one version
load it once. The parent enforces the deadline: a model that never returns is killed with its whole process group and
the next job starts a fresh child. No Django here, so it can be driven by tests and benchmarks on its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models_registry.process_death import OomCounters, describe_death

logger = logging.getLogger(__name__)

BASE_DIR = Path(__file__).resolve().parents[2]  # the repository root (models_registry/sandbox/ is two below)
START_TIMEOUT_S = 120.0
CANCEL_GRACE_S = 30.0
TICK_S = 0.5

# Called with each event the child sends ({"type": "progress" | "device", ...}) and with None about every TICK_S
# of silence; returning False asks the child to stop at its next batch.
EventHook = Callable[[dict[str, Any] | None], bool]


class SandboxError(Exception):
    """The sandbox process failed (died, or broke the protocol)."""


class SandboxTimeout(SandboxError):
    """The request ran past its deadline; the process was killed."""


class SandboxFailure(Exception):
    """The request was refused or failed inside the sandbox, with a message meant for a person."""

    def __init__(self, message: str, code: str = "failed") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class SandboxCancelled(Exception):
    """The child stopped at a batch boundary because it was asked to."""

    def __init__(self, message: str, partial: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.partial = partial


def _die_with_parent() -> None:
    os.setsid()
    with contextlib.suppress(OSError):  # PR_SET_PDEATHSIG: if the worker process is killed, the sandbox goes too
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


class Sandbox:
    """A handle on the child process; starts it on first use and after it was killed."""

    def __init__(
        self, *, cache_entries: int = 4, memory_bytes: int = 0, handlers: dict[str, str] | None = None
    ) -> None:
        self.cache_entries = cache_entries
        self.memory_bytes = memory_bytes
        self.handlers = dict(handlers or {})  # extra request kinds: {kind: "package.module:function"}
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self._buffer = b""
        self._oom_before = OomCounters.read()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        if self.alive:
            return
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE", "SECRET", "REDIS"))}
        env.update(
            PYTHONPATH=str(BASE_DIR),
            FORGE_SANDBOX_CACHE_ENTRIES=str(self.cache_entries),
            FORGE_SANDBOX_MEMORY_BYTES=str(self.memory_bytes),
            FORGE_SANDBOX_HANDLERS=json.dumps(self.handlers),
        )
        self._buffer = b""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "models_registry.sandbox.job_sandbox"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=str(BASE_DIR),
            env=env,
            preexec_fn=_die_with_parent,
        )
        ready = self._read_event(time.monotonic() + START_TIMEOUT_S)
        if ready is None or ready.get("type") != "ready":
            self.kill()
            raise SandboxError("The job sandbox did not start (see the worker log for its error output).")
        self.info = ready

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self.proc = None
        self._buffer = b""

    def run(self, request: dict[str, Any], *, timeout_s: float, on_event: EventHook | None = None) -> dict[str, Any]:
        """Send one request and wait for its answer, its cancellation, or its deadline."""
        deadline = time.monotonic() + timeout_s
        self._oom_before = OomCounters.read()
        try:
            self.start()
            self._send(request)
            return self._await_answer(deadline, on_event)
        except SandboxTimeout:
            self.kill()
            raise
        except (SandboxFailure, SandboxCancelled):
            raise
        except BaseException:
            # Anything else (the worker's own time limit, a broken pipe, a bug) leaves the child in an unknown state.
            self.kill()
            raise

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(message).encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError as exc:
            raise SandboxError(self._death_reason()) from exc

    def _await_answer(self, deadline: float, on_event: EventHook | None) -> dict[str, Any]:
        cancel_sent_at: float | None = None
        while True:
            wait_until = min(deadline, time.monotonic() + TICK_S)
            if cancel_sent_at is not None:
                wait_until = min(wait_until, cancel_sent_at + CANCEL_GRACE_S)
            event = self._read_event(wait_until)
            now = time.monotonic()
            if event is None:
                if not self.alive:
                    raise SandboxError(self._death_reason())
                if now >= deadline:
                    raise SandboxTimeout("no answer before the deadline")
                if cancel_sent_at is not None and now >= cancel_sent_at + CANCEL_GRACE_S:
                    self.kill()
                    raise SandboxCancelled(
                        f"Cancelled; the current batch did not finish within {CANCEL_GRACE_S:.0f} s, "
                        "so the sandbox was stopped."
                    )
                wants_more = on_event(None) if on_event else True
            elif event["type"] == "result":
                if event.get("ok"):
                    return dict(event["result"])
                raise SandboxFailure(str(event.get("error") or "The run failed."), str(event.get("code") or "failed"))
            elif event["type"] == "cancelled":
                raise SandboxCancelled(str(event.get("message") or "Cancelled."), event.get("partial"))
            else:
                wants_more = on_event(event) if on_event else True
            if not wants_more and cancel_sent_at is None:
                self._send({"type": "cancel"})
                cancel_sent_at = time.monotonic()

    def _read_event(self, until: float) -> dict[str, Any] | None:
        """The next JSON line from the child, or None if none came before `until` (or the child is gone)."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = until - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            event = json.loads(line)
        except ValueError as exc:
            raise SandboxError(f"The job sandbox wrote something that is not JSON: {line[:200]!r}") from exc
        if not isinstance(event, dict) or "type" not in event:
            raise SandboxError(f"The job sandbox wrote an unexpected message: {line[:200]!r}")
        return event

    def _death_reason(self) -> str:
        code = self.proc.wait() if self.proc is not None else None
        self.kill()
        if code is not None and code < 0:
            return describe_death(
                "The job sandbox",
                code,
                before=self._oom_before,
                after=OomCounters.read(),
                memory_limit=self.memory_bytes,
                limit_setting="FORGE_SANDBOX_MEMORY_BYTES",
            )
        return f"The job sandbox exited unexpectedly (exit status {code}); see the worker log."
