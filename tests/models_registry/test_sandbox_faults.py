"""Sandboxes that die. An inspection whose sandbox is killed from outside is retried once, and its reason says
what the machine knows (the signal; whether the kernel's out-of-memory killer acted). A cancelled inspection stops
its sandbox and rejects the version, which never stays `validating`. The inspection runs in this process, as the
demo runs it; the test plays the outside world with real signals on the real sandbox process."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

import psutil
import pytest

from forge_site.celery import app
from forge_site.jobs import job_cancel, jobs_reap_stale
from forge_site.models import AuditEvent, Job, JobStatus
from models_registry.models import ModelVersion, RegisteredModel, VersionStatus
from models_registry.process_death import OomCounters
from models_registry.sandbox.executor import Sandbox, SandboxError
from models_registry.services import model_create, version_create
from models_registry.tasks import inspect_version_now
from tests.api.helpers import mlp, temp_upload
from tests.torchscript_models import MLP_SPEC, sandbox_artifact


@pytest.fixture(autouse=True)
def no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages go nowhere: the inspection runs here, not on a worker."""
    monkeypatch.setattr(app, "send_task", lambda *args, **kwargs: None)


@pytest.fixture
def model(engineer) -> RegisteredModel:
    return model_create(name="credit-risk", owner=engineer)


def _upload(model: RegisteredModel, user, version: str = "1.0.0") -> tuple[ModelVersion, Job]:
    mv = version_create(
        model=model, version=version, artifact=temp_upload("m.pt", mlp()), input_spec=MLP_SPEC, created_by=user
    )
    return mv, Job.objects.get(kind="inspect", subject_id=str(mv.pk))


def _sandboxes() -> list[psutil.Process]:
    return [
        child
        for child in psutil.Process().children(recursive=True)
        if "models_registry.sandbox.inspect_sandbox" in " ".join(child.cmdline())
    ]


@pytest.fixture
def outside() -> Iterator[Callable[..., list[int]]]:
    """Starts a watcher that does `acts[n](process)` to the n-th sandbox process started from now, as it appears."""
    threads: list[threading.Thread] = []
    stop = threading.Event()

    def watch(*acts: Callable[[psutil.Process], None]) -> list[int]:
        seen: list[int] = []

        def run() -> None:
            while len(seen) < len(acts) and not stop.is_set():
                for process in _sandboxes():
                    if process.pid not in seen and len(seen) < len(acts):
                        acts[len(seen)](process)
                        seen.append(process.pid)
                time.sleep(0.005)

        threads.append(threading.Thread(target=run, daemon=True))
        threads[-1].start()
        return seen

    yield watch
    stop.set()
    for thread in threads:
        thread.join(timeout=5)


def _signal(number: int) -> Callable[[psutil.Process], None]:
    return lambda process: process.send_signal(number)


def _expected_sigkill_words() -> str:
    counters = OomCounters.read()
    if counters.cgroup is None and counters.machine is None:
        return "cannot be told on this host"
    return "It was not for lack of memory: the kernel recorded no out-of-memory kill while it ran"


@pytest.mark.django_db
def test_a_sandbox_killed_from_outside_is_inspected_once_more_and_the_version_becomes_ready(
    model, engineer, outside
) -> None:
    mv, job = _upload(model, engineer)
    killed = outside(_signal(signal.SIGKILL))
    inspect_version_now(str(job.pk))
    mv.refresh_from_db()
    assert len(killed) == 1
    assert mv.status == VersionStatus.READY, mv.reason
    assert mv.inspection["retried_after"].startswith("The inspection process was killed by SIGKILL from outside")
    assert _expected_sigkill_words() in mv.inspection["retried_after"]


@pytest.mark.django_db
def test_a_sandbox_killed_twice_rejects_the_version_saying_both_times_what_is_known(model, engineer, outside) -> None:
    mv, job = _upload(model, engineer)
    killed = outside(_signal(signal.SIGKILL), _signal(signal.SIGSEGV))
    inspect_version_now(str(job.pk))
    mv.refresh_from_db()
    job.refresh_from_db()
    assert len(killed) == 2
    assert mv.status == VersionStatus.REJECTED and job.status == JobStatus.FAILED
    assert mv.reason.startswith("Inspected twice. The first time: The inspection process was killed by SIGKILL")
    assert _expected_sigkill_words() in mv.reason
    assert mv.reason.endswith(
        "The second time: The inspection process was killed by SIGSEGV, the signal of a crash in native code "
        "(the model's operators or torch)."
    )
    assert "usually" not in mv.reason  # no guessing


