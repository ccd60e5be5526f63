"""The report PDF, read back: every subcategory, a TOC with page numbers, the snapshot hash on every page, embedded
fonts, both paper sizes, the same bytes for the same snapshot, escaped text, and the bad inputs of issue 14."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess

import pytest
from pypdf import PdfReader

from forge_site.models import AuditEvent, JobStatus
from governance.models import Report
from governance.nist_rmf.catalog import catalog
from governance.reports.pdf import render_pdf, report_html
from governance.services.reports import report_create, report_finalize, report_subcategory_update, report_update
from governance.tasks import render_report_pdf_now
from models_registry.artifacts import artifact_storage
from models_registry.services import model_create
from tests.governance.helpers import append_audit_events

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("pwned")</script> & <b>bold</b>'
A4 = (595, 842)
LETTER = (612, 792)


def finalize_and_render_a4(officer, model) -> bytes:
    """Finalize, then render the A4 PDF in this process (the job, which also renders Letter, is tested above)."""
    report = report_create(actor=officer, model=model, start="2020-01-01", end="2030-12-31")
    report, _ = report_finalize(report=report, actor=officer)
    report = Report.objects.get(pk=report.pk)
    return render_pdf(report.snapshot, report.snapshot_sha256, "a4").data


def pages_text(data: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def pdftotext(data: bytes) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()


def test_the_pdf_holds_every_subcategory_a_toc_and_the_hash_on_every_page(officer, evidenced):
    draft = report_create(actor=officer, model=evidenced.model, start="2020-01-01", end="2030-12-31")
    report_subcategory_update(
        report=draft, actor=officer, sub_id="GOVERN-1.1", attestation="Counsel reviewed.", narrative=HOSTILE
    )
    report_update(report=draft, actor=officer, executive_summary="Second-line review, Q1.")
    report, job = report_finalize(report=draft, actor=officer)
    job = render_report_pdf_now(str(job.pk))
    assert job.status == JobStatus.SUCCEEDED and job.progress == 100
    pdfs = {p.paper: p for p in report.pdfs.all()}
    assert set(pdfs) == {"a4", "letter"}
    data = artifact_storage().open(pdfs["a4"].storage_name, "rb").read()
    assert hashlib.sha256(data).hexdigest() == pdfs["a4"].sha256
    sha = Report.objects.get(pk=report.pk).snapshot_sha256

    reader = PdfReader(io.BytesIO(data))
    texts = [page.extract_text() for page in reader.pages]
    total = len(texts)
    assert total == pdfs["a4"].pages
    for number, text in enumerate(texts, start=1):
        assert sha[:16] in text, f"page {number} lacks the snapshot hash"
        assert f"Page {number} of {total}" in text
    whole = pdftotext(data)
    for sub in catalog().subcategories:
        assert sub.id in whole, sub.id
    assert re.sub(r"\s+", "", sha) in re.sub(r"\s+", "", texts[0])  # the cover carries the hash whole
    assert "credit-risk" in texts[0] and "olga" in texts[0] and str(report.pk) in texts[0]
    toc = re.findall(
        r"^\s*(Executive summary|Gaps and open items|Evidence register|Sign-off)\s*\.{3,}\s*(\d+)\s*$",
        whole,
        flags=re.MULTILINE,
    )
    assert [name for name, _ in toc] == ["Executive summary", "Gaps and open items", "Evidence register", "Sign-off"]
    pages = [int(page) for _, page in toc]
    assert pages == sorted(pages) and pages[-1] == total  # the sign-off is the last page, as the TOC says
    assert "Executive summary" in texts[pages[0] - 1]
    assert HOSTILE in whole.replace("\n", " ") or '<script>alert("pwned")</script>' in whole  # text, not markup
    assert "Second-line review, Q1." in whole
    assert "Appendix C. Audit-chain verification" in whole and "The audit chain is intact." in whole
    fonts = subprocess.run(["pdffonts", "-"], input=data, capture_output=True, check=True).stdout.decode()
    rows = [row.split() for row in fonts.splitlines()[2:]]
    assert rows and all(row[-5] == "yes" for row in rows), fonts  # every font embedded (the "emb" column)
    assert {row[0].split("+")[-1] for row in rows} >= {"DejaVu-Sans", "DejaVu-Sans-Bold", "DejaVu-Sans-Mono"}
    assert tuple(round(v) for v in reader.pages[0].mediabox[2:]) == A4
    letter = PdfReader(io.BytesIO(artifact_storage().open(pdfs["letter"].storage_name, "rb").read()))
    assert tuple(round(v) for v in letter.pages[0].mediabox[2:]) == LETTER
    # the PDF's dates are the snapshot's, so a re-render is identical
    finalized = report.snapshot["signoff"]["finalized_at"]
    assert reader.metadata.creation_date.strftime("%Y-%m-%dT%H:%M:%SZ") == finalized
    render = AuditEvent.objects.filter(action="report.render").order_by("seq")
    assert [(e.after["paper"], e.after["sha256"]) for e in render] == [
        ("a4", pdfs["a4"].sha256),
        ("letter", pdfs["letter"].sha256),
    ]


def test_the_same_snapshot_renders_to_the_same_bytes_and_text(officer, evidenced):
    report = report_create(actor=officer, model=evidenced.model, start="2020-01-01", end="2030-12-31")
    report, _ = report_finalize(report=report, actor=officer)
    report = Report.objects.get(pk=report.pk)
    first = render_pdf(report.snapshot, report.snapshot_sha256, "a4")
    second = render_pdf(report.snapshot, report.snapshot_sha256, "a4")
    assert pages_text(first.data) == pages_text(second.data)
    assert hashlib.sha256(first.data).digest() == hashlib.sha256(second.data).digest()


def test_narrative_with_markup_is_escaped_in_the_print_html(officer, evidenced):
    report = report_create(actor=officer, model=evidenced.model, start="2020-01-01", end="2030-12-31")
    report_subcategory_update(report=report, actor=officer, sub_id="MAP 1.1", narrative=HOSTILE)
    report_update(report=report, actor=officer, executive_summary=HOSTILE)
    report, _ = report_finalize(report=report, actor=officer)
    html = report_html(report.snapshot, report.snapshot_sha256, "a4")
    assert "<script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html


def test_a_model_with_no_evidence_at_all_still_renders_and_says_so(officer, engineer):
    model = model_create(name="bare", owner=engineer)
    whole = pdftotext(finalize_and_render_a4(officer, model))
    assert "No evidence in the period: no parity runs or benchmark runs" in re.sub(r"\s+", " ", whole)
    assert "No artifact is in this report's scope." in whole
    for sub in catalog().subcategories:
        assert sub.id in whole


def test_ten_thousand_audit_events_are_summarised_and_the_pdf_stays_small(officer, evidenced):
    append_audit_events(
        10_000,
        obj_type="models_registry.registeredmodel",
        obj_id=str(evidenced.model.pk),
        obj_repr="credit-risk",
        actors=("erin", "ci-bot", "mo"),
    )
    data = finalize_and_render_a4(officer, evidenced.model)
    text = re.sub(r"\s+", " ", pdftotext(data))
    assert re.search(r"The trail has 10,0\d\d events in the period; the extract shows the first and last 25", text)
    assert len(data) < 400_000, len(data)
    assert len(PdfReader(io.BytesIO(data)).pages) < 60
