"""`GET /healthz`: database, Redis and workers; 200 when all are up, 503 otherwise."""

from __future__ import annotations

import time
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from forge_site.roles import require_action


def _check_database() -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "vendor": connection.vendor, "ms": round((time.perf_counter() - started) * 1000, 2)}


def _check_redis() -> dict[str, Any]:
    started = time.perf_counter()
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}


def _check_workers() -> dict[str, Any]:
    from forge_site.celery import app

    try:
        # Ask over the same Redis the redis check used, so both report on one broker.
        with app.connection_for_write(settings.REDIS_URL) as connection:
            replies = app.control.ping(timeout=1.0, connection=connection) or []
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300], "workers": []}
    names = sorted(name for reply in replies for name in reply)
    if not names:
        return {"ok": False, "error": "no Celery worker answered within 1 s", "workers": []}
    return {"ok": True, "workers": names}


@never_cache
@require_action("site.public")
def healthz(request: HttpRequest) -> JsonResponse:
    """`?scope=web` checks only what this web process needs to serve pages (for a load balancer's probe:
    a lost worker must not take every web node out of rotation); the default checks the whole system."""
    checks = {"database": _check_database()}
    if request.GET.get("scope") != "web":
        checks["redis"] = _check_redis()
        checks["workers"] = (
            _check_workers() if checks["redis"]["ok"] else {"ok": False, "error": "redis is down", "workers": []}
        )
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ok" if healthy else "degraded", "checks": checks}, status=200 if healthy else 503)
