"""The API's error shape for the errors no API view answers (the API views' own go through forge_site.api)."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.response import Response as DrfResponse

from forge_site.api import error_body

API_PREFIX = "/api/"
# Headers of Django's own error responses that still mean something once the body is JSON.
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


class ApiErrorShapeMiddleware:
    """Under /api/, an error that no API view answered is answered in the API's error shape instead of an HTML page:
    a path that matches no endpoint (`/api/v1/jobs/null,null/`, any typo) is a JSON 404, a request Django refused
    before any view read it a JSON 400, a crash a JSON 500 that names the request id of the logged traceback (which
    the response never shows). The API views' own errors (DRF responses, already in the shape) pass untouched, and
    so do the HTML pages' errors outside /api/."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code < 400
            or not request.path_info.startswith(API_PREFIX)
            or isinstance(response, DrfResponse)
            or response.get("Content-Type", "").startswith("application/json")
        ):
            return response
        shaped = JsonResponse(_error_for(request, response.status_code), status=response.status_code)
        for header in _KEPT_HEADERS:
            if header in response:
                shaped[header] = response[header]
        return shaped


def _error_for(request: HttpRequest, status: int) -> dict[str, object]:
    if status == 404:
        return error_body(
            "not_found", f"There is no API endpoint at {request.path_info}; /api/schema/ lists the endpoints."
        )
    if status >= 500:
        request_id = getattr(request, "request_id", "")
        return error_body(
            "server_error",
            f"The server failed to answer this request; the error is logged with request id {request_id}.",
        )
    if status == 405:
        return error_body("method_not_allowed", f"{request.method} is not allowed on {request.path_info}.")
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return error_body(phrase.lower().replace(" ", "_"), f"The request was refused: {phrase}.")
