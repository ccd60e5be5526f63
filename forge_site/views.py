"""Site pages: the dashboard, the jobs pages (live through htmx polling) and the audit trail with its exports."""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from forge_site import selectors
from forge_site.audit import audit_record
from forge_site.jobs import job_cancel
from forge_site.models import AuditEvent, Job, JobStatus
from forge_site.roles import require_action, user_can

AUDIT_PAGE_SIZE = 50
JOB_PAGE_SIZE = 50
EXPORT_CHUNK = 2000


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _page(request: HttpRequest, items: Any, per_page: int) -> Page:
    return Paginator(items, per_page).get_page(request.GET.get("page"))


def _pretty(value: Any) -> str:
    return "" if value is None else json.dumps(value, indent=2, sort_keys=True, cls=DjangoJSONEncoder)


def _summary(value: Any, limit: int = 70) -> str:
    """`key: value, …` of the top level of an audit payload, short enough for a table cell."""
    if isinstance(value, dict):
        parts = [f"{key}: {item}" for key, item in value.items() if item not in (None, "", [], {})]
        text = ", ".join(parts)
    else:
        text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _query_without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


@require_action("site.home")
@require_safe
def home(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {}
    if user_can(request.user, "audit.view"):
        context["recent_events"] = selectors.audit_recent(limit=8)
    return render(request, "forge_site/home.html", context)


# --- jobs -------------------------------------------------------------------------------------------------------


class JobFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), ("active", "Queued or running"), *JobStatus.choices]
    )
    kind = forms.CharField(required=False, max_length=64)


@require_action("job.view")
@require_safe
def job_list(request: HttpRequest) -> HttpResponse:
    form = JobFilterForm(request.GET)
    filters = form.cleaned_data if form.is_valid() else {}
    page = _page(
        request, selectors.job_list(status=filters.get("status", ""), kind=filters.get("kind", "")), JOB_PAGE_SIZE
    )
    jobs: list[Job] = list(page.object_list)
    context = {
        "form": form,
        "page": page,
        "jobs": jobs,
        "kinds": selectors.job_kinds(),
        "query": _query_without_page(request),
        "compact": request.GET.get("compact") == "1",
    }
    context["live"] = not selectors.jobs_all_terminal(jobs)
    template = "forge_site/inc/job_table.html" if _is_htmx(request) else "forge_site/job_list.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def job_or_404(job_id: uuid.UUID) -> Job:
    try:
        return selectors.job_get(job_id=job_id)
    except Job.DoesNotExist as exc:
        raise Http404("No such job.") from exc


@require_action("job.view")
@require_safe
def job_detail(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    job = job_or_404(job_id)
    context = {
        "job": job,
        "params_json": _pretty(job.params),
        "result_json": _pretty(job.result),
    }
    template = "forge_site/inc/job_live.html" if _is_htmx(request) else "forge_site/job_detail.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_action("job.cancel")
@require_POST
def job_cancel_view(request: HttpRequest, job_id: uuid.UUID) -> HttpResponseRedirect:
    """Cancel a queued or running job, then go back to the page the button was on (or to the job's page)."""
    job = job_or_404(job_id)
    if job.is_terminal:
        messages.warning(request, f"This job already finished ({job.get_status_display().lower()}); nothing to cancel.")
    else:
        job = job_cancel(job=job, actor=request.user)
        if job.status == JobStatus.CANCELLED:
            messages.success(request, "Cancelled. A running job stops at its next step and says where it stopped.")
        else:
            messages.warning(request, f"The job finished ({job.get_status_display().lower()}) before it was cancelled.")
    back = request.POST.get("next", "")
    local = url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    if back and local:
        return HttpResponseRedirect(back)
    return redirect("jobs:detail", job_id=job.pk)


# --- audit ------------------------------------------------------------------------------------------------------


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=150)
    action = forms.CharField(required=False, max_length=64)
    object_type = forms.CharField(required=False, max_length=64)
    object_id = forms.CharField(required=False, max_length=128)
    request_id = forms.CharField(required=False, max_length=64)
    start = forms.DateTimeField(required=False, label="From (UTC)")
    end = forms.DateTimeField(required=False, label="To (UTC)")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end and end <= start:
            self.add_error("end", "'To' must be after 'From'.")
        return data

    def filters(self) -> selectors.AuditFilters:
        data = self.cleaned_data
        return selectors.AuditFilters(
            actor=data.get("actor", "").strip(),
            action=data.get("action", "").strip(),
            object_type=data.get("object_type", "").strip(),
            object_id=data.get("object_id", "").strip(),
            request_id=data.get("request_id", "").strip(),
            start=data.get("start"),
            end=data.get("end"),
        )


