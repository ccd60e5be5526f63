"""Monitoring API: a version's baseline, inference logs, drift runs, fairness and monitor."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from forge_site.api import ApiError
from forge_site.api_views import ERRORS, ErrorOut, JobOut
from forge_site.models import Job
from forge_site.parsers import JSONParser
from governance import selectors
from governance.api import monitoring_serializers as s
from governance.services import monitoring
from governance.services.baselines import MonitoringError, baseline_create
from governance.services.ingest import IngestError, inferences_ingest, inferences_ingest_file
from models_registry.api.evaluation_views import IDEMPOTENCY_HEADER, START_ERRORS, _accepted, _idempotency_key
from models_registry.api.views import _version_or_404
from models_registry.artifacts import upload_errors

try:  # the machine throttle scope (issue 11) for high-rate ingestion, where it exists
    from forge_site.throttles import MachineThrottle

    INGEST_THROTTLES: list[Any] = [MachineThrottle]
except ImportError:  # pragma: no cover - until issue 11's throttles land
    INGEST_THROTTLES = []


TOO_LARGE = OpenApiResponse(ErrorOut, description="the file is over FORGE_MAX_DATA_FILE_BYTES")
CONFLICT = OpenApiResponse(ErrorOut, description="the version has no ready baseline (or is not ready itself)")
UNPROCESSABLE = OpenApiResponse(
    ErrorOut,
    description="each field is valid, the whole is not (a window that ends before it starts, a threshold "
    "outside the method's range)",
)


@contextmanager
def monitoring_errors() -> Iterator[None]:
    try:
        yield
    except MonitoringError as exc:
        raise ApiError(exc.message, code=exc.code, field=exc.field, status_code=exc.status) from exc
    except IngestError as exc:
        raise ApiError(
            exc.message,
            code=exc.code,
            field=exc.column,
            status_code=exc.status,
            extra={"row": exc.row, "request_id": exc.request_id},
        ) from exc


def allow_data_upload(request: Request) -> None:
    """Before the body is read: this request may carry a data file up to FORGE_MAX_DATA_FILE_BYTES (the upload
    handler refuses anything larger than an artifact upload otherwise)."""
    request._request.forge_data_upload = True  # type: ignore[attr-defined]


def _uploaded(request: Request, field: str = "file") -> tuple[Path, str, str, int]:
    errors = upload_errors(request._request)
    if errors:
        raise ApiError(next(iter(errors.values())), field=field, status_code=413)
    upload = request.FILES.get(field)
    if upload is None:
        raise ApiError(f"Send the file as multipart field {field!r}.", field=field)
    return Path(upload.temporary_file_path()), upload.name or "", getattr(upload, "sha256", ""), upload.size or 0


def _baseline_out(version: Any) -> dict[str, Any] | None:
    baseline = selectors.latest_baseline(version)
    if baseline is None:
        return None
    job = (
        Job.objects.filter(subject_type="governance.baseline", subject_id=str(baseline.pk))
        .order_by("-created_at")
        .first()
    )
    baseline.job = job  # type: ignore[attr-defined]
    return s.BaselineOut(baseline).data


class BaselineView(APIView):
    """GET: the version's baseline (columns, rows, summary, job). POST: upload one (202 with its job)."""

    required_actions = {"GET": "monitoring.view", "POST": "baseline.upload"}
    parser_classes = [MultiPartParser]

    @extend_schema(summary="The version's baseline", responses={200: s.BaselineOut, **ERRORS})
    def get(self, request: Request, name: str, version: str) -> Response:
        data = _baseline_out(_version_or_404(name, version))
        if data is None:
            raise ApiError(f"{name} {version} has no baseline yet.", code="not_found", status_code=404)
        return Response(data)

    @extend_schema(
        summary="Upload a baseline (CSV or Parquet); a job on a GPU worker prepares it",
        request={"multipart/form-data": s.BaselineUploadInput},
        parameters=[IDEMPOTENCY_HEADER],
        responses={202: JobOut, 413: TOO_LARGE, **START_ERRORS},
    )
    def post(self, request: Request, name: str, version: str) -> Response:
        allow_data_upload(request)
        mv = _version_or_404(name, version)
        key = _idempotency_key(request)
        path, filename, sha256, size = _uploaded(request)
        s.BaselineUploadInput(data=request.data).is_valid(raise_exception=True)
        segments = str(request.data.get("segments") or "").split(",")
        with monitoring_errors():
            job = baseline_create(
                version=mv,
                path=path,
                filename=filename,
                sha256=sha256,
                size=size,
                actor=request.user,
                label=request.data.get("label"),
                prediction=request.data.get("prediction"),
                segments=segments,
                idempotency_key=key,
            )
        response = _accepted(job)
        if job.replayed:
            response["Idempotent-Replayed"] = "true"
        return response


