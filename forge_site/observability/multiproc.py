"""Where the metrics of a process group live, for prometheus_client's multiprocess mode. No Django, no
prometheus_client at import: a gunicorn master imports this before anything else, and the folder must be named in
PROMETHEUS_MULTIPROC_DIR before prometheus_client is first imported (it picks its value class then).

Each process group has its own folder under FORGE_METRICS_DIR (default $FORGE_VAR_DIR/metrics): `web` (the console's
gunicorn), `serving` (the serving process), `worker-<node>` (one per Celery worker, named after its node: `gpu`,
`forge`). A group's starter (the gunicorn master, the Celery main process) empties the group's folder when it starts,
before it forks, so a restart never adds up the files of processes that are gone; other groups' folders are left
alone, which is why groups do not share one folder. Every process writes its own files (named by pid) there.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

ENV_DIR = "PROMETHEUS_MULTIPROC_DIR"
ENV_GROUP = "FORGE_METRICS_GROUP"
DEFAULT_GROUP = "web"
WORKER_PREFIX = "worker-"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def metrics_root() -> Path:
    """FORGE_METRICS_DIR, or `metrics` under FORGE_VAR_DIR (as forge_site.settings computes VAR_DIR)."""
    explicit = os.environ.get("FORGE_METRICS_DIR")
    if explicit:
        return Path(explicit)
    var_dir = os.environ.get("FORGE_VAR_DIR") or str(Path(__file__).resolve().parents[2] / "var")
    return Path(var_dir) / "metrics"


def group_name(raw: str) -> str:
    return _UNSAFE.sub("_", raw).strip("._") or DEFAULT_GROUP


def current_group() -> str:
    return group_name(os.environ.get(ENV_GROUP) or DEFAULT_GROUP)


def group_dir(group: str) -> Path:
    return metrics_root() / group_name(group)


def ensure_configured() -> Path:
    """Name this process's folder in PROMETHEUS_MULTIPROC_DIR unless a starter already did (its children inherit
    it); create it. Called before prometheus_client is imported."""
    path = os.environ.get(ENV_DIR)
    if not path:
        path = str(group_dir(current_group()))
        os.environ[ENV_DIR] = path
    Path(path).mkdir(parents=True, exist_ok=True)
    return Path(path)


def prepare(group: str, *, clean: bool) -> Path:
    """For a group's starter, before it forks: this group's folder, emptied when `clean`, named in the environment
    (so the processes it starts write there)."""
    path = group_dir(group)
    if clean and path.exists():
        shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    os.environ[ENV_DIR] = str(path)
    os.environ[ENV_GROUP] = group_name(group)
    return path


def process_exited(pid: int) -> None:
    """A process of this group is gone: drop its live gauges (counters and histograms stay, they still add up)."""
    path = os.environ.get(ENV_DIR)
    if not path:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, path)


def worker_group(node_name: str) -> str:
    """`gpu@host` -> `worker-gpu`: one folder per Celery worker node on a host."""
    return group_name(WORKER_PREFIX + node_name.split("@", 1)[0])


def exposed_dirs(*, include_workers: bool) -> list[Path]:
    """The folders a /metrics answer reads: this process's group, and every Celery worker group on this host."""
    own = Path(ensure_configured())
    dirs = [own]
    if include_workers and metrics_root().is_dir():
        dirs += sorted(p for p in metrics_root().glob(WORKER_PREFIX + "*") if p.is_dir() and p != own)
    return dirs
