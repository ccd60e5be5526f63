"""Logging: the request id of the request being served, JSON lines for log collectors, and a refused request as one
line rather than a traceback. No Django imports (gunicorn's master uses the JSON formatter too)."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

# Set by forge_site.middleware.RequestIdMiddleware for the request being served (and read by the audit trail).
current_request_id: ContextVar[str] = ContextVar("forge_request_id", default="")

# Set by forge_site.observability.tracing when traces are on: () -> (trace_id, span_id) of the current span, or None.
trace_ids: Callable[[], tuple[str, str] | None] | None = None

# What every LogRecord has; anything else on a record came from `extra=` and goes into the JSON object as it is.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class ClientErrorWithoutTraceback(logging.Filter):
    """Django logs a 403 (PermissionDenied) or a bad Host header with the exception's whole traceback. For a 4xx the
    traceback shows only where the refusal was raised, which the message already says; keep the one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True


_last_second: tuple[int, str] = (-1, "")


def _utc_time(created: float) -> str:
    global _last_second
    seconds = int(created)
    if _last_second[0] != seconds:  # formatting the date is most of the cost; a busy process logs many a second
        _last_second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return f"{_last_second[1]}.{int((created - seconds) * 1000):03d}Z"


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # NaN is not JSON
    if isinstance(value, dict | list | tuple):
        return value  # written as JSON; what inside cannot be, as text
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ms), level, logger, message, the request id when there is one, then
    whatever the call passed in `extra=` (rollout, version, latency_ms, outcome, ...), then the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _utc_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or current_request_id.get()
        if request_id:
            entry["request_id"] = request_id
        if trace_ids is not None and (ids := trace_ids()) is not None:
            entry["trace_id"], entry["span_id"] = ids
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in entry and not key.startswith("_"):
                entry[key] = _jsonable(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        try:
            return json.dumps(entry, ensure_ascii=False, default=str, allow_nan=False)
        except ValueError:  # a NaN inside a structure: that structure as text, the line still JSON
            flat = {
                key: str(value) if isinstance(value, dict | list | tuple) else value for key, value in entry.items()
            }
            return json.dumps(flat, ensure_ascii=False, default=str)
