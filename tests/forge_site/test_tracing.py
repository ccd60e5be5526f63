"""OpenTelemetry: one trace from the console's request into the job it queued and the sandbox that ran it.

Forge runs as deployed: gunicorn (forge_site.wsgi) and a Celery worker, both with OTEL_EXPORTER_OTLP_ENDPOINT set,
on the test database and a broker database of their own (so the session's worker cannot take the job). The
collector at the end of the world is a small HTTP server this test starts, which decodes the OTLP/HTTP protobuf
requests it receives at /v1/traces. Without the variable nothing is installed (a test below checks that too).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
import requests
from django.conf import settings
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from forge_site.models import Job, JobStatus
from forge_site.tokens import token_create
from tests.api.helpers import mlp
from tests.conftest import BASE_DIR, _worker_database_url, make_user, wait_for
from tests.forge_site.test_metrics import _free_port, samples, value
from tests.torchscript_models import MLP_SPEC

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
BROKER_DB = "14"  # no other worker reads it


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int


class Collector:
    """An OTLP/HTTP trace receiver: every span of every POST to /v1/traces."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.bad: list[str] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/x-protobuf":
                    collector.bad.append(f"{self.path} {self.headers.get('Content-Type')}")
                else:
                    collector.receive(ExportTraceServiceRequest.FromString(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def receive(self, request: ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append(
                        Span(
                            service=attributes.get("service.name", ""),
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            kind=span.kind,
                        )
                    )


@pytest.fixture
def collector() -> Iterator[Collector]:
    receiver = Collector()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def _start(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture
def traced_forge(collector: Collector, tmp_path: Path) -> Iterator[tuple[str, Path, str]]:
    """gunicorn and a Celery worker exporting their spans to the collector, the worker serving its metrics on a port
    of its own; yields the web URL, the worker's log and the worker's metrics URL."""
    broker = settings.REDIS_URL.rsplit("/", 1)[0] + "/" + BROKER_DB
    redis.Redis.from_url(broker).flushdb()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS_", "FORGE_METRICS_"))},
        "DATABASE_URL": _worker_database_url(),
        "REDIS_URL": broker,
        "FORGE_VAR_DIR": str(settings.VAR_DIR),
        "FORGE_STORAGE": str(settings.FORGE_STORAGE),
        "FORGE_UPLOAD_DIR": str(settings.FORGE_UPLOAD_DIR),
        "FORGE_METRICS_DIR": str(tmp_path / "metrics"),
        "FORGE_LOG_FORMAT": "json",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within a tenth of a second (the default waits 5 s)
    }
    port = _free_port()
    web = _start(
        [
            *(GUNICORN, "forge_site.wsgi:application", "-c", "python:forge_site.gunicorn_conf"),
            *("--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "2"),
        ],
        {**env, "OTEL_SERVICE_NAME": "forge-web-under-test"},
        tmp_path / "web.log",
    )
    worker_log = tmp_path / "worker.log"
    worker_metrics_port = _free_port()
    worker = _start(
        [
            *(sys.executable, "-m", "celery", "-A", "forge_site", "worker", "-Q", "gpu,default", "-c", "1"),
            *("--without-gossip", "--without-mingle", "-n", f"traced-{os.getpid()}@%h", "--loglevel", "INFO"),
        ],
        {**env, "FORGE_WORKER_METRICS_PORT": str(worker_metrics_port)},
        worker_log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert web.poll() is None, (tmp_path / "web.log").read_text()
            assert worker.poll() is None, worker_log.read_text()
            try:
                if requests.get(f"{url}/healthz?scope=web", timeout=30).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "gunicorn did not answer within 60 s"
            time.sleep(0.2)
        wait_for(lambda: "ready." in worker_log.read_text(), timeout=60)
        yield url, worker_log, f"http://127.0.0.1:{worker_metrics_port}"
    finally:
        _stop(web)
        _stop(worker)
        redis.Redis.from_url(broker).flushdb()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_one_trace_follows_the_upload_into_its_job_and_the_sandbox(traced_forge, collector: Collector) -> None:
    url, worker_log, worker_metrics = traced_forge
    _, token = token_create(user=make_user("tracy", "engineer"), name="tracing")
    auth = {"Authorization": f"Bearer {token}"}
    assert requests.post(f"{url}/api/v1/models/", json={"name": "traced"}, headers=auth).status_code == 201
    uploaded = requests.post(
        f"{url}/api/v1/models/traced/versions/",
        data={"version": "1.0.0", "input_spec": json.dumps(MLP_SPEC)},
        files={"artifact": ("model.pt", mlp())},
        headers={**auth, "X-Request-ID": "trace-me-1"},
    )
    assert uploaded.status_code == 201, uploaded.text
    job_id = uploaded.json()["job_id"]
    wait_for(lambda: Job.objects.get(pk=job_id).status == JobStatus.SUCCEEDED, timeout=90)

    def the_trace(route_end: str, wanted: set[str]) -> Callable[[], list[Span] | None]:
        """The spans of the trace whose web request span's route ends with route_end, once all `wanted` are in."""

        def spans_of_it() -> list[Span] | None:
            servers = [
                s
                for s in collector.spans
                if s.service == "forge-web-under-test" and s.name.startswith("POST ") and s.name.endswith(route_end)
            ]
            if not servers:
                return None
            spans = [s for s in collector.spans if s.trace_id == servers[0].trace_id]
            return spans if wanted <= {s.name for s in spans} else None

        return spans_of_it

    spans = wait_for(the_trace("versions/", {"run/models_registry.inspect_version", "sandbox inspect"}), timeout=20)
    assert not collector.bad
    by_name = {s.name: s for s in spans}
    server = next(s for s in spans if s.name.startswith("POST "))
    publish = by_name["apply_async/models_registry.inspect_version"]
    run = by_name["run/models_registry.inspect_version"]
    sandbox = by_name["sandbox inspect"]
    assert server.service == "forge-web-under-test" and server.parent_id == ""  # the request starts the trace
    assert publish.service == "forge-web-under-test"  # queued on commit, inside the request
    assert run.service == "forge-worker" and run.parent_id == publish.span_id  # the context came in the message
    assert sandbox.service == "forge-worker" and sandbox.parent_id == run.span_id
    assert len({s.trace_id for s in (server, publish, run, sandbox)}) == 1

    # a parity run: its sandbox gets the trace context in its request (the job sandbox outlives one trace)
    parity = requests.post(
        f"{url}/api/v1/models/traced/versions/1.0.0/parity/",
        json={"reference": {"kind": "device", "dtype": "float64"}, "samples": 64},
        headers=auth,
    )
    assert parity.status_code == 202, parity.text
    parity_job = parity.json()["id"]
    wait_for(lambda: Job.objects.get(pk=parity_job).status == JobStatus.SUCCEEDED, timeout=90)
    parity_spans = wait_for(the_trace("parity/", {"run/models_registry.run_parity", "sandbox parity"}), timeout=20)
    by_name = {s.name: s for s in parity_spans}
    assert by_name["sandbox parity"].parent_id == by_name["run/models_registry.run_parity"].span_id
    assert by_name["sandbox parity"].trace_id != run.trace_id  # a trace of its own, the parity request's

    # the worker's log lines are JSON objects too (Celery's own and the job's), and those written while the task ran
    # name its trace
    entries = [json.loads(line) for line in worker_log.read_text().splitlines() if line.startswith("{")]
    assert {"celery.apps.worker", "celery.worker.strategy"} <= {entry["logger"] for entry in entries}
    in_trace = [entry for entry in entries if entry.get("trace_id") == run.trace_id]
    assert in_trace and all(entry["span_id"] for entry in in_trace), entries[-3:]

    # the job in /metrics, both where the console reads this host's workers and on the worker's own port
    job = {"kind": "inspect", "status": "succeeded"}
    for scraped in (f"{url}/metrics", f"{worker_metrics}/metrics"):
        counted = samples(requests.get(scraped, timeout=10).text)
        assert value(counted, "forge_jobs_total", **job) == 1, scraped
        assert value(counted, "forge_job_duration_seconds_count", **job) == 1, scraped


def test_without_an_endpoint_nothing_is_installed(tmp_path) -> None:
    code = (
        "import sys, django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'forge_site.settings');"
        "import forge_site.wsgi, forge_site.celery;"
        "from django.conf import settings;"
        "from opentelemetry import trace;"
        "print(type(trace.get_tracer_provider()).__name__);"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.instrumentation')));"
        "print([m for m in settings.MIDDLEWARE if 'opentelemetry' in m])"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and k != "DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env={**env, "FORGE_VAR_DIR": str(tmp_path / "var")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    # redis-py imports opentelemetry's API for its own use; Forge installs no provider and no instrumentation
    assert result.stdout.splitlines() == ["ProxyTracerProvider", "[]", "[]"]
