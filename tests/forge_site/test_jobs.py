"""Jobs: claimed once, outcomes recorded, stale jobs re-queued or failed by the reaper, a killed worker recovered."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.test import override_settings
from django.utils import timezone
from kombu.exceptions import OperationalError

from forge_site import jobs
from forge_site.celery import app
from forge_site.jobs import JobContext, JobError, JobKeyReused, job_cancel, job_create, job_run, jobs_reap_stale
from forge_site.models import AuditEvent, Job, JobStatus
from forge_site.processes import process_gone, process_identity
from tests.concurrency import at_once
from tests.conftest import BASE_DIR, _worker_database_url, wait_for
from tests.forge_site.slow_tasks import SLOW_TASK


def _job(**fields: Any) -> Job:
    defaults: dict[str, Any] = {"kind": "test", "task_name": "tests.nothing", "subject_type": "t.t", "subject_id": "1"}
    return Job.objects.create(**{**defaults, **fields})


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[Any] | None, str | None]]:
    """Stands in for the broker: records what would have been sent."""
    calls: list[tuple[str, list[Any] | None, str | None]] = []

    def send_task(name: str, args: list[Any] | None = None, queue: str | None = None, **kwargs: Any) -> None:
        calls.append((name, args, queue))

    monkeypatch.setattr(app, "send_task", send_task)
    return calls


def _actions() -> list[str]:
    return list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))


@pytest.mark.django_db
def test_creating_a_job_audits_it_and_sends_the_message_only_on_commit(
    engineer, sent, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = job_create(kind="inspect", task_name="x.task", queue="gpu", subject=engineer, created_by=engineer)
        assert sent == []  # nothing reaches the broker before the row is committed
    assert len(callbacks) == 1
    assert sent == [("x.task", [str(job.pk)], "gpu")]
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.enqueued_at is not None
    assert _actions() == ["job.queue"]


def _keyed(user: Any, key: str, **params: Any) -> Job:
    return job_create(
        kind="parity",
        task_name="x.task",
        queue="gpu",
        subject=user,
        params=params,
        created_by=user,
        idempotency_key=key,
    )


@pytest.mark.django_db
def test_the_same_request_with_the_same_key_gets_the_first_job(
    engineer, sent, django_capture_on_commit_callbacks
) -> None:
    """A double click or a retried POST: one job, one audit event, one message."""
    with django_capture_on_commit_callbacks(execute=True):
        first = _keyed(engineer, "k-1", samples=1024, reference={"kind": "onnx"}, sizes=(1, 8))
    with django_capture_on_commit_callbacks(execute=True):
        again = _keyed(engineer, "k-1", samples=1024, reference={"kind": "onnx"}, sizes=(1, 8))
    assert again.pk == first.pk and Job.objects.count() == 1
    assert again.replayed and not first.replayed
    assert _actions() == ["job.queue"] and sent == [("x.task", [str(first.pk)], "gpu")]


@pytest.mark.django_db
def test_a_key_used_for_another_request_is_refused_and_starts_nothing(engineer, sent) -> None:
    first = _keyed(engineer, "k-1", samples=1024)
    with pytest.raises(JobKeyReused) as caught:
        _keyed(engineer, "k-1", samples=2048)
    assert caught.value.job.pk == first.pk and str(first.pk) in str(caught.value)
    with pytest.raises(JobKeyReused):  # another kind of job under the same key
        job_create(
            kind="benchmark",
            task_name="x.task",
            queue="gpu",
            subject=engineer,
            params={"samples": 1024},
            created_by=engineer,
            idempotency_key="k-1",
        )
    assert Job.objects.count() == 1


@pytest.mark.django_db
def test_keys_belong_to_their_user_and_requests_without_one_are_not_merged(engineer, manager, sent) -> None:
    mine, theirs = _keyed(engineer, "k-1", samples=1), _keyed(manager, "k-1", samples=1)
    assert mine.pk != theirs.pk
    assert _keyed(engineer, "", samples=1).pk != _keyed(engineer, "", samples=1).pk
    system = [job_create(kind="t", task_name="x", queue="q", subject=engineer, idempotency_key="k-2") for _ in "ab"]
    assert system[0].pk != system[1].pk and system[0].idempotency_key == ""  # no user: the key is not kept
    assert Job.objects.count() == 6


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("os.environ.get('DATABASE_URL', '').split(':')[0] not in {'postgres', 'postgresql'}")
def test_the_same_key_sent_four_times_at_once_starts_one_job(engineer, sent) -> None:
    got: list[Job] = []
    errors = at_once(lambda: got.append(_keyed(engineer, "k-race", samples=1024)))
    assert errors == [] and len(got) == 4
    assert len({job.pk for job in got}) == 1 and Job.objects.count() == 1
    assert sorted(job.replayed for job in got) == [False, True, True, True]  # the losers know they were repeats
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["job.queue"]


@pytest.mark.django_db
def test_a_job_whose_message_cannot_be_sent_stays_queued_for_the_reaper(monkeypatch) -> None:
    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(app, "send_task", broker_down)
    job = _job()
    jobs.job_enqueue(job_id=job.pk)  # must not raise
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.enqueued_at is None


@pytest.mark.django_db
def test_claiming_a_job_twice_runs_the_work_once() -> None:
    job = _job()
    runs: list[int] = []

    def work(ctx: JobContext) -> dict[str, Any]:
        runs.append(1)
        ctx.progress(50, "half way")
        return {"answer": 42}

    first = job_run(job_id=str(job.pk), work=work)
    second = job_run(job_id=str(job.pk), work=work)
    assert second is None
    assert runs == [1]
    assert first is not None and first.status == JobStatus.SUCCEEDED
    job.refresh_from_db()
    assert (job.status, job.progress, job.result, job.attempts) == (JobStatus.SUCCEEDED, 100, {"answer": 42}, 1)
    assert job.worker_host and job.started_at and job.finished_at and job.duration_s is not None
    assert _actions() == ["job.start", "job.finish"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("os.environ.get('DATABASE_URL', '').split(':')[0] not in {'postgres', 'postgresql'}")
def test_two_workers_claiming_at_the_same_moment_run_the_work_once() -> None:
    job = _job()
    runs: list[int] = []
    claimed: list[bool] = []
    errors = at_once(
        lambda: claimed.append(job_run(job_id=str(job.pk), work=lambda ctx: runs.append(1) or {}) is not None)
    )
    assert errors == [] and runs == [1]
    assert sorted(claimed) == [False, False, False, True]
    assert Job.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (JobError("The input spec declares 2 inputs but forward takes 1."), "failed", "The input spec declares 2"),
        (ValueError("boom"), "failed", "Internal error: ValueError: boom"),
        (SoftTimeLimitExceeded(), "timed_out", "The job ran past its time limit and was stopped."),
    ],
    ids=["job-error", "crash", "soft-time-limit"],
)
def test_a_failing_job_records_a_readable_error(error: Exception, status: str, message: str) -> None:
    job = _job()
    failures: list[Job] = []

    def work(ctx: JobContext) -> dict[str, Any]:
        ctx.progress(30, "working")
        raise error

    job_run(job_id=str(job.pk), work=work, on_failure=failures.append)
    job.refresh_from_db()
    assert job.status == status
    assert job.error.startswith(message)
    assert job.progress == 30  # where it stopped, not 100
    assert [f.pk for f in failures] == [job.pk]
    finish = AuditEvent.objects.get(action="job.finish")
    assert finish.after["status"] == status and finish.after["error"].startswith(message)


@pytest.mark.django_db
def test_a_cancelled_job_stops_at_its_next_progress_report(engineer) -> None:
    job = _job()
    reached: list[int] = []

    def work(ctx: JobContext) -> dict[str, Any]:
        for step in range(5):
            if step == 2:
                job_cancel(job=Job.objects.get(pk=ctx.job.pk), actor=engineer)
            ctx.progress(step * 20)
            reached.append(step)
        return {}

    job_run(job_id=str(job.pk), work=work)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert reached == [0, 1]
    assert "job.finish" not in _actions() and "job.cancel" in _actions()


def _stale_running(attempts: int, minutes_ago: int = 30) -> Job:
    long_ago = timezone.now() - timedelta(minutes=minutes_ago)
    return _job(
        status=JobStatus.RUNNING,
        attempts=attempts,
        started_at=long_ago,
        heartbeat_at=long_ago,
        worker_host="gpu-host-7",
        task_name="x.task",
        queue="gpu",
        enqueued_at=long_ago,
    )


@pytest.mark.django_db
def test_the_reaper_requeues_a_running_job_whose_worker_died(sent, django_capture_on_commit_callbacks) -> None:
    job = _stale_running(attempts=1)
    with django_capture_on_commit_callbacks(execute=True):
        counts = jobs_reap_stale()
    assert counts == {"requeued": 1, "failed": 0, "resent": 0}
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.message == "re-queued: worker lost"
    assert sent == [("x.task", [str(job.pk)], "gpu")]
    assert job.enqueued_at is not None
    assert AuditEvent.objects.get(action="job.reap").after == {"status": "queued", "worker": "gpu-host-7"}


@pytest.mark.django_db
def test_the_reaper_fails_a_job_after_its_last_attempt_with_a_readable_message(sent) -> None:
    job = _stale_running(attempts=settings.FORGE_JOB_MAX_ATTEMPTS)
    counts = jobs_reap_stale()
    assert counts == {"requeued": 0, "failed": 1, "resent": 0}
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.finished_at is not None
    assert job.error.startswith("The worker on gpu-host-7 stopped responding (last heartbeat ")
    assert job.error.endswith(f"after {settings.FORGE_JOB_MAX_ATTEMPTS} attempts.")
    assert sent == []


@pytest.mark.django_db
def test_the_reaper_leaves_a_job_with_a_fresh_heartbeat_alone(sent) -> None:
    job = _stale_running(attempts=1, minutes_ago=0)
    assert jobs_reap_stale() == {"requeued": 0, "failed": 0, "resent": 0}
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING


@pytest.mark.django_db
def test_the_reaper_resends_queued_jobs_whose_message_was_lost(sent) -> None:
    long_ago = timezone.now() - timedelta(hours=1)
    lost = _job(task_name="x.lost", queue="gpu", enqueued_at=long_ago)
    never_sent = _job(task_name="x.never")
    Job.objects.filter(pk=never_sent.pk).update(created_at=long_ago)
    _job(task_name="x.recent", enqueued_at=timezone.now())
    finished = _job(task_name="x.done", status=JobStatus.SUCCEEDED)
    Job.objects.filter(pk=finished.pk).update(created_at=long_ago)
    counts = jobs_reap_stale()
    assert counts == {"requeued": 0, "failed": 0, "resent": 2}
    assert sorted(name for name, _, _ in sent) == ["x.lost", "x.never"]
    lost.refresh_from_db()
    assert lost.enqueued_at > long_ago


def _start_worker(queue: str, name: str) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        DATABASE_URL=_worker_database_url(),
        REDIS_URL=settings.REDIS_URL,
        FORGE_VAR_DIR=str(settings.VAR_DIR),
    )
    log = open(settings.VAR_DIR / "test-kill-worker.log", "ab")  # noqa: SIM115
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "forge_site", "worker", "-Q", queue, "-c", "1"),
            *("-I", "tests.forge_site.slow_tasks", "-n", f"{name}@%h", "--without-gossip", "--without-mingle"),
            *("--loglevel", "INFO"),
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.django_db(transaction=True)
@pytest.mark.services
def test_a_job_whose_worker_is_killed_mid_run_is_recovered_by_the_reaper() -> None:
    # Its own queue and workers: the session worker must not pick this job up, and this test kills its worker.
    queue = f"kill-test-{uuid.uuid4().hex[:8]}"
    job = _job(kind="slow", task_name=SLOW_TASK, queue=queue)
    jobs.job_enqueue(job_id=job.pk)
    first = _start_worker(queue, f"doomed-{os.getpid()}")
    try:
        running = wait_for(
            lambda: Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, progress__gt=1).first(), timeout=60
        )
        os.killpg(first.pid, signal.SIGKILL)  # no warm shutdown, no chance to record anything
        first.wait(timeout=10)
    finally:
        _stop(first, signal.SIGKILL)
    time.sleep(0.5)
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.attempts == 1  # the row still says running: only the reaper knows
    assert job.worker_host == running.worker_host

    with override_settings(FORGE_JOB_HEARTBEAT_STALE_S=1):
        time.sleep(1.2)
        assert jobs_reap_stale() == {"requeued": 1, "failed": 0, "resent": 0}
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.enqueued_at is not None

    second = _start_worker(queue, f"rescuer-{os.getpid()}")
    try:
        done = wait_for(lambda: Job.objects.filter(pk=job.pk, status=JobStatus.SUCCEEDED).first(), timeout=60)
    finally:
        _stop(second)
    assert done.attempts == 2
    assert done.result == {"attempt": 2, "steps": 3}
    actions = _actions()
    assert actions.count("job.start") == 2 and actions.count("job.reap") == 1 and actions.count("job.finish") == 1


# --- a backlog is not amplified: the reaper re-sends only what the broker lost -------------------------------------


def _redis() -> Any:
    import redis

    return redis.Redis.from_url(settings.REDIS_URL)


@pytest.fixture
def backlog_queue() -> Iterator[str]:
    """A queue no worker consumes, on the real Redis broker; removed afterwards."""
    queue = f"backlog-{uuid.uuid4().hex[:8]}"
    yield queue
    client = _redis()
    client.delete(queue)
    for tag, raw in client.hgetall("unacked").items():
        if json.loads(raw)[2] == queue:  # [message, exchange, routing key]
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)


def _backdate_sends(jobs: list[Job]) -> None:
    """As if FORGE_JOB_QUEUED_STALE_S had passed since each job's message was last sent."""
    Job.objects.filter(pk__in=[job.pk for job in jobs]).update(enqueued_at=timezone.now() - timedelta(hours=2))


