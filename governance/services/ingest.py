"""Inference ingestion: validate a batch against the version's baseline, store it, update the hourly sketches.

A batch is all or nothing: the first bad row is named (its index, request_id and column) and nothing of the batch
is stored. Accepted rows go to a Parquet file in artifact storage (`inferences/<version>/<yyyy-mm-dd>/<uuid>.parquet`,
columns `request_id`, `timestamp`, `feature.<name>`, `prediction`, `label`, `segment.<name>`, `meta`); each hour
they cover gets its sketch merged in the database (row lock per hour, so writers on several processes merge
exactly). A file upload is read in batches of 65,536 rows and written out as it is read: memory stays flat.

Labels that arrive later (rows with `request_id` and `label` only) are joined to their inference by request id:
the label updates the fairness tallies of the hour the inference was logged in, and is kept as an InferenceLabel
row. One label per request id: a label given with its inference is found in its batch file by the join.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from django.conf import settings
from django.db import IntegrityError, transaction

from governance import tabular
from governance.drift.columns import NUMERIC, category_text
from governance.drift.fairness import TALLY_FIELDS, tally
from governance.drift.sketch import WindowSketch, merge_sketches, sketch_of
from governance.models import Baseline, InferenceBatch, InferenceLabel, SketchWindow
from governance.reference import Reference, reference_for
from governance.selectors import current_baseline
from governance.services.baselines import POSITIVE_TEXTS, label_values
from governance.storage import artifact_local_copy, delete_quietly, store_file
from models_registry.models import ModelVersion

HOUR_US = 3_600_000_000
MAX_REQUEST_ID = 128
MAX_LABEL = 128
INFERENCE_KEYS = frozenset({"request_id", "timestamp", "features", "prediction", "label", "segment", "meta"})


class IngestError(Exception):
    """A rejected batch: the message names the first bad row (index, request_id) and the column."""

    def __init__(
        self,
        message: str,
        *,
        row: int | None = None,
        request_id: str | None = None,
        column: str | None = None,
        status: int = 400,
        code: str = "invalid_row",
    ) -> None:
        where = []
        if row is not None:
            where.append(f"row {row}")
        if request_id:
            where.append(f"request_id {request_id!r}")
        if column:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
        self.message = str(self)
        self.row, self.request_id, self.column = row, request_id, column
        self.status, self.code = status, code


@dataclass
class IngestResult:
    accepted: int
    labels: int = 0
    batch_id: int | None = None


@dataclass
class _Columns:
    """One validated batch, column by column (numpy), ready for Parquet and the sketches."""

    request_id: np.ndarray  # object (str)
    timestamp_us: np.ndarray  # int64
    features: dict[str, np.ndarray]  # float64 or object text
    prediction: np.ndarray | None  # float64, object text, or None
    label: np.ndarray  # object text or None per row
    segments: dict[str, np.ndarray]  # object text
    meta: np.ndarray  # object JSON text or None

    def table(self) -> pa.Table:
        arrays: dict[str, pa.Array] = {
            "request_id": pa.array(self.request_id, type=pa.string()),
            "timestamp": pa.array(self.timestamp_us, type=pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        }
        for name, values in self.features.items():
            arrays[f"feature.{name}"] = _arrow(values)
        if self.prediction is not None:
            arrays["prediction"] = _arrow(self.prediction)
        arrays["label"] = pa.array(self.label, type=pa.string())
        for name, values in self.segments.items():
            arrays[f"segment.{name}"] = pa.array(values, type=pa.string())
        arrays["meta"] = pa.array(self.meta, type=pa.string())
        return pa.table(arrays)


def _arrow(values: np.ndarray) -> pa.Array:
    return pa.array(values, type=pa.float64()) if values.dtype.kind == "f" else pa.array(values, type=pa.string())


# --- validation of JSON rows -------------------------------------------------------------------------------------


def _request_id(row: Mapping[str, Any], index: int) -> str:
    value = row.get("request_id")
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise IngestError("request_id is required (a non-empty string)", row=index, column="request_id")
    text = str(value)
    if len(text) > MAX_REQUEST_ID:
        raise IngestError(f"request_id is longer than {MAX_REQUEST_ID} characters", row=index, column="request_id")
    return text


def _number(value: Any, index: int, request_id: str, column: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IngestError(f"{value!r} is not a number", row=index, request_id=request_id, column=column)
    return float(value)


def _text(value: Any, index: int, request_id: str, column: str) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if not isinstance(value, str | int | float | bool):
        raise IngestError(
            f"{value!r} is not a category (text or number)", row=index, request_id=request_id, column=column
        )
    return category_text(value)


def _prediction(value: Any, kind: str | None, index: int, request_id: str) -> Any:
    """A prediction as the baseline's kind takes it: a score (a number, or [p0, p1] -> p1) or a class (text, or the
    argmax of a probability list)."""
    if value is None:
        return math.nan if kind == NUMERIC else None
    if isinstance(value, list):
        if not value or not all(isinstance(p, int | float) and not isinstance(p, bool) for p in value):
            raise IngestError(
                "a probability list must hold numbers", row=index, request_id=request_id, column="prediction"
            )
        if kind == NUMERIC:
            if len(value) != 2:
                raise IngestError(
                    f"the baseline's prediction is one score; a list of {len(value)} probabilities does not fit "
                    "(send the score, or [p0, p1] for a binary classifier)",
                    row=index,
                    request_id=request_id,
                    column="prediction",
                )
            return float(value[1])
        return str(int(np.argmax(value)))
    if kind == NUMERIC:
        return _number(value, index, request_id, "prediction")
    return _text(value, index, request_id, "prediction")


def _validate_rows(reference: Reference, baseline: Baseline, rows: list[Any]) -> tuple[_Columns | None, list]:
    """Split rows into inference rows (validated to columns) and late labels [(index, request_id, label text)]."""
    features = reference.features
    kinds = reference.kinds
    prediction_kind = kinds.get(reference.prediction) if reference.prediction else None
    segment_names = list(baseline.segment_columns)
    request_ids: list[str] = []
    times: list[int] = []
    values: dict[str, list[Any]] = {name: [] for name in features}
    predictions: list[Any] = []
    labels: list[str | None] = []
    segments: dict[str, list[str | None]] = {name: [] for name in segment_names}
    metas: list[str | None] = []
    late: list[tuple[int, str, str]] = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise IngestError("each row must be an object", row=index)
        request_id = _request_id(row, index)
        unknown = set(row) - INFERENCE_KEYS
        if unknown:
            raise IngestError("unknown field", row=index, request_id=request_id, column=sorted(unknown)[0])
        if set(row) <= {"request_id", "label", "timestamp"} and "label" in row:
            label = _text(row["label"], index, request_id, "label")
            if label is None:
                raise IngestError("a label row needs a label", row=index, request_id=request_id, column="label")
            late.append((index, request_id, label[:MAX_LABEL]))
            continue
        moment = tabular.parse_time_us(row.get("timestamp"))
        if moment is None:
            raise IngestError(
                "timestamp is required (ISO 8601, e.g. 2026-01-31T12:00:00Z)",
                row=index,
                request_id=request_id,
                column="timestamp",
            )
        given = row.get("features", {})
        if not isinstance(given, dict):
            raise IngestError(
                "features must be an object of named values", row=index, request_id=request_id, column="features"
            )
        for name in given:
            if name not in values:
                raise IngestError(
                    "unknown feature (not in the baseline)", row=index, request_id=request_id, column=f"features.{name}"
                )
        for name in features:
            value = given.get(name)
            if kinds[name] == NUMERIC:
                values[name].append(_number(value, index, request_id, f"features.{name}"))
            else:
                values[name].append(_text(value, index, request_id, f"features.{name}"))
        predictions.append(_prediction(row.get("prediction"), prediction_kind, index, request_id))
        label = _text(row.get("label"), index, request_id, "label")
        labels.append(None if label is None else label[:MAX_LABEL])
        segment = row.get("segment") or {}
        if not isinstance(segment, dict):
            raise IngestError("segment must be an object", row=index, request_id=request_id, column="segment")
        for name in segment:
            if name not in segments:
                raise IngestError(
                    "unknown segment attribute (not declared in the baseline)",
                    row=index,
                    request_id=request_id,
                    column=f"segment.{name}",
                )
        for name in segment_names:
            segments[name].append(_text(segment.get(name), index, request_id, f"segment.{name}"))
        meta = row.get("meta")
        if meta is not None and not isinstance(meta, dict):
            raise IngestError("meta must be an object", row=index, request_id=request_id, column="meta")
        metas.append(None if meta is None else json.dumps(meta, separators=(",", ":"), default=str))
        request_ids.append(request_id)
        times.append(moment)
    if not request_ids:
        return None, late
    columns = _Columns(
        request_id=np.asarray(request_ids, dtype=object),
        timestamp_us=np.asarray(times, dtype=np.int64),
        features={
            name: np.asarray(v, dtype=np.float64 if kinds[name] == NUMERIC else object) for name, v in values.items()
        },
        prediction=_prediction_array(predictions, prediction_kind),
        label=np.asarray(labels, dtype=object),
        segments={name: np.asarray(v, dtype=object) for name, v in segments.items()},
        meta=np.asarray(metas, dtype=object),
    )
    return columns, late


def _prediction_array(predictions: list[Any], kind: str | None) -> np.ndarray | None:
    if kind == NUMERIC:
        return np.asarray(predictions, dtype=np.float64)
    if kind is not None:
        return np.asarray(predictions, dtype=object)
    # No prediction in the baseline: keep what came, as text, for the record.
    texts = [None if p is None or (isinstance(p, float) and math.isnan(p)) else json.dumps(p) for p in predictions]
    return np.asarray(texts, dtype=object) if any(t is not None for t in texts) else None


# --- file batches --------------------------------------------------------------------------------------------------


def _validate_file_batch(
    reference: Reference, baseline: Baseline, batch: pa.RecordBatch, offset: int
) -> tuple[_Columns | None, list]:
    names = batch.schema.names
    allowed = {"request_id", "timestamp", "prediction", "label", "meta", *reference.features, *baseline.segment_columns}
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise IngestError("unknown column (not in the baseline)", column=unknown[0])
    if "request_id" not in names:
        raise IngestError("the file needs a request_id column", column="request_id")
    id_column = batch.column("request_id")
    if not (pa.types.is_string(id_column.type) or pa.types.is_large_string(id_column.type)):
        id_column = pc.cast(id_column, pa.string())
    request_ids = tabular.to_text(id_column)
    missing_ids = pc.fill_null(pc.equal(id_column, ""), True).to_numpy(zero_copy_only=False)
    if missing_ids.any():
        row = tabular.first_true(missing_ids)
        raise IngestError("request_id is required", row=offset + row, column="request_id")
    label_only = set(names) <= {"request_id", "label", "timestamp"} and "label" in names
    labels = tabular.to_text(batch.column("label")) if "label" in names else np.full(len(request_ids), None)
    if label_only:
        return None, [
            (offset + i, str(r), str(lbl)[:MAX_LABEL])
            for i, (r, lbl) in enumerate(zip(request_ids.tolist(), labels.tolist(), strict=True))
            if lbl is not None
        ]
    if "timestamp" not in names:
        raise IngestError("the file needs a timestamp column", column="timestamp")
    try:
        times = tabular.to_timestamps_us(batch.column("timestamp"), "timestamp", offset)
        features = {}
        for name in reference.features:
            if name not in names:
                features[name] = (
                    np.full(batch.num_rows, np.nan)
                    if reference.kinds[name] == NUMERIC
                    else np.full(batch.num_rows, None, dtype=object)
                )
            elif reference.kinds[name] == NUMERIC:
                features[name] = tabular.to_float(batch.column(name), name, offset)
            else:
                features[name] = tabular.to_text(batch.column(name))
        prediction = None
        if "prediction" in names:
            kind = reference.kinds.get(reference.prediction) if reference.prediction else None
            if kind == NUMERIC:
                prediction = tabular.to_float(batch.column("prediction"), "prediction", offset)
            else:
                prediction = tabular.to_text(batch.column("prediction"))
    except tabular.TableError as exc:
        request_id = str(request_ids[exc.row - offset]) if exc.row is not None else None
        raise IngestError(
            exc.message.split(": ", 1)[-1], row=exc.row, request_id=request_id, column=exc.column
        ) from None
    segments = {
        name: tabular.to_text(batch.column(name)) if name in names else np.full(batch.num_rows, None, dtype=object)
        for name in baseline.segment_columns
    }
    meta = tabular.to_text(batch.column("meta")) if "meta" in names else np.full(batch.num_rows, None, dtype=object)
    return _Columns(request_ids, times, features, prediction, labels, segments, meta), []


# --- sketches and storage --------------------------------------------------------------------------------------------


def _decided(prediction: np.ndarray | None, kind: str | None) -> np.ndarray | None:
    if prediction is None or kind is None:
        return None
    if kind == NUMERIC:
        return np.nan_to_num(prediction, nan=-np.inf) >= 0.5
    return np.asarray([p is not None and str(p).strip().lower() in POSITIVE_TEXTS for p in prediction.tolist()])


@dataclass
class _HourAccumulator:
    """Sketches and fairness tallies per hour, merged as batches are read (small: one sketch per hour)."""

    reference: Reference
    segment_names: list[str]
    sketches: dict[int, WindowSketch] = field(default_factory=dict)
    fairness: dict[int, dict[str, dict[str, np.ndarray]]] = field(default_factory=dict)
    rows: dict[int, int] = field(default_factory=dict)

    def add(self, columns: _Columns) -> None:
        hours = columns.timestamp_us // HOUR_US
        prediction_kind = self.reference.kinds.get(self.reference.prediction) if self.reference.prediction else None
        decided = _decided(columns.prediction, prediction_kind)
        labels = label_values(columns.label) if decided is not None else None
        for hour in np.unique(hours).tolist():
            mask = hours == hour
            data: dict[str, Any] = {name: values[mask] for name, values in columns.features.items()}
            if self.reference.prediction and columns.prediction is not None and prediction_kind is not None:
                data[self.reference.prediction] = columns.prediction[mask]
            count = int(mask.sum())
            sketch = sketch_of(self.reference.layout, data, rows=count)
            self.sketches[hour] = merge_sketches([self.sketches[hour], sketch]) if hour in self.sketches else sketch
            self.rows[hour] = self.rows.get(hour, 0) + count
            if decided is not None and self.segment_names:
                hour_tallies = self.fairness.setdefault(hour, {})
                for name in self.segment_names:
                    part = tally(
                        columns.segments[name][mask], decided[mask], labels[mask] if labels is not None else None
                    )
                    target = hour_tallies.setdefault(name, {})
                    for value, counts in part.items():
                        target[value] = target[value] + counts if value in target else counts


def _hour_start(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * 3600, tz=UTC)


def _merge_fairness(stored: dict[str, Any], added: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    merged = {name: {value: list(counts) for value, counts in values.items()} for name, values in stored.items()}
    for name, values in added.items():
        target = merged.setdefault(name, {})
        for value, counts in values.items():
            counts_list = [int(c) for c in counts]
            target[value] = [
                a + b for a, b in zip(target.get(value, [0] * len(TALLY_FIELDS)), counts_list, strict=True)
            ]
    return merged


def _merge_into_window(
    version: ModelVersion,
    fingerprint: str,
    hour: int,
    sketch: WindowSketch | None,
    rows: int,
    fairness: Mapping[str, Any],
) -> None:
    """Merge into the hour's stored sketch under a row lock (created on first use; a racing creator is retried)."""
    start = _hour_start(hour)
    for _ in range(2):
        window = (
            SketchWindow.objects.select_for_update()
            .filter(version=version, layout_fingerprint=fingerprint, start=start)
            .first()
        )
        if window is not None:
            if sketch is not None:
                stored = WindowSketch.from_bytes(sketch.layout, bytes(window.sketch))
                window.sketch = merge_sketches([stored, sketch]).to_bytes()
            window.rows += rows
            window.fairness = _merge_fairness(window.fairness, fairness)
            window.save(update_fields=["sketch", "rows", "fairness", "updated_at"])
            return
        try:
            with transaction.atomic():
                SketchWindow.objects.create(
                    version=version,
                    layout_fingerprint=fingerprint,
                    start=start,
                    rows=rows,
                    sketch=(sketch or WindowSketch.empty(_layout_of(version))).to_bytes(),
                    fairness=_merge_fairness({}, fairness),
                )
            return
        except IntegrityError:
            continue  # another writer created the hour first: lock it and merge
    raise IngestError("the hourly sketch is being written by another process; retry the batch")


