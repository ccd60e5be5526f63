"""Monitoring records: a version's baseline, its logged inference batches, hourly sketches, labels, monitors."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from models_registry.models import ModelVersion


class BaselineStatus(models.TextChoices):
    PROCESSING = "processing", "processing"
    READY = "ready", "ready"
    FAILED = "failed", "failed"


class Baseline(models.Model):
    """A version's reference data: the uploaded file, its schema, sketch layout and prepared reference columns."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="baselines")
    status = models.CharField(
        max_length=16, choices=BaselineStatus.choices, default=BaselineStatus.PROCESSING, db_index=True
    )
    error = models.TextField(blank=True)
    source = models.CharField(max_length=255, help_text="storage name of the uploaded CSV/Parquet file")
    source_format = models.CharField(max_length=8)
    source_sha256 = models.CharField(max_length=64)
    source_size = models.PositiveBigIntegerField()
    original_filename = models.CharField(max_length=255, blank=True)
    label_column = models.CharField(max_length=128, blank=True)
    prediction_column = models.CharField(max_length=128, blank=True)
    segment_columns = models.JSONField(default=list, blank=True)
    # [{"name", "kind": numeric|categorical, "role": feature|prediction|label|segment}], in file order.
    columns = models.JSONField(default=list, blank=True)
    rows = models.PositiveBigIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True)
    layout = models.JSONField(null=True, blank=True)
    layout_fingerprint = models.CharField(max_length=64, blank=True, db_index=True)
    reference_sketch = models.BinaryField(null=True, blank=True)
    reference_columns = models.CharField(
        max_length=255, blank=True, help_text="storage name of the .npz holding the sorted numeric columns"
    )
    fairness = models.JSONField(default=dict, blank=True, help_text="segment tallies of the reference rows")
    # Where the reference predictions came from: "column" (uploaded), "scored" (the version's artifact), or "".
    prediction_source = models.CharField(max_length=16, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"baseline {self.pk} of {self.version}"

    @property
    def feature_names(self) -> list[str]:
        return [c["name"] for c in self.columns if c["role"] == "feature"]


class InferenceBatch(models.Model):
    """One accepted batch of logged inferences: its rows as a Parquet file in artifact storage."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="inference_batches")
    baseline = models.ForeignKey(Baseline, on_delete=models.PROTECT, related_name="batches")
    file = models.CharField(max_length=255)
    rows = models.PositiveIntegerField()
    first_at = models.DateTimeField(db_index=True)
    last_at = models.DateTimeField(db_index=True)
    source = models.CharField(max_length=16, default="api")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-last_at"]

    def __str__(self) -> str:
        return f"{self.rows} inferences of {self.version_id} ({self.first_at:%Y-%m-%d %H:%M})"


class SketchWindow(models.Model):
    """One hour of a version's logged data, summarised on its baseline's layout; writers merge into it exactly."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="sketch_windows")
    layout_fingerprint = models.CharField(max_length=64)
    start = models.DateTimeField()
    rows = models.PositiveBigIntegerField(default=0)
    sketch = models.BinaryField()
    # {segment attribute: {value: [rows, predicted_positive, labelled, actual_positive, true_pos, false_pos]}}
    fairness = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "layout_fingerprint", "start"], name="sketch_window_unique")
        ]
        indexes = [models.Index(fields=["version", "layout_fingerprint", "start"], name="sketch_window_range")]

    def __str__(self) -> str:
        return f"sketch of {self.version_id} at {self.start:%Y-%m-%d %H:00}"


class InferenceLabel(models.Model):
    """A label that arrived after its inference (joined by request id): one per request id, so none counts twice.
    A label given with its inference stays in the batch file and the hour's tallies; the join refuses a late label
    for it."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="inference_labels")
    request_id = models.CharField(max_length=128)
    label = models.CharField(max_length=128)
    window_start = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "request_id"], name="inference_label_unique")]

    def __str__(self) -> str:
        return f"label {self.label!r} for {self.request_id}"


class Monitor(models.Model):
    """A version's scheduled drift and fairness check: every `interval_minutes`, over the last `lookback_hours`."""

    version = models.OneToOneField(ModelVersion, on_delete=models.CASCADE, related_name="monitor")
    enabled = models.BooleanField(default=True)
    interval_minutes = models.PositiveIntegerField(default=60)
    lookback_hours = models.PositiveIntegerField(default=24)
    method = models.CharField(max_length=32, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    drift_share = models.FloatField(default=0.5)
    fairness_thresholds = models.JSONField(default=dict, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_job = models.ForeignKey("forge_site.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"monitor of {self.version}"
