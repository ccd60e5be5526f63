"""`GET /healthz`: 200 only when the database, Redis and at least one worker answer; 503 says what is down."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis
from django.test import override_settings
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def empty_redis() -> Iterator[str]:
    """A Redis of its own that no worker listens on."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed; run the tests with `make test`")
    port = _free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port, socket_connect_timeout=0.2)
        for _ in range(50):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.services
def test_it_is_healthy_when_everything_answers(client, celery_worker) -> None:
    response = client.get(reverse("healthz"))
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
    assert body["checks"]["workers"]["ok"] and body["checks"]["workers"]["workers"]
    assert response["Cache-Control"].startswith("max-age=0")


def test_it_is_unhealthy_when_redis_is_down(client) -> None:
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{_free_port()}/0"):
        response = client.get(reverse("healthz"))
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "degraded"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is False and "Connection" in body["checks"]["redis"]["error"]
    assert body["checks"]["workers"] == {"ok": False, "error": "redis is down", "workers": []}


def test_it_is_unhealthy_when_no_worker_answers(client, empty_redis) -> None:
    with override_settings(REDIS_URL=empty_redis):
        response = client.get(reverse("healthz"))
    body = response.json()
    assert response.status_code == 503
    assert body["checks"]["redis"]["ok"] is True
    assert body["checks"]["workers"] == {"ok": False, "error": "no Celery worker answered within 1 s", "workers": []}


def test_anyone_may_ask_without_signing_in(client) -> None:
    response = client.get(reverse("healthz"))
    assert response.status_code in {200, 503}
    assert set(response.json()["checks"]) == {"database", "redis", "workers"}


def test_the_web_scope_checks_only_what_a_web_node_needs(client) -> None:
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{_free_port()}/0"):
        response = client.get(reverse("healthz"), {"scope": "web"})
    assert response.status_code == 200
    assert set(response.json()["checks"]) == {"database"}
