"""Request serializers that take JSON as the schema describes it: a field refuses a value of another JSON type (a
number where a string is due, a string where a number is) instead of coercing it, and a body naming a key the
operation does not take is refused with the key named, never silently ignored. A key that names something the
resource has but the request may not change (a model's `name`, a version's `sha256`) says it is read-only.

The schema generator (forge_site.schema) marks these bodies `additionalProperties: false`, so the OpenAPI schema says
what the server does."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any, ClassVar

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail


def _flatten(detail: Any, prefix: str = "") -> dict[str, Any]:
    """{"reference": {"kind": [...]}} -> {"reference.kind": [...]}; a list item's error keeps its list's name."""
    if not isinstance(detail, Mapping):
        return {prefix: detail}
    flat: dict[str, Any] = {}
    for key, value in detail.items():
        if isinstance(key, int):
            if isinstance(value, list):
                value = [
                    ErrorDetail(f"item {key + 1}: {message}", code=getattr(message, "code", None)) for message in value
                ]
            name = prefix
        else:
            name = f"{prefix}.{key}" if prefix and key != "non_field_errors" else (prefix or str(key))
        for inner, messages in _flatten(value, name).items():
            flat.setdefault(inner, messages)
    return flat


class StrictSerializer(serializers.Serializer):
    """Refuses keys it does not declare (naming the first), and names nested fields with dots ("reference.kind") in
    its errors. `read_only_fields` lists what the resource shows but this request may not change: such a key is
    refused as read-only rather than as unknown."""

    read_only_fields: ClassVar[Collection[str]] = ()

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({unknown[0]: [self._refusal(unknown[0])]})
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError(_flatten(exc.detail)) from exc

    def _refusal(self, key: str) -> ErrorDetail:
        allowed = ", ".join(self.fields) or "none"
        if key in self.read_only_fields:
            return ErrorDetail(f"This field is read-only (the fields you may change are {allowed}).", "read_only")
        return ErrorDetail(f"Unknown field; the fields are {allowed}.", code="unknown_field")


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only: "5", 5.0 and true are refused (DRF's IntegerField takes all three)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A JSON number only, and a finite one (a literal like 1e999 parses to infinity, which JSON cannot carry back)."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        if isinstance(data, float) and not math.isfinite(data):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """true or false only ("true", 1 and "yes" are refused)."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictCharField(serializers.CharField):
    """A JSON string only: a number is refused rather than turned into its text (DRF's CharField takes 1.5 as
    "1.5")."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictChoiceField(serializers.ChoiceField):
    """One of the choices, as a string (DRF's ChoiceField compares str(value), so 1 would match a choice "1")."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)
