"""The reports API: create, read, attest per subcategory, finalize with an Idempotency-Key, download; roles."""

from __future__ import annotations

import pytest

from forge_site.models import AuditEvent, Job
from forge_site.roles import Role
from governance.models import Report
from governance.reports.snapshot import snapshot_sha256
from models_registry.services import model_create
from tests.api.helpers import error_of
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

PERIOD = {"start": "2020-01-01", "end": "2030-12-31"}


def create(client, **body):
    return client.post("/api/v1/reports/", {"model": "credit-risk", "period": PERIOD, **body}, format="json")


def test_an_officer_starts_a_report_and_gets_every_subcategory_with_status_and_reason(api_as, officer, evidenced):
    response = create(api_as(officer))
    assert response.status_code == 201, response.content
    body = response.json()
    assert response["Location"] == f"/api/v1/reports/{body['id']}/"
    assert body["status"] == "draft" and body["model"] == "credit-risk" and body["versions"] == "all"
    assert body["period"]["label"] == "2020-01-01 to 2030-12-31"
    assert len(body["subcategories"]) == 72
    first = body["subcategories"][0]
    assert first["id"] == "GOVERN 1.1" and first["status"] == "attestation_required" and first["reason"]
    assert set(first) >= {"id", "status", "reason", "evidence", "attestation", "narrative", "not_applicable"}
    assert set(body["coverage"]["functions"]) == {"GOVERN", "MAP", "MEASURE", "MANAGE"}
    assert body["snapshot_sha256"] == "" and body["pdfs"] == []


def test_datetimes_and_a_whole_inventory_are_accepted(api_as, officer, evidenced):
    response = create(
        api_as(officer), model=None, period={"start": "2026-01-01T00:00:00Z", "end": "2026-06-30T12:00:00Z"}
    )
    assert response.status_code == 201, response.content
    assert response.json()["model"] is None
    assert response.json()["period"]["label"] == "2026-01-01 00:00:00 to 2026-06-30 12:00:00 UTC"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"model": "nope"}, 400, "model"),
        ({"versions": ["9.9.9"]}, 400, "versions"),
        ({"period": {"start": "2026-13-01", "end": "2026-12-31"}}, 400, "period.start"),
        ({"period": {"start": "2026-03-01", "end": "2026-02-01"}}, 400, "period.end"),
        ({"period": {"start": "2026-03-01"}}, 400, "period.end"),
        ({"period": {"start": 20260301, "end": "2026-12-31"}}, 400, "period.start"),
        ({"scope": "everything"}, 400, "scope"),
    ],
)
def test_bad_input_gets_a_clear_error_and_writes_nothing(api_as, officer, evidenced, body, status, field):
    response = create(api_as(officer), **body)
    assert response.status_code == status
    error = error_of(response)
    assert error["field"] == field and error["message"]
    assert not Report.objects.exists()