@require_action("audit.view")
@require_safe
def audit_list(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    valid = form.is_valid()
    events = selectors.audit_event_list(filters=form.filters()) if valid else AuditEvent.objects.none()
    page = _page(request, events, AUDIT_PAGE_SIZE)
    rows = list(page.object_list)
    for event in rows:
        event.before_json = _pretty(event.before)  # type: ignore[attr-defined]
        event.after_json = _pretty(event.after)  # type: ignore[attr-defined]
        event.change_summary = _summary(event.after if event.after is not None else event.before)  # type: ignore[attr-defined]
    context = {
        "form": form,
        "page": page,
        "events": rows,
        "query": _query_without_page(request),
        "can_export": user_can(request.user, "audit.export") and valid,
    }
    return render(request, "forge_site/audit_list.html", context)


class _Echo:
    """csv.writer wants a file; this one hands each written line straight back."""

    def write(self, value: str) -> str:
        return value


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
EXPORT_FIELDS = [
    "seq",
    "at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "before",
    "after",
    "request_id",
    "prev_hash",
    "hash",
]


def _event_row(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": event.at.isoformat(timespec="microseconds"),
        "actor": event.actor_label,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_repr": event.object_repr,
        "before": event.before,
        "after": event.after,
        "request_id": event.request_id,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True)
    # A login-failure username like "=HYPERLINK(...)" must not run as a formula in a spreadsheet;
    # the JSON Lines export keeps the exact bytes for hash verification.
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv_lines(events: Iterator[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_FIELDS)
    for event in events:
        row = _event_row(event)
        yield writer.writerow([row["seq"], *(_csv_cell(row[name]) for name in EXPORT_FIELDS[1:])])


def _jsonl_lines(events: Iterator[AuditEvent]) -> Iterator[str]:
    for event in events:
        yield json.dumps(_event_row(event), cls=DjangoJSONEncoder, ensure_ascii=False) + "\n"


def _audit_export(request: HttpRequest, fmt: str) -> HttpResponse | StreamingHttpResponse:
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        messages = "; ".join(f"{field}: {' '.join(str(e) for e in errs)}" for field, errs in form.errors.items())
        return HttpResponse(
            f"The filters are not valid, nothing was exported: {messages}", status=400, content_type="text/plain"
        )
    filters = form.filters()
    events = selectors.audit_event_list(filters=filters)
    with transaction.atomic():
        # The export is itself evidence: record who took which slice of the trail, then export what
        # existed before that record, so the file matches what the record describes.
        rows = events.count()
        record = audit_record(
            actor=request.user,
            action="audit.export",
            object_type="forge_site.auditevent",
            object_repr=f"audit export ({fmt}, {rows} events)",
            after={"format": fmt, "filters": filters.as_dict(), "rows": rows},
        )
    frozen = events.filter(seq__lt=record.seq).iterator(chunk_size=EXPORT_CHUNK)
    stamp = record.at.strftime("%Y%m%dT%H%M%SZ")
    if fmt == "csv":
        response = StreamingHttpResponse(_csv_lines(frozen), content_type="text/csv; charset=utf-8")
    else:
        response = StreamingHttpResponse(_jsonl_lines(frozen), content_type="application/x-ndjson; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="forge-audit-{stamp}.{fmt}"'
    return response


@require_action("audit.export")
@require_safe
def audit_export_csv(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    return _audit_export(request, "csv")


@require_action("audit.export")
@require_safe
def audit_export_jsonl(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    return _audit_export(request, "jsonl")
