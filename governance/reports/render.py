"""The PDF job's body: render a finalized report's snapshot in each paper size, store each PDF under its SHA-256
in artifact storage, and record it. Runs in a worker on the `default` queue (governance.tasks)."""

from __future__ import annotations

import hashlib
from typing import Any

from django.core.files.base import ContentFile

from forge_site.jobs import JobContext, JobError
from governance.models import Report, ReportStatus
from governance.reports.pdf import render_pdf
from governance.reports.snapshot import snapshot_sha256
from governance.services.reports import PAPERS, report_record_pdf
from models_registry.artifacts import artifact_storage


def store_pdf(data: bytes) -> tuple[str, str]:
    """File the PDF as reports/<sha[:2]>/<sha>.pdf (identical bytes are stored once); (name, sha256)."""
    digest = hashlib.sha256(data).hexdigest()
    name = f"reports/{digest[:2]}/{digest}.pdf"
    storage = artifact_storage()
    if not storage.exists(name):
        saved = storage.save(name, ContentFile(data))
        if saved != name:  # stored at the same moment by another render of the same snapshot
            storage.delete(saved)
    return name, digest


def report_render_execute(ctx: JobContext) -> dict[str, Any]:
    report = Report.objects.filter(pk=ctx.job.subject_id).first()
    if report is None:
        raise JobError("The report this job renders no longer exists.")
    if report.status != ReportStatus.FINALIZED or not report.snapshot:
        raise JobError("Only a finalized report is rendered to PDF; this one is not finalized.")
    if snapshot_sha256(report.snapshot) != report.snapshot_sha256:
        raise JobError(
            "The stored snapshot does not match its SHA-256: it was altered after finalizing, so no PDF is made."
        )
    papers = [p for p in ctx.job.params.get("papers") or PAPERS if p in PAPERS]
    rendered = []
    for index, paper in enumerate(papers):
        share = 90 // len(papers)
        ctx.progress(5 + index * share, f"rendering the {paper.upper()} PDF")
        try:
            pdf = render_pdf(report.snapshot, report.snapshot_sha256, paper)
        except Exception as exc:  # WeasyPrint's own errors name the cause; say which step failed
            raise JobError(f"Rendering the {paper.upper()} PDF failed: {type(exc).__name__}: {exc}") from exc
        ctx.progress(5 + index * share + share * 3 // 4, f"storing the {paper.upper()} PDF")
        try:
            name, digest = store_pdf(pdf.data)
        except OSError as exc:
            raise JobError(
                f"The {paper.upper()} PDF was rendered but could not be stored in artifact storage: {exc}. "
                "Fix the storage, then retry the render."
            ) from exc
        report_record_pdf(
            report=report,
            job=ctx.job,
            paper=paper,
            storage_name=name,
            sha256=digest,
            size=len(pdf.data),
            pages=pdf.pages,
        )
        rendered.append({"paper": paper, "sha256": digest, "size": len(pdf.data), "pages": pdf.pages})
    ctx.progress(98, "recorded")
    return {"snapshot_sha256": report.snapshot_sha256, "pdfs": rendered}
