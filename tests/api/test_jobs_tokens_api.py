"""Jobs (read-only) and the caller's own API tokens, through the API."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from forge_site.jobs import job_create
from forge_site.models import ApiToken, AuditEvent, Job
from forge_site.tokens import token_create
from models_registry.services import model_create
from tests.api.helpers import bearer_client, error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def jobs(engineer):
    model = model_create(name="credit-risk", owner=engineer)
    queued = job_create(kind="inspect", task_name="t", queue="gpu", subject=model, created_by=engineer)
    failed = job_create(kind="parity", task_name="t", queue="gpu", subject=model, params={"tolerance": 1e-4})
    Job.objects.filter(pk=failed.pk).update(
        status="failed", error="ONNX and TorchScript disagree by 0.3", started_at=timezone.now(), progress=40
    )
    return queued, failed


def test_it_shows_a_job(officer, jobs):
    _, failed = jobs
    response = bearer_client(officer).get(f"/api/v1/jobs/{failed.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(failed.pk) and body["kind"] == "parity" and body["status"] == "failed"
    assert body["progress"] == 40 and body["error"] == "ONNX and TorchScript disagree by 0.3"
    assert body["params"] == {"tolerance": 1e-4} and body["result"] is None
    assert body["subject"] == {
        "type": "models_registry.registeredmodel",
        "id": str(failed.subject_id),
        "label": "credit-risk",
    }
    assert set(body["timings"]) == {
        "created_at",
        "enqueued_at",
        "started_at",
        "heartbeat_at",
        "finished_at",
        "duration_s",
    }
    assert {"device", "worker_host", "message", "attempts", "created_by"} <= set(body)


def test_it_filters_jobs_by_status_and_kind(manager, jobs):
    client = bearer_client(manager)
    assert client.get("/api/v1/jobs/").json()["count"] == 2
    assert [j["kind"] for j in client.get("/api/v1/jobs/?status=failed").json()["results"]] == ["parity"]
    assert [j["status"] for j in client.get("/api/v1/jobs/?kind=inspect").json()["results"]] == ["queued"]
    bad = client.get("/api/v1/jobs/?status=exploded")
    assert bad.status_code == 400 and error_of(bad)["field"] == "status"


def test_it_says_when_a_job_does_not_exist(officer):
    response = bearer_client(officer).get(f"/api/v1/jobs/{uuid.uuid4()}/")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_it_creates_a_token_that_works_and_is_shown_once(officer):
    client = APIClient()
    client.force_authenticate(officer)
    response = client.post("/api/v1/tokens/", {"name": "ci-upload", "days": 7}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    plain = body["token"]
    assert plain.startswith(f"forge_{body['prefix']}_") and body["name"] == "ci-upload"
    lifetime = timezone.datetime.fromisoformat(body["expires_at"]) - timezone.now()
    assert timedelta(days=6) < lifetime <= timedelta(days=7)
    assert AuditEvent.objects.filter(action="token.create", actor=officer).exists()

    listed = client.get("/api/v1/tokens/").json()
    assert [t["prefix"] for t in listed] == [body["prefix"]]
    assert "token" not in listed[0] and plain not in str(listed)

    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert fresh.get("/api/v1/models/").status_code == 200


@pytest.mark.parametrize(
    ("payload", "field"), [({}, "name"), ({"name": "x", "days": 0}, "days"), ({"name": "x", "days": 9999}, "days")]
)
def test_it_refuses_a_token_without_a_name_or_with_a_bad_lifetime(officer, payload, field):
    client = APIClient()
    client.force_authenticate(officer)
    response = client.post("/api/v1/tokens/", payload, format="json")
    assert response.status_code == 400
    assert error_of(response)["field"] == field
    assert not ApiToken.objects.exists()


def test_it_revokes_a_token_which_then_stops_working(engineer):
    token, plain = token_create(user=engineer, name="ci")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert client.delete(f"/api/v1/tokens/{token.prefix}/").status_code == 204
    token.refresh_from_db()
    assert token.revoked_at is not None
    response = client.get("/api/v1/models/")
    assert response.status_code == 401
    assert error_of(response)["message"] == "This token was revoked."
    assert AuditEvent.objects.filter(action="token.revoke").count() == 1


def test_it_will_not_revoke_someone_elses_token(engineer, officer):
    token, _ = token_create(user=engineer, name="ci")
    response = bearer_client(officer).delete(f"/api/v1/tokens/{token.prefix}/")
    assert response.status_code == 404
    assert "no token with prefix" in error_of(response)["message"]
    token.refresh_from_db()
    assert token.revoked_at is None


@pytest.mark.parametrize(
    ("header", "needle"),
    [
        ("Bearer forge_nope_nope", "Invalid token."),
        ("Bearer not-a-forge-token", "Malformed token"),
        ("Bearer", "must be 'Bearer <token>'"),
    ],
)
def test_it_refuses_bad_bearer_tokens(db, header, needle):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/models/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert needle in error_of(response)["message"]


def test_it_refuses_token_management_to_anonymous_callers(db):
    response = APIClient().post("/api/v1/tokens/", {"name": "x"}, format="json")
    assert response.status_code == 401
    assert not ApiToken.objects.exists()
