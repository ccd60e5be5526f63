"""The inference log of served requests: buffered in memory, written to the drift ingestion in batches.

A request appends one tuple to a bounded buffer (no I/O, no serialisation on the request's path). A background
thread takes the buffer when it holds FORGE_SERVING_LOG_BATCH rows or every FORGE_SERVING_LOG_FLUSH_MS, builds the
ingestion rows (features named by the version's baseline, the outputs as the prediction, the rollout, arm, version,
latency, input SHA-256 and request id in `meta`) and calls governance.services.ingest.inferences_ingest per
version (source "serving"). What a crash can lose is bounded: at most FORGE_SERVING_LOG_BUFFER rows (the buffer's
capacity; in steady state one batch or one interval of traffic, whichever is smaller). A response never waits for
the log, and never fails because of it: when the buffer is full (ingestion slower than traffic, or down) new rows
are dropped and counted, and the warning says how many.

A version without a ready baseline cannot be ingested (the ingestion validates features against it): its rows are
counted as `unlogged` and the warning names the version, once a minute.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any, NamedTuple

from django.db import close_old_connections

from models_registry.models import ModelVersion

logger = logging.getLogger(__name__)

NAMES_TTL_S = 60.0
WARN_EVERY_S = 60.0


class LogEntry(NamedTuple):
    """One served request as the request thread leaves it: references only, built into rows by the flusher."""

    version_pk: int
    request_id: str
    served_at: float  # Unix seconds
    inputs: dict[str, Any]  # the request's inputs as parsed from JSON
    outputs: Any
    meta: dict[str, Any]


def _feature_names(version: ModelVersion) -> list[str] | None:
    try:
        from governance.selectors import baseline_feature_names  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - governance's monitoring not installed
        return None
    return baseline_feature_names(version)


def _ingest(version: ModelVersion, rows: list[dict[str, Any]]) -> None:
    from governance.services.ingest import inferences_ingest  # type: ignore[import-not-found]

    inferences_ingest(version=version, rows=rows, actor=None, source="serving")


def rows_of(entry: LogEntry, names: list[str]) -> list[dict[str, Any]] | None:
    """Ingestion rows for one request: one per row of its 2-D input, or None when its input has no baseline shape."""
    if len(entry.inputs) != 1:
        return None
    (matrix,) = entry.inputs.values()
    if (
        not isinstance(matrix, list)
        or not matrix
        or not all(isinstance(r, list) and len(r) == len(names) for r in matrix)
    ):
        return None
    timestamp = datetime.fromtimestamp(entry.served_at, tz=UTC).isoformat()
    outputs = entry.outputs
    per_row = isinstance(outputs, list) and len(outputs) == len(matrix)
    rows = []
    for index, values in enumerate(matrix):
        rows.append(
            {
                "request_id": entry.request_id if len(matrix) == 1 else f"{entry.request_id}.{index}",
                "timestamp": timestamp,
                "features": dict(zip(names, values, strict=True)),
                "prediction": outputs[index] if per_row else outputs,
                "meta": entry.meta,
            }
        )
    return rows


class InferenceLog:
    """The bounded buffer and its flusher; `append` is what the request path calls."""

    def __init__(self, *, batch: int, interval_s: float, capacity: int) -> None:
        self.batch = max(1, batch)
        self.interval_s = interval_s
        self.capacity = max(self.batch, capacity)
        self._buffer: list[LogEntry] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._names: dict[int, tuple[list[str] | None, float]] = {}
        self._versions: dict[int, ModelVersion] = {}
        self._warned: dict[str, float] = {}
        self.logged = 0  # rows the ingestion accepted
        self.dropped = 0  # rows lost because the buffer was full
        self.unlogged = 0  # rows the ingestion could not take (no baseline, inputs of another shape, refused)

    def append(self, entry: LogEntry) -> None:
        with self._lock:
            if len(self._buffer) >= self.capacity:
                self.dropped += 1
                return
            self._buffer.append(entry)
            full = len(self._buffer) >= self.batch
        if full:
            self._wake.set()

    def pending(self) -> int:
        return len(self._buffer)

    def wait(self) -> None:
        """Sleep until a batch is full or the interval has passed (the flusher thread's pace)."""
        self._wake.wait(self.interval_s)
        self._wake.clear()

    def _warn(self, key: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._warned.get(key, -WARN_EVERY_S) >= WARN_EVERY_S:
            self._warned[key] = now
            logger.warning(message, *args)

    def _version(self, pk: int) -> ModelVersion:
        version = self._versions.get(pk)
        if version is None:
            version = self._versions[pk] = ModelVersion.objects.select_related("model").get(pk=pk)
        return version

    def _names_of(self, version: ModelVersion) -> list[str] | None:
        cached = self._names.get(version.pk)
        if cached is not None and time.monotonic() - cached[1] < NAMES_TTL_S:
            return cached[0]
        names = _feature_names(version)
        self._names[version.pk] = (names, time.monotonic())
        return names

    def flush(self) -> int:
        """Write what is buffered; rows accepted by the ingestion. Never raises (a log never fails a response)."""
        with self._lock:
            entries, self._buffer = self._buffer, []
        if not entries:
            return 0
        by_version: dict[int, list[LogEntry]] = defaultdict(list)
        for entry in entries:
            by_version[entry.version_pk].append(entry)
        accepted = 0
        close_old_connections()
        for version_pk, group in by_version.items():
            try:
                accepted += self._flush_version(version_pk, group)
            except Exception:
                self.unlogged += len(group)
                logger.exception("serving: %d inference log rows of version #%s were lost", len(group), version_pk)
        return accepted

    def _flush_version(self, version_pk: int, group: list[LogEntry]) -> int:
        version = self._version(version_pk)
        names = self._names_of(version)
        if not names:
            self.unlogged += len(group)
            self._warn(
                f"baseline:{version_pk}",
                "serving: %s has no ready baseline, so its served requests are not logged for drift "
                "(%d rows so far); upload a baseline",
                f"{version.model.name} {version.version}",
                self.unlogged,
            )
            return 0
        rows: list[dict[str, Any]] = []
        for entry in group:
            built = rows_of(entry, names)
            if built is None:
                self.unlogged += 1
                self._warn(f"shape:{version_pk}", "serving: inputs of %s do not match its baseline's features", version)
                continue
            rows.extend(built)
        if not rows:
            return 0
        from governance.services.ingest import IngestError  # type: ignore[import-not-found]

        try:
            _ingest(version, rows)
        except IngestError as exc:
            self.unlogged += len(group)
            self._warn(f"refused:{version_pk}", "serving: the ingestion refused a log batch of %s: %s", version, exc)
            return 0
        self.logged += len(rows)
        return len(rows)
