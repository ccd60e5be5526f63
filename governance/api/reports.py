"""Reports through the API: create and list, read, edit subcategories, submit, finalize (202 with the PDF job),
render again, revise, and download the PDF or the frozen JSON snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from django.db.models import QuerySet
from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from forge_site.api import ApiError
from forge_site.api_views import ERRORS, ErrorOut, JobOut
from forge_site.filters import FilterBackend
from forge_site.parsers import JSONParser
from governance.api import report_serializers as s
from governance.api.report_filters import ReportFilter
from governance.models import Report, ReportStatus
from governance.nist_rmf.catalog import normalize_sub_id
from governance.selectors.reports import report_content, report_get, reports_visible_to
from governance.services import reports as services
from governance.services.reports import ReportError
from models_registry.api.evaluation_views import IDEMPOTENCY_HEADER, _idempotency_key
from models_registry.artifacts import artifact_storage
from models_registry.models import RegisteredModel

CONFLICT = {409: OpenApiResponse(ErrorOut, description="the report is finalized (it never changes), or not yet")}


@contextmanager
def report_errors() -> Iterator[None]:
    try:
        yield
    except ReportError as exc:
        raise ApiError(exc.message, code=exc.code, field=exc.field, status_code=exc.status) from exc


def _report_or_404(request: Request, report_id: Any) -> Report:
    report = report_get(user=request.user, report_id=report_id)
    if report is None:
        raise ApiError("There is no such report, or it is not yours to see.", code="not_found", status_code=404)
    return report


def summary_body(report: Report, content: dict[str, Any]) -> dict[str, Any]:
    head = content["report"]
    return {
        "id": str(report.pk),
        "title": head["title"],
        "status": report.status,
        "model": head["model"],
        "versions": head["versions"],
        "period": head["period"],
        "revision": report.revision,
        "revision_of": str(report.revision_of_id) if report.revision_of_id else None,
        "created_by": head["created_by"],
        "created_at": head["created_at"],
        "signer": report.signer,
        "finalized_at": (content.get("signoff") or {}).get("finalized_at"),
        "snapshot_sha256": report.snapshot_sha256,
        "coverage": content["coverage"],
    }


def report_body(report: Report) -> dict[str, Any]:
    content = report_content(report)
    job = report.render_job
    return {
        **summary_body(report, content),
        "executive_summary": content["executive_summary"],
        "evidence_collected_at": content["evidence_collected_at"],
        "subcategories": content["subcategories"],
        "evidence_kinds": content["evidence_kinds"],
        "charts": content["charts"],
        "pdfs": [
            {
                "paper": pdf.paper,
                "sha256": pdf.sha256,
                "size": pdf.size,
                "pages": pdf.pages,
                "url": reverse("api-report-pdf", kwargs={"report_id": report.pk}) + f"?paper={pdf.paper}",
            }
            for pdf in report.pdfs.all()
        ],
        "render_job": None
        if job is None
        else {
            "id": str(job.pk),
            "status": job.status,
            "progress": job.progress,
            "message": job.message,
            "error": job.error,
        },
    }


def _subcategory_body(report: Report, sub_id: str) -> dict[str, Any]:
    wanted = normalize_sub_id(sub_id)
    return next(sub for sub in report_content(report)["subcategories"] if sub["id"] == wanted)


@extend_schema_view(get=extend_schema(summary="Reports you may see, newest first"))
class ReportListCreateView(generics.ListAPIView):
    """GET: reports (officers and managers: all; engineers: reports on models they own). POST: start a draft."""

    required_actions = {"GET": "report.view", "POST": "report.edit"}
    serializer_class = s.ReportSummaryOut
    parser_classes = [JSONParser]
    filter_backends = [FilterBackend]
    filterset_class = ReportFilter

    def get_queryset(self) -> QuerySet[Report]:
        if getattr(self, "swagger_fake_view", False):
            return Report.objects.none()
        return reports_visible_to(self.request.user)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = cast(list[Report], self.paginate_queryset(self.filter_queryset(self.get_queryset())))
        return self.get_paginated_response([summary_body(r, report_content(r)) for r in page])

    @extend_schema(
        summary="Start a report (a draft, its evidence collected)",
        request=s.ReportCreateInput,
        responses={201: s.ReportOut, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = s.ReportCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        model = None
        if values["model"] is not None:
            model = RegisteredModel.objects.filter(name=values["model"]).first()
            if model is None:
                raise ApiError(f"There is no model named {values['model']!r}.", code="not_found", field="model")
        with report_errors():
            report = services.report_create(
                actor=request.user,
                model=model,
                versions=values["versions"],
                start=values["period"]["start"],
                end=values["period"]["end"],
                title=values["title"],
            )
        response = Response(report_body(_report_or_404(request, report.pk)), status=status.HTTP_201_CREATED)
        response["Location"] = reverse("api-report", kwargs={"report_id": report.pk})
        return response


class ReportDetailView(APIView):
    required_actions = {"GET": "report.view", "PATCH": "report.edit"}
    parser_classes = [JSONParser]

    @extend_schema(
        summary="A report: status, coverage and its 72 subcategories", responses={200: s.ReportOut, **ERRORS}
    )
    def get(self, request: Request, report_id: Any) -> Response:
        return Response(report_body(_report_or_404(request, report_id)))

    @extend_schema(
        summary="Edit a report's title or executive summary",
        request=s.ReportUpdateInput,
        responses={200: s.ReportOut, **ERRORS, **CONFLICT},
    )
    def patch(self, request: Request, report_id: Any) -> Response:
        report = _report_or_404(request, report_id)
        data = s.ReportUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        with report_errors():
            services.report_update(report=report, actor=request.user, **data.validated_data)
        return Response(report_body(_report_or_404(request, report_id)))


class ReportSubcategoryView(APIView):
    """One subcategory of a report; `sub_id` as GOVERN-1.1."""

    required_actions = {"GET": "report.view", "PATCH": "report.edit"}
    parser_classes = [JSONParser]

    def _sub_id(self, sub_id: str) -> str:
        try:
            return normalize_sub_id(sub_id)
        except ValueError as exc:
            raise ApiError(str(exc), code="not_found", status_code=404) from exc

    @extend_schema(summary="One subcategory: status, reason, evidence, attestation", responses={200: s.SubcategoryOut})
    def get(self, request: Request, report_id: Any, sub_id: str) -> Response:
        report = _report_or_404(request, report_id)
        return Response(_subcategory_body(report, self._sub_id(sub_id)))

    @extend_schema(
        summary="Attest, write a narrative, or mark not applicable (with a justification)",
        request=s.SubcategoryUpdateInput,
        responses={200: s.SubcategoryOut, **ERRORS, **CONFLICT},
    )
    def patch(self, request: Request, report_id: Any, sub_id: str) -> Response:
        report = _report_or_404(request, report_id)
        wanted = self._sub_id(sub_id)
        data = s.SubcategoryUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        with report_errors():
            services.report_subcategory_update(report=report, actor=request.user, sub_id=wanted, **data.validated_data)
        return Response(_subcategory_body(_report_or_404(request, report_id), wanted))


class _ReportActionView(APIView):
    parser_classes = [JSONParser]


@extend_schema_view(
    post=extend_schema(summary="Submit a draft for review", request=None, responses={200: s.ReportOut, **CONFLICT})
)
class ReportSubmitView(_ReportActionView):
    required_actions = {"POST": "report.edit"}

    def post(self, request: Request, report_id: Any) -> Response:
        report = _report_or_404(request, report_id)
        with report_errors():
            services.report_submit(report=report, actor=request.user)
        return Response(report_body(_report_or_404(request, report_id)))


@extend_schema_view(
    post=extend_schema(summary="Collect the evidence again", request=None, responses={200: s.ReportOut, **CONFLICT})
)
class ReportRefreshView(_ReportActionView):
    required_actions = {"POST": "report.edit"}

    def post(self, request: Request, report_id: Any) -> Response:
        report = _report_or_404(request, report_id)
        with report_errors():
            services.report_refresh_evidence(report=report, actor=request.user)
        return Response(report_body(_report_or_404(request, report_id)))


def _accepted(job: Any) -> Response:
    response = Response(JobOut(job).data, status=status.HTTP_202_ACCEPTED)
    response["Location"] = reverse("api-job", kwargs={"id": job.pk})
    if job.replayed:
        response["Idempotent-Replayed"] = "true"
    return response


@extend_schema_view(
    post=extend_schema(
        summary="Finalize: freeze and hash the snapshot, sign it, queue the PDF job",
        request=None,
        parameters=[IDEMPOTENCY_HEADER],
        responses={202: JobOut, **ERRORS, **CONFLICT},
    )
)
class ReportFinalizeView(_ReportActionView):
    required_actions = {"POST": "report.finalize"}

    def post(self, request: Request, report_id: Any) -> Response:
        report = _report_or_404(request, report_id)
        key = _idempotency_key(request)
        with report_errors():
            _, job = services.report_finalize(report=report, actor=request.user, idempotency_key=key)
        return _accepted(job)


@extend_schema_view(
    post=extend_schema(
        summary="Render the PDFs again (after a failed render)",
        request=None,
        parameters=[IDEMPOTENCY_HEADER],
        responses={202: JobOut, **ERRORS, **CONFLICT},
    )
)
class ReportRenderView(_ReportActionView):
    required_actions = {"POST": "report.finalize"}

    def post(self, request: Request, report_id: Any) -> Response:
        report = _report_or_404(request, report_id)
        key = _idempotency_key(request)
        with report_errors():
            job = services.report_render_start(report=report, actor=request.user, idempotency_key=key)
        return _accepted(job)


@extend_schema_view(
    post=extend_schema(
        summary="Start a revision: a new draft from a finalized report",
        request=None,
        responses={201: s.ReportOut, **ERRORS, **CONFLICT},
    )
)
class ReportReviseView(_ReportActionView):
    required_actions = {"POST": "report.edit"}

    def post(self, request: Request, report_id: Any) -> Response:
        report = _report_or_404(request, report_id)
        with report_errors():
            draft = services.report_revise(report=report, actor=request.user)
        response = Response(report_body(_report_or_404(request, draft.pk)), status=status.HTTP_201_CREATED)
        response["Location"] = reverse("api-report", kwargs={"report_id": draft.pk})
        return response


def _finalized_or_409(report: Report) -> None:
    if report.status != ReportStatus.FINALIZED:
        raise ApiError(
            "The report is not finalized: only a finalized report has a PDF and a frozen snapshot.",
            code="not_finalized",
            status_code=409,
        )


PAPER_PARAM = OpenApiParameter(
    "paper", OpenApiTypes.STR, enum=["a4", "letter"], required=False, description="A4 (default) or US Letter"
)


class ReportPdfView(APIView):
    required_actions = {"GET": "report.download"}

    @extend_schema(
        summary="The finalized report as a PDF",
        parameters=[PAPER_PARAM],
        responses={
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="the PDF"),
            **ERRORS,
            409: OpenApiResponse(ErrorOut, description="not finalized, or the PDF is not rendered yet"),
        },
    )
    def get(self, request: Request, report_id: Any) -> FileResponse:
        report = _report_or_404(request, report_id)
        _finalized_or_409(report)
        paper = request.query_params.get("paper", "a4")
        if paper not in services.PAPERS:
            raise ApiError("paper must be a4 or letter.", field="paper")
        pdf = report.pdfs.filter(paper=paper).first()
        if pdf is None:
            job = report.render_job
            state = f"its render job is {job.get_status_display().lower()}" if job else "no render job exists"
            detail = f": {job.error}" if job is not None and job.error else ""
            raise ApiError(
                f"The {paper} PDF is not rendered yet ({state}{detail}).", code="not_rendered", status_code=409
            )
        response = FileResponse(
            artifact_storage().open(pdf.storage_name, "rb"),
            content_type="application/pdf",
            as_attachment=True,
            filename=f"forge-report-{str(report.pk)[:8]}-{paper}.pdf",
        )
        response["ETag"] = f'"{pdf.sha256}"'
        response["X-Snapshot-SHA256"] = report.snapshot_sha256
        return response


class ReportJsonView(APIView):
    required_actions = {"GET": "report.download"}

    @extend_schema(
        summary="The frozen snapshot of a finalized report, with its SHA-256",
        responses={200: s.SnapshotOut, **ERRORS, 409: OpenApiResponse(ErrorOut, description="not finalized")},
    )
    def get(self, request: Request, report_id: Any) -> Response:
        report = _report_or_404(request, report_id)
        _finalized_or_409(report)
        response = Response({"sha256": report.snapshot_sha256, "snapshot": report.snapshot})
        response["X-Snapshot-SHA256"] = report.snapshot_sha256
        return response
