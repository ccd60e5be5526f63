"""Gunicorn's own log lines (its error log and the access log) as JSON objects, like the application's, when
FORGE_LOG_FORMAT is json. Chosen by forge_site.gunicorn_conf."""

from __future__ import annotations

from typing import Any

from gunicorn import glogging

from forge_site.logs import JsonFormatter


class JsonGunicornLogger(glogging.Logger):
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if getattr(handler, "_gunicorn", False):
                    handler.setFormatter(JsonFormatter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        headers = {str(name).lower(): value for name, value in (resp.headers or [])}
        path = environ.get("PATH_INFO", "")
        if environ.get("QUERY_STRING"):
            path += "?" + environ["QUERY_STRING"]
        method, status = environ.get("REQUEST_METHOD", ""), getattr(resp, "status_code", None)
        self.access_log.info(
            "%s %s %s",
            method,
            path,
            status,
            extra={
                "request_id": headers.get("x-request-id", ""),
                "method": method,
                "path": path,
                "status": status,
                "latency_ms": round(request_time.total_seconds() * 1000, 3),
                "bytes": getattr(resp, "sent", None),
                "remote": environ.get("REMOTE_ADDR", ""),
                "user_agent": environ.get("HTTP_USER_AGENT", ""),
            },
        )
