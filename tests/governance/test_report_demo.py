"""forge_demo's reports step: one finalized report with its PDFs and one draft, and nothing more on a second run."""

from __future__ import annotations

import io

import pytest
from django.utils import timezone

from governance.demo import seed
from governance.models import Report, ReportStatus

pytestmark = pytest.mark.django_db


def test_the_demo_leaves_one_finalized_report_and_one_draft_and_is_idempotent(officer, evidenced):
    out = io.StringIO()
    seed(stdout=out, now=timezone.now())
    seed(stdout=out, now=timezone.now())
    reports = list(Report.objects.order_by("created_at"))
    assert [r.status for r in reports] == [ReportStatus.FINALIZED, ReportStatus.DRAFT]
    final, draft = reports
    assert final.model.name == "credit-risk" and final.signer == "olga" and len(final.snapshot_sha256) == 64
    assert {pdf.paper for pdf in final.pdfs.all()} == {"a4", "letter"}
    assert draft.model is None
    assert out.getvalue().count("finalized") == 1


def test_the_demo_skips_when_the_registry_step_made_nothing(db):
    out = io.StringIO()
    seed(stdout=out, now=timezone.now())
    assert "skipped" in out.getvalue() and not Report.objects.exists()
