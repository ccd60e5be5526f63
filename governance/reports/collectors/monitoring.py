"""Evidence from production monitoring: each version's baseline, its monitor and schedule, the drift runs that finished
in the period with their verdict per feature, and the fairness results those runs recorded (with their breaches).

A drift run is a Job of kind `drift` whose `result` is the evidence (docs/api.md); its fairness results ride in
`result["fairness"]` when the baseline declares segments and the version logs predictions.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from forge_site.models import Job, JobStatus
from governance.models import Baseline, BaselineStatus, Monitor
from governance.nist_rmf.mapping import Kind, KindEvidence
from governance.reports.collectors.base import clipped, evidence_item
from governance.reports.scope import ReportScope
from models_registry.models import ModelVersion

VERSION_SUBJECT = "models_registry.modelversion"
COUNTED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.TIMED_OUT)  # a cancelled run shows nothing either way
FEATURES_KEPT = 64  # per run, worst first: enough for any chart or table, and the snapshot stays small
FEATURE_FIELDS = ("name", "kind", "method", "statistic", "p_value", "threshold", "drifted")
FAIRNESS_FIELDS = (
    "demographic_parity_ratio",
    "demographic_parity_difference",
    "tpr_gap",
    "fpr_gap",
    "equalized_odds_gap",
    "thresholds",
    "breaches",
    "breached",
)
SEGMENT_FIELDS = ("segment", "rows", "labelled", "selection_rate", "tpr", "fpr", "judged", "note")


def _monitoring_ref(version: ModelVersion) -> dict[str, str]:
    path = reverse("governance:monitoring", kwargs={"name": version.model.name, "version": version.version})
    return {"type": "monitoring", "id": str(version.pk), "path": path}


def _drift_runs(scope: ReportScope) -> tuple[list[Job], dict[str, ModelVersion]]:
    versions = {str(v.pk): v for v in scope.versions}
    jobs = list(
        Job.objects.filter(
            kind="drift",
            subject_type=VERSION_SUBJECT,
            subject_id__in=list(versions),
            status__in=COUNTED,
            finished_at__gte=scope.start,
            finished_at__lte=scope.end,
        )
        .select_related("created_by")
        .order_by("finished_at", "pk")
    )
    return jobs, versions


def _feature(entry: dict[str, Any]) -> dict[str, Any]:
    return {key: entry.get(key) for key in FEATURE_FIELDS}


def _names(features: list[dict[str, Any]], limit: int = 4) -> str:
    names = [str(f["name"]) for f in features[:limit]]
    more = len(features) - limit
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def _window_text(result: dict[str, Any]) -> str:
    window = result.get("window") or {}
    if window.get("start") and window.get("end"):
        return f"{str(window['start'])[:16].replace('T', ' ')} to {str(window['end'])[:16].replace('T', ' ')} UTC"
    upload = (result.get("current") or {}).get("upload")
    return f"uploaded file {upload}" if upload else "uploaded file"


def _drift_values(job: Job) -> dict[str, Any]:
    result = job.result or {}
    params = job.params or {}
    features = [_feature(f) for f in (result.get("features") or [])]
    prediction = result.get("prediction")
    return {
        "status": job.status,
        "error": job.error,
        "source": result.get("source"),
        "window": result.get("window"),
        "upload": (result.get("current") or {}).get("upload"),
        "baseline": result.get("baseline", params.get("baseline")),
        "rows": result.get("rows"),
        "dataset": result.get("dataset"),
        "features": features[:FEATURES_KEPT],
        "features_total": len(features),
        "prediction": _feature(prediction) if isinstance(prediction, dict) else None,
        "monitor": params.get("monitor"),
        "method": params.get("method"),
        "device": job.device,
        "started_by": job.created_by.get_username() if job.created_by else "",
        "finished_at": job.finished_at,
    }


def _drift_summary(label: str, job: Job, values: dict[str, Any]) -> tuple[str, bool]:
    how = "monitor run" if values["monitor"] else f"run by {values['started_by'] or 'a scheduler'}"
    head = f"drift {label}, {_window_text(job.result or {})} ({how})"
    if job.status != JobStatus.SUCCEEDED:
        return f"{head}: {job.get_status_display().lower()}: {clipped(job.error or 'no result', 120)}", False
    dataset = values["dataset"] or {}
    drifted = [f for f in values["features"] if f["drifted"]]
    rows = values["rows"] or {}
    text = f"{head}: {len(drifted)} of {dataset.get('judged_features', len(values['features']))} features drifted"
    if drifted:
        text += f" ({_names(drifted)})"
    prediction = values["prediction"]
    if prediction is not None and prediction.get("drifted") is not None:
        text += f"; prediction {'drifted' if prediction['drifted'] else 'stable'}"
    if dataset:
        verdict = "DRIFTED" if dataset.get("drifted") else "not drifted"
        text += f"; dataset {verdict} (share {dataset.get('drifted_share', 0):.2f}, limit {dataset.get('threshold')})"
    if rows.get("current") is not None:
        text += f"; {rows['current']:,} rows against {rows.get('reference', 0):,}"
    return text, dataset.get("drifted") is not True


def _baseline_item(baseline: Baseline, version: ModelVersion) -> dict[str, Any]:
    label = f"{version.model.name} {version.version}"
    features = baseline.feature_names
    predictions = {"column": "uploaded", "scored": "scored by the version"}.get(baseline.prediction_source, "none")
    summary = (
        f"baseline of {label}: {baseline.rows:,} rows, {len(features)} features, predictions {predictions}"
        + (f", label {baseline.label_column}" if baseline.label_column else "")
        + (f", segments {', '.join(baseline.segment_columns)}" if baseline.segment_columns else ", no segments")
        + f"; file sha256 {baseline.source_sha256[:12]}…"
    )
    return evidence_item(
        kind=Kind.DRIFT,
        key=f"baseline:{baseline.pk}",
        title=f"Baseline of {label}",
        summary=summary,
        ok=True,
        at=baseline.created_at,
        model=version.model.name,
        version=version.version,
        ref=_monitoring_ref(version),
        values={
            "rows": baseline.rows,
            "features": features,
            "prediction_column": baseline.prediction_column,
            "prediction_source": baseline.prediction_source,
            "label_column": baseline.label_column,
            "segment_columns": list(baseline.segment_columns),
            "source_sha256": baseline.source_sha256,
            "source_size": baseline.source_size,
            "original_filename": baseline.original_filename,
            "created_by": baseline.created_by.get_username() if baseline.created_by else "",
        },
    )


def _monitor_item(monitor: Monitor, version: ModelVersion, runs: int) -> dict[str, Any]:
    label = f"{version.model.name} {version.version}"
    state = "enabled" if monitor.enabled else "DISABLED"
    summary = (
        f"monitor of {label}: {state}, every {monitor.interval_minutes} min over the last {monitor.lookback_hours} h, "
        f"method {monitor.method or 'default'}, drift share {monitor.drift_share:g}; {runs} monitor run"
        f"{'s' if runs != 1 else ''} finished in the period"
    )
    return evidence_item(
        kind=Kind.DRIFT,
        key=f"monitor:{monitor.pk}",
        title=f"Monitor of {label}",
        summary=summary,
        ok=monitor.enabled,
        at=monitor.updated_at,
        model=version.model.name,
        version=version.version,
        ref=_monitoring_ref(version),
        values={
            "enabled": monitor.enabled,
            "interval_minutes": monitor.interval_minutes,
            "lookback_hours": monitor.lookback_hours,
            "method": monitor.method,
            "threshold": monitor.threshold,
            "drift_share": monitor.drift_share,
            "fairness_thresholds": monitor.fairness_thresholds,
            "last_run_at": monitor.last_run_at,
            "created_at": monitor.created_at,
            "created_by": monitor.created_by.get_username() if monitor.created_by else "",
            "runs_in_period": runs,
        },
    )


def collect_drift(scope: ReportScope) -> KindEvidence:
    """Baselines, monitors (with their schedule) and drift runs; gaps: versions in service left unwatched."""
    jobs, versions = _drift_runs(scope)
    in_scope = list(versions.values())
    baselines = (
        Baseline.objects.filter(version__in=in_scope, status=BaselineStatus.READY, created_at__lte=scope.end)
        .select_related("created_by")
        .order_by("version_id", "created_at")
    )
    monitors = {
        m.version_id: m
        for m in Monitor.objects.filter(version__in=in_scope, created_at__lte=scope.end).select_related("created_by")
    }
    items = [_baseline_item(b, versions[str(b.version_id)]) for b in baselines]
    monitor_runs: dict[int, int] = {}
    for job in jobs:
        monitor_id = (job.params or {}).get("monitor")
        if monitor_id:
            monitor_runs[monitor_id] = monitor_runs.get(monitor_id, 0) + 1
    for version in in_scope:
        monitor = monitors.get(version.pk)
        if monitor is not None:
            items.append(_monitor_item(monitor, version, monitor_runs.get(monitor.pk, 0)))
    for job in jobs:
        version = versions[job.subject_id]
        label = f"{version.model.name} {version.version}"
        values = _drift_values(job)
        summary, ok = _drift_summary(label, job, values)
        items.append(
            evidence_item(
                kind=Kind.DRIFT,
                key=f"job:{job.pk}",
                title=f"Drift run of {label}",
                summary=summary,
                ok=ok,
                at=job.finished_at,
                model=version.model.name,
                version=version.version,
                ref=_monitoring_ref(version),
                values=values,
            )
        )
    with_baseline = {b.version_id for b in baselines}
    ran = {job.subject_id for job in jobs if job.status == JobStatus.SUCCEEDED}
    gaps = []
    for version in scope.versions_in_service():
        label = f"{version.model.name} {version.version}"
        monitor = monitors.get(version.pk)
        if version.pk not in with_baseline:
            gaps.append(f"{label} has no baseline to compare its production data with")
        elif monitor is None or not monitor.enabled:
            gaps.append(f"{label} has no enabled monitor")
        if version.pk in with_baseline and str(version.pk) not in ran:
            gaps.append(f"{label} has no successful drift run in the period")
    return KindEvidence(Kind.DRIFT, tuple(items), tuple(gaps))


def _attribute_values(job: Job, attribute: dict[str, Any], fairness: dict[str, Any]) -> dict[str, Any]:
    return {
        "attribute": attribute.get("attribute"),
        **{key: attribute.get(key) for key in FAIRNESS_FIELDS},
        "segments": [{key: s.get(key) for key in SEGMENT_FIELDS} for s in attribute.get("segments") or []],
        "window": fairness.get("window"),
        "monitor": (job.params or {}).get("monitor"),
        "drift_job": str(job.pk),
        "finished_at": job.finished_at,
    }


def _figure(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, int | float) else "n/a"


def _fairness_summary(label: str, values: dict[str, Any]) -> str:
    segments = values["segments"]
    text = (
        f"fairness {label} by {values['attribute']} ({len(segments)} segments, "
        f"{sum(int(s.get('rows') or 0) for s in segments):,} rows): parity ratio "
        f"{_figure(values['demographic_parity_ratio'])}, parity difference "
        f"{_figure(values['demographic_parity_difference'])}, "
        f"equalized-odds gap {_figure(values['equalized_odds_gap'])}"
    )
    breaches = values["breaches"] or []
    if breaches:
        text += "; BREACHES: " + ", ".join(
            f"{b.get('metric', '').replace('_', ' ')} {_figure(b.get('value'))} (limit {_figure(b.get('threshold'))})"
            for b in breaches
        )
    else:
        text += "; within its limits"
    return text


def collect_fairness(scope: ReportScope) -> KindEvidence:
    """The fairness results drift runs recorded, one item per run and segment attribute; a breach counts against."""
    jobs, versions = _drift_runs(scope)
    items = []
    evaluated = set()
    for job in jobs:
        if job.status != JobStatus.SUCCEEDED:
            continue
        fairness = (job.result or {}).get("fairness") or {}
        version = versions[job.subject_id]
        label = f"{version.model.name} {version.version}"
        for attribute in fairness.get("attributes") or []:
            values = _attribute_values(job, attribute, fairness)
            evaluated.add(job.subject_id)
            items.append(
                evidence_item(
                    kind=Kind.FAIRNESS,
                    key=f"job:{job.pk}:fairness:{values['attribute']}",
                    title=f"Fairness of {label} by {values['attribute']}",
                    summary=_fairness_summary(label, values),
                    ok=not values["breached"],
                    at=job.finished_at,
                    model=version.model.name,
                    version=version.version,
                    ref=_monitoring_ref(version),
                    values=values,
                )
            )
    gaps = [
        f"{version.model.name} {version.version} has no fairness evaluation in the period"
        for version in scope.versions_in_service()
        if str(version.pk) not in evaluated
    ]
    return KindEvidence(Kind.FAIRNESS, tuple(items), tuple(gaps))
