"""The API does what its OpenAPI schema says: Schemathesis runs every operation of /api/schema/ against Forge served
by gunicorn on the test database, with every check, and must find nothing: no 5xx, no status, content type, header
or body the schema does not document, no schema-valid request refused with a 400 and no schema-violating request
accepted.

Configuration (what is left out, and why) is schemathesis.toml at the repository root; docs/api.md ("Checking the API
against its schema") says how to run the same check by hand against `make run`. An endpoint joins by being in the
schema. Set FORGE_SCHEMATHESIS_EXAMPLES and FORGE_SCHEMATHESIS_SEED to run longer or explore other inputs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from django.conf import settings
from django.utils import timezone

from forge_site.models import Job
from forge_site.roles import Role
from forge_site.tokens import token_create
from governance.models import AlertRule
from models_registry.models import RegisteredModel
from models_registry.services import model_create
from tests.api.helpers import mlp_version
from tests.conftest import _worker_database_url, make_user
from tests.evidence_results import benchmark_result, evaluation_job, parity_result

BASE_DIR = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
UNREAD_REDIS_DB = "15"
# Per operation and phase. Measured on the 2-core CI machine: docs/api.md gives the run's length.
MAX_EXAMPLES = int(os.environ.get("FORGE_SCHEMATHESIS_EXAMPLES", "10"))
SEED = os.environ.get("FORGE_SCHEMATHESIS_SEED", "20261205")

pytestmark = pytest.mark.django_db(transaction=True)  # the server reads what the test writes


@pytest.fixture
def api_data(db: None) -> dict[str, str]:
    """An engineer with something to act on: a model with two ready versions (one with an ONNX companion), a
    succeeded parity run and two succeeded benchmark runs to compare. And a second user whose token only the
    revoking operation uses."""
    engineer = make_user("erin", Role.ENGINEER)
    model = model_create(name="credit-risk", owner=engineer, description="Scores loans", tags=["credit"])
    first = mlp_version(model, engineer, "1.0.0", onnx=True)
    mlp_version(model, engineer, "1.1.0")
    # Their inspections finished, as a worker would have left them: a generated cancel of a still-queued inspection
    # would reject the version (as it should), and leave no ready version to start runs on.
    Job.objects.filter(kind="inspect").update(status="succeeded", progress=100, finished_at=timezone.now())
    evaluation_job(first, "parity", result=parity_result(), created_by=engineer)
    for p50 in (1.0, 2.0):
        evaluation_job(first, "benchmark", result=benchmark_result(p50_ms={1: p50, 8: p50 * 2}), created_by=engineer)
    _alert_data(engineer, first)
    _, token = token_create(user=engineer, name="schemathesis")
    _, revoke_token = token_create(user=make_user("rex", Role.ENGINEER), name="schemathesis-revoke")
    # Retiring runs as a compliance officer, whose role may not retire: a generated request that reaches the
    # fixture's model would otherwise retire it (the check learns "credit-risk" from responses) and every run after
    # it would be refused. tests/models_registry/test_retirement.py covers retiring.
    _, officer_token = token_create(user=make_user("olga", Role.OFFICER), name="schemathesis-officer")
    return {
        "FORGE_SCHEMATHESIS_TOKEN": token,
        "FORGE_SCHEMATHESIS_REVOKE_TOKEN": revoke_token,
        "FORGE_SCHEMATHESIS_OFFICER_TOKEN": officer_token,
    }


def _alert_data(engineer: Any, version: Any) -> None:
    """A rule, a destination (a public address no test reaches: its deliveries stay queued) and an alert with a
    delivery, so the alert operations read and change real rows."""
    from governance.services.alert_destinations import alert_destination_create
    from governance.services.alerts import alert_raise, alert_rule_create

    alert_rule_create(actor=engineer, name="seeded", metric="drift_share", threshold=0.5, model=version.model)
    alert_destination_create(actor=engineer, name="seeded", kind="slack", url="https://93.184.215.14/hook")
    alert_raise(
        model=version.model,
        version=version,
        source="rollout",
        metric="error_rate",
        feature=None,
        value=0.2,
        threshold=0.05,
        severity="critical",
        message="seeded",
        dedup_key="seeded",
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def forge_server(api_data: dict[str, str]) -> Iterator[str]:
    """Forge served as `make run` serves it (gunicorn), on the test database. Its broker is a Redis database no
    worker reads, so the runs the check starts stay queued instead of keeping the tests' worker busy."""
    port = _free_port()
    broker = settings.REDIS_URL.rsplit("/", 1)[0] + "/" + UNREAD_REDIS_DB
    env = {
        **os.environ,
        "DATABASE_URL": _worker_database_url(),
        "REDIS_URL": broker,
        "FORGE_VAR_DIR": str(settings.VAR_DIR),
        "FORGE_STORAGE": str(settings.FORGE_STORAGE),
        "FORGE_UPLOAD_DIR": str(settings.FORGE_UPLOAD_DIR),
        # Rate limits are not what this checks (429 is documented on every operation, and tests/forge_site covers
        # the throttles): a run of ~1,200 requests in under a minute, many with bad tokens, must not be cut short.
        "FORGE_THROTTLE_USER": "off",
        "FORGE_THROTTLE_ANON": "off",
        "FORGE_TOKEN_MAX_FAILURES_PER_ADDRESS": "1000000",
    }
    log = open(settings.VAR_DIR / "test-schemathesis-server.log", "ab")  # noqa: SIM115
    server = subprocess.Popen(
        [GUNICORN, "forge_site.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "2"],
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
            assert server.poll() is None, "gunicorn exited; see var/test-schemathesis-server.log"
            try:
                if requests.get(f"{url}/api/schema/?format=json", timeout=30).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or still importing
                pass
            assert time.monotonic() < deadline, "gunicorn did not answer within 60 s"
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
        redis.Redis.from_url(broker).flushdb()


def test_the_api_does_what_its_schema_says(forge_server, api_data, tmp_path):
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(BASE_DIR / "schemathesis.toml"),
        "--no-color",
        "run",
        f"{forge_server}/api/schema/?format=json",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        SEED,
        "--continue-on-failure",
        "--generation-database",
        "none",
        "--output-truncate",
        "true",
    ]
    started = time.monotonic()
    run = subprocess.run(
        command,
        cwd=tmp_path,  # it keeps a cache folder in its working directory
        env={**os.environ, **api_data},
        capture_output=True,
        text=True,
        timeout=600,
    )
    elapsed = time.monotonic() - started
    output = run.stdout + run.stderr
    summary = output[output.rfind("SUMMARY") - 40 :] if "SUMMARY" in output else output[-3000:]
    print(f"schemathesis: {elapsed:.0f} s, seed {SEED}, {MAX_EXAMPLES} examples\n{output}")
    assert run.returncode == 0, output[-20000:]
    # It reached the core of the API, not only its refusals: it created models and started runs.
    assert RegisteredModel.objects.exclude(name="credit-risk").exists(), summary
    assert Job.objects.filter(kind__in=["parity", "benchmark"], status="queued").exists(), summary
    assert AlertRule.objects.exclude(name="seeded").exists(), summary  # and added alert rules
