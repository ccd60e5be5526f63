"""Small input and output serializers, one pair per API operation. They validate shape; services decide."""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from forge_site.api_inputs import StrictCharField, StrictChoiceField, StrictSerializer
from models_registry.limits import (
    DESCRIPTION_MAX,
    INTENDED_USE_MAX,
    REASON_MAX,
    SOURCE_COMMIT_MAX,
    TAG_MAX,
    TAGS_MAX,
    TRAINING_DATA_MAX,
    VERSION_MAX,
)
from models_registry.models import NAME_RE, RiskTier

# NAME_RE's `$` also matches before a final newline in Python; the schema's (ECMA) reading of it does not.
_WHOLE_NAME = re.compile(NAME_RE.removesuffix("$") + r"\Z")


@extend_schema_field({"type": "string", "pattern": NAME_RE, "maxLength": 128})
class NameField(StrictCharField):
    """A model name or version string: letters, digits, '.', '_' or '-', starting with a letter or digit. Not
    trimmed: " x" is refused as the schema's pattern says, not quietly changed into "x"."""

    def __init__(self, *, max_length: int = 128, **kwargs: Any) -> None:
        super().__init__(max_length=max_length, trim_whitespace=False, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not _WHOLE_NAME.match(value):
            raise serializers.ValidationError(
                f"Use letters, digits, '.', '_' or '-' (max {self.max_length}), starting with a letter or digit.",
                code="invalid",
            )
        return value


class TagListField(serializers.ListField):
    """Tags as a JSON list of strings; in a multipart upload, repeated fields (`-F tags=a -F tags=b`), and there
    an item may also hold several, comma-separated. A JSON string is not a list and is refused."""

    child = StrictCharField(max_length=TAG_MAX, allow_blank=True)

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", TAGS_MAX)
        kwargs.setdefault(
            "help_text", f"at most {TAGS_MAX} tags of letters, digits, '.', '_', '-' and ':' ({TAG_MAX} characters)"
        )
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> list[Any]:
        if isinstance(data, list) and all(isinstance(item, str) for item in data):
            data = [part for item in data for part in item.split(",")]
        return super().to_internal_value(data)


def _iso(retired: dict[str, Any] | None) -> dict[str, Any] | None:
    """The retirement instant written as DRF writes datetimes, as list rows write theirs."""
    if retired is not None:
        retired = {**retired, "at": serializers.DateTimeField().to_representation(retired["at"])}
    return retired


@extend_schema_field({"type": "array", "items": {"type": "string"}})
class TagNamesField(serializers.Field):
    """A many-to-many of tags as a list of names, read from the prefetched rows."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, value: Any) -> list[str]:
        return [tag.name for tag in value.all()]


# --- retirement -----------------------------------------------------------------------------------------------------


class RetiredOut(serializers.Serializer):
    at = serializers.DateTimeField()
    by = serializers.CharField(allow_null=True)
    reason = serializers.CharField()
    scope = serializers.ChoiceField(
        choices=["model", "version"], help_text="version: retired itself; model: retired with its model"
    )


class RetireInput(StrictSerializer):
    # Not trimmed here: a reason of spaces only is the service's to refuse (422), as the schema allows it.
    reason = StrictCharField(
        max_length=REASON_MAX, trim_whitespace=False, help_text="why it is retired; kept on the record"
    )


def retired_out(at: Any, by: Any, reason: str, scope: str) -> dict[str, Any] | None:
    """RetiredOut's shape (None when `at` is None); `by` is a user or a username."""
    if at is None:
        return None
    name = getattr(by, "username", by)
    return {"at": at, "by": name, "reason": reason, "scope": scope}


def model_retired(model: Any) -> dict[str, Any] | None:
    return retired_out(model.retired_at, model.retired_by, model.retired_reason, "model")


def version_retired(version: Any) -> dict[str, Any] | None:
    """A version's own retirement, or else its model's."""
    own = retired_out(version.retired_at, version.retired_by, version.retired_reason, "version")
    return own or model_retired(version.model)


# --- models ---------------------------------------------------------------------------------------------------------


class ModelCreateInput(StrictSerializer):
    name = NameField()
    description = StrictCharField(required=False, allow_blank=True, default="", max_length=DESCRIPTION_MAX)
    risk_tier = StrictChoiceField(choices=RiskTier.choices, default=RiskTier.LIMITED)
    intended_use = StrictCharField(required=False, allow_blank=True, default="", max_length=INTENDED_USE_MAX)
    tags = TagListField(required=False, default=list)


class ModelUpdateInput(StrictSerializer):
    read_only_fields = (
        "name", "owner", "version_count", "latest_version", "aliases", "created_at", "updated_at", "retired",
    )  # fmt: skip
    description = StrictCharField(required=False, allow_blank=True, max_length=DESCRIPTION_MAX)
    risk_tier = StrictChoiceField(choices=RiskTier.choices, required=False)
    intended_use = StrictCharField(required=False, allow_blank=True, max_length=INTENDED_USE_MAX)
    tags = TagListField(required=False)


class VersionBriefOut(serializers.Serializer):
    version = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()


class CurrentAliasOut(serializers.Serializer):
    alias = serializers.CharField()
    version = serializers.CharField(source="version.version")
    started_at = serializers.DateTimeField()


class ModelOut(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    risk_tier = serializers.CharField()
    intended_use = serializers.CharField()
    tags = TagNamesField()
    owner = serializers.CharField(source="owner.username", allow_null=True)
    version_count = serializers.IntegerField()
    latest_version = VersionBriefOut(allow_null=True)
    aliases = CurrentAliasOut(source="current_aliases", many=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    retired = serializers.SerializerMethodField(help_text="null unless the model was retired")

    @extend_schema_field(RetiredOut(allow_null=True))
    def get_retired(self, obj: Any) -> dict[str, Any] | None:
        return _iso(model_retired(obj))


def model_row_out(row: dict[str, Any]) -> dict[str, Any]:
    """ModelOut's shape, from a selectors.model_page_rows row (whose instants are already ISO text). List pages use
    this: serializing 100 instances through nested serializers cost more than the whole rest of the request
    (docs/performance.md)."""
    latest = row["latest_version__version"]
    return {
        "name": row["name"],
        "description": row["description"],
        "risk_tier": row["risk_tier"],
        "intended_use": row["intended_use"],
        "tags": row["tags"],
        "owner": row["owner__username"],
        "version_count": row["version_count"],
        "latest_version": None
        if latest is None
        else {
            "version": latest,
            "status": row["latest_version__status"],
            "created_at": row["latest_version__created_at"],
        },
        "aliases": row["aliases"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "retired": retired_out(row["retired_at"], row["retired_by__username"], row["retired_reason"], "model"),
    }


# --- versions -------------------------------------------------------------------------------------------------------

METRICS_HELP = (
    "JSON object: metric name (1-64 characters) -> finite number, text (256 characters), true/false, null, a list "
    "(256 items) of those, or an object; at most 100 entries, 3 levels, 32 KiB (docs/api.md, Limits)"
)


class VersionCreateInput(StrictSerializer):
    version = NameField(max_length=VERSION_MAX)
    # Empty files pass here so the service gives the one message for them ("The artifact file is empty.").
    artifact = serializers.FileField(allow_empty_file=True, use_url=False)
    input_spec = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
        help_text='JSON, e.g. {"inputs": [{"name": "x", "shape": [null, 32], "dtype": "float32"}]}',
    )
    onnx = serializers.FileField(required=False, allow_empty_file=True, use_url=False)
    sample_inputs = serializers.FileField(
        required=False, allow_empty_file=True, use_url=False, help_text=".npz (numpy.savez) of arrays named as inputs"
    )
    source_commit = serializers.CharField(
        required=False, allow_blank=True, max_length=SOURCE_COMMIT_MAX, default="", trim_whitespace=False
    )
    training_data = serializers.CharField(
        required=False, allow_blank=True, max_length=TRAINING_DATA_MAX, default="", trim_whitespace=False
    )
    parent_version = serializers.CharField(required=False, allow_blank=True, max_length=VERSION_MAX, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=DESCRIPTION_MAX)
    tags = TagListField(required=False, default=list)
    metrics = serializers.JSONField(required=False, help_text=METRICS_HELP)


class VersionUpdateInput(StrictSerializer):
    read_only_fields = (
        "model", "version", "status", "reason", "sha256", "size", "original_filename", "input_spec", "lineage",
        "created_by", "created_at", "inspection", "onnx", "sample_inputs", "job_id", "jobs", "retired", "usable",
    )  # fmt: skip
    description = StrictCharField(required=False, allow_blank=True, max_length=DESCRIPTION_MAX)
    metrics = serializers.DictField(required=False, help_text=METRICS_HELP)
    tags = TagListField(required=False)


class LineageOut(serializers.Serializer):
    source_commit = serializers.CharField()
    training_data = serializers.CharField()
    parent_version = serializers.CharField(source="parent.version", allow_null=True)


class CompanionOut(serializers.Serializer):
    sha256 = serializers.CharField()
    size = serializers.IntegerField()


class JobBriefOut(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    status = serializers.CharField()
    progress = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class VersionOut(serializers.Serializer):
    model = serializers.CharField(source="model.name")
    version = serializers.CharField()
    description = serializers.CharField()
    status = serializers.CharField()
    reason = serializers.CharField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    original_filename = serializers.CharField()
    input_spec = serializers.JSONField(allow_null=True)
    lineage = LineageOut(source="*")
    metrics = serializers.JSONField()
    tags = TagNamesField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True)
    created_at = serializers.DateTimeField()
    retired = serializers.SerializerMethodField(help_text="null unless the version or its model was retired")
    usable = serializers.SerializerMethodField(
        help_text="ready and not retired: may be evaluated, promoted, aliased or served"
    )

    @extend_schema_field(RetiredOut(allow_null=True))
    def get_retired(self, obj: Any) -> dict[str, Any] | None:
        return _iso(version_retired(obj))

    @extend_schema_field(serializers.BooleanField())
    def get_usable(self, obj: Any) -> bool:
        return bool(obj.is_usable)


def version_row_out(row: dict[str, Any]) -> dict[str, Any]:
    """VersionOut's shape, from a selectors.version_page_rows row (see model_row_out)."""
    return {
        "model": row["model__name"],
        "version": row["version"],
        "description": row["description"],
        "status": row["status"],
        "reason": row["reason"],
        "sha256": row["sha256"],
        "size": row["size"],
        "original_filename": row["original_filename"],
        "input_spec": row["input_spec"],
        "lineage": {
            "source_commit": row["source_commit"],
            "training_data": row["training_data"],
            "parent_version": row["parent__version"],
        },
        "metrics": row["metrics"],
        "tags": row["tags"],
        "created_by": row["created_by__username"],
        "created_at": row["created_at"],
        "retired": retired_out(row["retired_at"], row["retired_by__username"], row["retired_reason"], "version")
        or retired_out(
            row["model__retired_at"], row["model__retired_by__username"], row["model__retired_reason"], "model"
        ),
        "usable": row["status"] == "ready" and row["retired_at"] is None and row["model__retired_at"] is None,
    }


class VersionDetailOut(VersionOut):
    """A version with what inspection found and its jobs (passed as context["jobs"], newest first)."""

    inspection = serializers.JSONField(allow_null=True)
    onnx = serializers.SerializerMethodField()
    sample_inputs = serializers.SerializerMethodField()
    job_id = serializers.SerializerMethodField(help_text="the latest inspection job")
    jobs = serializers.SerializerMethodField()

    @extend_schema_field(CompanionOut(allow_null=True))
    def get_onnx(self, obj: Any) -> dict[str, Any] | None:
        return {"sha256": obj.onnx_sha256, "size": obj.onnx_size} if obj.onnx else None

    @extend_schema_field(CompanionOut(allow_null=True))
    def get_sample_inputs(self, obj: Any) -> dict[str, Any] | None:
        if not obj.sample_inputs:
            return None
        return {"sha256": obj.sample_inputs_sha256, "size": obj.sample_inputs_size}

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_job_id(self, obj: Any) -> str | None:
        inspect = next((job for job in self.context.get("jobs", []) if job.kind == "inspect"), None)
        return str(inspect.pk) if inspect is not None else None

    @extend_schema_field(JobBriefOut(many=True))
    def get_jobs(self, obj: Any) -> list[dict[str, Any]]:
        return [JobBriefOut(job).data for job in self.context.get("jobs", [])]


# --- aliases --------------------------------------------------------------------------------------------------------


class AliasAssignmentOut(serializers.Serializer):
    alias = serializers.CharField()
    version = serializers.CharField(source="version.version")
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    assigned_by = serializers.CharField(source="assigned_by.username", allow_null=True)
    reason = serializers.CharField()


class AliasSetInput(StrictSerializer):
    version = StrictCharField(max_length=64)
    reason = StrictCharField(max_length=500, help_text="why: recorded with the alias history and audited")


class AliasHistoryOut(serializers.Serializer):
    model = serializers.CharField()
    alias = serializers.CharField()
    at = serializers.DateTimeField(allow_null=True, help_text="the instant asked about, if any")
    holder = AliasAssignmentOut(allow_null=True, help_text="who held the alias at `at` (or now)")
    history = AliasAssignmentOut(many=True, help_text="newest first; only the holder when `at` is given")
