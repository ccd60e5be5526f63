"""Which process runs a job, said precisely enough that another process can tell for certain that it is gone.

A pid alone is not enough: pids are reused, and two containers on one host (or one container after a restart) can
each have a process 1234. So the identity is the host name, the kernel's boot id, the pid namespace, the pid and
the process's start time (in clock ticks since boot, from /proc). Another process can judge it only from the same
host, boot and pid namespace; anywhere else the answer is "cannot tell", and the caller must wait for the
heartbeat to go stale instead. No Django here.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

PROC = Path("/proc")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _stat_fields(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process from /proc/<pid>/stat, or None when there is no such process."""
    raw = _read(PROC / str(pid) / "stat")
    if raw is None:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()  # the command name (field 2) may hold spaces and parentheses
    return fields[0], fields[19]  # field 3 (state) and field 22 (starttime), counted from after the name


def _namespace() -> str | None:
    boot = _read(PROC / "sys" / "kernel" / "random" / "boot_id")
    try:
        pid_ns = os.stat(PROC / "self" / "ns" / "pid").st_ino
    except OSError:
        return None
    return f"{socket.gethostname()}|{boot}|{pid_ns}" if boot else None


def process_identity(pid: int | None = None) -> str:
    """This process's identity (or that of `pid`, seen from here); "" where /proc cannot tell (not Linux)."""
    pid = pid or os.getpid()
    namespace, stat = _namespace(), _stat_fields(pid)
    if namespace is None or stat is None:
        return ""
    return f"{namespace}|{pid}|{stat[1]}"


def process_gone(identity: str) -> bool | None:
    """True when the process is certainly gone (no such pid, a zombie, or another process under its pid); False
    when it is alive; None when this process cannot tell (another host, boot or container, or no identity)."""
    namespace, _, rest = identity.rpartition("|")  # rest = start time
    namespace, _, pid = namespace.rpartition("|")
    if not identity or not pid.isdigit() or namespace != _namespace():
        return None
    stat = _stat_fields(int(pid))
    if stat is None:
        return True
    state, started = stat
    return started != rest or state in {"Z", "X", "x"}
