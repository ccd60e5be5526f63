"""Drift runs (jobs on the gpu queue), drift and fairness on demand from sketches, and monitors.

A drift run compares a window of logged inferences, or an uploaded dataset, with the version's baseline. A window
of at most FORGE_DRIFT_RAW_ROW_LIMIT rows is read from its raw batch files and every statistic is exact; a larger
one is computed from the hourly sketches (`source: "sketches"`, Wasserstein and KS bounded). The Job's `result` is
the evidence (shape in docs/api.md), with `fairness` added for a window when segments and predictions exist.

Monitors: one per version, run by the beat task `governance.monitors_due` (every minute) when their interval has
passed; each run is a drift job. When a monitor's job finishes, every function named in
settings.FORGE_MONITOR_RESULT_HOOKS is called with (monitor, job): the alert rules plug in there.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from forge_site.audit import audit_record
from forge_site.jobs import JobContext, JobError, job_create
from forge_site.models import Job
from governance import selectors, tabular
from governance.drift import DriftConfigError, DriftOptions, drift_report
from governance.drift import drift_from_sketches as sketches_drift
from governance.drift.columns import NUMERIC
from governance.drift.fairness import FairnessThresholds, fairness_report
from governance.drift.sketch import WindowSketch, merge_sketch_bytes
from governance.models import Baseline, InferenceBatch, Monitor
from governance.reference import Reference, reference_for
from governance.services.baselines import MonitoringError
from governance.storage import artifact_local_copy, delete_quietly, store_file
from models_registry.models import ModelVersion

DRIFT_TASK = "governance.run_drift"
MAX_WINDOW = timedelta(days=400)


def _options(method: str | None, threshold: float | None, drift_share: float | None) -> DriftOptions:
    try:
        return DriftOptions(
            method=method or None,
            threshold=threshold,
            drift_share=0.5 if drift_share is None else float(drift_share),
        )
    except DriftConfigError as exc:
        field = "threshold" if "threshold" in str(exc) else ("drift_share" if "drift_share" in str(exc) else "method")
        raise MonitoringError(str(exc), field=field, code="invalid_combination", status=422) from None


def _window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    if start is None or end is None:
        raise MonitoringError("A window needs a start and an end (ISO 8601).", field="window", status=422)
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    if end <= start:
        raise MonitoringError(
            "The window's end must be after its start.", field="window", code="out_of_range", status=422
        )
    if end - start > MAX_WINDOW:
        raise MonitoringError(
            f"A window spans at most {MAX_WINDOW.days} days.", field="window", code="out_of_range", status=422
        )
    return start, end


def _ready_baseline(version: ModelVersion) -> Baseline:
    baseline = selectors.current_baseline(version)
    if baseline is None:
        raise MonitoringError(
            f"Version {version.version} has no ready baseline to compare with; upload one first.",
            code="no_baseline",
            status=409,
        )
    return baseline


def drift_start(
    *,
    version: ModelVersion,
    actor: Any,
    start: datetime | None = None,
    end: datetime | None = None,
    upload: tuple[Path, str] | None = None,
    method: str | None = None,
    threshold: float | None = None,
    drift_share: float | None = None,
    idempotency_key: str = "",
    monitor: Monitor | None = None,
) -> Job:
    """Validate a drift request and queue its job: a window of logged data, or an uploaded (path, filename)."""
    baseline = _ready_baseline(version)
    options = _options(method, threshold, drift_share)
    params: dict[str, Any] = {
        "baseline": baseline.pk,
        "method": options.method,
        "threshold": options.threshold,
        "drift_share": options.drift_share,
    }
    stored = ""
    if upload is not None:
        path, filename = upload
        try:
            fmt = tabular.sniff_format(path, filename)
            tabular.column_names(path, fmt)
        except tabular.TableError as exc:
            raise MonitoringError(exc.message, field="file") from None
        stored = store_file(f"drift-uploads/{version.pk}", path, ".parquet" if fmt == "parquet" else ".csv")
        params.update(current="upload", file=stored, format=fmt, filename=filename[:255])
    else:
        window_start, window_end = _window(start, end)
        params["window"] = {"start": window_start.isoformat(), "end": window_end.isoformat()}
    if monitor is not None:
        params["monitor"] = monitor.pk
    try:
        job = job_create(
            kind="drift",
            task_name=DRIFT_TASK,
            queue="gpu",
            subject=version,
            subject_label=f"{version.model.name} {version.version}",
            params=params,
            created_by=actor,
            idempotency_key=idempotency_key,
        )
    except Exception:
        delete_quietly(stored)
        raise
    if job.replayed and stored:
        delete_quietly(stored)
    return job


# --- computing --------------------------------------------------------------------------------------------------------


def _read_window_rows(
    reference: Reference, version: ModelVersion, start: datetime, end: datetime, ctx: JobContext | None
) -> dict[str, np.ndarray]:
    """The window's raw rows from its batch files, as the baseline's columns (prediction included)."""
    wanted = {f"feature.{name}": name for name in reference.features}
    if reference.prediction:
        wanted["prediction"] = reference.prediction
    parts: dict[str, list[np.ndarray]] = {name: [] for name in wanted.values()}
    batches = list(InferenceBatch.objects.filter(version=version, first_at__lt=end, last_at__gte=start))
    low = pa.scalar(start, type=pa.timestamp("us", tz="UTC"))
    high = pa.scalar(end, type=pa.timestamp("us", tz="UTC"))
    for number, batch in enumerate(batches):
        with artifact_local_copy(batch.file) as local:
            parquet = pq.ParquetFile(local)
            present = [c for c in ["timestamp", *wanted] if c in parquet.schema_arrow.names]
            table = parquet.read(columns=present)
        inside = pc.and_(pc.greater_equal(table.column("timestamp"), low), pc.less(table.column("timestamp"), high))
        table = table.filter(inside)
        for column, name in wanted.items():
            if column in table.column_names:
                values = table.column(column)
                if reference.kinds[name] == NUMERIC:
                    parts[name].append(pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False))
                else:
                    parts[name].append(tabular.to_text(values.combine_chunks()))
            else:
                fill = (
                    np.full(table.num_rows, np.nan)
                    if reference.kinds[name] == NUMERIC
                    else np.full(table.num_rows, None, dtype=object)
                )
                parts[name].append(fill)
        if ctx is not None:
            ctx.progress(
                20 + int(50 * (number + 1) / max(1, len(batches))), f"read {number + 1} of {len(batches)} files"
            )
    return {name: (np.concatenate(chunks) if chunks else np.empty(0)) for name, chunks in parts.items()}


def _read_upload(reference: Reference, stored: str, fmt: str) -> dict[str, np.ndarray]:
    with artifact_local_copy(stored) as local:
        try:
            table = tabular.read_whole(Path(local), fmt, settings.FORGE_BASELINE_MAX_ROWS)
        except tabular.TableError as exc:
            raise JobError(f"The uploaded file cannot be read: {exc.message}") from None
    unknown = [n for n in table.names if n not in reference.kinds and n not in ("request_id", "timestamp")]
    if unknown and not (set(unknown) <= {"label"} | set()):
        raise JobError(f"The uploaded file has columns the baseline does not: {', '.join(unknown)}.")
    columns: dict[str, np.ndarray] = {}
    for name, kind in reference.kinds.items():
        if name not in table.columns:
            continue
        array = table.columns[name].combine_chunks()
        try:
            columns[name] = tabular.to_float(array, name) if kind == NUMERIC else tabular.to_text(array)
        except tabular.TableError as exc:
            raise JobError(f"The uploaded file: {exc.message}") from None
    return columns


def _device() -> str | None:
    """The CUDA path when this worker sees a GPU; numpy otherwise (faster on a CPU)."""
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else None
    except ImportError:  # pragma: no cover
        return None


def drift_compute(
    *,
    version: ModelVersion,
    baseline: Baseline,
    options: DriftOptions,
    start: datetime,
    end: datetime,
    ctx: JobContext | None = None,
    raw_limit: int | None = None,
) -> dict[str, Any]:
    """Drift of a window: exact from raw rows when it holds at most `raw_limit` rows, else from sketches."""
    reference = reference_for(baseline)
    limit = settings.FORGE_DRIFT_RAW_ROW_LIMIT if raw_limit is None else raw_limit
    rows = selectors.window_rows(version, reference.layout.fingerprint, start, end)
    if 0 < rows <= limit:
        if ctx is not None:
            ctx.progress(15, f"reading {rows:,} logged rows")
        current = _read_window_rows(reference, version, start, end, ctx)
        device = _device()
        if ctx is not None:
            ctx.set_device(device or "cpu")
            ctx.progress(75, "computing drift")
        result = drift_report(
            reference.prepared(), current, reference.kinds, options, prediction=reference.prediction, device=device
        )
    else:
        if ctx is not None:
            ctx.set_device("cpu")
            ctx.progress(40, f"merging the hourly sketches of {rows:,} rows")
        result = _from_sketches(reference, version, start, end, options)
    result["window"] = {"start": start.isoformat(), "end": end.isoformat()}
    result["baseline"] = baseline.pk
    return result


def _from_sketches(
    reference: Reference, version: ModelVersion, start: datetime, end: datetime, options: DriftOptions
) -> dict[str, Any]:
    blobs = selectors.sketch_windows(version, reference.layout.fingerprint, start, end).values_list("sketch", flat=True)
    merged = merge_sketch_bytes(reference.layout, (bytes(b) for b in blobs)) or WindowSketch.empty(reference.layout)
    return sketches_drift(reference.sketch, merged, options, prediction=reference.prediction)


def drift_execute(ctx: JobContext) -> dict[str, Any]:
    """The drift job's body."""
    params = ctx.job.params
    version = ModelVersion.objects.select_related("model").get(pk=int(ctx.job.subject_id))
    baseline = Baseline.objects.get(pk=params["baseline"])
    options = DriftOptions(
        method=params.get("method"), threshold=params.get("threshold"), drift_share=params.get("drift_share") or 0.5
    )
    ctx.progress(5, "loading the baseline")
    reference = reference_for(baseline)
    if params.get("current") == "upload":
        try:
            current = _read_upload(reference, params["file"], params["format"])
        finally:
            delete_quietly(params["file"])
        device = _device()
        ctx.set_device(device or "cpu")
        ctx.progress(60, "computing drift")
        result = drift_report(
            reference.prepared(), current, reference.kinds, options, prediction=reference.prediction, device=device
        )
        result["current"] = {"upload": params.get("filename", "")}
        result["baseline"] = baseline.pk
        return result
    start = datetime.fromisoformat(params["window"]["start"])
    end = datetime.fromisoformat(params["window"]["end"])
    result = drift_compute(version=version, baseline=baseline, options=options, start=start, end=end, ctx=ctx)
    monitor = Monitor.objects.filter(pk=params["monitor"]).first() if params.get("monitor") else None
    thresholds = FairnessThresholds.from_json(monitor.fairness_thresholds) if monitor else None
    fairness = fairness_compute(version=version, start=start, end=end, thresholds=thresholds)
    if fairness["attributes"]:
        result["fairness"] = fairness
    ctx.progress(95, "recording the result")
    return result


