"""`GET /metrics`: the Prometheus text exposition, for a scraper rather than a person.

Who may read it is decided by settings.FORGE_METRICS_ACCESS, not by the roles (a scraper signs in as nobody):
- `loopback` (the embedded default): a client on this host, connecting directly (no X-Forwarded-For, which a proxy
  in front adds; without that rule a same-host reverse proxy would let the internet in);
- `token` (the production default): `Authorization: Bearer <FORGE_METRICS_TOKEN>` only;
- `open`: anyone who can reach the port (a scrape network of its own).
With FORGE_METRICS_TOKEN set, that bearer token is accepted whatever the mode. Anyone else gets 403. The roles
table names the action `metrics.read` (anyone): the gate is this rule, documented in docs/operations.md.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache

from forge_site.observability.metrics import CONTENT_TYPE_LATEST, metrics_exposition
from forge_site.roles import require_action

LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
REFUSED = (
    "Metrics are for the scraper: ask from this host, or with the metrics token (FORGE_METRICS_TOKEN); "
    "see docs/operations.md, Metrics.\n"
)


def scrape_allowed(*, remote_addr: str, authorization: str, forwarded_for: str) -> bool:
    token = settings.FORGE_METRICS_TOKEN
    if token and hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode()):
        return True
    mode = settings.FORGE_METRICS_ACCESS
    if mode == "open":
        return True
    return mode == "loopback" and remote_addr in LOOPBACK and not forwarded_for


def _answer(request: HttpRequest, *, include_workers: bool) -> HttpResponse:
    allowed = scrape_allowed(
        remote_addr=request.META.get("REMOTE_ADDR", ""),
        authorization=request.META.get("HTTP_AUTHORIZATION", ""),
        forwarded_for=request.META.get("HTTP_X_FORWARDED_FOR", ""),
    )
    if not allowed:
        return HttpResponse(REFUSED, status=403, content_type="text/plain; charset=utf-8")
    return HttpResponse(metrics_exposition(include_workers=include_workers), content_type=CONTENT_TYPE_LATEST)


@never_cache
@require_action("metrics.read")
def metrics(request: HttpRequest) -> HttpResponse:
    """The console's /metrics: its own processes, and the jobs of the Celery workers on this host."""
    return _answer(request, include_workers=True)


@never_cache
@require_action("metrics.read")
def process_group_metrics(request: HttpRequest) -> HttpResponse:
    """For another process group that serves Django (the serving process): its own processes only, so that two
    scraped endpoints never count the same series."""
    return _answer(request, include_workers=False)


def metrics_wsgi_app(*, include_workers: bool = False) -> Callable[..., Iterable[bytes]]:
    """The same answer as a bare WSGI app, for a server that routes /metrics before Django (Django settings
    configured)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        allowed = scrape_allowed(
            remote_addr=environ.get("REMOTE_ADDR", ""),
            authorization=environ.get("HTTP_AUTHORIZATION", ""),
            forwarded_for=environ.get("HTTP_X_FORWARDED_FOR", ""),
        )
        if not allowed:
            body = REFUSED.encode()
            start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8")])
            return [body]
        body = metrics_exposition(include_workers=include_workers)
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Cache-Control", "no-store")])
        return [body]

    return app