@pytest.mark.django_db
@pytest.mark.services
def test_the_reaper_does_not_resend_a_backlog_whose_messages_wait_in_the_broker(backlog_queue) -> None:
    backlog = [_job(task_name="tests.nobody_consumes", queue=backlog_queue) for _ in range(40)]
    for job in backlog:
        jobs.job_enqueue(job_id=job.pk)
    client = _redis()
    assert client.llen(backlog_queue) == 40
    for _ in range(4):  # four reaper runs, each after the stale period (each used to add 40 messages)
        _backdate_sends(backlog)
        assert jobs_reap_stale() == {"requeued": 0, "failed": 0, "resent": 0}
    assert client.llen(backlog_queue) == 40

    # Redis loses five messages (a restart without persistence loses them all; a few is the harder case).
    for _ in range(5):
        client.rpop(backlog_queue)
    _backdate_sends(backlog)
    assert jobs_reap_stale() == {"requeued": 0, "failed": 0, "resent": 5}
    assert client.llen(backlog_queue) == 40
    assert jobs_reap_stale()["resent"] == 0  # the re-sent ones are fresh again


@pytest.mark.django_db
@pytest.mark.services
def test_a_message_a_worker_holds_unacknowledged_is_not_resent_until_that_delivery_is_old(backlog_queue) -> None:
    job = _job(task_name="tests.nobody_consumes", queue=backlog_queue)
    jobs.job_enqueue(job_id=job.pk)
    with app.connection_for_read() as conn:  # a consumer takes the message and does not acknowledge it
        held = conn.SimpleQueue(backlog_queue).get(timeout=5)
        assert held.decode()[0] == [str(job.pk)]
        client = _redis()
        assert client.llen(backlog_queue) == 0 and client.hlen("unacked") >= 1
        _backdate_sends([job])
        assert jobs_reap_stale()["resent"] == 0  # delivered a moment ago: a worker has it
        with override_settings(FORGE_JOB_QUEUED_STALE_S=1):
            time.sleep(1.1)
            _backdate_sends([job])
            assert jobs_reap_stale()["resent"] == 1  # delivered longer ago than the stale period: lost with its worker
        assert client.llen(backlog_queue) == 1
        held.ack()


