"""Cancelling a job from the API and from the job page: who may, what happens, and what a finished job says."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from forge_site.models import AuditEvent, Job, JobStatus
from forge_site.tokens import token_create
from tests.api.helpers import bearer_client, error_of

pytestmark = pytest.mark.django_db


def _job(status: str = JobStatus.QUEUED, **fields: object) -> Job:
    now = timezone.now()
    return Job.objects.create(
        kind="parity",
        task_name="models_registry.run_parity",
        queue="gpu",
        subject_type="models_registry.modelversion",
        subject_id="1",
        subject_label="credit-risk:1.1.0",
        status=status,
        started_at=now if status != JobStatus.QUEUED else None,
        finished_at=now if status not in (JobStatus.QUEUED, JobStatus.RUNNING) else None,
        **fields,
    )


def _page(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- API -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RUNNING])
def test_an_engineer_cancels_a_queued_or_running_job_through_the_api(engineer, status):
    job = _job(status, progress=30, message="batch 5 of 16")
    response = bearer_client(engineer).post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == str(job.pk) and body["status"] == "cancelled"
    assert body["timings"]["finished_at"] is not None
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    event = AuditEvent.objects.get(action="job.cancel")
    assert event.actor == engineer and event.object_id == str(job.pk)


@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELLED])
def test_the_api_answers_409_for_a_job_that_already_finished(engineer, status):
    job = _job(status, result={"kind": "parity", "passed": True} if status == JobStatus.SUCCEEDED else None)
    response = bearer_client(engineer).post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "already_finished"
    assert Job(status=status).get_status_display().lower() in error["message"]
    job.refresh_from_db()
    assert job.status == status
    assert not AuditEvent.objects.filter(action="job.cancel").exists()


@pytest.mark.parametrize("role", ["manager", "officer"])
def test_only_engineers_may_cancel_through_the_api(request, role):
    job = _job()
    response = bearer_client(request.getfixturevalue(role)).post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 403
    assert "job.cancel" in error_of(response)["message"]
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


def test_the_api_refuses_anonymous_and_expired_callers(engineer):
    job = _job()
    anonymous = APIClient().post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert anonymous.status_code == 401 and error_of(anonymous)["code"] == "not_authenticated"
    token, plain = token_create(user=engineer, name="ci", days=1)
    token.expires_at = timezone.now() - timedelta(minutes=1)
    token.save(update_fields=["expires_at"])
    expired = APIClient()
    expired.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    response = expired.post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 401
    assert "expired" in error_of(response)["message"].lower()
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


def test_the_api_says_when_there_is_no_such_job(engineer):
    response = bearer_client(engineer).post(f"/api/v1/jobs/{uuid.uuid4()}/cancel/")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_cancel_is_post_only(engineer):
    job = _job()
    response = bearer_client(engineer).get(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


# --- pages -----------------------------------------------------------------------------------------------------------


def test_the_job_page_offers_cancel_to_engineers_while_the_job_is_active(engineer, manager):
    job = _job(JobStatus.RUNNING, progress=40)
    url = reverse("jobs:detail", kwargs={"job_id": job.pk})
    cancel_url = reverse("jobs:cancel", kwargs={"job_id": job.pk})
    assert cancel_url in _page(engineer).get(url).content.decode()
    assert cancel_url in _page(engineer).get(url, HTTP_HX_REQUEST="true").content.decode()  # the polled partial too
    assert cancel_url not in _page(manager).get(url).content.decode()
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    assert cancel_url not in _page(engineer).get(url).content.decode()


def test_an_engineer_cancels_from_the_job_page(engineer):
    job = _job(JobStatus.RUNNING, progress=40)
    client = _page(engineer)
    response = client.post(reverse("jobs:cancel", kwargs={"job_id": job.pk}), follow=True)
    assert response.redirect_chain[-1][0] == reverse("jobs:detail", kwargs={"job_id": job.pk})
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    page = response.content.decode()
    assert "Cancelled." in page and 'data-status="cancelled"' in page
    assert AuditEvent.objects.filter(action="job.cancel", actor=engineer).count() == 1


def test_cancel_goes_back_to_a_local_page_only(engineer):
    back = "/registry/models/credit-risk/versions/1.1.0/runs/abc/"
    job = _job()
    response = _page(engineer).post(reverse("jobs:cancel", kwargs={"job_id": job.pk}), {"next": back})
    assert response.status_code == 302 and response["Location"] == back
    other = _job()
    response = _page(engineer).post(
        reverse("jobs:cancel", kwargs={"job_id": other.pk}), {"next": "https://evil.example/steal"}
    )
    assert response["Location"] == reverse("jobs:detail", kwargs={"job_id": other.pk})


def test_cancelling_a_finished_job_from_the_page_changes_nothing_and_says_so(engineer):
    job = _job(JobStatus.FAILED, error="CUDA out of memory")
    response = _page(engineer).post(reverse("jobs:cancel", kwargs={"job_id": job.pk}), follow=True)
    assert "already finished (failed)" in response.content.decode()
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.error == "CUDA out of memory"
    assert not AuditEvent.objects.filter(action="job.cancel").exists()


@pytest.mark.parametrize("role", ["manager", "officer"])
def test_other_roles_cannot_cancel_from_the_page(request, role):
    job = _job()
    response = _page(request.getfixturevalue(role)).post(reverse("jobs:cancel", kwargs={"job_id": job.pk}))
    assert response.status_code == 403
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


def test_anonymous_visitors_are_sent_to_log_in_and_cancel_needs_a_post(engineer):
    job = _job()
    url = reverse("jobs:cancel", kwargs={"job_id": job.pk})
    response = Client().post(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert _page(engineer).get(url).status_code == 405
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
