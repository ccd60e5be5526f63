"""Reads for monitoring: baselines, windows of sketches, a version's drift runs."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet, Sum

from forge_site.models import Job
from governance.models import Baseline, BaselineStatus, Monitor, SketchWindow
from models_registry.models import ModelVersion


def latest_baseline(version: ModelVersion) -> Baseline | None:
    """The version's newest baseline, whatever its status (the API shows a processing or failed one)."""
    return Baseline.objects.filter(version=version).first()


def current_baseline(version: ModelVersion) -> Baseline | None:
    """The newest ready baseline: what drift is computed against and ingestion validates with."""
    return Baseline.objects.filter(version=version, status=BaselineStatus.READY).first()


def baseline_feature_names(version: ModelVersion) -> list[str] | None:
    """The baseline's feature columns in order, so a caller holding a 2-D float input can name row values."""
    baseline = current_baseline(version)
    return baseline.feature_names if baseline is not None else None


def sketch_windows(version: ModelVersion, fingerprint: str, start: datetime, end: datetime) -> QuerySet[SketchWindow]:
    """Hourly windows starting in [start, end)."""
    return SketchWindow.objects.filter(
        version=version, layout_fingerprint=fingerprint, start__gte=start, start__lt=end
    ).order_by("start")


def window_rows(version: ModelVersion, fingerprint: str, start: datetime, end: datetime) -> int:
    total = sketch_windows(version, fingerprint, start, end).aggregate(total=Sum("rows"))["total"]
    return int(total or 0)


def drift_runs(version: ModelVersion) -> QuerySet[Job]:
    return Job.objects.filter(
        kind="drift", subject_type="models_registry.modelversion", subject_id=str(version.pk)
    ).order_by("-created_at")


def latest_drift(version: ModelVersion) -> Job | None:
    return drift_runs(version).filter(status="succeeded").first()


def monitor_of(version: ModelVersion) -> Monitor | None:
    return Monitor.objects.filter(version=version).first()
