"""Runs the inspection sandbox as a child process with an address-space limit and a wall-clock limit."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forge_site.observability.tracing import traceparent
from models_registry.process_death import OomCounters, describe_death, memory_limit_hit

BASE_DIR = Path(__file__).resolve().parents[2]  # the repository root (models_registry/sandbox/ is two below)
TICK_S = 1.0

# Called about every TICK_S while the sandbox runs, with the sandbox's pid; returning False stops it (a cancel).
TickHook = Callable[[int], bool]


@dataclass(frozen=True)
class InspectionOutcome:
    ok: bool
    inspection: dict[str, Any] | None
    reason: str
    killed: bool = False  # the process died from a signal it did not cause itself: worth one more try
    cancelled: bool = False


def _limits(memory_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    with contextlib.suppress(OSError, AttributeError):  # PR_SET_PDEATHSIG: if the worker process dies, so does this
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def run_inspection(
    *,
    artifact: str,
    size: int,
    input_spec: dict[str, Any] | None,
    sample_inputs: str | None,
    timeout_s: int,
    memory_bytes: int,
    max_uncompressed: int,
    on_tick: TickHook | None = None,
) -> InspectionOutcome:
    request = {
        "artifact": artifact,
        "size": size,
        "input_spec": input_spec,
        "sample_inputs": sample_inputs,
        "max_uncompressed": max_uncompressed,
        "threads": 1,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE", "SECRET", "REDIS"))}
    env["PYTHONPATH"] = str(BASE_DIR)
    env["OMP_NUM_THREADS"] = "1"
    if context := traceparent():  # the trace this inspection belongs to (W3C Trace Context's variable name)
        env["TRACEPARENT"] = context
    counters = OomCounters.read()
    proc = subprocess.Popen(
        [sys.executable, "-m", "models_registry.sandbox.inspect_sandbox"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=str(BASE_DIR),
        env=env,
        start_new_session=True,
        preexec_fn=lambda: _limits(memory_bytes),
    )
    deadline = time.monotonic() + timeout_s
    message: bytes | None = json.dumps(request).encode()
    while True:
        try:
            stdout, stderr = proc.communicate(message, timeout=max(0.01, min(TICK_S, deadline - time.monotonic())))
            break
        except subprocess.TimeoutExpired:
            message = None  # sent with the first call; later calls only go on reading
            timed_out = time.monotonic() >= deadline
            if timed_out or (on_tick is not None and not on_tick(proc.pid)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                if not timed_out:
                    return InspectionOutcome(False, None, "The inspection was cancelled.", cancelled=True)
                return InspectionOutcome(
                    False,
                    None,
                    f"Loading and dry-running the model did not finish within {timeout_s} s; it was stopped.",
                )
    lines = [line for line in stdout.decode(errors="replace").splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        if memory_limit_hit(stderr) or (proc.returncode is not None and proc.returncode < 0):
            reason = describe_death(
                "The inspection process",
                proc.returncode,
                before=counters,
                after=OomCounters.read(),
                stderr=stderr,
                memory_limit=memory_bytes,
                limit_setting="FORGE_INSPECT_MEMORY_BYTES",
            )
            return InspectionOutcome(False, None, reason, killed=proc.returncode < 0 and not memory_limit_hit(stderr))
        tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return InspectionOutcome(False, None, f"The inspection process failed: {tail[0][:300]}")
    answer = json.loads(lines[-1])
    if answer.get("ok"):
        return InspectionOutcome(True, answer["inspection"], "")
    return InspectionOutcome(False, None, answer.get("reason", "Inspection failed."))
