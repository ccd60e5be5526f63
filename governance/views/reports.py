"""Report pages: the list, starting a report, the report (a preview with the same content as its PDF, gaps first,
with the officer's forms while it is editable), its render progress, and the downloads."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from forge_site.roles import require_action
from forge_site.views import _page
from governance.api.report_filters import ReportFilter
from governance.forms import FinalizeForm, ReportCreateForm, ReportSummaryForm, SubcategoryForm
from governance.models import Report, ReportStatus
from governance.nist_rmf.catalog import normalize_sub_id
from governance.reports.present import present
from governance.selectors.reports import report_content, report_get, report_list_rows, reports_visible_to
from governance.services import reports as services
from governance.services.reports import ReportError
from models_registry.artifacts import artifact_storage

PAGE_SIZE = 25


def _report_or_404(request: HttpRequest, report_id: UUID) -> Report:
    report = report_get(user=request.user, report_id=report_id)
    if report is None:
        raise Http404("There is no such report, or it is not yours to see.")
    return report


def _detail(report: Report, anchor: str = "") -> HttpResponse:
    return redirect(reverse("reports:detail", args=[report.pk]) + (f"#{anchor}" if anchor else ""))


@require_action("report.view")
@require_safe
def report_list(request: HttpRequest) -> HttpResponse:
    filters = ReportFilter(request.GET or None, queryset=reports_visible_to(request.user))
    page = _page(request, filters.qs, PAGE_SIZE)
    return render(
        request,
        "governance/reports/report_list.html",
        {"filters": filters, "page": page, "rows": report_list_rows(page.object_list), "create_form": None},
    )


@require_action("report.edit")
def report_new(request: HttpRequest) -> HttpResponse:
    form = ReportCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            report = services.report_create(
                actor=request.user,
                model=form.model(),
                versions=form.version_names(),
                start=form.cleaned_data["start"],
                end=form.cleaned_data["end"],
                title=form.cleaned_data["title"],
            )
        except ReportError as exc:
            form.add_error(_form_field(exc.field), exc.message)
        else:
            messages.success(request, "Report started: its evidence is collected. The gaps come first.")
            return _detail(report)
    return render(request, "governance/reports/report_new.html", {"form": form})


def _form_field(field: str | None) -> str | None:
    return {"period.start": "start", "period.end": "end", "versions": "versions", "title": "title"}.get(field or "")


@require_action("report.view")
@require_safe
def report_detail(request: HttpRequest, report_id: UUID) -> HttpResponse:
    report = _report_or_404(request, report_id)
    content = report_content(report)
    view = present(content)
    return render(
        request,
        "governance/reports/report_detail.html",
        {
            **view,
            "obj": report,
            "sha256": report.snapshot_sha256,
            "pdfs": {pdf.paper: pdf for pdf in report.pdfs.all()},
            "job": report.render_job,
            "summary_form": ReportSummaryForm(
                initial={"title": report.title, "executive_summary": report.executive_summary}
            ),
            "finalize_form": FinalizeForm(),
        },
    )


@require_action("report.view")
@require_safe
def report_render_status(request: HttpRequest, report_id: UUID) -> HttpResponse:
    """The render job's progress, polled by the report page while the PDF is being made."""
    report = _report_or_404(request, report_id)
    return render(
        request,
        "governance/reports/inc/render_status.html",
        {"obj": report, "job": report.render_job, "pdfs": {pdf.paper: pdf for pdf in report.pdfs.all()}},
    )


def _refused(request: HttpRequest, report: Report, exc: ReportError, anchor: str = "") -> HttpResponse:
    messages.error(request, exc.message)
    return _detail(report, anchor)


@require_action("report.edit")
@require_POST
def report_summary_edit(request: HttpRequest, report_id: UUID) -> HttpResponse:
    report = _report_or_404(request, report_id)
    form = ReportSummaryForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The title is at most 200 characters.")
        return _detail(report, "summary")
    try:
        services.report_update(report=report, actor=request.user, **form.cleaned_data)
    except ReportError as exc:
        return _refused(request, report, exc, "summary")
    messages.success(request, "Executive summary saved.")
    return _detail(report, "summary")


