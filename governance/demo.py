"""forge_demo's reports step (settings.FORGE_DEMO_STEPS): one finalized NIST AI RMF report with its PDFs, and one
draft. Idempotent: a second run finds them and changes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User

from governance.models import Report, ReportStatus
from governance.services.reports import (
    report_create,
    report_finalize,
    report_subcategory_update,
    report_submit,
    report_update,
)
from governance.tasks import render_report_pdf_now
from models_registry.models import RegisteredModel

FINAL_TITLE = "NIST AI RMF 1.0: credit-risk, demo quarter"
DRAFT_TITLE = "NIST AI RMF 1.0: whole inventory (draft)"
ATTESTATIONS = {
    "GOVERN 1.1": "Legal reviewed the model against ECOA and FCRA obligations (memo LR-2026-014).",
    "GOVERN 1.6": "The model inventory is reviewed monthly by the model risk committee, staffed by tier.",
    "GOVERN 2.1": "The RACI for credit models is in the model risk policy, section 4, approved by the board.",
    "MAP 1.1": "Intended use and users are documented in the model card; adverse-action use is excluded.",
    "MEASURE 2.5": "Out-of-time validation on 2025-Q4 data; limits of generalization are in the model card.",
    "MEASURE 2.7": "The serving cluster passed the annual penetration test; access is role-based.",
}
NOT_APPLICABLE = {
    "MEASURE 2.2": "No evaluation of this model involves human subjects.",
}


def seed(*, stdout: Any, now: datetime) -> None:
    officer = User.objects.filter(username="olga").first()
    model = RegisteredModel.objects.filter(name="credit-risk").first()
    if officer is None or model is None:
        stdout.write("  reports: skipped (the registry step made no officer olga or model credit-risk)\n")
        return
    start, end = (now - timedelta(days=90)).date(), now.date()
    final = Report.objects.filter(title=FINAL_TITLE).first()
    if final is None:
        draft = report_create(actor=officer, model=model, start=start, end=end, title=FINAL_TITLE)
        report_update(
            report=draft,
            actor=officer,
            executive_summary=(
                "credit-risk is governed through Forge's registry, evidence runs and approvals. The gaps below are "
                "outcomes no record can show; the attestations name the documents that do."
            ),
        )
        for sub_id, text in ATTESTATIONS.items():
            report_subcategory_update(report=draft, actor=officer, sub_id=sub_id, attestation=text)
        for sub_id, why in NOT_APPLICABLE.items():
            report_subcategory_update(
                report=draft, actor=officer, sub_id=sub_id, not_applicable=True, justification=why
            )
        report_submit(report=draft, actor=officer)
        final, job = report_finalize(report=draft, actor=officer, idempotency_key="demo:final")
        render_report_pdf_now(str(job.pk))  # in this process, as the demo's other jobs: no worker needed
        stdout.write(f"  reports: finalized {final.pk} (snapshot {final.snapshot_sha256[:16]}…), PDFs rendered\n")
    elif final.status == ReportStatus.FINALIZED and not final.pdfs.exists() and final.render_job is not None:
        render_report_pdf_now(str(final.render_job.pk))
    if not Report.objects.filter(title=DRAFT_TITLE).exists():
        draft = report_create(actor=officer, model=None, start=start, end=end, title=DRAFT_TITLE)
        report_subcategory_update(
            report=draft, actor=officer, sub_id="GOVERN 1.1", attestation=ATTESTATIONS["GOVERN 1.1"]
        )
        stdout.write(f"  reports: draft {draft.pk} for the whole inventory\n")
