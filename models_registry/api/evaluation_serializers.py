"""Request and response shapes of the parity and benchmark API. JSON types are checked strictly (a number sent as a
string is refused) and unknown keys are refused, so a typo never silently falls back to a default. Each field's
limits are the services' own, stated here so that the schema gives them; what depends on stored state (which
version, whether it has an ONNX companion) belongs to the services."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from forge_site.api_inputs import (
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictFloatField,
    StrictIntegerField,
    StrictSerializer,
)
from models_registry.api.serializers import NameField
from models_registry.models import NAME_RE
from models_registry.services import EVAL_DTYPES, MAX_BATCH, MAX_SAMPLES


def _dtype_field(help_text: str) -> serializers.ChoiceField:
    return StrictChoiceField(choices=list(EVAL_DTYPES), required=False, help_text=help_text)


DEVICE_HELP = "auto (default: cuda when the worker sees a GPU, else cpu), cpu, cuda or cuda:N"
DEVICE_RE = r"^(auto|cpu|cuda(:[0-9]+)?)$"
REFERENCE_DEVICE_RE = r"^(cpu|cuda(:[0-9]+)?)$"


def _device_field(pattern: str, **kwargs: Any) -> serializers.CharField:
    """A device name, checked whole and as sent (no trimming, no lowercasing): what the schema's pattern says."""
    whole = re.compile(pattern.removesuffix("$") + r"\Z")

    @extend_schema_field({"type": "string", "pattern": pattern, "maxLength": 16})
    class DeviceField(StrictCharField):
        def to_internal_value(self, data: Any) -> str:
            value = super().to_internal_value(data)
            if not whole.match(value):
                names = "cpu, cuda or cuda:N" if pattern == REFERENCE_DEVICE_RE else "auto, cpu, cuda or cuda:N"
                raise serializers.ValidationError(f"Use {names} (got {value!r}).", code="invalid")
            return value

    return DeviceField(max_length=16, trim_whitespace=False, **kwargs)


def _reference_kind(kind: str, description: str, properties: dict[str, Any], **constraints: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": {"kind": {"type": "string", "enum": [kind]}, **properties},
        "required": ["kind", *constraints.pop("required", [])],
        "additionalProperties": False,
        **constraints,
    }


# The reference's schema: one object per kind, each with only its own keys (a serializer cannot say that itself).
REFERENCE_SCHEMA = {
    "oneOf": [
        _reference_kind("onnx", "the version's ONNX companion, run with ONNX Runtime", {}),
        _reference_kind(
            "version",
            "another ready version of the same model, with the same declared inputs",
            {"version": {"type": "string", "pattern": NAME_RE, "maxLength": 64}},
            required=["version"],
        ),
        _reference_kind(
            "device",
            "the same artifact on another device or dtype (give at least one of the two)",
            {
                "device": {"type": "string", "pattern": REFERENCE_DEVICE_RE, "maxLength": 16},
                "dtype": {"type": "string", "enum": list(EVAL_DTYPES)},
            },
            minProperties=2,
        ),
    ]
}
REFERENCE_KEYS = {"onnx": {"kind"}, "version": {"kind", "version"}, "device": {"kind", "device", "dtype"}}


@extend_schema_field(REFERENCE_SCHEMA)
class ParityReferenceInput(StrictSerializer):
    kind = StrictChoiceField(
        choices=[
            ("onnx", "the version's ONNX companion, run with ONNX Runtime"),
            ("version", "another version of the same model"),
            ("device", "the same artifact on another device or dtype"),
        ],
        error_messages={"invalid_choice": '"{input}" is not a reference kind; use onnx, version or device.'},
    )
    version = NameField(required=False, max_length=64, help_text='kind "version": the version to compare with')
    device = _device_field(REFERENCE_DEVICE_RE, required=False, help_text='kind "device": cpu, cuda or cuda:N')
    dtype = _dtype_field('kind "device": the reference dtype (default float32)')

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        kind = attrs["kind"]
        foreign = sorted(set(attrs) - REFERENCE_KEYS[kind])
        if foreign:
            raise serializers.ValidationError(
                {foreign[0]: [ErrorDetail(f'This field does not apply to kind "{kind}".', code="unknown_field")]}
            )
        if kind == "version" and not attrs.get("version"):
            raise serializers.ValidationError(
                {"version": ['Name the version to compare with, e.g. {"kind": "version", "version": "1.0.0"}.']}
            )
        if kind == "device" and not (attrs.get("device") or attrs.get("dtype")):
            raise serializers.ValidationError(
                {"device": ['Name the reference device or dtype, e.g. {"kind": "device", "device": "cuda"}.']}
            )
        return attrs


def _time_limit_field() -> serializers.IntegerField:
    return StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=settings.FORGE_EVAL_MAX_TIME_LIMIT_S,
        help_text="stop the run after this many seconds (default FORGE_EVAL_TIME_LIMIT_S)",
    )


class ParityStartInput(StrictSerializer):
    reference = ParityReferenceInput()
    samples = StrictIntegerField(
        required=False, min_value=1, max_value=MAX_SAMPLES, help_text="inputs to compare (default 1024)"
    )
    batch_size = StrictIntegerField(
        required=False, min_value=1, max_value=MAX_BATCH, help_text="rows per forward call (default 64)"
    )
    rtol = StrictFloatField(required=False, allow_null=True, min_value=0, max_value=1e6, help_text="default: per dtype")
    atol = StrictFloatField(required=False, allow_null=True, min_value=0, max_value=1e6, help_text="default: per dtype")
    seed = StrictIntegerField(
        required=False, min_value=0, max_value=2**63 - 1, help_text="seeds the generated inputs (default 0)"
    )
    device = _device_field(DEVICE_RE, required=False, help_text=f"the candidate's device: {DEVICE_HELP}")
    dtype = _dtype_field("the candidate's dtype (default float32)")
    allow_fallback = StrictBooleanField(
        required=False, help_text="run on the CPU when CUDA was asked for but the worker has no GPU (default false)"
    )
    time_limit_s = _time_limit_field()


class BenchmarkStartInput(StrictSerializer):
    batch_sizes = serializers.ListField(
        child=StrictIntegerField(min_value=1, max_value=MAX_BATCH),
        min_length=1,
        max_length=16,
        required=False,
        help_text="default [1, 8, 64]",
    )
    device = _device_field(DEVICE_RE, required=False, help_text=DEVICE_HELP)
    dtype = _dtype_field("default float32")
    threads = StrictIntegerField(
        required=False, allow_null=True, min_value=1, max_value=256, help_text="torch threads on the CPU"
    )
    warmup = StrictIntegerField(
        required=False, min_value=0, max_value=100_000, help_text="untimed calls per batch size (default 10)"
    )
    window_ms = StrictFloatField(
        required=False, min_value=10, max_value=60_000, help_text="length of a measurement window (default 500)"
    )
    stability_pct = StrictFloatField(
        required=False, min_value=0.1, max_value=100, help_text="the last 3 windows must agree within this (default 10)"
    )
    time_cap_s = StrictFloatField(
        required=False, min_value=0.1, max_value=3600, help_text="most time per batch size (default 30)"
    )
    allow_fallback = StrictBooleanField(required=False, help_text="run on the CPU when no GPU is visible")
    time_limit_s = _time_limit_field()


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
