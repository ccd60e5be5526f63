"""Shared fixtures: users in each role, clients, and a real Celery worker against the test database."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from forge_site.roles import ROLE_GROUPS, Role

BASE_DIR = Path(__file__).resolve().parent.parent
PASSWORD = "forge-test-pass-1"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: object) -> None:
    # PBKDF2 at full strength costs ~0.5 s per user; no test here is about hashing strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _no_rate_limit_state() -> None:
    """Rate-limit counters and login locks live in Redis (the `throttle` cache), across tests and test runs: each
    test starts with none. Without Redis there is nothing to clear (and the limits fail open)."""
    from django.core.cache import caches

    from forge_site.throttles import counters

    counters.reset()
    with contextlib.suppress(Exception):
        caches["throttle"].clear()


@pytest.fixture(scope="session", autouse=True)
def _worker_metrics_folders_removed() -> Iterator[None]:
    """Celery workers started by tests are named `<name>-<this pid>`; each leaves a metrics folder
    (forge_site.observability.multiproc) that no later run reads. Remove them when the session ends."""
    yield
    from forge_site.observability import multiproc

    for folder in multiproc.metrics_root().glob(f"{multiproc.WORKER_PREFIX}*-{os.getpid()}"):
        shutil.rmtree(folder, ignore_errors=True)


def make_user(username: str, role: Role | None) -> User:
    user = User.objects.create_user(username=username, password=PASSWORD, email=f"{username}@example.com")
    if role is not None:
        user.groups.add(Group.objects.get_or_create(name=ROLE_GROUPS[role])[0])
    return user


@pytest.fixture
def engineer(db: None) -> User:
    return make_user("erin", Role.ENGINEER)


@pytest.fixture
def manager(db: None) -> User:
    return make_user("mo", Role.MANAGER)


@pytest.fixture
def officer(db: None) -> User:
    return make_user("olga", Role.OFFICER)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def api_as(db: None) -> Callable[[User], APIClient]:
    def _client(user: User) -> APIClient:
        client = APIClient()
        client.force_authenticate(user)
        return client

    return _client


def _worker_database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    host, port = db.get("HOST") or "localhost", db.get("PORT") or 5432
    return f"postgres://{db.get('USER', '')}:{db.get('PASSWORD', '')}@{host}:{port}/{db['NAME']}"


@pytest.fixture(scope="session")
def celery_worker(django_db_setup: None, django_db_blocker: object) -> Iterator[subprocess.Popen[bytes]]:
    """A real `celery worker` process consuming both queues, pointed at the test database."""
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:  # pragma: no cover - the Makefile starts Redis
        pytest.fail(f"Redis at {settings.REDIS_URL} is not running ({exc}); run the tests with `make test`.")
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    env = dict(
        os.environ,
        DATABASE_URL=_worker_database_url(),
        REDIS_URL=settings.REDIS_URL,
        FORGE_VAR_DIR=str(settings.VAR_DIR),
        FORGE_STORAGE=str(settings.FORGE_STORAGE),
        FORGE_INSPECT_TIMEOUT_S=str(settings.FORGE_INSPECT_TIMEOUT_S),
        # Alert deliveries go to receivers the tests start on 127.0.0.1, and wait briefly.
        FORGE_ALERT_ALLOW_LOOPBACK="1",
        FORGE_ALERT_READ_TIMEOUT_S="1",
        FORGE_ALERT_TOTAL_TIMEOUT_S="3",
        FORGE_ALERT_RETRY_BASE_S="0.2",
    )
    log = open(settings.VAR_DIR / "test-worker.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "forge_site",
            "worker",
            "-Q",
            "gpu,default",
            "-c",
            "1",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"test-worker-{os.getpid()}@%h",
            "--loglevel",
            "INFO",
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    from forge_site.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the celery worker exited with {proc.returncode}; see var/test-worker.log")
        if app.control.ping(timeout=0.5):
            break
    else:
        pytest.fail("the celery worker did not answer a ping within 60 s")
    yield proc
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


def wait_for(predicate: Callable[[], object], timeout: float = 60, interval: float = 0.2) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
