"""Request and response shapes of the parity and benchmark API. JSON types are checked strictly (a number sent as a
string is refused) and unknown keys are refused, so a typo never silently falls back to a default; limits and
cross-checks (which version, which device) belong to the services."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from forge_site.api_inputs import (
    StrictBooleanField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
    StrictSerializer,
)
from models_registry.services import EVAL_DTYPES


def _dtype_field(help_text: str) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=list(EVAL_DTYPES), required=False, help_text=help_text)


DEVICE_HELP = "auto (default: cuda when the worker sees a GPU, else cpu), cpu, cuda or cuda:N"


class ParityReferenceInput(StrictSerializer):
    kind = serializers.ChoiceField(
        choices=[
            ("onnx", "the version's ONNX companion, run with ONNX Runtime"),
            ("version", "another version of the same model"),
            ("device", "the same artifact on another device or dtype"),
        ],
        error_messages={"invalid_choice": '"{input}" is not a reference kind; use onnx, version or device.'},
    )
    version = StrictCharField(required=False, max_length=64, help_text='kind "version": the version to compare with')
    device = StrictCharField(required=False, max_length=16, help_text='kind "device": cpu, cuda or cuda:N')
    dtype = _dtype_field('kind "device": the reference dtype (default float32)')

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["kind"] == "version" and not attrs.get("version", "").strip():
            raise serializers.ValidationError(
                {"version": ['Name the version to compare with, e.g. {"kind": "version", "version": "1.0.0"}.']}
            )
        if attrs["kind"] == "device" and not (attrs.get("device") or attrs.get("dtype")):
            raise serializers.ValidationError(
                {"device": ['Name the reference device or dtype, e.g. {"kind": "device", "device": "cuda"}.']}
            )
        return attrs


class ParityStartInput(StrictSerializer):
    reference = ParityReferenceInput()
    samples = StrictIntegerField(required=False, min_value=1, help_text="inputs to compare (default 1024)")
    batch_size = StrictIntegerField(required=False, min_value=1, help_text="rows per forward call (default 64)")
    rtol = StrictFloatField(required=False, allow_null=True, min_value=0, help_text="default: per dtype")
    atol = StrictFloatField(required=False, allow_null=True, min_value=0, help_text="default: per dtype")
    seed = StrictIntegerField(required=False, min_value=0, help_text="seeds the generated inputs (default 0)")
    device = StrictCharField(required=False, max_length=16, help_text=f"the candidate's device: {DEVICE_HELP}")
    dtype = _dtype_field("the candidate's dtype (default float32)")
    allow_fallback = StrictBooleanField(
        required=False, help_text="run on the CPU when CUDA was asked for but the worker has no GPU (default false)"
    )
    time_limit_s = StrictIntegerField(
        required=False, allow_null=True, min_value=1, help_text="stop the run after this many seconds"
    )


class BenchmarkStartInput(StrictSerializer):
    batch_sizes = serializers.ListField(
        child=StrictIntegerField(min_value=1),
        min_length=1,
        max_length=16,
        required=False,
        help_text="default [1, 8, 64]",
    )
    device = StrictCharField(required=False, max_length=16, help_text=DEVICE_HELP)
    dtype = _dtype_field("default float32")
    threads = StrictIntegerField(required=False, allow_null=True, min_value=1, help_text="torch threads on the CPU")
    warmup = StrictIntegerField(required=False, min_value=0, help_text="untimed calls per batch size (default 10)")
    window_ms = StrictFloatField(required=False, min_value=0, help_text="length of a measurement window (default 500)")
    stability_pct = StrictFloatField(
        required=False, min_value=0, help_text="the last 3 windows must agree within this (default 10)"
    )
    time_cap_s = StrictFloatField(required=False, min_value=0, help_text="most time per batch size (default 30)")
    allow_fallback = StrictBooleanField(required=False, help_text="run on the CPU when no GPU is visible")
    time_limit_s = StrictIntegerField(
        required=False, allow_null=True, min_value=1, help_text="stop the run after this many seconds"
    )


class CompareRunOut(serializers.Serializer):
    job_id = serializers.UUIDField()
    version = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # (DRF takes declared fields off the class)


class CompareSeriesOut(serializers.Serializer):
    label = serializers.CharField()  # type: ignore[assignment]  # (DRF takes declared fields off the class)
    job_id = serializers.UUIDField()
    device = serializers.CharField()
    dtype = serializers.CharField()
    fingerprint_key = serializers.CharField()
    p50_ms = serializers.ListField(child=serializers.FloatField(allow_null=True))
    p95_ms = serializers.ListField(child=serializers.FloatField(allow_null=True))
    throughput_sps = serializers.ListField(child=serializers.FloatField(allow_null=True))


class CompareRatioOut(serializers.Serializer):
    label = serializers.CharField()  # type: ignore[assignment]  # (DRF takes declared fields off the class)
    batch_size = serializers.IntegerField()
    p50_ratio = serializers.FloatField(allow_null=True, help_text="this run's p50 / the baseline's")
    throughput_ratio = serializers.FloatField(allow_null=True, help_text="this run's throughput / the baseline's")


class BenchmarkCompareOut(serializers.Serializer):
    model = serializers.CharField()
    runs = CompareRunOut(many=True, help_text="the compared runs; the first is the baseline")
    batch_sizes = serializers.ListField(child=serializers.IntegerField())
    series = CompareSeriesOut(many=True)
    ratios = CompareRatioOut(many=True)
    comparable = serializers.BooleanField(help_text="false when the runs come from different hardware")
    warnings = serializers.ListField(child=serializers.CharField())
