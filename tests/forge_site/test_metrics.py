"""/metrics: the Prometheus exposition read back with prometheus_client's own parser, after real requests, with the
values of several processes added up (prometheus_client's multiprocess mode), and who may read it."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.contrib.auth.models import AnonymousUser
from django.test import Client, RequestFactory
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.parser import text_string_to_metric_families

from forge_site.jobs import job_cancel, job_create
from forge_site.observability import multiproc, serving_observe
from forge_site.observability.metrics import metrics_exposition
from forge_site.observability.views import metrics_wsgi_app, process_group_metrics
from tests.api.helpers import bearer_client, mlp, upload
from tests.conftest import BASE_DIR, wait_for

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """{(sample name, labels): value} of an exposition, parsed by prometheus_client."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(parsed: dict, name: str, **labels: str) -> float:
    return parsed.get((name, frozenset(labels.items())), 0.0)


def scrape(client: Client, **extra: str) -> dict:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return samples(response.content.decode())


def test_served_requests_appear_per_rollout_version_and_arm_with_a_latency_histogram(db) -> None:
    rollout = random.randrange(10**6, 10**9)  # a rollout no other test or earlier run has counted
    for latency in (0.0004, 0.002, 0.003, 0.030):
        serving_observe(rollout_id=rollout, version="1.1.0", arm="challenger", latency_s=latency, error=False)
    serving_observe(rollout_id=rollout, version="1.1.0", arm="challenger", latency_s=0.2, error=True)
    serving_observe(rollout_id=rollout, version="1.0.0", arm="champion", latency_s=0.001, error=False)

    parsed = scrape(Client())
    arm = {"rollout": str(rollout), "version": "1.1.0", "arm": "challenger"}
    assert value(parsed, "forge_serving_requests_total", **arm, outcome="ok") == 4
    assert value(parsed, "forge_serving_requests_total", **arm, outcome="error") == 1
    assert value(parsed, "forge_serving_latency_seconds_count", **arm) == 5
    assert value(parsed, "forge_serving_latency_seconds_sum", **arm) == pytest.approx(0.2354)
    assert value(parsed, "forge_serving_latency_seconds_bucket", **arm, le="0.0005") == 1
    assert value(parsed, "forge_serving_latency_seconds_bucket", **arm, le="0.0025") == 2
    assert value(parsed, "forge_serving_latency_seconds_bucket", **arm, le="0.025") == 3
    assert value(parsed, "forge_serving_latency_seconds_bucket", **arm, le="+Inf") == 5
    champion = {"rollout": str(rollout), "version": "1.0.0", "arm": "champion"}
    assert value(parsed, "forge_serving_requests_total", **champion, outcome="ok") == 1


COUNT_IN_ANOTHER_PROCESS = """
import sys
from forge_site.observability import serving_observe
for _ in range(int(sys.argv[2])):
    serving_observe(rollout_id=int(sys.argv[1]), version="2.0.0", arm="champion", latency_s=0.004, error=False)
"""


def test_the_counts_of_several_processes_add_up(db) -> None:
    rollout = random.randrange(10**6, 10**9)
    for _ in range(3):
        serving_observe(rollout_id=rollout, version="2.0.0", arm="champion", latency_s=0.004, error=False)
    for count in ("5", "7"):  # two more processes writing into the same folder, each its own file
        subprocess.run(
            [sys.executable, "-c", COUNT_IN_ANOTHER_PROCESS, str(rollout), count],
            cwd=BASE_DIR,
            env={**os.environ, "PYTHONPATH": str(BASE_DIR)},
            check=True,
            timeout=60,
        )
    parsed = samples(metrics_exposition(include_workers=False).decode())
    labels = {"rollout": str(rollout), "version": "2.0.0", "arm": "champion"}
    assert value(parsed, "forge_serving_requests_total", **labels, outcome="ok") == 15
    assert value(parsed, "forge_serving_latency_seconds_count", **labels) == 15


