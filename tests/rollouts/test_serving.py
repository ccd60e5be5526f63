"""The serving process, as `make run` starts it (gunicorn, rollouts.serving.app), against the test database: predict
on both arms, inputs checked against the spec, sticky assignment, a challenger that raises or hangs, the counts and
the guardrail rollback they lead to."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.db.models import Sum

from forge_site.roles import Role
from forge_site.tokens import token_create
from models_registry.models import ModelVersion, RegisteredModel
from models_registry.services import alias_set, model_create, version_create, version_record_inspection
from rollouts import request_ids
from rollouts.models import ArmMinute, Rollout, RolloutState
from rollouts.services import outcome_record, rollout_create, rollout_start
from rollouts.services.traffic import request_id_key
from tests.api.helpers import mlp, temp_upload
from tests.conftest import _worker_database_url, make_user, wait_for
from tests.torchscript_models import MLP_SPEC, FailingMLP, HangingMLP, scripted_bytes

BASE_DIR = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
DEADLINE_MS = 1500

pytestmark = pytest.mark.django_db(transaction=True)  # the server reads what the test writes


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]

    def workers(self) -> set[int]:
        """The pids of gunicorn's worker processes (children of the master)."""
        children = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == self.process.pid:
                    children.add(int(entry.name))
        return children


