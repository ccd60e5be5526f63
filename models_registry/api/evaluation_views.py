"""Parity and benchmark runs through the API: start one (202 with its job), list a version's runs, compare runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from forge_site.api import ApiError
from forge_site.api_views import ERRORS, ErrorOut, JobOut
from forge_site.models import Job
from forge_site.parsers import JSONParser
from models_registry import evidence, selectors, services
from models_registry.api import evaluation_serializers as s
from models_registry.api.views import _model_or_404, _version_or_404, registry_errors

START_ERRORS: dict[int, Any] = {
    **ERRORS,
    404: OpenApiResponse(ErrorOut, description="no such model or version, or no such reference version"),
    409: OpenApiResponse(
        ErrorOut,
        description="the version (or the reference version) is not ready, the reference declares other inputs, the "
        "version has no ONNX companion to compare with, or the Idempotency-Key was used for another request",
    ),
    422: OpenApiResponse(
        ErrorOut,
        description="the reference is the candidate itself (the same version, or the same device and dtype)",
    ),
}


IDEMPOTENCY_KEY_MAX = 64
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    # What _idempotency_key accepts: printable ASCII without spaces (! to ~).
    {"type": "string", "pattern": f"^[!-~]{{1,{IDEMPOTENCY_KEY_MAX}}}$"},
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Up to 64 printable ASCII characters, unique per request (a UUID). The same key again from the same user "
        "returns the job the first request started (202, header Idempotent-Replayed: true) instead of a second "
        "job; the same key with other parameters is refused with 409 idempotency_key_reused."
    ),
)


def _idempotency_key(request: Request) -> str:
    """The request's Idempotency-Key header, checked, as the service's key ('' when there is none)."""
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return ""
    if not 1 <= len(raw) <= IDEMPOTENCY_KEY_MAX or not all(" " < char <= "~" for char in raw):
        raise ApiError(
            f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters without spaces "
            "(a UUID will do).",
            field="Idempotency-Key",
        )
    return f"api:{raw}"


def _accepted(job: Job) -> Response:
    response = Response(JobOut(job).data, status=status.HTTP_202_ACCEPTED)
    response["Location"] = reverse("api-job", kwargs={"id": job.pk})
    return response


class _EvaluationListView(generics.ListAPIView):
    """A version's runs of one kind, newest first, paginated like the job list."""

    kind = ""
    serializer_class = JobOut
    parser_classes = [JSONParser]

    def get_queryset(self) -> QuerySet[Job]:
        if getattr(self, "swagger_fake_view", False):
            return Job.objects.none()
        version = _version_or_404(self.kwargs["name"], self.kwargs["version"])
        return selectors.version_evaluations(version=version, kind=self.kind)


class _EvaluationRunsView(_EvaluationListView):
    """GET lists the version's runs of `kind`; POST validates `input_class` and starts one with `start`."""

    input_class: type[serializers.Serializer]
    start: Callable[..., Job]
    required_actions = {"GET": "registry.view", "POST": "version.evaluate"}

    def post(self, request: Request, name: str, version: str) -> Response:
        mv = _version_or_404(name, version)
        key = _idempotency_key(request)
        data = self.input_class(data=request.data)
        data.is_valid(raise_exception=True)
        with registry_errors():
            job = self.start(version=mv, actor=request.user, idempotency_key=key, **data.validated_data)
        response = _accepted(job)
        if job.replayed:  # an earlier request with this key started it
            response["Idempotent-Replayed"] = "true"
        return response


@extend_schema_view(
    get=extend_schema(summary="A version's parity runs, newest first"),
    post=extend_schema(
        summary="Start a parity run (queued on a GPU worker)",
        request=s.ParityStartInput,
        parameters=[IDEMPOTENCY_HEADER],
        responses={202: JobOut, **START_ERRORS},
    ),
)
class ParityRunsView(_EvaluationRunsView):
    """GET: the version's parity runs. POST: compare the version with a reference on the same seeded inputs."""

    kind = "parity"
    input_class = s.ParityStartInput
    start = staticmethod(services.parity_start)


@extend_schema_view(
    get=extend_schema(summary="A version's benchmark runs, newest first"),
    post=extend_schema(
        summary="Start a benchmark run (queued on a GPU worker)",
        request=s.BenchmarkStartInput,
        parameters=[IDEMPOTENCY_HEADER],
        responses={202: JobOut, **START_ERRORS},
    ),
)
class BenchmarkRunsView(_EvaluationRunsView):
    """GET: the version's benchmark runs. POST: time forward passes per batch size until the timings are stable."""

    kind = "benchmark"
    input_class = s.BenchmarkStartInput
    start = staticmethod(services.benchmark_start)


class BenchmarkCompareView(APIView):
    """Two or more succeeded benchmark runs of a model's versions side by side; the first run is the baseline."""

    required_actions = {"GET": "registry.view"}

    @extend_schema(
        summary="Compare benchmark runs (ratios to the first; flags runs from different hardware)",
        parameters=[
            OpenApiParameter(
                "job",
                {
                    "type": "array",
                    "items": {"type": "string", "format": "uuid"},
                    "minItems": 2,
                    "maxItems": evidence.MAX_COMPARED,
                    "uniqueItems": True,
                },
                required=True,
                explode=True,
                description="succeeded benchmark jobs of the model, as job=…&job=…; the first is the baseline",
            )
        ],
        responses={
            200: s.BenchmarkCompareOut,
            404: OpenApiResponse(ErrorOut, description="no such model, or a job is not a succeeded benchmark of it"),
            **ERRORS,
        },
    )
    def get(self, request: Request, name: str) -> Response:
        model = _model_or_404(name)
        try:
            comparison = evidence.compare(model=model, raw_ids=request.query_params.getlist("job"))
        except evidence.CompareError as exc:
            code = "not_found" if exc.status == 404 else "invalid"
            raise ApiError(str(exc), code=code, field="job", status_code=exc.status) from exc
        labels = {row["job_id"]: row["label"] for row in comparison.result.get("series", [])}
        runs = [
            {"job_id": job.pk, "version": comparison.versions[str(job.pk)], "label": labels.get(str(job.pk), "")}
            for job in comparison.jobs
        ]
        return Response(s.BenchmarkCompareOut({"model": model.name, "runs": runs, **comparison.result}).data)
