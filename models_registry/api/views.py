"""Registry API: one thin view per resource; each method validates input, calls one service or selector, renders."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time
from typing import Any, cast

from django.db.models import QuerySet
from django.http import FileResponse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from forge_site.api import ApiError
from forge_site.api_views import ERRORS, ErrorOut
from forge_site.filters import FilterBackend
from forge_site.pagination import LazyPageNumberPagination
from models_registry import selectors, services
from models_registry.api import serializers as s
from models_registry.api.filters import ModelFilter, VersionFilter
from models_registry.artifacts import artifact_storage, repeated_file_part, upload_errors
from models_registry.models import Alias, ModelVersion, RegisteredModel
from models_registry.services import RegistryError

logger = logging.getLogger(__name__)


# What the registry's limits answer when the schema cannot state them (docs/api.md, "Limits").
LIMITS_422 = OpenApiResponse(
    ErrorOut,
    description="a value the schema allows but the registry's limits refuse (`field` names it): a tag's characters, "
    "the metrics' entries, names, values or nesting, a line break in a one-line field",
)
RETIRE_422 = OpenApiResponse(ErrorOut, description="the reason is only spaces")


@contextmanager
def registry_errors() -> Iterator[None]:
    """Turn a service's refusal into the API's error shape, keeping its status, code and field."""
    try:
        yield
    except RegistryError as exc:
        raise ApiError(exc.message, code=exc.code, field=exc.field, status_code=exc.status) from exc


def _not_found(name: str) -> ApiError:
    return ApiError(f"There is no model named {name!r}.", code="not_found", status_code=404)


def _model_or_404(name: str) -> RegisteredModel:
    model = selectors.model_by_name(name)
    if model is None:
        raise _not_found(name)
    return model


def _model_out(pk: int) -> dict[str, Any]:
    return s.ModelOut(selectors.model_list().get(pk=pk)).data


def _version_or_404(name: str, version: str) -> ModelVersion:
    try:
        return selectors.version_get(model_name=name, version=version)
    except ModelVersion.DoesNotExist as exc:
        raise ApiError(f"{name} has no version {version!r}.", code="not_found", status_code=404) from exc


def _version_detail(mv: ModelVersion) -> dict[str, Any]:
    return s.VersionDetailOut(mv, context={"jobs": list(selectors.version_jobs(version=mv))}).data


@extend_schema_view(get=extend_schema(summary="Search and filter models"))
class ModelListCreateView(generics.ListAPIView):
    """GET: search and filter models (100 a page, constant queries). POST: register a model."""

    required_actions = {"GET": "registry.view", "POST": "model.create"}
    pagination_class = LazyPageNumberPagination
    serializer_class = s.ModelOut
    filter_backends = [FilterBackend]
    filterset_class = ModelFilter

    def get_queryset(self) -> QuerySet[RegisteredModel]:
        return selectors.model_search()

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # LazyPageNumberPagination hands back the page as a sliced queryset, not the list DRF's stubs promise.
        page = cast(QuerySet[RegisteredModel], self.paginate_queryset(self.filter_queryset(self.get_queryset())))
        return self.get_paginated_response([s.model_row_out(row) for row in selectors.model_page_rows(page)])

    @extend_schema(
        summary="Register a model",
        request=s.ModelCreateInput,
        responses={201: s.ModelOut, 409: ErrorOut, 422: LIMITS_422, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = s.ModelCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        with registry_errors():
            model = services.model_create(owner=request.user, **data.validated_data)
        return Response(_model_out(model.pk), status=status.HTTP_201_CREATED)


class ModelDetailView(APIView):
    required_actions = {"GET": "registry.view", "PATCH": "model.edit"}

    @extend_schema(
        summary="A model, with its tags, current aliases and latest version", responses={200: s.ModelOut, **ERRORS}
    )
    def get(self, request: Request, name: str) -> Response:
        model = selectors.model_list().filter(name=name).first()
        if model is None:
            raise _not_found(name)
        return Response(s.ModelOut(model).data)

    @extend_schema(
        summary="Edit a model's description, risk tier, intended use or tags",
        request=s.ModelUpdateInput,
        responses={200: s.ModelOut, 422: LIMITS_422, **ERRORS},
    )
    def patch(self, request: Request, name: str) -> Response:
        model = _model_or_404(name)
        data = s.ModelUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        with registry_errors():
            services.model_update(model=model, actor=request.user, **data.validated_data)
        return Response(_model_out(model.pk))


@extend_schema_view(get=extend_schema(summary="A model's versions, newest first"))
class VersionListCreateView(generics.ListAPIView):
    """GET: a model's versions, newest first. POST (multipart): upload a version; inspection is queued."""

    required_actions = {"GET": "registry.view", "POST": "version.upload"}
    pagination_class = LazyPageNumberPagination
    serializer_class = s.VersionOut
    filter_backends = [FilterBackend]
    filterset_class = VersionFilter

    def get_parsers(self) -> list[Any]:
        # Uploads are multipart only: the artifact streams to disk through HashingUploadHandler.
        return [MultiPartParser()]

    def get_queryset(self) -> QuerySet[ModelVersion]:
        if getattr(self, "swagger_fake_view", False):
            return ModelVersion.objects.none()
        return selectors.version_list(model=_model_or_404(self.kwargs["name"]))

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = cast(QuerySet[ModelVersion], self.paginate_queryset(self.filter_queryset(self.get_queryset())))
        return self.get_paginated_response([s.version_row_out(row) for row in selectors.version_page_rows(page)])

    @extend_schema(
        summary="Upload a version (multipart); its inspection job is queued",
        request={"multipart/form-data": s.VersionCreateInput},
        responses={
            201: s.VersionDetailOut,
            409: OpenApiResponse(ErrorOut, description="the version string is taken, or the model is retired"),
            413: OpenApiResponse(ErrorOut, description="a file is over the size limit"),
            422: LIMITS_422,
            503: OpenApiResponse(ErrorOut, description="the artifact store cannot take the file; nothing was kept"),
            **ERRORS,
        },
    )
    def post(self, request: Request, name: str) -> Response:
        model = _model_or_404(name)
        payload = request.data  # parsing streams the files to FORGE_UPLOAD_DIR, hashing as they arrive
        too_large = upload_errors(request._request)
        if too_large:
            field, message = next(iter(too_large.items()))
            raise ApiError(message, code="too_large", field=field, status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        repeated = repeated_file_part(request.FILES)
        if repeated is not None:
            raise ApiError(repeated[1], code="repeated_part", field=repeated[0])
        data = s.VersionCreateInput(data=payload)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        with registry_errors():
            mv = services.version_create(
                model=model,
                created_by=request.user,
                version=fields.pop("version"),
                artifact=fields.pop("artifact"),
                input_spec=fields.pop("input_spec") or None,
                **fields,
            )
        return Response(_version_detail(selectors.version_get(model_name=name, version=mv.version)), status=201)


class VersionDetailView(APIView):
    required_actions = {"GET": "registry.view", "PATCH": "model.edit"}

    @extend_schema(
        summary="A version: status, hashes, inspection, lineage and jobs", responses={200: s.VersionDetailOut, **ERRORS}
    )
    def get(self, request: Request, name: str, version: str) -> Response:
        return Response(_version_detail(_version_or_404(name, version)))

    @extend_schema(
        summary="Edit a version's description, metrics or tags",
        request=s.VersionUpdateInput,
        responses={200: s.VersionDetailOut, 422: LIMITS_422, **ERRORS},
    )
    def patch(self, request: Request, name: str, version: str) -> Response:
        mv = _version_or_404(name, version)
        data = s.VersionUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        with registry_errors():
            services.version_update_metadata(version=mv, actor=request.user, **data.validated_data)
        return Response(_version_detail(_version_or_404(name, version)))


class ModelRetireView(APIView):
    """Retire a model with a reason: it and its versions are kept, and can no longer be evaluated, promoted,
    aliased or served; its aliases are cleared."""

    required_actions = {"POST": "model.retire"}

    @extend_schema(
        summary="Retire a model (and with it every version)",
        request=s.RetireInput,
        responses={
            200: s.ModelOut,
            409: OpenApiResponse(ErrorOut, description="already retired (already_retired)"),
            422: RETIRE_422,
            **ERRORS,
        },
    )
    def post(self, request: Request, name: str) -> Response:
        model = _model_or_404(name)
        data = s.RetireInput(data=request.data)
        data.is_valid(raise_exception=True)
        with registry_errors():
            services.model_retire(model=model, actor=request.user, reason=data.validated_data["reason"])
        return Response(_model_out(model.pk))


class VersionRetireView(APIView):
    """Retire one version with a reason: kept with its artifact and evidence; it can no longer be evaluated,
    promoted, aliased or served, and the aliases it holds are cleared."""

    required_actions = {"POST": "version.retire"}

    @extend_schema(
        summary="Retire a version",
        request=s.RetireInput,
        responses={
            200: s.VersionDetailOut,
            409: OpenApiResponse(ErrorOut, description="already retired, itself or with its model (already_retired)"),
            422: RETIRE_422,
            **ERRORS,
        },
    )
    def post(self, request: Request, name: str, version: str) -> Response:
        mv = _version_or_404(name, version)
        data = s.RetireInput(data=request.data)
        data.is_valid(raise_exception=True)
        with registry_errors():
            services.version_retire(version=mv, actor=request.user, reason=data.validated_data["reason"])
        return Response(_version_detail(_version_or_404(name, version)))


class VersionArtifactView(APIView):
    """Streams the stored TorchScript archive; its SHA-256 is in the ETag and X-Checksum-SHA256 headers."""

    required_actions = {"GET": "version.download"}

    @extend_schema(
        summary="Download the TorchScript archive",
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            410: OpenApiResponse(ErrorOut, description="the artifact file is missing from storage"),
            503: OpenApiResponse(ErrorOut, description="the artifact store cannot be read"),
            **ERRORS,
        },
    )
    def get(self, request: Request, name: str, version: str) -> FileResponse:
        mv = _version_or_404(name, version)
        storage = artifact_storage()
        try:
            if not storage.exists(mv.artifact):
                raise ApiError("The artifact file is missing from storage.", code="artifact_missing", status_code=410)
            stream = storage.open(mv.artifact, "rb")
        except OSError as exc:
            logger.error("could not read %s from the artifact store", mv.artifact, exc_info=exc)
            raise ApiError(
                f"The artifact store cannot be read ({exc.strerror or type(exc).__name__}); try again later, or ask "
                "an operator to check the artifact store (FORGE_STORAGE).",
                code="storage_unavailable",
                status_code=503,
            ) from exc
        response = FileResponse(
            stream,
            as_attachment=True,
            filename=f"{mv.model.name}-{mv.version}.pt",
            content_type="application/octet-stream",
        )
        response["ETag"] = f'"{mv.sha256}"'
        response["X-Checksum-SHA256"] = mv.sha256
        return response


