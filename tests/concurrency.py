"""Real concurrency for tests: threads with their own database connections, released together."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

# Races need a database that lets writers run at once: SQLite serializes every write transaction.
postgres_only = pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "").split(":")[0] not in {"postgres", "postgresql"},
    reason="needs PostgreSQL (SQLite runs one writer at a time, so there is no race to test)",
)


def at_once(action: Callable[[], Any], count: int = 4) -> list[BaseException]:
    """Run `action` on `count` threads released together; what they raised (an assertion in a thread is lost)."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            action()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return errors