def drift_from_sketches(
    *, version: ModelVersion, start: datetime, end: datetime, method: str | None = None, threshold: float | None = None
) -> dict[str, Any]:
    """Drift of a window from its sketches only, synchronously (guardrails, reports): reads, never raw rows."""
    baseline = _ready_baseline(version)
    start, end = _window(start, end)
    result = _from_sketches(reference_for(baseline), version, start, end, _options(method, threshold, None))
    result["window"] = {"start": start.isoformat(), "end": end.isoformat()}
    result["baseline"] = baseline.pk
    return result


def fairness_compute(
    *, version: ModelVersion, start: datetime, end: datetime, thresholds: FairnessThresholds | None = None
) -> dict[str, Any]:
    """Fairness per declared segment attribute over a window, from the hourly tallies (fast, synchronous)."""
    baseline = _ready_baseline(version)
    start, end = _window(start, end)
    reference = reference_for(baseline)
    totals: dict[str, dict[str, list[int]]] = {}
    for tallies in selectors.sketch_windows(version, reference.layout.fingerprint, start, end).values_list(
        "fairness", flat=True
    ):
        for attribute, values in (tallies or {}).items():
            target = totals.setdefault(attribute, {})
            for value, counts in values.items():
                previous = target.get(value)
                target[value] = counts if previous is None else [a + b for a, b in zip(previous, counts, strict=True)]
    return {
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "baseline": baseline.pk,
        "attributes": [
            fairness_report(totals[name], thresholds, attribute=name)
            for name in baseline.segment_columns
            if name in totals
        ],
        "declared_segments": list(baseline.segment_columns),
        "has_predictions": bool(reference.prediction),
    }


