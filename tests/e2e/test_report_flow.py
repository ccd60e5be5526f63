"""In a real Chromium with a real worker: an officer goes from the reports list to a finalized, signed report and
downloads its PDF; the PDF is the one stored, with the snapshot's hash on its pages."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import pytest
from pypdf import PdfReader

from governance.models import Report, ReportPdf, ReportStatus
from governance.services.reports import report_create, report_finalize
from models_registry.models import RegisteredModel
from tests.e2e.conftest import log_in
from tests.e2e.test_csp import violations, visit, watched  # noqa: F401  (watched is a fixture)
from tests.governance.helpers import evidenced_model

# rows of the row lists wider than the list: a column that does not wrap pushes the rest off the page
ROWS_RUNNING_PAST_THEIR_LIST = """() => [...document.querySelectorAll('.rows .row')]
    .filter(row => row.scrollWidth > row.clientWidth + 1).map(row => row.textContent.slice(0, 80))"""

pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_an_officer_builds_signs_and_downloads_a_report(page, live_server, celery_worker, engineer, manager, officer):
    evidenced_model(engineer=engineer, manager=manager)
    log_in(page, live_server, officer)

    page.click("nav >> text=Reports")
    page.wait_for_url(f"{live_server.url}/reports/")
    assert "No report yet." in page.inner_text("#report-table")
    page.click("#new-report")
    page.select_option("#id_scope", "credit-risk")
    page.fill("#id_start", "2020-01-01")
    page.fill("#id_end", "2030-12-31")
    page.click("#create-report")
    page.wait_for_url(re.compile(r"/reports/[0-9a-f-]{36}/$"))
    report = Report.objects.get()
    assert page.inner_text("#report-status") == "Draft"
    gaps = page.inner_text("#gaps")
    assert "GOVERN 1.1" in gaps and "Attestation required" in gaps  # the gaps come first, with their reasons
    assert page.locator("#GOVERN-1\\.1 .st-attestation_required").is_visible()
    overflowing = page.evaluate(ROWS_RUNNING_PAST_THEIR_LIST)
    assert overflowing == []  # the text column of every row list (gaps, evidence, register) wraps within the page

    block = page.locator("#GOVERN-1\\.1")
    block.locator("summary").click()
    block.locator("textarea[name=attestation]").fill("Counsel reviewed ECOA and FCRA duties <b>in March</b>.")
    block.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/reports/[0-9a-f-]{36}/#GOVERN-1\.1$"))
    block = page.locator("#GOVERN-1\\.1")
    assert block.locator(".st-met").is_visible()
    assert "Counsel reviewed ECOA and FCRA duties <b>in March</b>." in block.inner_text()  # shown as text

    page.check("#confirm-finalize")
    page.click("#finalize-report")
    page.wait_for_url(re.compile(r"/reports/[0-9a-f-]{36}/$"))
    assert page.inner_text("#report-status") == "Finalized"
    report.refresh_from_db()
    assert report.status == ReportStatus.FINALIZED and report.signer == officer.username
    assert page.inner_text("#snapshot-hash") == report.snapshot_sha256
    assert page.locator("#finalize-report").count() == 0  # a finalized report has no editing left
    assert page.locator("details.sub-edit").count() == 0

    page.locator("#download-a4").wait_for(timeout=180_000)  # the render job's progress is polled until it is
    with page.expect_download() as download_info:
        page.click("#download-a4")
    data = Path(download_info.value.path()).read_bytes()
    stored = ReportPdf.objects.get(report=report, paper="a4")
    assert hashlib.sha256(data).hexdigest() == stored.sha256
    pages = PdfReader(io.BytesIO(data)).pages
    assert len(pages) == stored.pages
    assert all(report.snapshot_sha256[:16] in p.extract_text() for p in pages)

    page.click("nav >> text=Reports")
    row = page.inner_text("#report-table")
    assert "Finalized" in row and officer.username in row


def test_the_report_pages_run_under_the_content_security_policy(page, watched, live_server, engineer, manager, officer):  # noqa: F811
    """The list, the new-report form, a draft and a finalized report whose PDF is being rendered (polled through
    htmx), with their inline SVG charts: no violation."""
    evidenced_model(engineer=engineer, manager=manager)
    draft = report_create(actor=officer, model=None, start="2020-01-01", end="2030-12-31")
    model = RegisteredModel.objects.get(name="credit-risk")
    signed = report_create(actor=officer, model=model, start="2020-01-01", end="2030-12-31")
    signed, _ = report_finalize(report=signed, actor=officer)  # no worker here: the job stays queued, polled
    log_in(page, live_server, officer)
    for url in ("/reports/", "/reports/new/", f"/reports/{draft.pk}/"):
        visit(page, live_server.url + url)
        assert violations(page, watched) == [], url
    visit(page, f"{live_server.url}/reports/{signed.pk}/")
    assert page.locator("#figures svg.chart-svg").count() >= 3
    with page.expect_response(lambda r: r.request.headers.get("hx-request") == "true" and r.ok):
        pass
    assert violations(page, watched) == []
