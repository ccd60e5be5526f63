"""Parity and benchmark pages: start a run from the version page, watch it, read its result, compare benchmarks."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_POST, require_safe

from forge_site.models import Job, JobStatus
from forge_site.roles import require_action
from forge_site.views import job_or_404
from models_registry import evidence, services
from models_registry.forms import BenchmarkRunForm, ParityRunForm
from models_registry.models import ModelVersion
from models_registry.views import _is_htmx, _model_or_404, _version_context, _version_or_404, _version_page_context

EVALUATION_KINDS = ("parity", "benchmark")


def _version_page(
    request: HttpRequest, mv: ModelVersion, form: ParityRunForm | BenchmarkRunForm, status: int
) -> HttpResponse:
    """The version page again, with the refused form showing its errors (and the other form fresh)."""
    context = _version_page_context(request, mv)
    context["parity_form"] = form if isinstance(form, ParityRunForm) else ParityRunForm(version=mv)
    context["benchmark_form"] = form if isinstance(form, BenchmarkRunForm) else BenchmarkRunForm()
    context["form_errors_in"] = "parity" if isinstance(form, ParityRunForm) else "benchmark"
    return render(request, "models_registry/version_detail.html", context, status=status)


def _show_service_error(form: ParityRunForm | BenchmarkRunForm, exc: services.RegistryError) -> None:
    if exc.code == "idempotency_key_reused":  # the page was posted again with other settings (Back, edit, Start)
        form.add_error(None, "This form already started a run with other settings; reload the page to start another.")
        return
    field = form.SERVICE_FIELDS.get(exc.field or "", exc.field)
    form.add_error(field if field in form.fields else None, exc.message)


def _run_url(mv: ModelVersion, job: Job) -> str:
    return reverse("registry:run_detail", kwargs={"name": mv.model.name, "version": mv.version, "job_id": job.pk})


def _start(
    request: HttpRequest, mv: ModelVersion, form: ParityRunForm | BenchmarkRunForm, start: Callable[..., Job]
) -> HttpResponse:
    """Validate the form, call the service, go to the run page; a refusal shows on the version page's form."""
    if not form.is_valid():
        return _version_page(request, mv, form, status=400)
    try:
        job = start(version=mv, actor=request.user, idempotency_key=form.idempotency_key(), **form.service_arguments())
    except services.RegistryError as exc:
        _show_service_error(form, exc)
        return _version_page(request, mv, form, status=exc.status)
    if job.replayed:  # this form had already started it
        messages.info(request, "This form had already started this run, so it was not started twice.")
    return redirect(_run_url(mv, job))


@require_action("version.evaluate")
@require_POST
def parity_start(request: HttpRequest, name: str, version: str) -> HttpResponse:
    mv = _version_or_404(name, version)
    return _start(request, mv, ParityRunForm(request.POST, version=mv), services.parity_start)


@require_action("version.evaluate")
@require_POST
def benchmark_start(request: HttpRequest, name: str, version: str) -> HttpResponse:
    mv = _version_or_404(name, version)
    return _start(request, mv, BenchmarkRunForm(request.POST), services.benchmark_start)


