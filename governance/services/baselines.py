"""Baselines: a version's reference data, uploaded as CSV or Parquet, prepared by a job on the gpu queue.

`baseline_create` (web process) checks what needs no data (format, declared columns, the fit with the input spec),
stores the file and queues the `score_baseline` job. The job (`baseline_prepare`) reads the file, decides each
column's kind, and keeps what drift needs: the sorted numeric columns (.npz in artifact storage), the sketch layout
(bin edges, categories) and the reference sketch, a summary, and the segment tallies for fairness.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings
from django.db import transaction

from forge_site.audit import audit_record
from forge_site.jobs import JobContext, JobError, job_create
from forge_site.models import Job
from governance import tabular
from governance.drift.columns import CATEGORICAL, NUMERIC, CategoricalColumn, NumericColumn
from governance.drift.fairness import decisions, tally
from governance.drift.sketch import SketchLayout, sketch_of
from governance.models import Baseline, BaselineStatus
from governance.storage import delete_quietly, save_arrays, store_file
from models_registry.models import ModelVersion, VersionStatus

BASELINE_TASK = "governance.prepare_baseline"
RESERVED_COLUMNS = ("request_id", "timestamp")
MAX_SEGMENTS = 8


class MonitoringError(Exception):
    """A refusal meant for the person asking; API status and error code ride along, and the field when known."""

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid", status: int = 400) -> None:
        super().__init__(message)
        self.message, self.field, self.code, self.status = message, field, code, status


def _declared(value: str | None) -> str:
    return (value or "").strip()


def float_matrix_width(version: ModelVersion) -> int | None:
    """N when the version's input spec is one 2-D floating input [batch, N]; else None."""
    spec = version.input_spec
    inputs = spec.get("inputs") if isinstance(spec, dict) else spec
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        return None
    shape, dtype = inputs[0].get("shape"), str(inputs[0].get("dtype", "float32"))
    if not isinstance(shape, list) or len(shape) != 2 or not dtype.startswith(("float", "bfloat")):
        return None
    width = shape[1]
    return width if isinstance(width, int) and width > 0 else None


def baseline_create(
    *,
    version: ModelVersion,
    path: Path,
    filename: str,
    sha256: str,
    size: int,
    actor: Any,
    label: str | None = None,
    prediction: str | None = None,
    segments: list[str] | None = None,
    idempotency_key: str = "",
) -> Job:
    """Check the upload's columns, store it, write the baseline row and its `score_baseline` job (one transaction)."""
    if version.status != VersionStatus.READY:
        raise MonitoringError(
            f"Version {version.version} is {version.status}; a baseline needs a ready version.",
            code="not_ready",
            status=409,
        )
    if getattr(version, "retired_at", None) is not None:
        raise MonitoringError(f"Version {version.version} is retired.", code="retired", status=409)
    try:
        fmt = tabular.sniff_format(path, filename)
        names = tabular.column_names(path, fmt)
    except tabular.TableError as exc:
        raise MonitoringError(exc.message, field="file") from None
    label_name, prediction_name = _declared(label), _declared(prediction)
    segment_names = [s.strip() for s in segments or [] if s.strip()]
    if len(segment_names) > MAX_SEGMENTS:
        raise MonitoringError(f"At most {MAX_SEGMENTS} segment columns.", field="segments")
    for field, column in [("label", label_name), ("prediction", prediction_name)] + [
        ("segments", s) for s in segment_names
    ]:
        if column and column not in names:
            raise MonitoringError(
                f"The file has no column {column!r} (declared as {field}); its columns are {', '.join(names)}.",
                field=field,
            )
    declared = {label_name, prediction_name, *segment_names} - {""}
    if len(declared) < len([c for c in (label_name, prediction_name, *segment_names) if c]):
        raise MonitoringError("A column can have only one role (label, prediction or segment).", field="segments")
    features = [n for n in names if n not in declared and n not in RESERVED_COLUMNS]
    if not features:
        raise MonitoringError("The file has no feature columns besides the declared ones.", field="file")
    width = float_matrix_width(version)
    if width is not None and not prediction_name and len(features) != width:
        raise MonitoringError(
            f"The version takes one input of {width} columns, and the baseline has {len(features)} feature columns "
            f"({', '.join(features)}): give the {width} feature columns in the model's order, so Forge can score "
            "the baseline, or declare a prediction column.",
            field="file",
        )
    suffix = ".parquet" if fmt == "parquet" else ".csv"
    stored = store_file(f"baselines/{version.pk}", path, suffix)
    try:
        with transaction.atomic():
            baseline = Baseline.objects.create(
                version=version,
                source=stored,
                source_format=fmt,
                source_sha256=sha256,
                source_size=size,
                original_filename=filename[:255],
                label_column=label_name,
                prediction_column=prediction_name,
                segment_columns=segment_names,
                created_by=actor if getattr(actor, "is_authenticated", False) else None,
            )
            audit_record(
                actor=actor,
                action="baseline.create",
                obj=baseline,
                after={
                    "model": version.model.name,
                    "version": version.version,
                    "sha256": sha256,
                    "label": label_name or None,
                    "prediction": prediction_name or None,
                    "segments": segment_names,
                },
            )
            job = job_create(
                kind="score_baseline",
                task_name=BASELINE_TASK,
                queue="gpu",
                subject=baseline,
                subject_label=f"{version.model.name} {version.version} baseline",
                params={"baseline": baseline.pk, "format": fmt},
                created_by=actor,
                idempotency_key=idempotency_key,
            )
    except Exception:
        delete_quietly(stored)
        raise
    if job.replayed:  # the same upload sent twice with one key: keep the first, drop this copy
        delete_quietly(stored)
        Baseline.objects.filter(pk=baseline.pk).delete()
    return job