class InferencesView(APIView):
    """POST logged inferences: JSON rows, or a CSV/Parquet file (streamed). All or nothing."""

    required_actions = {"POST": "inference.ingest"}
    parser_classes = [JSONParser, MultiPartParser]
    throttle_classes = INGEST_THROTTLES
    throttle_scope = "machine"

    @extend_schema(
        summary="Log inferences (and labels arriving later) against the baseline's columns",
        request={"application/json": s.InferencesInput, "multipart/form-data": s.InferencesFileInput},
        responses={
            201: s.IngestOut,
            400: OpenApiResponse(ErrorOut, description="a bad row: the error names its index, request_id, column"),
            409: CONFLICT,
            413: TOO_LARGE,
            **{k: v for k, v in ERRORS.items() if k != 400},
        },
    )
    def post(self, request: Request, name: str, version: str) -> Response:
        allow_data_upload(request)
        mv = _version_or_404(name, version)
        with monitoring_errors():
            if request.FILES or upload_errors(request._request):
                path, filename, _, _ = _uploaded(request)
                s.InferencesFileInput(data=request.data).is_valid(raise_exception=True)
                result = inferences_ingest_file(version=mv, path=path, filename=filename, actor=request.user)
            else:
                extra = sorted(set(request.data) - {"rows"}) if isinstance(request.data, dict) else []
                if extra:
                    raise ApiError("Unknown field; the fields are rows.", code="unknown_field", field=extra[0])
                rows = request.data.get("rows") if isinstance(request.data, dict) else None
                if rows is None:
                    raise ApiError('Send {"rows": [...]} as JSON, or a multipart file.', field="rows")
                if isinstance(rows, list) and len(rows) > settings.FORGE_INGEST_MAX_JSON_ROWS:
                    raise ApiError(
                        f"A JSON batch holds at most {settings.FORGE_INGEST_MAX_JSON_ROWS:,} rows; send larger "
                        "batches as a CSV or Parquet file.",
                        field="rows",
                    )
                result = inferences_ingest(version=mv, rows=rows, actor=request.user)
        return Response({"accepted": result.accepted, "labels": result.labels}, status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(summary="A version's drift runs, newest first"),
    post=extend_schema(
        summary="Start a drift run over a window of logged inferences, or on an uploaded dataset",
        request={"application/json": s.DriftStartInput, "multipart/form-data": s.DriftStartInput},
        parameters=[IDEMPOTENCY_HEADER],
        responses={202: JobOut, 413: TOO_LARGE, 422: UNPROCESSABLE, **START_ERRORS},
    ),
)
class DriftRunsView(generics.ListAPIView):
    """GET: the version's drift jobs. POST: start one (202 with the job; its result is the drift evidence)."""

    required_actions = {"GET": "monitoring.view", "POST": "drift.run"}
    serializer_class = JobOut
    parser_classes = [JSONParser, MultiPartParser]

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return Job.objects.none()
        return selectors.drift_runs(_version_or_404(self.kwargs["name"], self.kwargs["version"]))

    def post(self, request: Request, name: str, version: str) -> Response:
        allow_data_upload(request)
        mv = _version_or_404(name, version)
        key = _idempotency_key(request)
        raw = request.data
        if hasattr(raw, "dict"):  # multipart: a flat form; window fields may come as window.start / window.end
            raw = raw.dict()
            if "window.start" in raw or "window.end" in raw:
                raw["window"] = {"start": raw.pop("window.start", None), "end": raw.pop("window.end", None)}
            for number in ("threshold", "drift_share"):  # a form sends text; JSON bodies must send numbers
                if isinstance(raw.get(number), str) and raw[number].strip():
                    with suppress(ValueError):  # left as text, the serializer refuses it naming the field
                        raw[number] = float(raw[number])
        data = s.DriftStartInput(data=raw)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        upload = None
        if values.get("file") is not None:
            path, filename, _, _ = _uploaded(request)
            upload = (path, filename)
        window = values.get("window") or {}
        with monitoring_errors():
            job = monitoring.drift_start(
                version=mv,
                actor=request.user,
                start=window.get("start"),
                end=window.get("end"),
                upload=upload,
                method=values.get("method") or None,
                threshold=values.get("threshold"),
                drift_share=values.get("drift_share"),
                idempotency_key=key,
            )
        response = _accepted(job)
        if job.replayed:
            response["Idempotent-Replayed"] = "true"
        return response


