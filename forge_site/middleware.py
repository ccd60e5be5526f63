"""Request ids: every request gets one, echoed back and written into the audit events it causes. And the release of
the reference cycles a DRF response leaves behind."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from forge_site.logs import current_request_id

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = current_request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response


class ReleaseResponseCyclesMiddleware:
    """Break the reference cycles of a rendered DRF response, so that its objects are freed when it is.

    DRF links a response to its view (`renderer_context["view"]`, while `view.response` is the response), its
    request to itself (`parser_context["request"]`), and Django's View.setup() gives every view a cycle of its own
    (`self.head = self.get`). Every object of an API request, the serialised page included (about 400 objects for
    a 100-row list), then outlives the response until the cyclic garbage collector finds it, and those collections
    were what made the slow tail of the API list pages (docs/performance.md). These links are only used while the
    view runs and the response renders, and this middleware, the outermost, sees the response after that.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        context = getattr(response, "renderer_context", None)
        if context:
            view, drf_request = context.get("view"), context.get("request")
            if view is not None:
                # The view's own cycle: Django's View.setup() sets `self.head = self.get`, a bound method.
                vars(view).pop("head", None)
                vars(view).pop("response", None)
            if drf_request is not None:
                drf_request.parser_context = None
            response.renderer_context = None  # type: ignore[attr-defined]
        return response