# --- monitors ---------------------------------------------------------------------------------------------------------


MONITOR_FIELDS = (
    "enabled",
    "interval_minutes",
    "lookback_hours",
    "method",
    "threshold",
    "drift_share",
    "fairness_thresholds",
)


def monitor_upsert(*, version: ModelVersion, actor: Any, **fields: Any) -> Monitor:
    """Create or change the version's monitor (audited)."""
    _options(fields.get("method"), fields.get("threshold"), fields.get("drift_share"))
    try:
        FairnessThresholds.from_json(fields.get("fairness_thresholds"))
    except (TypeError, ValueError) as exc:
        raise MonitoringError(str(exc), field="fairness_thresholds", code="invalid_combination", status=422) from None
    with transaction.atomic():
        monitor = Monitor.objects.select_for_update().filter(version=version).first()
        before = {f: getattr(monitor, f) for f in MONITOR_FIELDS} if monitor else None
        if monitor is None:
            monitor = Monitor(version=version, created_by=actor if getattr(actor, "is_authenticated", False) else None)
        for name, value in fields.items():
            if name in MONITOR_FIELDS:
                setattr(monitor, name, "" if name == "method" and value is None else value)
        monitor.save()
        after = {f: getattr(monitor, f) for f in MONITOR_FIELDS}
        after.update(model=version.model.name, version=version.version)
        audit_record(
            actor=actor,
            action="monitor.update" if before else "monitor.create",
            obj=monitor,
            before=before,
            after=after,
        )
    return monitor