def _layout_of(version: ModelVersion) -> Any:
    baseline = current_baseline(version)
    assert baseline is not None
    return reference_for(baseline).layout


def _ready_reference(version: ModelVersion) -> tuple[Baseline, Reference]:
    baseline = current_baseline(version)
    if baseline is None:
        raise IngestError(
            f"Version {version.version} has no ready baseline: upload one first (POST …/baseline/), so logged "
            "inferences can be checked against its columns.",
            status=409,
            code="no_baseline",
        )
    return baseline, reference_for(baseline)


def inferences_ingest(*, version: ModelVersion, rows: Any, actor: Any, source: str = "api") -> IngestResult:
    """Validate and store a batch of JSON rows (see the module docstring); raises IngestError, storing nothing."""
    if not isinstance(rows, list):
        raise IngestError("rows must be a list of objects")
    if not rows:
        raise IngestError("the batch is empty: send at least one row")
    baseline, reference = _ready_reference(version)
    columns, late = _validate_rows(reference, baseline, rows)
    return _store(version, baseline, reference, [columns] if columns is not None else [], late, source)


def inferences_ingest_file(
    *, version: ModelVersion, path: Path, filename: str, actor: Any, source: str = "api"
) -> IngestResult:
    """Validate and store a CSV or Parquet file, read in batches; raises IngestError, storing nothing."""
    baseline, reference = _ready_reference(version)
    try:
        fmt = tabular.sniff_format(path, filename)
    except tabular.TableError as exc:
        raise IngestError(exc.message, column="file") from None

    def batches() -> Iterator[_Columns | list]:
        offset = 0
        try:
            for batch in tabular.iter_batches(path, fmt):
                columns, late = _validate_file_batch(reference, baseline, batch, offset)
                offset += batch.num_rows
                yield columns if columns is not None else late
        except tabular.TableError as exc:
            raise IngestError(exc.message, row=exc.row, column=exc.column) from None

    return _store_stream(version, baseline, reference, batches(), source)