# --- a redelivered message takes back a job whose process is certainly gone -----------------------------------------


def _dead_process_identity() -> str:
    """The identity of a real process that has since exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        identity = process_identity(child.pid)
    finally:
        child.kill()
        child.wait()
    assert identity and process_gone(identity) is True
    return identity


def _running_held_by(identity: str, attempts: int = 1) -> Job:
    now = timezone.now()  # a fresh heartbeat: the reaper would not touch it for FORGE_JOB_HEARTBEAT_STALE_S
    return _job(status=JobStatus.RUNNING, attempts=attempts, started_at=now, heartbeat_at=now, worker_process=identity)


@pytest.mark.django_db
def test_a_redelivered_message_takes_back_a_job_whose_process_is_gone_at_once(sent) -> None:
    job = _running_held_by(_dead_process_identity())
    done = job_run(job_id=str(job.pk), work=lambda ctx: {"attempt": ctx.job.attempts})
    assert done is not None and done.status == JobStatus.SUCCEEDED and done.result == {"attempt": 2}
    assert done.worker_pid == os.getpid() and done.worker_process == process_identity()
    assert _actions() == ["job.reap", "job.start", "job.finish"]
    assert sent == []  # the delivery that took it back ran it: no second message


@pytest.mark.django_db
def test_a_redelivered_message_never_runs_a_job_whose_process_is_alive_or_cannot_be_checked(sent) -> None:
    alive = _running_held_by(process_identity())  # this very process: alive
    elsewhere = _running_held_by("gpu-host-9|0b1c2d3e-boot|4026531836|4242|123456")  # another host: cannot tell
    unknown = _running_held_by("")  # recorded by a process that could not say (not Linux)
    runs: list[int] = []
    for job in (alive, elsewhere, unknown):
        assert job_run(job_id=str(job.pk), work=lambda ctx: runs.append(1) or {}) is None
        job.refresh_from_db()
        assert job.status == JobStatus.RUNNING and job.attempts == 1
    assert runs == [] and _actions() == []


@pytest.mark.django_db
def test_a_job_whose_process_is_gone_after_its_last_attempt_fails_and_says_why(sent) -> None:
    job = _running_held_by(_dead_process_identity(), attempts=settings.FORGE_JOB_MAX_ATTEMPTS)
    assert job_run(job_id=str(job.pk), work=lambda ctx: {}) is None
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "stopped responding" in job.error
    assert _actions() == ["job.reap"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.services
def test_a_killed_pool_process_s_job_is_taken_back_and_finished_long_before_the_stale_period() -> None:
    """SIGKILL the worker's pool process mid-job (its main process lives on): Celery re-delivers the message, and
    the job is taken back at once (FORGE_JOB_HEARTBEAT_STALE_S is 900 s; the reaper is never called here)."""
    assert settings.FORGE_JOB_HEARTBEAT_STALE_S >= 600
    queue = f"kill-test-{uuid.uuid4().hex[:8]}"
    job = _job(kind="slow", task_name=SLOW_TASK, queue=queue)
    jobs.job_enqueue(job_id=job.pk)
    worker = _start_worker(queue, f"pool-kill-{os.getpid()}")
    try:
        running = wait_for(
            lambda: Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, progress__gt=1).first(), timeout=60
        )
        assert running.worker_pid and running.worker_pid != worker.pid  # a pool process, not the main one
        os.kill(running.worker_pid, signal.SIGKILL)
        done = wait_for(lambda: Job.objects.filter(pk=job.pk, status=JobStatus.SUCCEEDED).first(), timeout=90)
        assert worker.poll() is None  # the worker itself kept running
    finally:
        _stop(worker)
    assert done.attempts == 2 and done.result == {"attempt": 2, "steps": 3}
    assert done.worker_pid != running.worker_pid
    assert (done.finished_at - running.heartbeat_at).total_seconds() < settings.FORGE_JOB_HEARTBEAT_STALE_S
    reap = AuditEvent.objects.get(action="job.reap", object_id=str(job.pk))
    assert reap.after["status"] == "queued" and f"pid {running.worker_pid}" in reap.after["worker"]
    actions = _actions()
    assert actions.count("job.start") == 2 and actions.count("job.finish") == 1
