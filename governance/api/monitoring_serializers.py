"""Input and output shapes of the monitoring API (baseline, inferences, drift, fairness, monitor)."""

from __future__ import annotations

from rest_framework import serializers

from forge_site.api_inputs import (
    StrictBooleanField,
    StrictChoiceField,
    StrictFloatField,
    StrictIntegerField,
    StrictSerializer,
)
from forge_site.api_views import JobOut
from governance.drift import METHODS


class BaselineUploadInput(StrictSerializer):
    file = serializers.FileField(help_text="CSV (header row) or Parquet; one row per example, one column per feature")
    label = serializers.CharField(  # type: ignore[assignment]
        required=False, allow_blank=True, help_text="the label column, if any"
    )
    prediction = serializers.CharField(required=False, allow_blank=True, help_text="the prediction column, if any")
    segments = serializers.CharField(
        required=False, allow_blank=True, help_text="segment attribute columns, comma-separated (e.g. region,age_band)"
    )


class BaselineColumnOut(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=["numeric", "categorical"])
    role = serializers.ChoiceField(choices=["feature", "prediction", "label", "segment"])


class BaselineOut(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    error = serializers.CharField()
    rows = serializers.IntegerField()
    columns = BaselineColumnOut(many=True)
    summary = serializers.JSONField(help_text="per column: count, missing, mean/std/min/max or top categories")
    label = serializers.CharField(source="label_column")  # type: ignore[assignment]
    prediction = serializers.CharField(source="prediction_column")
    segments = serializers.ListField(child=serializers.CharField(), source="segment_columns")
    prediction_source = serializers.CharField(help_text='"column" (uploaded), "scored" (the version\'s artifact), ""')
    sha256 = serializers.CharField(source="source_sha256")
    filename = serializers.CharField(source="original_filename")
    created_at = serializers.DateTimeField()
    job = JobOut(allow_null=True)


class InferenceRowInput(StrictSerializer):
    request_id = serializers.CharField(max_length=128)
    timestamp = serializers.DateTimeField(required=False, help_text="when the inference was made (not for a label)")
    features = serializers.DictField(required=False, help_text="feature name -> value, as the baseline's columns")
    prediction = serializers.JSONField(required=False, help_text="a score, [p0, p1], a probability list or a class")
    label = serializers.JSONField(  # type: ignore[assignment]
        required=False, help_text="may arrive later: a row with request_id and label only"
    )
    segment = serializers.DictField(required=False, help_text="segment attribute -> value")
    meta = serializers.DictField(required=False, help_text="stored with the row (rollout id, arm, latency_ms, …)")


class InferencesInput(StrictSerializer):
    rows = InferenceRowInput(many=True, help_text="up to FORGE_INGEST_MAX_JSON_ROWS rows; larger batches as a file")


class InferencesFileInput(StrictSerializer):
    file = serializers.FileField(
        help_text="CSV or Parquet with columns request_id, timestamp, the feature names, prediction, label, segment "
        "names, meta (JSON text); or request_id and label only, for labels arriving later"
    )


class IngestOut(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="inference rows stored")
    labels = serializers.IntegerField(help_text="labels stored (with their inference, or joined later)")


class WindowInput(StrictSerializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class DriftStartInput(StrictSerializer):
    window = WindowInput(required=False, help_text="logged inferences with start <= timestamp < end")
    current = StrictChoiceField(choices=["upload"], required=False, help_text='"upload" with a multipart file')
    file = serializers.FileField(required=False)
    method = StrictChoiceField(choices=sorted(METHODS), required=False, allow_null=True, allow_blank=True)
    threshold = StrictFloatField(required=False, allow_null=True)
    drift_share = StrictFloatField(required=False, allow_null=True, min_value=0.0, max_value=1.0)

    def validate(self, attrs: dict) -> dict:
        if attrs.get("current") == "upload" or attrs.get("file") is not None:
            if attrs.get("file") is None:
                raise serializers.ValidationError({"file": 'current "upload" needs a multipart file'})
            return attrs
        if attrs.get("window") is None:
            raise serializers.ValidationError({"window": 'give a window {"start", "end"} or current "upload"'})
        return attrs


class DriftFeatureOut(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    method = serializers.CharField(allow_null=True)
    statistic = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True)
    threshold = serializers.FloatField(allow_null=True)
    drifted = serializers.BooleanField(allow_null=True)


class FairnessOut(serializers.Serializer):
    window = WindowInput()
    baseline = serializers.IntegerField()
    attributes = serializers.JSONField(help_text="per segment attribute: segments with rates, gaps, breaches")
    declared_segments = serializers.ListField(child=serializers.CharField())
    has_predictions = serializers.BooleanField()


class MonitorInput(StrictSerializer):
    enabled = StrictBooleanField(required=False, default=True)
    interval_minutes = StrictIntegerField(required=False, default=60, min_value=5, max_value=7 * 24 * 60)
    lookback_hours = StrictIntegerField(required=False, default=24, min_value=1, max_value=400 * 24)
    method = StrictChoiceField(choices=sorted(METHODS), required=False, allow_null=True, allow_blank=True)
    threshold = StrictFloatField(required=False, allow_null=True)
    drift_share = StrictFloatField(required=False, default=0.5, min_value=0.0, max_value=1.0)
    fairness_thresholds = serializers.DictField(
        required=False,
        default=dict,
        help_text="min_parity_ratio (0.8), max_parity_difference, max_equalized_odds_gap (0.1), min_rows (30)",
    )


class MonitorOut(serializers.Serializer):
    enabled = serializers.BooleanField()
    interval_minutes = serializers.IntegerField()
    lookback_hours = serializers.IntegerField()
    method = serializers.CharField()
    threshold = serializers.FloatField(allow_null=True)
    drift_share = serializers.FloatField()
    fairness_thresholds = serializers.DictField()
    last_run_at = serializers.DateTimeField(allow_null=True)
    last_job = serializers.UUIDField(source="last_job_id", allow_null=True)