def _store(
    version: ModelVersion, baseline: Baseline, reference: Reference, parts: list[_Columns], late: list, source: str
) -> IngestResult:
    pieces: list[_Columns | list] = [*parts, late] if late else list(parts)
    return _store_stream(version, baseline, reference, pieces, source)


def _store_stream(
    version: ModelVersion, baseline: Baseline, reference: Reference, parts: Iterable[_Columns | list], source: str
) -> IngestResult:
    """Write validated parts to a temporary Parquet file while accumulating hourly sketches; then store the file and
    commit sketches, labels and the batch row together. Any error before the commit leaves nothing behind."""
    settings.FORGE_UPLOAD_DIR.mkdir(parents=True, exist_ok=True)
    accumulator = _HourAccumulator(reference, list(baseline.segment_columns))
    labelled = 0  # labels given with their inference: stored in the batch file, counted in the hour's tallies
    late: list[tuple[int, str, str]] = []
    rows = 0
    first_us = last_us = None
    writer: pq.ParquetWriter | None = None
    with tempfile.NamedTemporaryFile(dir=settings.FORGE_UPLOAD_DIR, suffix=".parquet") as tmp:
        try:
            for part in parts:
                if isinstance(part, list):
                    late.extend(part)
                    continue
                table = part.table()
                if writer is None:
                    writer = pq.ParquetWriter(tmp.name, table.schema, compression="snappy")  # zstd: 45% of the time
                writer.write_table(table)
                accumulator.add(part)
                labelled += len(part.label) - int(_none_count(part.label))
                rows += len(part.request_id)
                low, high = int(part.timestamp_us.min()), int(part.timestamp_us.max())
                first_us = low if first_us is None else min(first_us, low)
                last_us = high if last_us is None else max(last_us, high)
        finally:
            if writer is not None:
                writer.close()
        if rows == 0 and not late:
            raise IngestError("the batch is empty: send at least one row")
        _check_labels(version, late)
        late_joined, late_records = _join_late_labels(version, late) if late else ({}, [])
        stored = (
            store_file(f"inferences/{version.pk}/{datetime.now(UTC):%Y-%m-%d}", tmp.name, ".parquet") if rows else ""
        )
    try:
        with transaction.atomic():
            batch = None
            if rows:
                assert first_us is not None and last_us is not None
                batch = InferenceBatch.objects.create(
                    version=version,
                    baseline=baseline,
                    file=stored,
                    rows=rows,
                    source=source[:16],
                    first_at=datetime.fromtimestamp(first_us / 1e6, tz=UTC),
                    last_at=datetime.fromtimestamp(last_us / 1e6, tz=UTC),
                )
            fingerprint = reference.layout.fingerprint
            for hour in sorted(set(accumulator.sketches) | set(late_joined)):
                _merge_into_window(
                    version,
                    fingerprint,
                    hour,
                    accumulator.sketches.get(hour),
                    accumulator.rows.get(hour, 0),
                    _merge_fairness(_as_lists(accumulator.fairness.get(hour, {})), late_joined.get(hour, {})),
                )
            records = [
                InferenceLabel(version=version, request_id=r, label=lbl, window_start=_hour_start(h))
                for r, lbl, h in late_records
            ]
            try:
                with transaction.atomic():
                    InferenceLabel.objects.bulk_create(records, batch_size=5000)
            except IntegrityError:
                raise IngestError(
                    "a request id in this batch already has a label (one label per request id)", column="label"
                ) from None
    except BaseException:
        delete_quietly(stored)
        raise
    return IngestResult(accepted=rows, labels=labelled + len(late), batch_id=batch.pk if batch else None)