def test_console_requests_are_counted_by_route_and_status(db) -> None:
    client = Client()
    before = scrape(client)
    for _ in range(3):
        assert client.get("/healthz?scope=web").status_code == 200
    assert client.get("/no/such/page/").status_code == 404
    after = scrape(client)
    healthz = {"method": "GET", "route": "healthz"}
    assert (
        value(after, "forge_http_requests_total", **healthz, status="200")
        - value(before, "forge_http_requests_total", **healthz, status="200")
        == 3
    )
    assert (
        value(after, "forge_http_request_duration_seconds_count", **healthz)
        - value(before, "forge_http_request_duration_seconds_count", **healthz)
        == 3
    )
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert (
        value(after, "forge_http_requests_total", **unmatched) - value(before, "forge_http_requests_total", **unmatched)
        == 1
    )


def test_it_answers_loopback_but_not_through_a_proxy(db) -> None:
    client = Client()
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    refused = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert refused.status_code == 403 and b"FORGE_METRICS_TOKEN" in refused.content
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403


def test_with_token_access_only_the_token_is_let_in(db, settings) -> None:
    settings.FORGE_METRICS_ACCESS = "token"
    settings.FORGE_METRICS_TOKEN = "s3cret-scrape-token"
    client = Client()
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert (
        client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token").status_code
        == 200
    )
    settings.FORGE_METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403  # no token set: nobody


def test_open_access_lets_anyone_in(db, settings) -> None:
    settings.FORGE_METRICS_ACCESS = "open"
    assert Client().get("/metrics", REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="1.2.3.4").status_code == 200


def test_worker_groups_are_named_after_the_node() -> None:
    assert multiproc.worker_group("gpu@host-1") == "worker-gpu"
    assert multiproc.worker_group("test worker/../x@h") == "worker-test_worker_.._x"


# --- jobs ------------------------------------------------------------------------------------------------------------


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_job_a_real_worker_ran_is_counted_with_its_run_time_and_queue_wait(celery_worker, engineer) -> None:
    job_labels = {"kind": "inspect", "status": "succeeded"}
    before = scrape(Client())
    client = bearer_client(engineer)
    assert client.post("/api/v1/models/", {"name": "metered"}, format="json").status_code == 201
    created = upload(client, "metered", "1.0.0", mlp())
    assert created.status_code == 201, created.content
    job_id = created.json()["job_id"]
    wait_for(lambda: client.get(f"/api/v1/jobs/{job_id}/").json()["status"] == "succeeded", timeout=90)

    def counted() -> dict | None:
        now = scrape(Client())
        return (
            now
            if value(now, "forge_jobs_total", **job_labels) > value(before, "forge_jobs_total", **job_labels)
            else None
        )

    after = wait_for(counted, timeout=10)
    assert value(after, "forge_jobs_total", **job_labels) - value(before, "forge_jobs_total", **job_labels) == 1
    for histogram, labels in (
        ("forge_job_duration_seconds", job_labels),
        ("forge_job_queue_wait_seconds", {"kind": "inspect"}),
    ):
        assert value(after, f"{histogram}_count", **labels) - value(before, f"{histogram}_count", **labels) == 1
        assert value(after, f"{histogram}_sum", **labels) > value(before, f"{histogram}_sum", **labels)
    # counted by the worker's pool process, in the worker node's own folder, which the console's /metrics reads
    node = celery_worker.args[celery_worker.args.index("-n") + 1]
    folder = multiproc.metrics_root() / multiproc.worker_group(node)
    assert list(folder.glob("counter_*.db")), f"no metrics files in {folder}"