@require_action("report.edit")
@require_POST
def report_subcategory_edit(request: HttpRequest, report_id: UUID, sub_id: str) -> HttpResponse:
    report = _report_or_404(request, report_id)
    try:
        wanted = normalize_sub_id(sub_id)
    except ValueError as exc:
        raise Http404(str(exc)) from exc
    anchor = wanted.replace(" ", "-")
    form = SubcategoryForm(request.POST)
    form.is_valid()  # every field is optional text or a checkbox
    try:
        services.report_subcategory_update(report=report, actor=request.user, sub_id=wanted, **form.cleaned_data)
    except ReportError as exc:
        return _refused(request, report, exc, anchor)
    messages.success(request, f"{wanted} saved.")
    return _detail(report, anchor)


@require_action("report.edit")
@require_POST
def report_refresh(request: HttpRequest, report_id: UUID) -> HttpResponse:
    report = _report_or_404(request, report_id)
    try:
        services.report_refresh_evidence(report=report, actor=request.user)
    except ReportError as exc:
        return _refused(request, report, exc)
    messages.success(request, "Evidence collected again.")
    return _detail(report)


@require_action("report.edit")
@require_POST
def report_submit(request: HttpRequest, report_id: UUID) -> HttpResponse:
    report = _report_or_404(request, report_id)
    try:
        services.report_submit(report=report, actor=request.user)
    except ReportError as exc:
        return _refused(request, report, exc)
    messages.success(request, "Submitted for review.")
    return _detail(report)


@require_action("report.finalize")
@require_POST
def report_finalize(request: HttpRequest, report_id: UUID) -> HttpResponse:
    report = _report_or_404(request, report_id)
    form = FinalizeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Tick the box to confirm you reviewed the report and sign it.")
        return _detail(report, "finalize")
    try:
        services.report_finalize(report=report, actor=request.user, idempotency_key=form.idempotency_key())
    except ReportError as exc:
        return _refused(request, report, exc)
    messages.success(request, "Finalized and signed. The PDF is being rendered.")
    return _detail(report)


@require_action("report.finalize")
@require_POST
def report_render(request: HttpRequest, report_id: UUID) -> HttpResponse:
    report = _report_or_404(request, report_id)
    try:
        services.report_render_start(report=report, actor=request.user)
    except ReportError as exc:
        return _refused(request, report, exc)
    messages.success(request, "Rendering the PDF again.")
    return _detail(report)


@require_action("report.edit")
@require_POST
def report_revise(request: HttpRequest, report_id: UUID) -> HttpResponse:
    report = _report_or_404(request, report_id)
    try:
        draft = services.report_revise(report=report, actor=request.user)
    except ReportError as exc:
        return _refused(request, report, exc)
    messages.success(request, f"Revision {draft.revision} started from the finalized report.")
    return _detail(draft)


@require_action("report.download")
@require_safe
def report_pdf(request: HttpRequest, report_id: UUID) -> HttpResponseBase:
    report = _report_or_404(request, report_id)
    paper = request.GET.get("paper", "a4")
    pdf = report.pdfs.filter(paper=paper).first() if report.status == ReportStatus.FINALIZED else None
    if pdf is None:
        messages.error(
            request,
            "This report has no PDF yet: a report gets one when it is finalized and its render job has finished.",
        )
        return _detail(report)
    response = FileResponse(
        artifact_storage().open(pdf.storage_name, "rb"),
        content_type="application/pdf",
        as_attachment=True,
        filename=f"forge-report-{str(report.pk)[:8]}-{paper}.pdf",
    )
    response["ETag"] = f'"{pdf.sha256}"'
    return response


@require_action("report.download")
@require_safe
def report_json(request: HttpRequest, report_id: UUID) -> HttpResponse:
    report = _report_or_404(request, report_id)
    if report.status != ReportStatus.FINALIZED:
        messages.error(request, "Only a finalized report has a frozen snapshot to download; finalize it first.")
        return _detail(report)
    response = JsonResponse(
        {"sha256": report.snapshot_sha256, "snapshot": report.snapshot},
        json_dumps_params={"ensure_ascii": False, "indent": 1},
    )
    response["Content-Disposition"] = f'attachment; filename="forge-report-{str(report.pk)[:8]}.json"'
    return response