@require_action("registry.view")
@require_safe
def version_evidence(request: HttpRequest, name: str, version: str) -> HttpResponse:
    """The version page's Evidence tables alone, for the page's htmx polling while a run is queued or running.
    Opened directly (a bookmark, a reload of the polled URL), it is the whole version page at its evidence."""
    mv = _version_or_404(name, version)
    response: HttpResponse
    if _is_htmx(request):
        response = render(request, "models_registry/inc/evidence.html", _version_context(request, mv))
    else:
        url = reverse("registry:version_detail", kwargs={"name": mv.model.name, "version": mv.version})
        response = redirect(f"{url}#evidence-section")
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_action("registry.view")
@require_safe
def run_detail(request: HttpRequest, name: str, version: str, job_id: uuid.UUID) -> HttpResponse:
    mv = _version_or_404(name, version)
    job = job_or_404(job_id)
    if job.subject_type != evidence.VERSION_SUBJECT or job.subject_id != str(mv.pk):
        raise Http404(f"That job is not a run of {mv}.")
    if job.kind not in EVALUATION_KINDS:
        return redirect("jobs:detail", job_id=job.pk)
    context = _run_context(mv, job)
    if _is_htmx(request):
        response = render(request, "models_registry/inc/run_live.html", context)
        if job.is_terminal:
            response["HX-Refresh"] = "true"  # the finished page has charts and tables the partial does not
    else:
        response = render(request, "models_registry/run_detail.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def benchmark_subject(job: Job, result: dict[str, Any]) -> str:
    """Where a benchmark ran, for its title: the device the worker used (a request's "auto" says nothing), then the
    device asked for while it has not started."""
    device = result.get("device") or job.device or job.params.get("device") or ""
    dtype = result.get("dtype") or job.params.get("dtype") or ""
    return f"{device} {dtype}".strip()


def _run_context(mv: ModelVersion, job: Job) -> dict[str, Any]:
    result = job.result if isinstance(job.result, dict) else {}
    output_charts: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    if job.kind == "parity":
        charts = evidence.parity_charts(result)
        by_id = {chart["id"]: chart for chart in charts}
        output_charts = [
            (output, by_id.get(f"parity-hist-{index}")) for index, output in enumerate(result.get("outputs") or [])
        ]
        subject = evidence.reference_text(job.params.get("reference"))
    else:
        charts = evidence.benchmark_charts(result)
        subject = benchmark_subject(job, result)
    return {
        "model": mv.model,
        "version": mv,
        "job": job,
        "result": result,
        "charts": charts,
        "output_charts": output_charts,
        "subject": subject,
        "run_url": _run_url(mv, job),
        "partial": bool(result) and job.status != JobStatus.SUCCEEDED,
    }


@require_action("registry.view")
@require_safe
def benchmark_compare(request: HttpRequest, name: str) -> HttpResponse:
    model = _model_or_404(name)
    comparison = error = None
    status = 200
    ids: list[str] = []
    try:
        ids = evidence.parse_job_ids(request.GET.getlist("job"))
        baseline = evidence.parse_job_ids(request.GET.getlist("baseline"))[:1]
        ids = baseline + [job_id for job_id in ids if job_id not in baseline]
        if len(ids) > 1:
            comparison = evidence.compare(model=model, raw_ids=ids)
    except evidence.CompareError as exc:
        error, status = str(exc), 400
    context: dict[str, Any] = {
        "model": model,
        "runs": evidence.model_benchmark_runs(model=model),
        "selected": set(ids),
        "baseline": ids[0] if ids else "",
        "error": error,
        "comparison": comparison.result if comparison else None,
        "compared_jobs": _compared_rows(model.name, comparison) if comparison else [],
        "table": evidence.compare_table(comparison.result) if comparison else [],
        "charts": evidence.compare_charts(comparison.result) if comparison else [],
    }
    return render(request, "models_registry/benchmark_compare.html", context, status=status)


def _compared_rows(model_name: str, comparison: evidence.Comparison) -> list[dict[str, Any]]:
    labels = {row["job_id"]: row["label"] for row in comparison.result.get("series", [])}
    rows = []
    for job in comparison.jobs:
        version = comparison.versions[str(job.pk)]
        rows.append(
            {
                "job": job,
                "version": version,
                "label": labels.get(str(job.pk), version),
                "fingerprint": (job.result or {}).get("fingerprint") or {},
                "fingerprint_key": (job.result or {}).get("fingerprint_key", ""),
                "url": reverse(
                    "registry:run_detail", kwargs={"name": model_name, "version": version, "job_id": job.pk}
                ),
            }
        )
    return rows
