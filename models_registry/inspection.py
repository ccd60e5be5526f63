"""Runs the inspection sandbox as a child process with an address-space limit and a wall-clock limit."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class InspectionOutcome:
    ok: bool
    inspection: dict[str, Any] | None
    reason: str


def _limits(memory_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_inspection(
    *,
    artifact: str,
    size: int,
    input_spec: dict[str, Any] | None,
    sample_inputs: str | None,
    timeout_s: int,
    memory_bytes: int,
    max_uncompressed: int,
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
    proc = subprocess.Popen(
        [sys.executable, "-m", "models_registry.inspect_sandbox"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=str(BASE_DIR),
        env=env,
        start_new_session=True,
        preexec_fn=lambda: _limits(memory_bytes),
    )
    try:
        stdout, stderr = proc.communicate(json.dumps(request).encode(), timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return InspectionOutcome(
            False, None, f"Loading and dry-running the model did not finish within {timeout_s} s; it was stopped."
        )
    lines = [line for line in stdout.decode(errors="replace").splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        if proc.returncode and proc.returncode < 0:
            name = signal.Signals(-proc.returncode).name
            reason = f"The inspection process was killed by {name} while loading the model"
        else:
            tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            reason = f"The inspection process failed: {tail[0][:300]}"
        if b"MemoryError" in stderr or b"allocate memory" in stderr:
            reason = "The model needs more memory than the inspection limit allows."
        return InspectionOutcome(False, None, reason)
    answer = json.loads(lines[-1])
    if answer.get("ok"):
        return InspectionOutcome(True, answer["inspection"], "")
    return InspectionOutcome(False, None, answer.get("reason", "Inspection failed."))