@pytest.mark.django_db
def test_a_model_over_the_memory_limit_is_not_retried(model, engineer, settings) -> None:
    """The sandbox's own limit (RLIMIT_AS) fails an allocation: deterministic, so once is enough, and the reason
    gives the limit. Here the dry run's input (2 x 1000 x 1000 x 200 float32, 1.6 GB) is over a 1 GiB limit."""
    settings.FORGE_INSPECT_MEMORY_BYTES = 1024**3
    huge = {"inputs": [{"name": "x", "shape": [None, 1000, 1000, 200], "dtype": "float32"}]}
    mv = version_create(
        model=model, version="1.0.0", artifact=temp_upload("m.pt", mlp()), input_spec=huge, created_by=engineer
    )
    inspect_version_now(str(Job.objects.get(kind="inspect", subject_id=str(mv.pk)).pk))
    mv.refresh_from_db()
    assert mv.status == VersionStatus.REJECTED
    assert mv.reason == (
        "The model needs more memory than the sandbox's limit (1.0 GiB, FORGE_INSPECT_MEMORY_BYTES) allows: "
        "an allocation failed."
    )


@pytest.mark.django_db
def test_a_memory_limit_below_what_loading_torch_takes_says_so(model, engineer, settings) -> None:
    settings.FORGE_INSPECT_MEMORY_BYTES = 256 * 1024**2  # the loader cannot even map torch's libraries
    mv, job = _upload(model, engineer)
    inspect_version_now(str(job.pk))
    mv.refresh_from_db()
    assert mv.status == VersionStatus.REJECTED and "more memory than the sandbox's limit (0.2 GiB" in mv.reason


@pytest.mark.django_db(transaction=True)
def test_cancelling_a_running_inspection_stops_its_sandbox_and_rejects_the_version(model, engineer, outside) -> None:
    mv, job = _upload(model, engineer)

    def hang_then_cancel(process: psutil.Process) -> None:
        process.suspend()  # a model that never returns
        job_cancel(job=Job.objects.get(pk=job.pk), actor=engineer)

    frozen = outside(hang_then_cancel)
    started = time.monotonic()
    inspect_version_now(str(job.pk))
    assert time.monotonic() - started < 30  # stopped at the next tick, not at FORGE_INSPECT_TIMEOUT_S
    assert len(frozen) == 1 and not psutil.pid_exists(frozen[0])
    mv.refresh_from_db()
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert mv.status == VersionStatus.REJECTED
    assert mv.reason.startswith(f"The inspection was cancelled by {engineer.username} before it finished")
    reject = AuditEvent.objects.get(action="version.reject")
    assert reject.after["status"] == "rejected" and "cancelled" in reject.after["reason"]


@pytest.mark.django_db
def test_cancelling_a_queued_inspection_rejects_the_version_at_once(model, engineer) -> None:
    mv, job = _upload(model, engineer)
    job_cancel(job=job, actor=engineer)
    mv.refresh_from_db()
    assert mv.status == VersionStatus.REJECTED and "Upload the artifact again" in mv.reason
    assert inspect_version_now(str(job.pk)) is None  # its message, delivered later, runs nothing


@pytest.mark.django_db
def test_an_inspection_the_reaper_gives_up_on_rejects_the_version(model, engineer, settings) -> None:
    mv, job = _upload(model, engineer)
    long_ago = job.created_at.replace(year=job.created_at.year - 1)
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, attempts=settings.FORGE_JOB_MAX_ATTEMPTS, heartbeat_at=long_ago, worker_host="gpu-1"
    )
    assert jobs_reap_stale()["failed"] == 1
    mv.refresh_from_db()
    assert mv.status == VersionStatus.REJECTED and mv.reason.startswith("The worker on gpu-1 stopped responding")


def test_a_job_sandbox_killed_from_outside_says_what_is_known_instead_of_guessing_memory(tmp_path) -> None:
    """The parity/benchmark sandbox (executor.Sandbox): killed mid-run, it said "(SIGKILL usually means the machine
    ran out of memory)" without looking; now it says what the kernel's counters say."""
    box = Sandbox(cache_entries=1)
    candidate = sandbox_artifact(tmp_path, "m.pt", mlp())
    request = {
        "type": "parity",
        "candidate": candidate,
        "input_spec": MLP_SPEC,
        "sample_inputs": None,
        "device": "cpu",
        "dtype": "float32",
        "reference": {"kind": "device", "device": "cpu", "dtype": "float64"},
        "samples": 1_000_000,
        "batch_size": 64,
        "seed": 0,
        "rtol": None,
        "atol": None,
    }

    def kill_on_first_event(event: object) -> bool:
        assert box.proc is not None
        os.kill(box.proc.pid, signal.SIGKILL)
        return True

    try:
        with pytest.raises(SandboxError) as died:
            box.run(request, timeout_s=120, on_event=kill_on_first_event)
    finally:
        box.kill()
    assert str(died.value).startswith("The job sandbox was killed by SIGKILL")
    assert _expected_sigkill_words() in str(died.value)
    assert "usually" not in str(died.value)
