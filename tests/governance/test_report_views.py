"""The report pages: start a report from the form, write per subcategory, sign; escaping; who sees what."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from forge_site.roles import Role
from governance.models import Report, ReportStatus
from governance.services.reports import report_create
from models_registry.services import model_create
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_officer_starts_writes_and_signs_a_report_in_the_pages(officer, evidenced):
    client = client_for(officer)
    response = client.post(
        "/reports/new/",
        {"scope": "credit-risk", "versions": "", "start": "2020-01-01", "end": "2030-12-31", "title": ""},
    )
    report = Report.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/reports/{report.pk}/"
    page = client.get(f"/reports/{report.pk}/").content.decode()
    assert page.index('id="gaps"') < page.index('id="fn-GOVERN"')  # gaps first
    assert "NIST AI RMF 1.0 report: credit-risk" in page

    response = client.post(f"/reports/{report.pk}/subcategories/MAP-1.1/", {"narrative": HOSTILE})
    assert response["Location"].endswith("#MAP-1.1")
    page = client.get(f"/reports/{report.pk}/").content.decode()
    assert HOSTILE not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page

    response = client.post(f"/reports/{report.pk}/subcategories/MEASURE-2.2/", {"not_applicable": "on"}, follow=True)
    assert "needs a justification" in response.content.decode()
    assert not report.entries.filter(sub_id="MEASURE 2.2").exists()

    unconfirmed = client.post(f"/reports/{report.pk}/finalize/", {}, follow=True)
    assert "Tick the box" in unconfirmed.content.decode()
    assert Report.objects.get(pk=report.pk).status == ReportStatus.DRAFT
    client.post(f"/reports/{report.pk}/finalize/", {"confirm": "on"})
    report.refresh_from_db()
    assert report.status == ReportStatus.FINALIZED and report.signer == "olga"
    page = client.get(f"/reports/{report.pk}/").content.decode()
    assert report.snapshot_sha256 in page and 'id="finalize-report"' not in page
    assert "Rendering the PDF" in page  # the job is queued: the page polls its progress
    late = client.post(f"/reports/{report.pk}/subcategories/MAP-1.1/", {"narrative": "late"}, follow=True)
    assert "never changes" in late.content.decode()
    missing_pdf = client.get(f"/reports/{report.pk}/pdf/", follow=True)
    assert "has no PDF yet" in missing_pdf.content.decode()


def test_managers_read_without_forms_and_engineers_see_only_their_models(officer, manager, engineer, evidenced):
    own = report_create(actor=officer, model=evidenced.model, start="2020-01-01", end="2030-12-31")
    stranger = make_user("eve", Role.ENGINEER)
    theirs = report_create(
        actor=officer, model=model_create(name="fraud", owner=stranger), start="2020-01-01", end="2030-12-31"
    )
    page = client_for(manager).get(f"/reports/{own.pk}/").content.decode()
    assert "sub-edit" not in page and 'id="finalize-report"' not in page
    engineer_client = client_for(engineer)
    listing = engineer_client.get("/reports/").content.decode()
    assert str(own.pk)[:8] in listing and str(theirs.pk)[:8] not in listing
    assert engineer_client.get(f"/reports/{theirs.pk}/").status_code == 404
    assert engineer_client.post(f"/reports/{own.pk}/summary/", {"title": "x"}).status_code == 403
    assert re.search(r'href="/reports/new/"', client_for(officer).get("/reports/").content.decode())
    assert "/reports/new/" not in client_for(manager).get("/reports/").content.decode()