def _column_kind(array: Any, name: str) -> tuple[str, np.ndarray]:
    """numeric when every value reads as a number (text included), else categorical text."""
    combined = array.combine_chunks() if hasattr(array, "combine_chunks") else array
    try:
        return NUMERIC, tabular.to_float(combined, name)
    except tabular.TableError:
        return CATEGORICAL, tabular.to_text(combined)


def _summary(column: NumericColumn | CategoricalColumn, kind: str, role: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"kind": kind, "role": role, "count": column.count, "missing": column.missing}
    if isinstance(column, NumericColumn) and column.count:
        values = column.sorted
        entry.update(
            mean=float(values.mean(dtype=np.float64)),
            std=float(values.std(dtype=np.float64)),
            min=float(values[0]),
            max=float(values[-1]),
        )
    elif isinstance(column, CategoricalColumn):
        top = sorted(column.counts.items(), key=lambda item: (-item[1], item[0]))[:10]
        entry.update(categories=len(column.counts), top=[[name, count] for name, count in top])
    return entry


def baseline_prepare(ctx: JobContext) -> dict[str, Any]:
    """The `score_baseline` job's body: read the file, prepare the reference, store what drift needs."""
    from governance.storage import artifact_local_copy

    baseline = Baseline.objects.select_related("version").get(pk=int(ctx.job.subject_id))
    ctx.set_device("cpu")
    ctx.progress(5, "reading the baseline file")
    try:
        with artifact_local_copy(baseline.source) as local:
            table = tabular.read_whole(Path(local), baseline.source_format, settings.FORGE_BASELINE_MAX_ROWS)
    except tabular.TableError as exc:
        raise JobError(f"The baseline file cannot be read: {exc.message}") from None
    ctx.progress(30, f"preparing {table.rows:,} rows")
    roles = {baseline.label_column: "label", baseline.prediction_column: "prediction"}
    roles.update(dict.fromkeys(baseline.segment_columns, "segment"))
    roles.pop("", None)
    columns_meta: list[dict[str, Any]] = []
    prepared: dict[str, NumericColumn | CategoricalColumn] = {}
    raw: dict[str, np.ndarray] = {}
    for name in table.names:
        if name in RESERVED_COLUMNS:
            continue
        role = roles.get(name, "feature")
        if role in ("label", "segment"):
            kind, values = CATEGORICAL, tabular.to_text(table.columns[name].combine_chunks())
        else:
            kind, values = _column_kind(table.columns[name], name)
        raw[name] = values
        columns_meta.append({"name": name, "kind": kind, "role": role})
        if role in ("feature", "prediction"):
            prepared[name] = (
                NumericColumn.from_values(values) if kind == NUMERIC else CategoricalColumn.from_values(values)
            )
    width = float_matrix_width(baseline.version)
    features = [c for c in columns_meta if c["role"] == "feature"]
    if width is not None and not baseline.prediction_column:
        not_numeric = [c["name"] for c in features if c["kind"] != NUMERIC]
        if not_numeric:
            raise JobError(
                f"The version takes one input of {width} numeric columns, but these baseline columns are not numeric: "
                f"{', '.join(not_numeric)}. Make them numbers, or declare a prediction column."
            )
    prediction_column, prediction_source = baseline.prediction_column, "column" if baseline.prediction_column else ""
    if width is not None and not baseline.prediction_column:
        ctx.progress(40, f"scoring {table.rows:,} rows with the version's artifact in the sandbox")
        values, scoring = _score(ctx, baseline, [c["name"] for c in features], raw)
        prediction_column = "prediction" if "prediction" not in raw else "prediction_scored"
        kind = CATEGORICAL if values.dtype.kind in "OU" else NUMERIC
        raw[prediction_column] = values
        prepared[prediction_column] = (
            NumericColumn.from_values(values) if kind == NUMERIC else CategoricalColumn.from_values(values)
        )
        columns_meta.append({"name": prediction_column, "kind": kind, "role": "prediction", "scoring": scoring})
        prediction_source = "scored"
    ctx.progress(60, "computing the sketch layout and reference sketch")
    layout = SketchLayout.from_reference(prepared)
    reference_sketch = sketch_of(layout, prepared).to_bytes()
    numeric_names = [n for n, c in prepared.items() if isinstance(c, NumericColumn)]
    arrays = save_arrays(
        f"baselines/{baseline.version_id}",
        {n: prepared[n].sorted for n in numeric_names},  # type: ignore[union-attr]
    )
    summary = {
        c["name"]: _summary(prepared[c["name"]], c["kind"], c["role"])
        if c["name"] in prepared
        else _summary(CategoricalColumn.from_values(raw[c["name"]]), c["kind"], c["role"])
        for c in columns_meta
    }
    fairness = {}
    if prediction_column and baseline.segment_columns:
        decided = reference_decisions(raw[prediction_column], prepared[prediction_column])
        labels = label_values(raw[baseline.label_column]) if baseline.label_column else None
        for segment in baseline.segment_columns:
            fairness[segment] = {k: v.tolist() for k, v in tally(raw[segment], decided, labels).items()}
    ctx.progress(90, "recording the baseline")
    Baseline.objects.filter(pk=baseline.pk).update(
        columns=columns_meta,
        rows=table.rows,
        summary=summary,
        layout=layout.to_json(),
        layout_fingerprint=layout.fingerprint,
        reference_sketch=reference_sketch,
        reference_columns=arrays,
        fairness=fairness,
        prediction_column=prediction_column,
        prediction_source=prediction_source,
    )
    return {
        "baseline": baseline.pk,
        "rows": table.rows,
        "columns": columns_meta,
        "numeric_columns": numeric_names,
        "reference_columns": arrays,
    }


