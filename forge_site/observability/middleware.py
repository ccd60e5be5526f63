"""Counts and times every console request for /metrics (forge_http_requests_total, its duration histogram, and the
requests in progress)."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from forge_site.observability.metrics import http_in_progress, http_observe


class HttpMetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        in_progress = http_in_progress(request.method or "")
        in_progress.inc()
        try:
            response = self.get_response(request)
        finally:
            in_progress.dec()
        match = request.resolver_match
        http_observe(
            method=request.method or "",
            route=match.route if match is not None else "unmatched",
            status=response.status_code,
            duration_s=time.perf_counter() - started,
        )
        return response
