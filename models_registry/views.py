"""Registry pages: list, model and version detail, forms that call the services, uploads and downloads."""

from __future__ import annotations

import json
from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.forms.utils import ErrorDict
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from forge_site.roles import require_action, user_can
from forge_site.selectors import job_status_counts
from models_registry import selectors, services
from models_registry.artifacts import artifact_storage, human_bytes, repeated_file_part, upload_errors
from models_registry.forms import (
    INPUT_SPEC_EXAMPLE,
    AliasAtForm,
    BenchmarkRunForm,
    ModelCreateForm,
    ModelEditForm,
    ModelFilterForm,
    ParityRunForm,
    RetireForm,
    VersionUploadForm,
)
from models_registry.models import Alias, ModelVersion, RegisteredModel, VersionStatus
from models_registry.tables import model_table_rows

MODEL_PAGE_SIZE = 100
VERSION_PAGE_SIZE = 50

# What a version offers for download: field holding the storage name, and the file extension.
DOWNLOADS = {"artifact": ("artifact", "pt"), "onnx": ("onnx", "onnx"), "sample_inputs": ("sample_inputs", "npz")}


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _wants_json(request: HttpRequest) -> bool:
    return request.headers.get("X-Requested-With") == "XMLHttpRequest" or "application/json" in request.headers.get(
        "Accept", ""
    )


def _model_or_404(name: str) -> RegisteredModel:
    try:
        return selectors.model_get(name=name)
    except RegisteredModel.DoesNotExist as exc:
        raise Http404(f"No model named {name!r}.") from exc


def _version_or_404(name: str, version: str) -> ModelVersion:
    try:
        return selectors.version_get(model_name=name, version=version)
    except ModelVersion.DoesNotExist as exc:
        raise Http404(f"{name} has no version {version!r}.") from exc


def _show_error(form: forms.Form, exc: services.RegistryError) -> None:
    """Put a service's refusal on the form field it names, or on the form as a whole."""
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


def _json_pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, cls=DjangoJSONEncoder)


