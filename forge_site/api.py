"""API error shape: every error is `{"error": {"code", "message", "field"}}`."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent, TooManyFilesSent
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ApiError(exceptions.APIException):
    """A domain error with a code a client can branch on and a message a person can act on."""

    status_code: int = status.HTTP_400_BAD_REQUEST

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid",
        field: str | None = None,
        status_code: int = 400,
        extra: dict[str, Any] | None = None,
    ):
        super().__init__(detail=message, code=code)
        self.code = code
        self.field = field
        self.status_code = status_code
        self.extra = extra or {}


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    """The error shape; `extra` adds keys beside code/message/field (e.g. an ingestion error's row, request_id)."""
    return {"error": {"code": code, "message": message, "field": field, **extra}}


def _first_error(detail: Any, field: str | None = None) -> tuple[str, str, str | None]:
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        return _first_error(value, None if key in {"non_field_errors", "detail"} else (field or str(key)))
    if isinstance(detail, list) and detail:
        return _first_error(detail[0], field)
    code = getattr(detail, "code", "invalid") or "invalid"
    return str(code), str(detail), field


def body_too_large_message() -> str:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return (
        f"The request body is over {limit / 1024**2:g} MiB ({limit:,} bytes, DATA_UPLOAD_MAX_MEMORY_SIZE), the most "
        "the API reads outside a file upload; send less in one request."
    )


def _refused_request(exc: SuspiciousOperation) -> ApiError:
    """What Django refuses while reading a request body: a body over its size limit (413), too many fields or files,
    or another request it will not read (400). Django would answer these with an HTML page."""
    if isinstance(exc, RequestDataTooBig):
        return ApiError(
            body_too_large_message(), code="too_large", status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
        )
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return ApiError(str(exc), code="too_many_fields")
    # Django logs what it refuses on this logger when it answers itself; keep that trail.
    logging.getLogger(f"django.security.{type(exc).__name__}").warning("%s", exc)
    return ApiError("The request was refused as malformed.", code="bad_request")


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, SuspiciousOperation):
        exc = _refused_request(exc)
    if isinstance(exc, ApiError):
        return Response(error_body(exc.code, str(exc.detail), exc.field, **exc.extra), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        code, message, field = _first_error(exc.detail)
        if field:
            message = f"{field}: {message}"
    else:
        code = getattr(exc, "default_code", "error")
        detail = getattr(exc, "detail", str(exc))
        code = getattr(detail, "code", None) or code
        message, field = str(detail), None
        refusal = getattr(context.get("request"), "_forge_refusal", None)
        if isinstance(exc, exceptions.Throttled) and refusal is not None:
            message = refusal.message  # names the limit that was reached (forge_site.throttles)
    response.data = error_body(str(code), message, field)
    return response