class AliasListView(APIView):
    """The current holder of each alias. Aliases move through promotion (rollouts) or a manager's PUT below."""

    required_actions = {"GET": "registry.view"}

    @extend_schema(summary="Current alias holders", responses={200: s.AliasAssignmentOut(many=True), **ERRORS})
    def get(self, request: Request, name: str) -> Response:
        model = _model_or_404(name)
        rows = selectors.alias_history(model=model).filter(ended_at__isnull=True).order_by("alias")
        return Response(s.AliasAssignmentOut(rows, many=True).data)


def _alias_or_404(alias: str) -> str:
    if alias not in Alias.values:
        raise ApiError(
            f"There is no alias {alias!r}; aliases are {', '.join(Alias.values)}.", code="not_found", status_code=404
        )
    return alias


class AliasDetailView(APIView):
    """GET: who holds an alias now. PUT: a manager sets it directly (a new model's first champion), with a reason."""

    required_actions = {"GET": "registry.view", "PUT": "alias.set"}

    @extend_schema(
        summary="The current holder of an alias",
        parameters=[OpenApiParameter("alias", str, OpenApiParameter.PATH, enum=Alias.values)],
        responses={200: s.AliasAssignmentOut, **ERRORS},
    )
    def get(self, request: Request, name: str, alias: str) -> Response:
        model = _model_or_404(name)
        holder = selectors.alias_history(model=model, alias=_alias_or_404(alias)).filter(ended_at__isnull=True).first()
        if holder is None:
            raise ApiError(f"Nobody holds {alias} of {name}.", code="not_found", status_code=404)
        return Response(s.AliasAssignmentOut(holder).data)

    @extend_schema(
        summary="Set an alias to a version (managers; the reason is audited)",
        parameters=[OpenApiParameter("alias", str, OpenApiParameter.PATH, enum=Alias.values)],
        request=s.AliasSetInput,
        responses={200: s.AliasAssignmentOut, **ERRORS},
    )
    def put(self, request: Request, name: str, alias: str) -> Response:
        model = _model_or_404(name)
        alias = _alias_or_404(alias)
        data = s.AliasSetInput(data=request.data)
        data.is_valid(raise_exception=True)
        version = _version_or_404(name, data.validated_data["version"])
        with registry_errors():
            holder = services.alias_set(
                model=model, alias=alias, version=version, actor=request.user, reason=data.validated_data["reason"]
            )
        return Response(s.AliasAssignmentOut(holder).data)