@pytest.mark.django_db
def test_a_cancelled_job_is_counted_where_it_was_cancelled(engineer, django_capture_on_commit_callbacks) -> None:
    kind = f"metered-{random.randrange(10**9)}"
    with django_capture_on_commit_callbacks(execute=False):  # its message is never sent
        job = job_create(kind=kind, task_name="forge_site.none", queue="default", subject=engineer)
    with django_capture_on_commit_callbacks(execute=True):
        job_cancel(job=job, actor=engineer)
        job_cancel(job=job, actor=engineer)  # a second click changes nothing and counts nothing
    parsed = samples(metrics_exposition(include_workers=False).decode())
    assert value(parsed, "forge_jobs_total", kind=kind, status="cancelled") == 1
    assert value(parsed, "forge_job_duration_seconds_count", kind=kind, status="cancelled") == 0  # it never ran


# --- under gunicorn, as `make run` serves it --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def gunicorn_web(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """The console under gunicorn with forge_site.gunicorn_conf, two workers, JSON logs, on SQLite in tmp_path."""
    port, var_dir = _free_port(), tmp_path / "var"
    stale = var_dir / "metrics" / "web" / "counter_999999.db"  # a process of an earlier run
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"\0" * 16)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR", "FORGE_METRICS_GROUP", "FORGE_METRICS_DIR"}
    }
    env.update(FORGE_VAR_DIR=str(var_dir), FORGE_LOG_FORMAT="json")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, env=env, check=True, timeout=120)
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [
                *(GUNICORN, "forge_site.wsgi:application", "-c", "python:forge_site.gunicorn_conf"),
                *("--bind", f"127.0.0.1:{port}", "--workers", "2", "--access-logfile", "-"),
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log_path.read_text()
            try:
                if requests.get(f"{url}/healthz?scope=web", timeout=30).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "gunicorn did not answer within 60 s"
            time.sleep(0.2)
        yield url, var_dir, log_path
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_under_gunicorn_two_workers_add_up_and_every_log_line_is_json(gunicorn_web) -> None:
    url, var_dir, log_path = gunicorn_web
    folder = var_dir / "metrics" / "web"
    assert not (folder / "counter_999999.db").exists()  # the master emptied its group's folder when it started
    session_less = [requests.get(f"{url}/healthz?scope=web", headers={"Connection": "close"}) for _ in range(20)]
    assert all(r.status_code == 200 for r in session_less)
    tagged = requests.get(f"{url}/healthz?scope=web", headers={"X-Request-ID": "scrape-check-42"})
    assert tagged.headers["X-Request-ID"] == "scrape-check-42"
    parsed = samples(requests.get(f"{url}/metrics").text)
    # 1 readiness probe that answered 200 (earlier ones may have failed while booting), 20, and the tagged one
    served = value(parsed, "forge_http_requests_total", method="GET", route="healthz", status="200")
    assert served >= 22
    pids = {path.stem.rsplit("_", 1)[1] for path in folder.glob("counter_*.db")}
    assert pids, "no metrics files were written"

    time.sleep(0.5)  # the access line of the last request is written after its response
    entries = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    assert {"gunicorn.error", "gunicorn.access"} <= {entry["logger"] for entry in entries}
    access = [entry for entry in entries if entry["logger"] == "gunicorn.access"]
    mine = [entry for entry in access if entry.get("request_id") == "scrape-check-42"]
    assert len(mine) == 1 and mine[0]["status"] == 200 and mine[0]["path"] == "/healthz?scope=web"
    assert mine[0]["latency_ms"] >= 0 and mine[0]["level"] == "INFO" and mine[0]["time"].endswith("Z")


def test_a_worker_that_died_is_dropped_from_the_live_gauges_and_its_counts_are_kept(gunicorn_web) -> None:
    url, var_dir, _ = gunicorn_web
    folder = var_dir / "metrics" / "web"
    for _ in range(10):
        assert requests.get(f"{url}/healthz?scope=web", headers={"Connection": "close"}).status_code == 200
    live = {int(path.stem.rsplit("_", 1)[1]) for path in folder.glob("gauge_livesum_*.db")}
    assert live, "no live gauge files: the in-progress gauge was not written"
    before = samples(requests.get(f"{url}/metrics").text)
    victim = sorted(live)[0]
    os.kill(victim, signal.SIGKILL)  # a worker killed (the OOM killer, gunicorn's own timeout)

    # the master reaps it, child_exit drops its live gauges, and a new worker takes its place
    wait_for(lambda: not (folder / f"gauge_livesum_{victim}.db").exists(), timeout=30)
    assert (folder / f"counter_{victim}.db").exists()  # what it counted still counts
    after = samples(requests.get(f"{url}/metrics").text)
    healthz = {"method": "GET", "route": "healthz", "status": "200"}
    assert value(after, "forge_http_requests_total", **healthz) == value(before, "forge_http_requests_total", **healthz)
    # only the scrape itself is in progress (the dead worker's share was dropped, not left stuck)
    assert value(after, "forge_http_requests_in_progress", method="GET") == 1


WRITE_AS_A_WORKER = """
import sys
from forge_site.observability import job_observe
job_observe(kind=sys.argv[1], status="succeeded", duration_s=2.5, queue_wait_s=0.1)
"""


def test_the_console_reads_this_hosts_workers_and_the_serving_process_only_its_own_group(db, tmp_path) -> None:
    kind = f"probe-{random.randrange(10**9)}"
    worker_folder = multiproc.metrics_root() / f"worker-test-{kind}"
    worker_folder.mkdir(parents=True)
    try:
        subprocess.run(
            [sys.executable, "-c", WRITE_AS_A_WORKER, kind],
            cwd=BASE_DIR,
            env={**os.environ, "PYTHONPATH": str(BASE_DIR), "PROMETHEUS_MULTIPROC_DIR": str(worker_folder)},
            check=True,
            timeout=60,
        )
        job = {"kind": kind, "status": "succeeded"}
        console = scrape(Client())
        assert value(console, "forge_jobs_total", **job) == 1
        assert value(console, "forge_job_duration_seconds_sum", **job) == 2.5

        request = RequestFactory().get("/metrics", REMOTE_ADDR="127.0.0.1")
        request.user = AnonymousUser()  # a scraper signs in as nobody
        own = process_group_metrics(request)
        assert own.status_code == 200 and value(samples(own.content.decode()), "forge_jobs_total", **job) == 0
        started: list[str] = []
        body = b"".join(
            metrics_wsgi_app()({"REMOTE_ADDR": "::1", "PATH_INFO": "/metrics"}, lambda s, h: started.append(s))
        )
        assert started == ["200 OK"] and value(samples(body.decode()), "forge_jobs_total", **job) == 0
        refused: list[str] = []
        metrics_wsgi_app()({"REMOTE_ADDR": "10.0.0.8"}, lambda s, h: refused.append(s))
        assert refused == ["403 Forbidden"]
    finally:
        for path in worker_folder.glob("*"):
            path.unlink()
        worker_folder.rmdir()


def test_the_metric_names_in_the_operations_guide_are_the_ones_forge_exports() -> None:
    from forge_site.observability import metrics

    exported: set[str] = set()
    for metric in vars(metrics).values():
        if isinstance(metric, Counter):
            exported.add(f"{metric._name}_total")
        elif isinstance(metric, Histogram):
            exported |= {metric._name, *(f"{metric._name}_{suffix}" for suffix in ("bucket", "sum", "count"))}
        elif isinstance(metric, Gauge):
            exported.add(metric._name)
    guide = (BASE_DIR / "docs" / "operations.md").read_text()
    section = guide.split("## Observability: metrics, logs, traces", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"\bforge_[a-z_]+\b", section)) - {"forge_site"}
    assert {"forge_serving_requests_total", "forge_serving_latency_seconds_bucket", "forge_jobs_total"} <= named
    assert named <= exported, f"docs/operations.md names metrics Forge does not export: {sorted(named - exported)}"
