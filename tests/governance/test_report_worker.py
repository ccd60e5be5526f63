"""The PDF job on a real Celery worker: a render that cannot store its PDF fails with a clear error, and a retry,
once storage is fixed, renders and the PDF downloads with the snapshot's hash on its pages."""

from __future__ import annotations

import hashlib
import io
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from pypdf import PdfReader
from rest_framework.test import APIClient

from forge_site.models import Job, JobStatus
from governance.models import Report, ReportPdf
from tests.api.helpers import error_of
from tests.conftest import wait_for
from tests.governance.helpers import evidenced_model

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_a_failed_render_says_why_and_a_retry_works(celery_worker, engineer, manager, officer):
    evidenced_model(engineer=engineer, manager=manager)
    client = APIClient()
    client.force_authenticate(officer)
    report_id = client.post(
        "/api/v1/reports/",
        {"model": "credit-risk", "period": {"start": "2020-01-01", "end": "2030-12-31"}},
        format="json",
    ).json()["id"]

    # A file where the reports' folder should be: storing any PDF fails (as it would on a full or read-only disk).
    reports_dir = Path(settings.FORGE_STORAGE) / "reports"
    aside = reports_dir.with_name(f"reports-aside-{uuid.uuid4().hex}")
    if reports_dir.exists():
        reports_dir.rename(aside)
    reports_dir.write_text("not a folder")
    try:
        job_id = client.post(f"/api/v1/reports/{report_id}/finalize/").json()["id"]
        failed = wait_for(
            lambda: Job.objects.filter(pk=job_id, status__in=[JobStatus.FAILED, JobStatus.SUCCEEDED]).first(),
            timeout=120,
        )
        assert failed.status == JobStatus.FAILED
        assert "could not be stored in artifact storage" in failed.error and "retry the render" in failed.error
        body = client.get(f"/api/v1/reports/{report_id}/").json()
        assert body["status"] == "finalized" and body["render_job"]["status"] == "failed"
        assert body["pdfs"] == [] or all(p["paper"] != "a4" for p in body["pdfs"])
        pdf = client.get(f"/api/v1/reports/{report_id}/pdf/")
        assert pdf.status_code == 409 and "could not be stored" in error_of(pdf)["message"]
    finally:
        reports_dir.unlink()
        if aside.exists():
            aside.rename(reports_dir)

    retry = client.post(f"/api/v1/reports/{report_id}/render/", HTTP_IDEMPOTENCY_KEY="retry-1")
    assert retry.status_code == 202
    done = wait_for(
        lambda: Job.objects.filter(pk=retry.json()["id"], status__in=[JobStatus.FAILED, JobStatus.SUCCEEDED]).first(),
        timeout=180,
    )
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert client.post(f"/api/v1/reports/{report_id}/render/").status_code == 409  # both PDFs exist now
    response = client.get(f"/api/v1/reports/{report_id}/pdf/?paper=letter")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    data = b"".join(response.streaming_content)
    stored = ReportPdf.objects.get(report_id=report_id, paper="letter")
    assert hashlib.sha256(data).hexdigest() == stored.sha256 and response["ETag"] == f'"{stored.sha256}"'
    sha = Report.objects.get(pk=report_id).snapshot_sha256
    assert response["X-Snapshot-SHA256"] == sha
    pages = PdfReader(io.BytesIO(data)).pages
    assert all(sha[:16] in page.extract_text() for page in pages)