@pytest.fixture(scope="module")
def serving(django_db_setup: None) -> Iterator[Server]:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _worker_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "FORGE_VAR_DIR": str(settings.VAR_DIR),
        "FORGE_STORAGE": str(settings.FORGE_STORAGE),
        "FORGE_UPLOAD_DIR": str(settings.FORGE_UPLOAD_DIR),
        "FORGE_SERVING_PORT": str(port),
        "FORGE_SERVING_WORKERS": "2",
        "FORGE_SERVING_THREADS": "2",
        "FORGE_SERVING_DEADLINE_MS": str(DEADLINE_MS),
        "FORGE_SERVING_REFRESH_MS": "100",
        "FORGE_SERVING_FLUSH_MS": "200",
        "FORGE_SERVING_LOG_FLUSH_MS": "200",
        "FORGE_SERVING_TOKEN_CACHE_S": "1",
        "FORGE_THROTTLE_MACHINE": "off",
        "FORGE_LOG_FORMAT": "json",
    }
    log = open(settings.VAR_DIR / "test-serving.log", "ab")  # noqa: SIM115
    process = subprocess.Popen(
        [GUNICORN, "rollouts.serving.app:application", "-c", "rollouts/serving/gunicorn_conf.py"],
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
            assert process.poll() is None, "the serving process exited; see var/test-serving.log"
            try:
                if requests.get(f"{url}/healthz", timeout=10).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "the serving process did not answer within 60 s"
            time.sleep(0.2)
        yield Server(url, process)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


@dataclass
class Served:
    rollout: Rollout
    champion: ModelVersion
    challenger: ModelVersion
    headers: dict[str, str]
    url: str

    def predict(self, body: Any, **kwargs: Any) -> requests.Response:
        return requests.post(
            f"{self.url}/api/v1/rollouts/{self.rollout.pk}/predict/",
            json=body,
            headers=self.headers,
            timeout=30,
            **kwargs,
        )


def _version(model: RegisteredModel, name: str, data: bytes, owner: Any) -> ModelVersion:
    mv = version_create(
        model=model, version=name, artifact=temp_upload("m.pt", data), input_spec=MLP_SPEC, created_by=owner
    )
    return version_record_inspection(version_id=mv.pk, ok=True, inspection={"parameters": 1}, reason="")


def _rollout(server: Server, challenger_bytes: bytes, *, plan: list[float], name: str, **kwargs: Any) -> Served:
    engineer = make_user(f"eng-{name}", Role.ENGINEER)
    manager = make_user(f"mgr-{name}", Role.MANAGER)
    model = model_create(name=name, owner=engineer)
    champion = _version(model, "1.0.0", mlp(0), engineer)
    challenger = _version(model, "1.1.0", challenger_bytes, engineer)
    alias_set(model=model, alias="champion", version=champion, actor=manager, reason="first champion")
    rollout = rollout_create(model=model, challenger=challenger, plan=plan, actor=engineer, **kwargs)
    rollout = rollout_start(rollout=rollout, actor=engineer)
    _, token = token_create(user=engineer, name="serving")
    return Served(rollout, champion, challenger, {"Authorization": f"Bearer {token}"}, server.url)


ROW = [[0.1 * i for i in range(32)]]


def test_it_serves_both_arms_with_sticky_units_and_signed_request_ids(serving):
    served = _rollout(serving, mlp(1), plan=[50, 100], name="sticky")
    arms: dict[str, str] = {}
    for i in range(40):
        answer = served.predict({"unit": f"user-{i}", "inputs": {"x": ROW}})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["assignment"] == "sticky" and body["fallback"] is False
        assert body["version"] == {"champion": "1.0.0", "challenger": "1.1.0"}[body["arm"]]
        assert len(body["outputs"]) == 1 and len(body["outputs"][0]) == 2
        issued = request_ids.parse(request_id_key(), body["request_id"])
        assert issued is not None and issued.rollout_id == served.rollout.pk and issued.arm == body["arm"]
        arms[f"user-{i}"] = body["arm"]
    assert set(arms.values()) == {"champion", "challenger"}
    for unit, arm in list(arms.items())[:10]:  # the same unit lands on the same arm, in whichever worker
        assert served.predict({"unit": unit, "inputs": {"x": ROW}}).json()["arm"] == arm
    # An outcome names only the request id, and is joined to its arm at once.
    last = served.predict({"unit": "user-0", "inputs": {"x": ROW}}).json()
    outcome, created = outcome_record(rollout=served.rollout, request_id=last["request_id"], success=True)
    assert created and outcome.arm == arms["user-0"]

    def counted() -> int:
        return ArmMinute.objects.filter(rollout=served.rollout).aggregate(n=Sum("requests"))["n"] or 0

    assert wait_for(lambda: counted() == 51, timeout=20)

    served_rollout = served.rollout.pk
    # Prometheus reads the same counts from the serving process's own /metrics (both workers, one group).
    metrics = requests.get(f"{serving.url}/metrics", timeout=10)
    assert metrics.status_code == 200, metrics.text
    by_outcome = {"ok": 0.0, "error": 0.0}
    for line in metrics.text.splitlines():
        if line.startswith("forge_serving_requests_total{") and f'rollout="{served_rollout}"' in line:
            outcome = "ok" if 'outcome="ok"' in line else "error"
            by_outcome[outcome] += float(line.rsplit(" ", 1)[1])
    assert by_outcome == {"ok": 51, "error": 0}
    assert "forge_http_requests_total" not in metrics.text  # the console's series are the console's to export

    # And the operator's log has a JSON line for each answered predict, naming the id an outcome will quote.
    def logged() -> dict[str, Any] | None:
        for line in (settings.VAR_DIR / "test-serving.log").read_text(errors="replace").splitlines():
            if last["request_id"] in line and line.startswith("{"):
                entry: dict[str, Any] = json.loads(line)
                return entry
        return None

    assert wait_for(lambda: logged() is not None, timeout=10)
    entry = logged()
    assert entry is not None and entry["logger"] == "rollouts.serving.requests"
    assert (entry["rollout"], entry["arm"], entry["outcome"]) == (served_rollout, arms["user-0"], "ok")
    assert entry["version"] == last["version"] and entry["latency_ms"] > 0


def test_a_request_without_a_unit_is_assigned_at_random_and_says_so(serving):
    served = _rollout(serving, mlp(1), plan=[50, 100], name="random")
    answers = [served.predict({"inputs": {"x": ROW}}).json() for _ in range(30)]
    assert {a["assignment"] for a in answers} == {"random"}
    assert {a["arm"] for a in answers} == {"champion", "challenger"}


@pytest.mark.parametrize(
    ("inputs", "field", "words"),
    [
        ({"x": [[0.1] * 31]}, "inputs.x", "shape [1, 31]"),
        ({"x": [0.1] * 32}, "inputs.x", "shape [32]"),
        ({"y": ROW}, "inputs.x", "x is missing"),
        ({"x": ROW, "z": ROW}, "inputs.z", "not an input"),
        ({"x": [["a"] * 32]}, "inputs.x", "not a regular array"),
        ({"x": [[0.1] * 32, [0.1] * 5]}, "inputs.x", "not a regular array"),
        ([[0.1] * 32], "inputs", "an object naming each input"),
    ],
)
def test_inputs_that_do_not_fit_the_spec_are_refused_naming_the_input(serving, inputs, field, words):
    served = _rollout(serving, mlp(1), plan=[50, 100], name="spec")
    answer = served.predict({"unit": "u", "inputs": inputs})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_input" and error["field"] == field and words in error["message"]


def test_bad_bodies_units_and_callers_are_refused_cleanly(serving):
    served = _rollout(serving, mlp(1), plan=[50, 100], name="refusals")
    url = f"{served.url}/api/v1/rollouts/{served.rollout.pk}/predict/"
    ten_kb = served.predict({"unit": "u" * 10_240, "inputs": {"x": ROW}})
    assert ten_kb.status_code == 400 and ten_kb.json()["error"]["code"] == "unit_too_long"
    assert ten_kb.json()["error"]["field"] == "unit"
    not_json = requests.post(
        url, data=b"{nope", headers={**served.headers, "Content-Type": "application/json"}, timeout=30
    )
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "invalid_json"
    nan = requests.post(
        url,
        data=b'{"inputs": {"x": [[NaN]]}}',
        headers={**served.headers, "Content-Type": "application/json"},
        timeout=30,
    )
    assert nan.status_code == 400 and nan.json()["error"]["code"] == "invalid_json"
    unknown = served.predict({"unit": "u", "inputs": {"x": ROW}, "extra": 1})
    assert unknown.status_code == 400 and unknown.json()["error"]["field"] == "extra"
    assert requests.post(url, json={"inputs": {"x": ROW}}, timeout=30).status_code == 401
    officer = make_user("olga-serving", Role.OFFICER)
    _, officer_token = token_create(user=officer, name="officer")
    denied = requests.post(
        url, json={"inputs": {"x": ROW}}, headers={"Authorization": f"Bearer {officer_token}"}, timeout=30
    )
    assert denied.status_code == 403 and "rollout.serve" in denied.json()["error"]["message"]
    missing = requests.post(
        f"{served.url}/api/v1/rollouts/999999/predict/", json={"inputs": {"x": ROW}}, headers=served.headers, timeout=30
    )
    assert missing.status_code == 404
    # The console's API points predict to this process; the serving process answers nothing of the console's.
    assert requests.get(f"{served.url}/api/v1/models/", headers=served.headers, timeout=30).status_code == 404


def test_a_challenger_that_raises_falls_back_to_the_champion_and_the_guardrail_rolls_it_back(serving, celery_worker):
    served = _rollout(
        serving,
        scripted_bytes(FailingMLP()),
        plan=[50, 100],
        name="raising",
        guardrails={"min_samples": 10, "drift": False, "fairness": False},
    )
    challenger_answers = []
    for i in range(60):
        body = served.predict({"unit": f"user-{i}", "inputs": {"x": ROW}}).json()
        assert body["outputs"] and "error" not in body
        if body["arm"] == "challenger":
            assert body["fallback"] is True and body["version"] == "1.0.0"  # the champion answered
            challenger_answers.append(body)
    assert len(challenger_answers) >= 10

    def challenger_errors() -> int:
        rows = ArmMinute.objects.filter(rollout=served.rollout, arm="challenger")
        return rows.aggregate(n=Sum("errors"))["n"] or 0

    assert wait_for(lambda: challenger_errors() == len(challenger_answers), timeout=20)
    assert ArmMinute.objects.filter(rollout=served.rollout, arm="challenger").aggregate(n=Sum("fallbacks"))["n"] == len(
        challenger_answers
    )
    # The minute check, run by the real worker as beat would, sets the challenger to 0% and says why.
    from rollouts.tasks import check_rollouts

    check_rollouts.delay()
    wait_for(lambda: Rollout.objects.get(pk=served.rollout.pk).state == RolloutState.ROLLED_BACK, timeout=60)
    served.rollout.refresh_from_db()
    assert served.rollout.state == RolloutState.ROLLED_BACK and served.rollout.challenger_share == 0
    assert "error_rate" in served.rollout.breach["names"] and "error_rate" in served.rollout.end_reason
    # Within the refresh interval the serving process stops routing it.
    time.sleep(0.3)
    after = served.predict({"unit": "user-0", "inputs": {"x": ROW}})
    assert after.status_code == 409 and after.json()["error"]["code"] == "not_routing"


def test_a_challenger_that_hangs_costs_one_worker_which_is_replaced_and_the_champion_answers(serving):
    served = _rollout(serving, scripted_bytes(HangingMLP()), plan=[100], name="hanging")
    before = serving.workers()
    assert len(before) == 2
    started = time.monotonic()
    answer = served.predict({"unit": "user-1", "inputs": {"x": ROW}})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["arm"] == "challenger" and body["fallback"] is True and body["version"] == "1.0.0"
    assert time.monotonic() - started < DEADLINE_MS / 1000 + 10
    # The worker that ran it retires and gunicorn's master starts another: two workers again, one of them new.
    wait_for(lambda: len(serving.workers()) == 2 and serving.workers() != before, timeout=30)
    assert serving.process.poll() is None
    # The other worker, and the new one, go on answering (the champion, since every challenger call hangs).
    ok = requests.get(f"{serving.url}/healthz", timeout=30)
    assert ok.status_code == 200
    again = served.predict({"unit": "user-2", "inputs": {"x": ROW}})
    assert again.status_code == 200 and again.json()["version"] == "1.0.0"
    # The console is another process: its API answers about the same rollout as ever.
    from rest_framework.test import APIClient

    console = APIClient()
    console.credentials(HTTP_AUTHORIZATION=served.headers["Authorization"])
    assert console.get(f"/api/v1/rollouts/{served.rollout.pk}/").status_code == 200


def _baseline(version: ModelVersion, engineer: Any) -> None:
    """A prepared baseline of 32 numeric features (f0…f31) and a score, as an engineer uploads it."""
    import numpy as np
    from django.core.files.uploadedfile import SimpleUploadedFile
    from rest_framework.test import APIClient

    from governance.tasks import prepare_baseline_now

    rng = np.random.default_rng(version.pk)
    lines = [",".join([*(f"f{i}" for i in range(32)), "score"])]
    for _ in range(300):
        lines.append(",".join(f"{v:.4f}" for v in [*rng.normal(0, 1, 32), rng.random()]))
    client = APIClient()
    client.force_authenticate(engineer)
    response = client.post(
        f"/api/v1/models/{version.model.name}/versions/{version.version}/baseline/",
        {"file": SimpleUploadedFile("baseline.csv", "\n".join(lines).encode()), "prediction": "score"},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    job = prepare_baseline_now(response.json()["id"])
    assert job is not None and job.status == "succeeded", job and job.error


def test_every_served_request_reaches_the_drift_ingestion_without_an_audit_event(serving):
    import pyarrow.parquet as pq

    from forge_site.models import AuditEvent
    from governance.models import InferenceBatch
    from models_registry.artifacts import artifact_local_copy

    served = _rollout(serving, mlp(1), plan=[50, 100], name="logged")
    for version in (served.champion, served.challenger):
        _baseline(version, served.rollout.created_by)
    events = AuditEvent.objects.count()
    answers = [served.predict({"unit": f"user-{i}", "inputs": {"x": ROW}}).json() for i in range(20)]
    versions = [served.champion, served.challenger]

    def logged() -> int:
        return InferenceBatch.objects.filter(version__in=versions).aggregate(n=Sum("rows"))["n"] or 0

    wait_for(lambda: logged() == 20, timeout=30)
    assert set(InferenceBatch.objects.filter(version__in=versions).values_list("source", flat=True)) == {"serving"}
    rows = []
    for batch in InferenceBatch.objects.filter(version__in=versions).select_related("version"):
        with artifact_local_copy(batch.file) as path:
            table = pq.read_table(path).to_pylist()
        rows += [(row["request_id"], batch.version.version, row["meta"]) for row in table]
    assert {r[0] for r in rows} == {a["request_id"] for a in answers}
    by_id = {a["request_id"]: a for a in answers}
    for request_id, version, meta in rows:
        meta = json.loads(meta)
        assert version == by_id[request_id]["version"] and meta["arm"] == by_id[request_id]["arm"]
        assert len(meta["input_sha256"]) == 64 and meta["latency_ms"] > 0 and meta["rollout"] == served.rollout.pk
    assert AuditEvent.objects.count() == events  # served requests and logged rows are not audited
