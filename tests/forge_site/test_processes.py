"""Process identities: certain that a process is gone only where it can be checked, never guessing."""

from __future__ import annotations

import os
import subprocess
import sys

from forge_site.processes import process_gone, process_identity


def test_a_live_process_is_not_gone_and_an_exited_one_is() -> None:
    assert process_gone(process_identity()) is False
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    identity = process_identity(child.pid)
    assert process_gone(identity) is False
    child.kill()
    child.wait()
    assert process_gone(identity) is True


def test_a_reused_pid_is_not_taken_for_the_process_that_had_it() -> None:
    namespace, _, started = process_identity().rpartition("|")
    assert namespace.endswith(f"|{os.getpid()}")
    assert process_gone(f"{namespace}|{int(started) + 1}") is True  # same pid, another start time: another process


def test_a_zombie_is_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    identity = process_identity(child.pid)
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped: a zombie
    assert process_gone(identity) is True
    child.wait()


def test_a_process_elsewhere_or_unidentified_cannot_be_judged() -> None:
    host, boot, pid_ns, pid, started = process_identity().split("|")
    assert process_gone(f"another-host|{boot}|{pid_ns}|{pid}|{started}") is None
    assert process_gone(f"{host}|another-boot|{pid_ns}|{pid}|{started}") is None
    assert process_gone(f"{host}|{boot}|1|{pid}|{started}") is None  # another container's pid namespace
    assert process_gone("") is None
