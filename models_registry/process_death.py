"""Why a sandbox process died, as far as the machine can tell: the signal, and whether the kernel's out-of-memory
killer acted while it ran. No Django here.

What can be known: the sandbox's own memory limit (RLIMIT_AS) makes allocations fail inside the process (Python's
MemoryError, torch's "can't allocate memory", C++'s std::bad_alloc), it never sends a signal. A SIGKILL comes from
the kernel's out-of-memory killer or from someone outside (an operator, a container runtime, a supervisor). The
kernel counts its OOM kills: per memory cgroup (cgroup v2 `memory.events`, v1 `memory.oom_control`, field
`oom_kill`) and for the whole machine (`/proc/vmstat`, `oom_kill`). Comparing the counters before and after a run
says whether an OOM kill happened meanwhile, in this worker's cgroup or on the machine. It cannot name the victim,
so the reason says "while it ran", not "it was".
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

MEMORY_ERROR_MARKERS = (b"MemoryError", b"allocate memory", b"std::bad_alloc", b"Cannot allocate memory")


def _counter(path: Path, name: str) -> int | None:
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == name:
                return int(value)
    except (OSError, ValueError):
        return None
    return None


def _memory_cgroup_dir() -> Path | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):  # cgroup v1
            return Path("/sys/fs/cgroup/memory") / path.lstrip("/")
        if controllers == "" and Path("/sys/fs/cgroup/cgroup.controllers").exists():  # cgroup v2
            return Path("/sys/fs/cgroup") / path.lstrip("/")
    return None


@dataclass(frozen=True)
class OomCounters:
    """The kernel's out-of-memory kill counters, where readable (None where not)."""

    cgroup: int | None
    machine: int | None

    @classmethod
    def read(cls) -> OomCounters:
        folder = _memory_cgroup_dir()
        cgroup = None
        if folder is not None:
            cgroup = _counter(folder / "memory.events", "oom_kill")
            if cgroup is None:
                cgroup = _counter(folder / "memory.oom_control", "oom_kill")
        return cls(cgroup=cgroup, machine=_counter(Path("/proc/vmstat"), "oom_kill"))


def _gib(value: int) -> str:
    return f"{value / 1024**3:.1f} GiB"


def memory_limit_hit(stderr: bytes) -> bool:
    return any(marker in stderr for marker in MEMORY_ERROR_MARKERS)


def describe_death(
    what: str,
    returncode: int,
    *,
    before: OomCounters,
    after: OomCounters,
    stderr: bytes = b"",
    memory_limit: int = 0,
    limit_setting: str = "",
) -> str:
    """One sentence or two for a person: `what` ("The inspection process") died with `returncode` (negative: the
    signal that killed it)."""
    if memory_limit_hit(stderr):
        limit = f" ({_gib(memory_limit)}{', ' + limit_setting if limit_setting else ''})" if memory_limit else ""
        return f"The model needs more memory than the sandbox's limit{limit} allows: an allocation failed."
    if returncode >= 0:
        return f"{what} exited with status {returncode}."
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    if name != "SIGKILL":
        kind = {
            "SIGSEGV": "the signal of a crash in native code (the model's operators or torch)",
            "SIGBUS": "the signal of a bad memory access in native code",
            "SIGABRT": "the signal of an abort in native code",
            "SIGTERM": "a request to stop, from outside the worker",
        }.get(name, "a signal from outside the worker, or a crash")
        return f"{what} was killed by {name}, {kind}."
    if after.cgroup is not None and before.cgroup is not None and after.cgroup > before.cgroup:
        return (
            f"{what} was killed by SIGKILL, and the kernel's out-of-memory killer killed a process in this worker's "
            "memory cgroup while it ran: the worker's memory limit was reached."
        )
    if after.machine is not None and before.machine is not None and after.machine > before.machine:
        return (
            f"{what} was killed by SIGKILL, and the kernel's out-of-memory killer acted on this machine while it "
            "ran: the machine ran out of memory."
        )
    if after.cgroup is None and after.machine is None:
        return (
            f"{what} was killed by SIGKILL. Whether for lack of memory cannot be told on this host (its kernel "
            "exposes no out-of-memory counters); the sandbox's own memory limit fails allocations, it never kills."
        )
    return (
        f"{what} was killed by SIGKILL from outside the worker. It was not for lack of memory: the kernel recorded "
        "no out-of-memory kill while it ran, and the sandbox's own memory limit fails allocations, it never kills."
    )