def _score(
    ctx: JobContext, baseline: Baseline, features: list[str], raw: dict[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, Any]]:
    """The version's predictions for the baseline's rows: its artifact run in this worker's job sandbox (the
    `score_baseline` request kind, governance.drift.scoring), CUDA when the worker has a GPU."""
    import tempfile

    from governance.storage import artifact_local_copy
    from models_registry.evaluation import sandbox_execute

    version = baseline.version
    matrix = np.column_stack([np.asarray(raw[name], dtype=np.float32) for name in features])
    settings.FORGE_UPLOAD_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.FORGE_UPLOAD_DIR) as folder:
        inputs, output = f"{folder}/inputs.npy", f"{folder}/predictions.npy"
        np.save(inputs, matrix, allow_pickle=False)
        with artifact_local_copy(version.artifact) as artifact:
            result = sandbox_execute(
                ctx,
                {
                    "type": "score_baseline",
                    "candidate": {"path": artifact, "sha256": version.sha256, "label": str(version)},
                    "inputs": inputs,
                    "output": output,
                    "device": "auto",
                    "max_uncompressed": 4 * settings.FORGE_MAX_ARTIFACT_BYTES,
                },
            )
        values = np.load(output, allow_pickle=False)
    if values.dtype.kind == "U":
        values = values.astype(object)
    if len(values) != len(matrix):
        raise JobError(f"The model gave {len(values)} predictions for {len(matrix)} baseline rows.")
    return values, result


POSITIVE_TEXTS = frozenset({"1", "true", "yes", "positive"})
_POSITIVE = pa.array(sorted(POSITIVE_TEXTS), type=pa.string())


def label_values(texts: np.ndarray) -> np.ndarray:
    """Labels as 1.0 / 0.0 (NaN where absent): 1, true, yes, positive (any case) or a number >= 0.5 is positive."""
    try:
        arrow = pa.array(texts, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arrow = pa.array([None if t is None else str(t) for t in texts.tolist()], type=pa.string())
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(arrow))
    numeric = pc.fill_null(pc.match_substring_regex(lowered, tabular.NUMBER_PATTERN), False)
    numbers = pc.cast(pc.if_else(numeric, lowered, pa.scalar(None, pa.string())), pa.float64())
    positive = pc.if_else(numeric, pc.greater_equal(numbers, 0.5), pc.is_in(lowered, value_set=_POSITIVE))
    out = np.where(pc.fill_null(positive, False).to_numpy(zero_copy_only=False), 1.0, 0.0)
    out[arrow.is_null().to_numpy(zero_copy_only=False)] = np.nan
    return out


def reference_decisions(values: np.ndarray, column: NumericColumn | CategoricalColumn) -> np.ndarray:
    """Predictions as yes/no decisions: a score >= 0.5, or a class that reads as positive (1, true, yes)."""
    if isinstance(column, NumericColumn):
        return decisions(np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-np.inf))
    return np.asarray(
        [v is not None and str(v).strip().lower() in POSITIVE_TEXTS for v in np.asarray(values, dtype=object)]
    )


def baseline_record(job: Job) -> None:
    """The job's outcome on the baseline row: ready, or failed with the job's error."""
    if job.subject_type != "governance.baseline":
        return
    if job.status == "succeeded":
        Baseline.objects.filter(pk=int(job.subject_id)).update(status=BaselineStatus.READY, error="")
    else:
        Baseline.objects.filter(pk=int(job.subject_id)).update(
            status=BaselineStatus.FAILED, error=job.error or "The baseline could not be prepared."
        )
