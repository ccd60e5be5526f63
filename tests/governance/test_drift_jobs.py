"""Drift runs (window and upload), drift and fairness on demand, monitors on their schedule, the result hooks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from forge_site.models import AuditEvent, Job
from governance.drift import drift_report
from governance.drift.columns import CATEGORICAL, NUMERIC
from governance.models import Monitor
from governance.services import monitoring
from governance.tasks import run_drift_now
from tests.api.helpers import bearer_client
from tests.conftest import wait_for
from tests.governance.conftest import NOW, json_rows, table_rows, to_csv

pytestmark = pytest.mark.django_db
BASE = "/api/v1/models/credit-risk/versions/1.0.0/"
KINDS = {"a": NUMERIC, "b": NUMERIC, "color": CATEGORICAL, "score": NUMERIC}
HOOK_CALLS: list[tuple[int, str]] = []


def record_hook(*, monitor, job) -> None:
    HOOK_CALLS.append((monitor.pk, str(job.pk)))


@pytest.fixture
def logged(version, make_baseline, engineer, api_as):
    """A baseline and 600 logged rows whose feature a moved by 0.8 std (and whose score followed)."""
    baseline = make_baseline(version)
    current = table_rows(600, 21, shift=0.8)
    response = api_as(engineer).post(
        BASE + "inferences/", {"rows": json_rows(current, step=timedelta(seconds=20))}, format="json"
    )
    assert response.status_code == 201
    return baseline, current


def window():
    return {"start": (NOW - timedelta(hours=1)).isoformat(), "end": (NOW + timedelta(hours=5)).isoformat()}


def start_and_run(client, body, **kwargs):
    response = client.post(BASE + "drift/", body, **kwargs)
    assert response.status_code == 202, response.content
    job = run_drift_now(response.json()["id"])
    assert job is not None and job.status == "succeeded", job and job.error
    return job


def test_a_window_of_logged_rows_is_compared_exactly_from_raw_rows(logged, engineer, api_as) -> None:
    _, current = logged
    job = start_and_run(api_as(engineer), {"window": window()}, format="json")
    result = job.result
    assert result["source"] == "raw" and result["rows"] == {"reference": 2000, "current": 600}
    features = {f["name"]: f for f in result["features"]}
    # The same computation on the same rows, independently: the baseline's rows vs what was logged.
    expected = {f["name"]: f for f in drift_report(table_rows(2000, 1), current, KINDS, prediction="score")["features"]}
    for name in ("a", "b", "color"):
        assert features[name]["method"] == expected[name]["method"]
        assert features[name]["statistic"] == pytest.approx(expected[name]["statistic"], rel=1e-9)
        assert features[name]["drifted"] == expected[name]["drifted"]
    assert features["a"]["drifted"] is True and features["a"]["method"] == "wasserstein"
    assert result["prediction"]["name"] == "score"
    assert set(result["dataset"]) >= {"drifted_share", "drifted"}
    assert result["fairness"]["attributes"][0]["attribute"] == "region"
    assert job.device == "cpu" and job.progress == 100


def test_above_the_raw_limit_the_run_reads_sketches(logged, engineer, api_as, settings) -> None:
    settings.FORGE_DRIFT_RAW_ROW_LIMIT = 100
    job = start_and_run(api_as(engineer), {"window": window(), "method": "psi"}, format="json")
    assert job.result["source"] == "sketches"
    a = next(f for f in job.result["features"] if f["name"] == "a")
    assert a["method"] == "psi" and a["exact"] is True and a["drifted"] is True


def test_an_uploaded_dataset_is_compared_directly(logged, engineer, api_as) -> None:
    data = to_csv({k: v for k, v in table_rows(300, 22, shift=1.0).items() if k in ("a", "b", "color", "score")})
    job = start_and_run(
        api_as(engineer), {"current": "upload", "file": SimpleUploadedFile("now.csv", data)}, format="multipart"
    )
    assert job.result["rows"]["current"] == 300 and job.result["current"] == {"upload": "now.csv"}
    assert next(f for f in job.result["features"] if f["name"] == "a")["drifted"] is True


def test_a_drift_start_is_idempotent_and_validates_its_request(logged, engineer, api_as) -> None:
    client = api_as(engineer)
    first = client.post(BASE + "drift/", {"window": window()}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post(BASE + "drift/", {"window": window()}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.json()["id"] == again.json()["id"] and again["Idempotent-Replayed"] == "true"
    assert Job.objects.filter(kind="drift").count() == 1
    bad = client.post(BASE + "drift/", {"window": window(), "method": "ks", "threshold": 3}, format="json")
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "threshold"
    backwards = client.post(
        BASE + "drift/", {"window": {"start": window()["end"], "end": window()["start"]}}, format="json"
    )
    assert backwards.status_code == 422 and "after its start" in backwards.json()["error"]["message"]
    assert client.post(BASE + "drift/", {}, format="json").status_code == 400


def test_drift_and_fairness_on_demand_read_sketches(logged, officer, api_as) -> None:
    baseline, _ = logged
    result = monitoring.drift_from_sketches(
        version=baseline.version, start=NOW - timedelta(hours=1), end=NOW + timedelta(hours=5)
    )
    assert result["source"] == "sketches" and result["rows"]["current"] == 600
    response = api_as(officer).get(BASE + "fairness/", {"start": window()["start"], "end": window()["end"]})
    assert response.status_code == 200
    region = response.json()["attributes"][0]
    assert region["attribute"] == "region" and {s["segment"] for s in region["segments"]} == {"north", "south"}
    assert sum(s["rows"] for s in region["segments"]) == 600
    south = next(s for s in region["segments"] if s["segment"] == "south")
    assert 0 < south["selection_rate"] <= 1


def test_a_monitor_is_configured_audited_and_run_when_due(logged, engineer, api_as, settings) -> None:
    settings.FORGE_MONITOR_RESULT_HOOKS = ["tests.governance.test_drift_jobs.record_hook"]
    HOOK_CALLS.clear()
    client = api_as(engineer)
    put = client.put(
        BASE + "monitor/", {"interval_minutes": 60, "lookback_hours": 24 * 5, "method": "ks"}, format="json"
    )
    assert put.status_code == 200, put.content
    assert AuditEvent.objects.filter(action="monitor.create").count() == 1
    monitor = Monitor.objects.get()
    now = NOW + timedelta(hours=5)
    assert monitoring.monitors_run_due(now=now) == 1
    assert monitoring.monitors_run_due(now=now + timedelta(minutes=10)) == 0  # not due again within its interval
    job = Job.objects.get(kind="drift")
    assert job.params["monitor"] == monitor.pk and job.params["method"] == "ks"
    run_drift_now(str(job.pk))
    assert [(monitor.pk, str(job.pk))] == HOOK_CALLS
    assert monitoring.monitors_run_due(now=now + timedelta(minutes=61)) == 1
    client.put(BASE + "monitor/", {"enabled": False}, format="json")
    assert AuditEvent.objects.filter(action="monitor.update").count() == 1
    assert client.delete(BASE + "monitor/").status_code == 204
    assert AuditEvent.objects.filter(action="monitor.delete").count() == 1


def test_managers_and_officers_read_but_do_not_start(logged, manager, api_as) -> None:
    client = api_as(manager)
    assert client.get(BASE + "drift/").status_code == 200
    assert client.post(BASE + "drift/", {"window": window()}, format="json").status_code == 403
    assert client.put(BASE + "monitor/", {}, format="json").status_code == 403


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_drift_run_goes_through_a_real_worker(celery_worker, version, make_baseline, engineer) -> None:
    make_baseline(version)
    client = bearer_client(engineer)
    rows = json_rows(table_rows(200, 31, shift=1.0), step=timedelta(seconds=10))
    assert client.post(BASE + "inferences/", {"rows": rows}, format="json").status_code == 201
    started = client.post(BASE + "drift/", {"window": window()}, format="json")
    assert started.status_code == 202
    job_url = started["Location"]

    def finished():
        body = client.get(job_url).json()
        return body if body["status"] in ("succeeded", "failed") else None

    body = wait_for(finished, timeout=120)
    assert body["status"] == "succeeded", body["error"]
    assert next(f for f in body["result"]["features"] if f["name"] == "a")["drifted"] is True