def test_patching_a_subcategory_answers_with_the_updated_subcategory(api_as, officer, evidenced):
    client = api_as(officer)
    report_id = create(client).json()["id"]
    url = f"/api/v1/reports/{report_id}/subcategories/GOVERN-1.1/"
    response = client.patch(
        url, {"attestation": "Counsel reviewed ECOA duties.", "narrative": "See memo 12."}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == "GOVERN 1.1" and body["status"] == "met"
    assert body["attestation"]["text"] == "Counsel reviewed ECOA duties." and body["attestation"]["by"] == "olga"
    assert body["narrative"] == "See memo 12."
    assert client.get(url).json() == body
    unknown = client.patch(url, {"status": "met"}, format="json")
    assert unknown.status_code == 400 and error_of(unknown)["field"] == "status"
    assert "read-only" in error_of(unknown)["message"]
    missing = client.patch(
        f"/api/v1/reports/{report_id}/subcategories/MEASURE-2.2/", {"not_applicable": True}, format="json"
    )
    assert missing.status_code == 400 and error_of(missing)["field"] == "justification"
    for bad in ("GOVERN-9.1", "GOVERN"):
        assert client.patch(f"/api/v1/reports/{report_id}/subcategories/{bad}/", {}, format="json").status_code == 404


def test_finalize_returns_the_pdf_job_and_the_same_key_replays_it(api_as, officer, evidenced):
    client = api_as(officer)
    report_id = create(client).json()["id"]
    url = f"/api/v1/reports/{report_id}/finalize/"
    first = client.post(url, HTTP_IDEMPOTENCY_KEY="sign-q1")
    assert first.status_code == 202, first.content
    job = first.json()
    assert job["kind"] == "report_pdf" and first["Location"] == f"/api/v1/jobs/{job['id']}/"
    again = client.post(url, HTTP_IDEMPOTENCY_KEY="sign-q1")
    assert again.status_code == 202 and again.json()["id"] == job["id"] and again["Idempotent-Replayed"] == "true"
    other = client.post(url, HTTP_IDEMPOTENCY_KEY="sign-q1-again")
    assert other.status_code == 409 and error_of(other)["code"] == "finalized"
    assert Job.objects.filter(kind="report_pdf").count() == 1
    assert AuditEvent.objects.filter(action="report.finalize").count() == 1
    body = client.get(f"/api/v1/reports/{report_id}/").json()
    assert body["status"] == "finalized" and body["signer"] == "olga" and len(body["snapshot_sha256"]) == 64
    assert body["render_job"]["id"] == job["id"]


def test_a_finalized_report_refuses_every_edit_with_409(api_as, officer, evidenced):
    client = api_as(officer)
    report_id = create(client).json()["id"]
    assert client.post(f"/api/v1/reports/{report_id}/finalize/").status_code == 202
    base = f"/api/v1/reports/{report_id}/"
    refusals = [
        client.patch(base, {"executive_summary": "late"}, format="json"),
        client.patch(base + "subcategories/GOVERN-1.1/", {"attestation": "late"}, format="json"),
        client.post(base + "submit/"),
        client.post(base + "refresh/"),
        client.post(base + "finalize/"),
    ]
    assert [r.status_code for r in refusals] == [409] * 5
    assert "never changes" in error_of(refusals[1])["message"]


def test_the_json_is_the_frozen_snapshot_and_its_hash_checks_out(api_as, officer, evidenced):
    client = api_as(officer)
    report_id = create(client).json()["id"]
    assert client.get(f"/api/v1/reports/{report_id}/json/").status_code == 409  # a draft has no snapshot
    assert client.get(f"/api/v1/reports/{report_id}/pdf/").status_code == 409
    client.post(f"/api/v1/reports/{report_id}/finalize/")
    response = client.get(f"/api/v1/reports/{report_id}/json/")
    body = response.json()
    assert len(body["sha256"]) == 64 and snapshot_sha256(body["snapshot"]) == body["sha256"]
    assert response["X-Snapshot-SHA256"] == body["sha256"]
    pdf = client.get(f"/api/v1/reports/{report_id}/pdf/")
    assert pdf.status_code == 409 and error_of(pdf)["code"] == "not_rendered"  # the job has not run here
    assert "queued" in error_of(pdf)["message"]


def test_a_revision_starts_a_new_draft(api_as, officer, evidenced):
    client = api_as(officer)
    report_id = create(client).json()["id"]
    assert client.post(f"/api/v1/reports/{report_id}/revise/").status_code == 409
    client.post(f"/api/v1/reports/{report_id}/finalize/")
    response = client.post(f"/api/v1/reports/{report_id}/revise/")
    assert response.status_code == 201
    assert response.json()["revision"] == 2 and response.json()["revision_of"] == report_id


def test_who_sees_which_report(api_as, officer, manager, engineer, evidenced):
    own = create(api_as(officer)).json()["id"]
    other_engineer = make_user("eve", Role.ENGINEER)
    model_create(name="fraud", owner=other_engineer)
    theirs = create(api_as(officer), model="fraud").json()["id"]
    inventory = create(api_as(officer), model=None).json()["id"]

    def listed(user):
        return {r["id"] for r in api_as(user).get("/api/v1/reports/").json()["results"]}

    assert listed(officer) == listed(manager) == {own, theirs, inventory}
    assert listed(engineer) == {own}  # only reports on models erin owns
    assert api_as(engineer).get(f"/api/v1/reports/{theirs}/").status_code == 404
    assert api_as(engineer).get(f"/api/v1/reports/{own}/").status_code == 200
    assert api_as(manager).patch(f"/api/v1/reports/{own}/", {"title": "x"}, format="json").status_code == 403
    assert api_as(manager).post(f"/api/v1/reports/{own}/finalize/").status_code == 403
    assert api_as(engineer).post("/api/v1/reports/", {}, format="json").status_code == 403
    assert listed(officer) == {r["id"] for r in api_as(officer).get("/api/v1/reports/?status=draft").json()["results"]}
    assert {r["id"] for r in api_as(officer).get("/api/v1/reports/?model=-").json()["results"]} == {inventory}


def test_anonymous_never(api_client, officer, evidenced):
    assert api_client.get("/api/v1/reports/").status_code == 401