def _parse_instant(raw: str) -> datetime:
    """An ISO 8601 instant; a bare date means midnight UTC; a naive time is UTC. The instant must exist in UTC
    (years 1 to 9999), since that is where the database compares it."""
    text = raw.strip().replace(" ", "+")  # an unescaped '+' in a query string arrives as a space
    try:
        parsed = parse_datetime(text)
        if parsed is None:
            day = parse_date(text)
            parsed = datetime.combine(day, time.min) if day is not None else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise ApiError(
            f"at={raw!r} is not an ISO 8601 date or time, e.g. 2025-03-01 or 2025-03-01T12:00:00Z.", field="at"
        )
    instant = parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)
    try:
        return instant.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+05:00 is in year 0 in UTC, 9999-12-31T23:59:59-05:00 in year 10000
        raise ApiError(
            f"at={raw!r} falls outside the years 1 to 9999 in UTC, the instants Forge can compare.",
            code="out_of_range",
            field="at",
            status_code=422,
        ) from None


class AliasHistoryView(APIView):
    """Every period an alias was held, newest first; with ?at=, the version that held it at that instant."""

    required_actions = {"GET": "registry.view"}

    @extend_schema(
        summary="An alias's history, or who held it at an instant",
        parameters=[
            OpenApiParameter("alias", str, OpenApiParameter.PATH, enum=Alias.values),
            OpenApiParameter("at", OpenApiTypes.DATETIME, description="ISO 8601 instant (a bare date is 00:00 UTC)"),
        ],
        responses={
            200: s.AliasHistoryOut,
            422: OpenApiResponse(ErrorOut, description="`at` falls outside the years 1 to 9999 once in UTC"),
            **ERRORS,
        },
    )
    def get(self, request: Request, name: str, alias: str) -> Response:
        model = _model_or_404(name)
        if alias not in Alias.values:
            raise ApiError(
                f"There is no alias {alias!r}; aliases are {', '.join(Alias.values)}.",
                code="not_found",
                status_code=404,
            )
        if "at" in request.query_params:
            at = _parse_instant(request.query_params["at"])
            holder = selectors.alias_holder_at(model=model, alias=alias, at=at)
            history = [holder] if holder is not None else []
        else:
            at = None
            history = list(selectors.alias_history(model=model, alias=alias))
            holder = next((row for row in history if row.ended_at is None), None)
        body = {"model": model.name, "alias": alias, "at": at, "holder": holder, "history": history}
        return Response(s.AliasHistoryOut(body).data)