@require_action("registry.view")
@require_safe
def model_list(request: HttpRequest) -> HttpResponse:
    form = ModelFilterForm(request.GET)
    data = form.cleaned_data if form.is_valid() else {}
    models = selectors.model_search(
        search=data.get("q", "").strip(),
        tag=data.get("tag", "").strip(),
        risk_tier=data.get("risk_tier", ""),
        status=data.get("status", ""),
        sort=data.get("sort") or "name",
    )
    page = Paginator(models, MODEL_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = selectors.model_page_rows(cast(QuerySet[RegisteredModel], page.object_list))
    table_rows = model_table_rows(
        rows,
        model_url=reverse("registry:model_detail", kwargs={"name": "__name__"}),
        version_url=reverse("registry:version_detail", kwargs={"name": "__name__", "version": "__version__"}),
    )
    params = request.GET.copy()
    params.pop("page", None)
    sort_params = params.copy()
    sort_params.pop("sort", None)
    context = {
        "form": form,
        "page": page,
        "models": rows,
        "table_rows": table_rows,
        "sort": data.get("sort") or "name",
        "query": params.urlencode(),
        "query_without_sort": sort_params.urlencode(),
        "tags": selectors.tag_names(),
        "filtered": any(data.get(key) for key in ("q", "tag", "risk_tier", "status")),
    }
    return render(request, "models_registry/model_list.html", context)


@require_action("registry.view")
@require_safe
def dashboard_panel(request: HttpRequest) -> HttpResponse:
    """The registry's part of the home dashboard, loaded by htmx so forge_site need not import the registry."""
    context = {"counts": selectors.registry_counts(), "recent": selectors.version_recent(limit=8)}
    if user_can(request.user, "job.view"):
        context["job_counts"] = job_status_counts()
    return render(request, "models_registry/inc/dashboard_panel.html", context)


@require_action("model.create")
@require_http_methods(["GET", "HEAD", "POST"])
def model_create(request: HttpRequest) -> HttpResponse:
    form = ModelCreateForm(request.POST if request.method == "POST" else None)
    status = 400
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            model = services.model_create(
                name=data["name"].strip(),
                owner=request.user,
                description=data["description"],
                risk_tier=data["risk_tier"],
                intended_use=data["intended_use"],
                tags=data["tags"],
            )
        except services.RegistryError as exc:
            _show_error(form, exc)
            status = exc.status
        else:
            return redirect("registry:model_detail", name=model.name)
    status = status if form.errors else 200
    return render(request, "models_registry/model_form.html", {"form": form, "creating": True}, status=status)


@require_action("model.edit")
@require_http_methods(["GET", "HEAD", "POST"])
def model_edit(request: HttpRequest, name: str) -> HttpResponse:
    model = _model_or_404(name)
    form = ModelEditForm(request.POST if request.method == "POST" else None, initial=ModelEditForm.initial_for(model))
    status = 400
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.model_update(
                model=model,
                actor=request.user,
                description=data["description"],
                risk_tier=data["risk_tier"],
                intended_use=data["intended_use"],
                tags=data["tags"],
            )
        except services.RegistryError as exc:
            _show_error(form, exc)
            status = exc.status
        else:
            return redirect("registry:model_detail", name=model.name)
    status = status if form.errors else 200
    context = {"form": form, "model": model, "creating": False}
    return render(request, "models_registry/model_form.html", context, status=status)


def _model_context(request: HttpRequest, model: RegisteredModel) -> dict[str, Any]:
    versions = Paginator(selectors.version_list(model=model), VERSION_PAGE_SIZE).get_page(request.GET.get("page"))
    holder_form = AliasAtForm(request.GET if "at" in request.GET else None, initial={"alias": Alias.CHAMPION})
    holder = None
    if holder_form.is_bound and holder_form.is_valid():
        holder = selectors.alias_holder_at(
            model=model, alias=holder_form.cleaned_data["alias"], at=holder_form.cleaned_data["at"]
        )
    versions.object_list = list(versions.object_list)
    current = selectors.alias_current(model=model)
    for row in versions.object_list:
        row.current_alias_names = [  # type: ignore[attr-defined]
            alias for alias, holder in current.items() if holder.pk == row.pk
        ]
    can_retire = model.retired_at is None and user_can(request.user, "model.retire")
    return {
        "model": model,
        "versions": versions,
        "aliases": [(alias, label, current.get(alias)) for alias, label in Alias.choices],
        "history": list(selectors.alias_history(model=model)[:50]),
        "holder_form": holder_form,
        "holder": holder,
        "holder_asked": holder_form.is_bound and holder_form.is_valid(),
        "retire_form": RetireForm() if can_retire else None,
    }


@require_action("registry.view")
@require_safe
def model_detail(request: HttpRequest, name: str) -> HttpResponse:
    model = _model_or_404(name)
    return render(request, "models_registry/model_detail.html", _model_context(request, model))


@require_action("model.retire")
@require_POST
def model_retire(request: HttpRequest, name: str) -> HttpResponse:
    model = _model_or_404(name)
    form = RetireForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            services.model_retire(model=model, actor=request.user, reason=form.cleaned_data["reason"])
        except services.RegistryError as exc:
            _show_error(form, exc)
            status = exc.status
        else:
            messages.success(request, f"{model.name} is retired, with every version it has.")
            return redirect("registry:model_detail", name=model.name)
    context = _model_context(request, model)
    context["retire_form"] = form
    return render(request, "models_registry/model_detail.html", context, status=status)


@require_action("version.retire")
@require_POST
def version_retire(request: HttpRequest, name: str, version: str) -> HttpResponse:
    mv = _version_or_404(name, version)
    form = RetireForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            services.version_retire(version=mv, actor=request.user, reason=form.cleaned_data["reason"])
        except services.RegistryError as exc:
            _show_error(form, exc)
            status = exc.status
        else:
            messages.success(request, f"{mv} is retired.")
            return redirect("registry:version_detail", name=name, version=version)
    context = _version_page_context(request, mv)
    context["retire_form"] = form
    return render(request, "models_registry/version_detail.html", context, status=status)


def _version_context(request: HttpRequest, version: ModelVersion) -> dict[str, Any]:
    inspection = version.inspection or {}
    ready = version.status == VersionStatus.READY  # runs are listed for a ready version (retired ones included)
    can_evaluate = version.is_usable and user_can(request.user, "version.evaluate")
    parity_runs = list(selectors.version_evaluations(version=version, kind="parity")[:20]) if ready else []
    benchmark_runs = list(selectors.version_evaluations(version=version, kind="benchmark")[:20]) if ready else []
    return {
        "version": version,
        "model": version.model,
        "live": version.status == VersionStatus.VALIDATING,
        "inspection": inspection,
        "input_spec_json": _json_pretty(version.input_spec) if version.input_spec else "",
        "metrics": sorted((version.metrics or {}).items()),
        "jobs": list(selectors.version_jobs(version=version)[:20]),
        "can_download": user_can(request.user, "version.download"),
        "parity_runs": parity_runs,
        "benchmark_runs": benchmark_runs,
        "evidence_live": any(not job.is_terminal for job in parity_runs + benchmark_runs),
        "can_evaluate": can_evaluate,
        "parity_form": ParityRunForm(version=version) if can_evaluate else None,
        "benchmark_form": BenchmarkRunForm() if can_evaluate else None,
    }


def _version_page_context(request: HttpRequest, version: ModelVersion) -> dict[str, Any]:
    """What the whole version page shows besides the live part."""
    context = _version_context(request, version)
    current = selectors.alias_current(model=version.model)
    context["holds"] = [alias for alias, holder in current.items() if holder.pk == version.pk]
    context["children"] = list(version.children.order_by("-created_at").values_list("version", flat=True)[:20])
    can_retire = not version.is_retired and user_can(request.user, "version.retire")
    context["retire_form"] = RetireForm() if can_retire else None
    return context


@require_action("registry.view")
@require_safe
def version_detail(request: HttpRequest, name: str, version: str) -> HttpResponse:
    mv = _version_or_404(name, version)
    if _is_htmx(request):
        response = render(request, "models_registry/inc/version_live.html", _version_context(request, mv))
    else:
        response = render(request, "models_registry/version_detail.html", _version_page_context(request, mv))
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_action("version.download")
@require_safe
def version_download(request: HttpRequest, name: str, version: str, kind: str) -> FileResponse:
    mv = _version_or_404(name, version)
    if kind not in DOWNLOADS:
        raise Http404("Unknown download.")
    field, extension = DOWNLOADS[kind]
    stored_name = getattr(mv, field)
    if not stored_name:
        raise Http404(f"This version has no {kind.replace('_', ' ')} file.")
    # Streams from storage in blocks; nothing is loaded, and nothing is ever unpickled here.
    handle = artifact_storage().open(stored_name, "rb")
    filename = f"{mv.model.name}-{mv.version}.{extension}"
    return FileResponse(handle, as_attachment=True, filename=filename, content_type="application/octet-stream")


def _upload_failure(
    request: HttpRequest, form: VersionUploadForm, model: RegisteredModel, *, code: str, status: int
) -> HttpResponse:
    if _wants_json(request):
        errors = {field: [str(e) for e in errs] for field, errs in form.errors.items()}
        field, messages = next(iter(errors.items()))
        body = {
            "error": {"code": code, "message": messages[0], "field": None if field == "__all__" else field},
            "errors": errors,
        }
        return JsonResponse(body, status=status)
    return render(request, "models_registry/version_upload.html", _upload_context(form, model), status=status)


def _upload_context(form: VersionUploadForm, model: RegisteredModel) -> dict[str, Any]:
    return {
        "form": form,
        "model": model,
        "example": INPUT_SPEC_EXAMPLE,
        "max_artifact": human_bytes(settings.FORGE_MAX_ARTIFACT_BYTES),
        "max_companion": human_bytes(settings.FORGE_MAX_COMPANION_BYTES),
    }


@require_action("version.upload")
@require_http_methods(["GET", "HEAD", "POST"])
def version_upload(request: HttpRequest, name: str) -> HttpResponse:
    model = _model_or_404(name)
    if request.method != "POST":
        return render(
            request, "models_registry/version_upload.html", _upload_context(VersionUploadForm(model=model), model)
        )
    form = VersionUploadForm(request.POST, request.FILES, model=model)  # reading FILES parses the upload
    refused = upload_errors(request)  # set by HashingUploadHandler when a file went over its limit
    if refused:
        # Parsing stopped at the refused file, so other fields may look missing; report only the real cause.
        form.is_valid()
        form._errors = ErrorDict()  # type: ignore[attr-defined]
        for field, message in refused.items():
            form.add_error(field if field in form.fields else None, message)
        return _upload_failure(request, form, model, code="too_large", status=413)
    repeated = repeated_file_part(request.FILES)
    if repeated is not None:
        form.is_valid()
        form._errors = ErrorDict()  # type: ignore[attr-defined]
        form.add_error(repeated[0] if repeated[0] in form.fields else None, repeated[1])
        return _upload_failure(request, form, model, code="repeated_part", status=400)
    if not form.is_valid():
        return _upload_failure(request, form, model, code="invalid", status=400)
    data = form.cleaned_data
    try:
        mv = services.version_create(
            model=model,
            version=data["version"].strip(),
            artifact=data["artifact"],
            created_by=request.user,
            input_spec=data["input_spec"].strip() or None,
            onnx=data["onnx"],
            sample_inputs=data["sample_inputs"],
            source_commit=data["source_commit"].strip(),
            training_data=data["training_data"].strip(),
            parent_version=data["parent_version"],
            description=data["description"],
            metrics=data["metrics"],
            tags=data["tags"],
        )
    except services.RegistryError as exc:
        _show_error(form, exc)
        if _wants_json(request):
            body = {"error": {"code": exc.code, "message": exc.message, "field": exc.field}}
            return JsonResponse(body, status=exc.status)
        return _upload_failure(request, form, model, code=exc.code, status=exc.status)
    url = reverse("registry:version_detail", kwargs={"name": model.name, "version": mv.version})
    if _wants_json(request):
        return JsonResponse({"version": mv.version, "status": mv.status, "sha256": mv.sha256, "url": url}, status=201)
    return redirect(url)