def monitor_delete(*, monitor: Monitor, actor: Any) -> None:
    with transaction.atomic():
        audit_record(
            actor=actor, action="monitor.delete", obj=monitor, before={f: getattr(monitor, f) for f in MONITOR_FIELDS}
        )
        monitor.delete()


def monitors_run_due(*, now: datetime | None = None) -> int:
    """Start a drift job for every enabled monitor whose interval has passed (the beat task calls this)."""
    now = now or timezone.now()
    started = 0
    for monitor in Monitor.objects.filter(enabled=True).select_related("version", "version__model"):
        if monitor.last_run_at and monitor.last_run_at + timedelta(minutes=monitor.interval_minutes) > now:
            continue
        if selectors.current_baseline(monitor.version) is None:
            continue
        with transaction.atomic():
            claimed = Monitor.objects.filter(pk=monitor.pk, last_run_at=monitor.last_run_at).update(last_run_at=now)
            if not claimed:
                continue  # another beat got there first
            job = drift_start(
                version=monitor.version,
                actor=None,
                start=now - timedelta(hours=monitor.lookback_hours),
                end=now,
                method=monitor.method or None,
                threshold=monitor.threshold,
                drift_share=monitor.drift_share,
                monitor=monitor,
            )
            Monitor.objects.filter(pk=monitor.pk).update(last_job=job)
        started += 1
    return started


def monitor_job_finished(job: Job) -> None:
    """After a monitor's drift job: hand the monitor and its job to the hooks in FORGE_MONITOR_RESULT_HOOKS."""
    monitor_id = (job.params or {}).get("monitor")
    if not monitor_id or job.status != "succeeded":
        return
    monitor = Monitor.objects.filter(pk=monitor_id).select_related("version", "version__model").first()
    if monitor is None:
        return
    for path in settings.FORGE_MONITOR_RESULT_HOOKS:
        import_string(path)(monitor=monitor, job=job)
