"""Kernel API: background jobs (read-only) and the caller's own API tokens; plus the error schema all views share."""

from __future__ import annotations

from typing import Any, cast

import django_filters
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from forge_site.api import ApiError
from forge_site.api_inputs import StrictCharField, StrictIntegerField, StrictSerializer
from forge_site.filters import CachedFormFilterSet, FilterBackend
from forge_site.jobs import job_cancel
from forge_site.models import ApiToken, Job, JobStatus
from forge_site.tokens import token_create, token_revoke


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Documents `Authorization: Bearer forge_<prefix>_<secret>` in the schema (and Swagger UI's Authorize)."""

    target_class = "forge_site.tokens.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "forge_<prefix>_<secret>"}


# --- the error shape, for the schema ---------------------------------------------------------------------------------


class ErrorDetailOut(serializers.Serializer):
    code = serializers.CharField(help_text="machine-readable, e.g. invalid, duplicate, too_large, not_authenticated")
    message = serializers.CharField(help_text="what went wrong and what to do, for a person")
    # The stubs think `field` is a Field attribute; DRF's metaclass takes declared fields off the class.
    field = serializers.CharField(allow_null=True, help_text="the input at fault, if one is")  # type: ignore[assignment]


class ErrorOut(serializers.Serializer):
    error = ErrorDetailOut()


ERRORS: dict[int, Any] = {
    400: OpenApiResponse(ErrorOut, description="invalid input"),
    401: OpenApiResponse(ErrorOut, description="no credentials, or a bad, expired or revoked token"),
    403: OpenApiResponse(ErrorOut, description="your role may not do this"),
    404: OpenApiResponse(ErrorOut, description="no such object"),
}


# --- jobs ------------------------------------------------------------------------------------------------------------


class JobSubjectOut(serializers.Serializer):
    type = serializers.CharField(source="subject_type")
    id = serializers.CharField(source="subject_id")
    label = serializers.CharField(source="subject_label")  # type: ignore[assignment]  # (as `field` above)


class JobTimingsOut(serializers.Serializer):
    created_at = serializers.DateTimeField()
    enqueued_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_s = serializers.FloatField(allow_null=True)


class JobOut(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    status = serializers.ChoiceField(choices=JobStatus.choices)
    progress = serializers.IntegerField(help_text="0-100")
    message = serializers.CharField()
    subject = JobSubjectOut(source="*")
    params = serializers.JSONField()
    device = serializers.CharField(help_text="where it ran, e.g. cpu or cuda:0")
    worker_host = serializers.CharField()
    attempts = serializers.IntegerField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True)
    timings = JobTimingsOut(source="*")
    result = serializers.JSONField(allow_null=True)
    error = serializers.CharField()


class JobFilter(CachedFormFilterSet):
    status = django_filters.ChoiceFilter(choices=JobStatus.choices)
    kind = django_filters.CharFilter()
    subject_type = django_filters.CharFilter()
    subject_id = django_filters.CharFilter()

    class Meta:
        model = Job
        fields: list[str] = []


@extend_schema_view(get=extend_schema(summary="Jobs, newest first"))
class JobListView(generics.ListAPIView):
    """Jobs, newest first; filter by status, kind or subject."""

    required_actions = {"GET": "job.view"}
    serializer_class = JobOut
    filter_backends = [FilterBackend]
    filterset_class = JobFilter

    def get_queryset(self) -> QuerySet[Job]:
        return Job.objects.select_related("created_by").order_by("-created_at", "-pk")


class JobDetailView(generics.RetrieveAPIView):
    required_actions = {"GET": "job.view"}
    serializer_class = JobOut
    lookup_field = "id"
    queryset = Job.objects.select_related("created_by")

    @extend_schema(summary="A job: status, progress, device, timings, result, error", responses={200: JobOut, **ERRORS})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class JobCancelView(APIView):
    """Ask a queued or running job to stop; a running one stops at its next batch and says where."""

    required_actions = {"POST": "job.cancel"}

    @extend_schema(
        summary="Cancel a queued or running job",
        request=None,
        responses={200: JobOut, 409: OpenApiResponse(ErrorOut, description="the job already finished"), **ERRORS},
    )
    def post(self, request: Request, id: Any) -> Response:
        job = Job.objects.filter(pk=id).first()
        if job is None:
            raise ApiError("There is no such job.", code="not_found", status_code=404)
        if job.is_terminal:
            raise _already_finished(job)
        job = job_cancel(job=job, actor=request.user)
        if job.status != JobStatus.CANCELLED:  # it finished while we asked
            raise _already_finished(job)
        return Response(JobOut(Job.objects.select_related("created_by").get(pk=job.pk)).data)


def _already_finished(job: Job) -> ApiError:
    return ApiError(
        f"This job already finished ({job.get_status_display().lower()}); there is nothing to cancel.",
        code="already_finished",
        status_code=status.HTTP_409_CONFLICT,
    )


# --- tokens ----------------------------------------------------------------------------------------------------------


class TokenOut(serializers.Serializer):
    prefix = serializers.CharField(help_text="identifies the token; the secret is never shown again")
    name = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)


class TokenCreatedOut(TokenOut):
    token = serializers.CharField(help_text="the plain token: shown once, send it as `Authorization: Bearer <token>`")


class TokenCreateInput(StrictSerializer):
    name = StrictCharField(max_length=100, trim_whitespace=False, help_text="what the token is for, e.g. 'ci-upload'")
    days = StrictIntegerField(
        min_value=1, max_value=365, required=False, help_text="lifetime; FORGE_TOKEN_DEFAULT_DAYS when left out"
    )


def _own_tokens(user: Any) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-pk")


class TokenListCreateView(APIView):
    """Your own API tokens: list them, or create one (its secret is in this response only)."""

    required_actions = {"GET": "token.manage_own", "POST": "token.manage_own"}

    @extend_schema(summary="Your API tokens (never their secrets)", responses={200: TokenOut(many=True), **ERRORS})
    def get(self, request: Request) -> Response:
        return Response(TokenOut(_own_tokens(request.user), many=True).data)

    @extend_schema(
        summary="Create an API token (the secret is shown once)",
        request=TokenCreateInput,
        responses={201: TokenCreatedOut, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = TokenCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        token, plain = token_create(
            user=cast(AbstractBaseUser, request.user),  # ActionPermission let only a signed-in user this far
            name=data.validated_data["name"],
            days=data.validated_data.get("days", settings.FORGE_TOKEN_DEFAULT_DAYS),
            actor=request.user,
        )
        body = {**TokenOut(token).data, "token": plain}
        return Response(body, status=status.HTTP_201_CREATED)


class TokenRevokeView(APIView):
    """Revoke one of your own tokens; it stops working at once."""

    required_actions = {"DELETE": "token.manage_own"}

    @extend_schema(summary="Revoke one of your API tokens", responses={204: None, **ERRORS})
    def delete(self, request: Request, prefix: str) -> Response:
        token = _own_tokens(request.user).filter(prefix=prefix).first()
        if token is None:
            raise ApiError(f"You have no token with prefix {prefix!r}.", code="not_found", status_code=404)
        token_revoke(token=token, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