def _time_param(request: Request, name: str, default: datetime) -> datetime:
    raw = request.query_params.get(name)
    if not raw:
        return default
    parsed = parse_datetime(raw) or (parse_datetime(raw + "T00:00:00") if len(raw) == 10 else None)
    if parsed is None:
        raise ApiError(f"{name} must be an ISO 8601 date or time.", field=name)
    return parsed if parsed.tzinfo else timezone.make_aware(parsed, UTC)


class FairnessView(APIView):
    """Fairness per declared segment attribute over a window (default: the last 7 days), from hourly tallies."""

    required_actions = {"GET": "monitoring.view"}

    @extend_schema(
        summary="Fairness by segment over a window",
        parameters=[
            OpenApiParameter("start", OpenApiTypes.DATETIME, description="default: 7 days before end"),
            OpenApiParameter("end", OpenApiTypes.DATETIME, description="default: now"),
        ],
        responses={200: s.FairnessOut, 409: CONFLICT, 422: UNPROCESSABLE, **ERRORS},
    )
    def get(self, request: Request, name: str, version: str) -> Response:
        mv = _version_or_404(name, version)
        end = _time_param(request, "end", timezone.now())
        start = _time_param(request, "start", end - timedelta(days=7))
        with monitoring_errors():
            return Response(monitoring.fairness_compute(version=mv, start=start, end=end))


class MonitorView(APIView):
    """The version's scheduled drift and fairness check: GET, PUT (create or change), DELETE."""

    required_actions = {"GET": "monitoring.view", "PUT": "drift.run", "DELETE": "drift.run"}
    parser_classes = [JSONParser]

    @extend_schema(summary="The version's monitor", responses={200: s.MonitorOut, **ERRORS})
    def get(self, request: Request, name: str, version: str) -> Response:
        monitor = selectors.monitor_of(_version_or_404(name, version))
        if monitor is None:
            raise ApiError(f"{name} {version} has no monitor.", code="not_found", status_code=404)
        return Response(s.MonitorOut(monitor).data)

    @extend_schema(
        summary="Create or change the version's monitor",
        request=s.MonitorInput,
        responses={200: s.MonitorOut, 422: UNPROCESSABLE, **ERRORS},
    )
    def put(self, request: Request, name: str, version: str) -> Response:
        mv = _version_or_404(name, version)
        data = s.MonitorInput(data=request.data)
        data.is_valid(raise_exception=True)
        with monitoring_errors():
            monitor = monitoring.monitor_upsert(version=mv, actor=request.user, **data.validated_data)
        return Response(s.MonitorOut(monitor).data)

    @extend_schema(summary="Delete the version's monitor", responses={204: None, **ERRORS})
    def delete(self, request: Request, name: str, version: str) -> Response:
        monitor = selectors.monitor_of(_version_or_404(name, version))
        if monitor is None:
            raise ApiError(f"{name} {version} has no monitor.", code="not_found", status_code=404)
        monitoring.monitor_delete(monitor=monitor, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
