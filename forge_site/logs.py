"""Logging filters: a refused request is one line in the log, not a traceback."""

from __future__ import annotations

import logging


class ClientErrorWithoutTraceback(logging.Filter):
    """Django logs a 403 (PermissionDenied) or a bad Host header with the exception's whole traceback. For a 4xx the
    traceback shows only where the refusal was raised, which the message already says; keep the one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