def _none_count(values: np.ndarray) -> int:
    """How many entries of an object array are None."""
    return int(pa.array(values, type=pa.string(), from_pandas=True).null_count) if values.dtype.kind == "O" else 0


def _as_lists(fairness: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, dict[str, list[int]]]:
    return {
        name: {value: [int(c) for c in counts] for value, counts in values.items()} for name, values in fairness.items()
    }


def _check_labels(version: ModelVersion, late: list[tuple[int, str, str]]) -> None:
    """Late labels: one per request id in the batch, and none for a request id that already has a late label (a
    label given with its inference is found in the batch file by the join)."""
    seen: dict[str, int] = {}
    for index, request_id, _ in late:
        if request_id in seen:
            raise IngestError(
                "this request id has two labels in the batch", row=index, request_id=request_id, column="label"
            )
        seen[request_id] = index
    ids = list(seen)
    for start in range(0, len(ids), 5000):
        taken = InferenceLabel.objects.filter(version=version, request_id__in=ids[start : start + 5000]).values_list(
            "request_id", flat=True
        )
        first = min(taken, key=lambda r: seen[r], default=None)
        if first is not None:
            raise IngestError(
                "this request id already has a label (one label per request id)",
                row=seen[first],
                request_id=first,
                column="label",
            )


def _join_late_labels(
    version: ModelVersion, late: list[tuple[int, str, str]]
) -> tuple[dict[int, dict[str, dict[str, list[int]]]], list[tuple[str, str, int]]]:
    """Find each late label's inference in the version's batch files (newest first, within the lookback), and
    return the fairness tallies to add per hour and the label records (request_id, label, hour)."""
    wanted = {request_id: (index, label) for index, request_id, label in late}
    found: dict[str, tuple[int, bool, dict[str, str | None]]] = {}
    baseline = current_baseline(version)
    assert baseline is not None
    reference = reference_for(baseline)
    kind = reference.kinds.get(reference.prediction) if reference.prediction else None
    since = datetime.now(UTC) - timedelta(days=settings.FORGE_LABEL_JOIN_LOOKBACK_DAYS)
    segment_columns = [f"segment.{name}" for name in baseline.segment_columns]
    for batch in InferenceBatch.objects.filter(version=version, last_at__gte=since).order_by("-last_at").iterator():
        remaining = [r for r in wanted if r not in found]
        if not remaining:
            break
        with artifact_local_copy(batch.file) as local:
            parquet = pq.ParquetFile(local)
            present = [
                c
                for c in ["request_id", "timestamp", "prediction", "label", *segment_columns]
                if c in parquet.schema_arrow.names
            ]
            table = parquet.read(columns=present)
        hits = table.filter(pc.is_in(table.column("request_id"), value_set=pa.array(remaining, type=pa.string())))
        if hits.num_rows == 0:
            continue
        times = pc.cast(pc.cast(hits.column("timestamp"), pa.timestamp("us", tz="UTC")), pa.int64()).to_numpy()
        predictions = hits.column("prediction").to_numpy(zero_copy_only=False) if "prediction" in present else None
        decided = (
            _decided(np.asarray(predictions, dtype=np.float64 if kind == NUMERIC else object), kind)
            if predictions is not None
            else None
        )
        ids = hits.column("request_id").to_pylist()
        given = hits.column("label").to_pylist() if "label" in present else [None] * len(ids)
        segs = {c: hits.column(c).to_pylist() for c in segment_columns if c in present}
        for i, request_id in enumerate(ids):
            if request_id in found:
                continue
            if given[i] is not None:
                raise IngestError(
                    "this request id already has a label, given with its inference (one label per request id)",
                    row=wanted[request_id][0],
                    request_id=request_id,
                    column="label",
                )
            found[request_id] = (
                int(times[i] // HOUR_US),
                bool(decided[i]) if decided is not None else False,
                {c[len("segment.") :]: segs[c][i] for c in segs},
            )
    unknown = [(index, r) for r, (index, _) in wanted.items() if r not in found]
    if unknown:
        index, request_id = min(unknown)
        raise IngestError(
            f"no logged inference has this request id (searched the last {settings.FORGE_LABEL_JOIN_LOOKBACK_DAYS} "
            "days); labels join inferences already logged",
            row=index,
            request_id=request_id,
            column="request_id",
        )
    per_hour: dict[int, dict[str, dict[str, list[int]]]] = {}
    records: list[tuple[str, str, int]] = []
    for request_id, (_, label) in wanted.items():
        hour, positive_decision, segment_values = found[request_id]
        records.append((request_id, label, hour))
        positive_label = label_values(np.asarray([label], dtype=object))[0] > 0.5
        for name, value in segment_values.items():
            counts = (
                per_hour.setdefault(hour, {})
                .setdefault(name, {})
                .setdefault("(missing)" if value is None else value, [0] * len(TALLY_FIELDS))
            )
            # A late label adds to labelled, actual positive and TP/FP; rows and predicted positive were counted
            # when the inference was logged.
            counts[2] += 1
            counts[3] += int(positive_label)
            counts[4] += int(positive_label and positive_decision)
            counts[5] += int(not positive_label and positive_decision)
    return per_hour, records
