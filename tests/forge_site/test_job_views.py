"""Jobs pages and the dashboard: roles, filters, live partials that stop polling when work is done."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from forge_site.models import Job, JobStatus
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def _job(kind: str = "inspect", status: str = JobStatus.QUEUED, **fields: object) -> Job:
    return Job.objects.create(
        kind=kind,
        task_name=f"x.{kind}",
        subject_type="models_registry.modelversion",
        subject_id="1",
        subject_label="credit-risk:1.0.0",
        status=status,
        params={"sha256": "ab" * 32},
        **fields,
    )


@pytest.fixture
def running() -> Job:
    now = timezone.now()
    return _job(
        status=JobStatus.RUNNING,
        progress=45,
        message="loading the archive in a sandbox",
        device="cuda:0",
        worker_host="gpu-7",
        started_at=now,
        heartbeat_at=now,
    )


@pytest.fixture
def failed() -> Job:
    now = timezone.now()
    return _job(
        kind="benchmark",
        status=JobStatus.FAILED,
        progress=60,
        error="CUDA out of memory while timing batch 256",
        started_at=now,
        finished_at=now,
        result={"partial": [1, 2]},
    )


@pytest.mark.parametrize("role", ["engineer", "manager", "officer"])
def test_every_role_sees_the_jobs_pages(client: Client, request, role, running):
    client.force_login(request.getfixturevalue(role))
    assert client.get(reverse("jobs:list")).status_code == 200
    assert client.get(reverse("jobs:detail", args=[running.pk])).status_code == 200


def test_anonymous_visitors_are_sent_to_login(client: Client, running):
    for url in (reverse("jobs:list"), reverse("jobs:detail", args=[running.pk])):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_user_without_a_role_gets_403(client: Client, running):
    client.force_login(make_user("nobody", None))
    assert client.get(reverse("jobs:list")).status_code == 403
    assert client.get(reverse("jobs:detail", args=[running.pk])).status_code == 403


def test_the_list_filters_by_status_and_kind(client: Client, engineer: User, running, failed):
    _job(kind="parity", status=JobStatus.SUCCEEDED)
    client.force_login(engineer)
    url = reverse("jobs:list")
    assert {j.pk for j in client.get(url, {"status": "failed"}).context["jobs"]} == {failed.pk}
    assert {j.pk for j in client.get(url, {"kind": "inspect"}).context["jobs"]} == {running.pk}
    assert {j.pk for j in client.get(url, {"status": "active"}).context["jobs"]} == {running.pk}
    assert len(client.get(url).context["jobs"]) == 3
    assert client.get(url, {"status": "bogus"}).status_code == 200  # an unknown filter shows everything


def test_the_list_polls_fast_while_a_job_runs_and_slowly_when_all_are_done(client: Client, engineer, running):
    client.force_login(engineer)
    html = client.get(reverse("jobs:list")).content.decode()
    assert 'hx-trigger="every 1s"' in html and "bar-fill pct-45" in html
    partial = client.get(reverse("jobs:list"), HTTP_HX_REQUEST="true")
    body = partial.content.decode()
    assert "<html" not in body and 'id="job-table"' in body and 'data-live="true"' in body
    assert "HX-Request" in partial["Vary"]
    Job.objects.filter(pk=running.pk).update(status=JobStatus.SUCCEEDED, progress=100)
    body = client.get(reverse("jobs:list"), HTTP_HX_REQUEST="true").content.decode()
    assert 'data-live="false"' in body and "every 10s" in body and "bar-fill pct-100" in body


def test_the_partial_keeps_the_filters_and_page_when_it_polls(client: Client, engineer, running):
    client.force_login(engineer)
    body = client.get(reverse("jobs:list"), {"kind": "inspect"}, HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-get="/jobs/?kind=inspect&amp;page=1"' in body


def test_the_detail_page_shows_everything_about_a_job(client: Client, engineer, failed):
    client.force_login(engineer)
    html = client.get(reverse("jobs:detail", args=[failed.pk])).content.decode()
    assert "CUDA out of memory while timing batch 256" in html
    assert "&quot;partial&quot;" in html and "&quot;sha256&quot;" in html
    assert 'id="job-status"' in html and "Failed" in html
    assert "hx-trigger" not in html  # a finished job does not poll


def test_the_detail_partial_polls_while_running(client: Client, engineer, running):
    client.force_login(engineer)
    body = client.get(reverse("jobs:detail", args=[running.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in body and 'id="job-live"' in body and "every 1s" in body
    assert "gpu-7" in body and "cuda:0" in body and "loading the archive" in body


def test_an_unknown_job_is_404(client: Client, engineer):
    client.force_login(engineer)
    assert client.get(reverse("jobs:detail", args=[uuid.uuid4()])).status_code == 404


def test_the_dashboard_loads_active_jobs_and_the_registry_panel(client: Client, manager, running):
    client.force_login(manager)
    html = client.get(reverse("home")).content.decode()
    assert reverse("registry:dashboard_panel") in html
    assert f"{reverse('jobs:list')}?status=active" in html
    assert "Latest audit events" not in html


def test_the_dashboard_shows_officers_the_latest_audit_events(client: Client, officer):
    client.force_login(officer)
    html = client.get(reverse("home")).content.decode()
    assert "Latest audit events" in html and "auth.login" in html


def test_a_user_without_a_role_sees_a_dashboard_that_says_so(client: Client):
    client.force_login(make_user("nobody", None))
    html = client.get(reverse("home")).content.decode()
    assert "no role yet" in html and reverse("registry:dashboard_panel") not in html


def test_the_admin_lists_jobs_and_cancels_them_but_never_deletes(client: Client, running):
    User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(User.objects.get(username="root"))
    assert client.get("/admin/forge_site/job/").status_code == 200
    assert client.get(f"/admin/forge_site/job/{running.pk}/change/").status_code == 200
    response = client.post(
        "/admin/forge_site/job/", {"action": "cancel_jobs", "_selected_action": [str(running.pk)]}, follow=True
    )
    assert response.status_code == 200
    running.refresh_from_db()
    assert running.status == JobStatus.CANCELLED
    assert client.post(f"/admin/forge_site/job/{running.pk}/delete/", {"post": "yes"}).status_code == 403
