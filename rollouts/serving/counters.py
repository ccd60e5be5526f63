"""Per-arm counts of what this serving process served, kept in memory and flushed to the database in the background.

A request adds to an in-memory TrafficDelta under a lock (about a microsecond); a background thread hands what was
counted to rollouts.services.traffic_flush every FORGE_SERVING_FLUSH_MS, as this process's writer
(`serving:<host>:<pid>`), with the units seen for the first time (units_record). A flush that fails keeps its counts
for the next one; a process that dies loses at most one interval of counts (logs rows are separate: logsink.py).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import UTC, datetime

from django.db import close_old_connections

from rollouts.models import Rollout
from rollouts.services.traffic import TrafficDelta, UnitSeen, traffic_flush, units_record

logger = logging.getLogger(__name__)

MAX_KNOWN_UNITS = 200_000


def writer_name() -> str:
    return f"serving:{socket.gethostname()[:80]}:{os.getpid()}"


class ServingCounters:
    """What one process served per (rollout, arm, minute), and the units it routed first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deltas: dict[tuple[int, str, int], TrafficDelta] = {}
        self._units: dict[int, list[UnitSeen]] = {}
        self._known_units: set[tuple[int, int]] = set()
        self.flushed_rows = 0
        self.failed_flushes = 0

    def record(
        self,
        *,
        rollout_id: int,
        arm: str,
        minute: int,
        latency_ms: float,
        error: bool,
        fallback: bool,
        share: float,
        point: int | None,
        now: float,
        assignment_only: bool = False,
    ) -> None:
        key = (rollout_id, arm, minute)
        with self._lock:
            delta = self._deltas.get(key)
            if delta is None:
                delta = self._deltas[key] = TrafficDelta(rollout_id, arm, datetime.fromtimestamp(minute * 60, tz=UTC))
            if assignment_only:
                delta.assignments += 1
            else:
                delta.window.record_request(latency_ms, error=error)
            if fallback:
                delta.fallbacks += 1
            delta.share_sum += share / 100
            if point is None:
                delta.unitless += 1
                delta.unitless_share_sum += share / 100
            elif (rollout_id, point) not in self._known_units:
                if len(self._known_units) >= MAX_KNOWN_UNITS:
                    self._known_units.clear()  # a unit sent twice is ignored by the database
                self._known_units.add((rollout_id, point))
                self._units.setdefault(rollout_id, []).append(
                    UnitSeen(point, arm, share, datetime.fromtimestamp(now, tz=UTC))
                )

    def flush(self, writer: str) -> int:
        """Hand what was counted to the database; on failure keep it for the next flush. Rows written."""
        with self._lock:
            deltas, self._deltas = self._deltas, {}
            units, self._units = self._units, {}
        if not deltas and not units:
            return 0
        try:
            close_old_connections()
            for rollout_id, seen in units.items():
                units_record(rollout_id=rollout_id, units=seen)
            written = traffic_flush(writer=writer, deltas=list(deltas.values())) if deltas else 0
        except Exception:
            logger.exception("serving: flushing %d per-arm counts failed; kept for the next flush", len(deltas))
            self.failed_flushes += 1
            deltas, units = self._of_existing_rollouts(deltas, units)
            with self._lock:
                for key, delta in deltas.items():
                    self._merge_back(key, delta)
                for rollout_id, seen in units.items():
                    self._units.setdefault(rollout_id, [])[:0] = seen
            return 0
        self.flushed_rows += written
        return written

    def _of_existing_rollouts(
        self, deltas: dict[tuple[int, str, int], TrafficDelta], units: dict[int, list[UnitSeen]]
    ) -> tuple[dict[tuple[int, str, int], TrafficDelta], dict[int, list[UnitSeen]]]:
        """What to keep for the next flush: counts of a rollout that was deleted would fail every flush after."""
        try:
            ids = {key[0] for key in deltas} | set(units)
            existing = set(Rollout.objects.filter(pk__in=ids).values_list("pk", flat=True))
        except Exception:  # the database is down: keep everything
            return deltas, units
        if existing != ids:
            logger.warning("serving: dropping counts of deleted rollouts %s", sorted(ids - existing))
        return (
            {key: delta for key, delta in deltas.items() if key[0] in existing},
            {rollout_id: seen for rollout_id, seen in units.items() if rollout_id in existing},
        )

    def _merge_back(self, key: tuple[int, str, int], delta: TrafficDelta) -> None:
        current = self._deltas.get(key)
        if current is None:
            self._deltas[key] = delta
            return
        current.window.merge(delta.window)
        current.share_sum += delta.share_sum
        current.assignments += delta.assignments
        current.fallbacks += delta.fallbacks
        current.unitless += delta.unitless
        current.unitless_share_sum += delta.unitless_share_sum
