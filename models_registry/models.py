"""The inventory: registered models, their immutable versions, tags and alias history."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
name_validator = RegexValidator(
    NAME_RE, "Use letters, digits, '.', '_' or '-' (max 128), starting with a letter or digit."
)
VERSION_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
version_validator = RegexValidator(
    VERSION_RE, "Use letters, digits, '.', '_' or '-' (max 64), starting with a letter or digit."
)


class RiskTier(models.TextChoices):
    MINIMAL = "minimal", "Minimal"
    LIMITED = "limited", "Limited"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class VersionStatus(models.TextChoices):
    VALIDATING = "validating", "Validating"
    READY = "ready", "Ready"
    REJECTED = "rejected", "Rejected"


class Alias(models.TextChoices):
    CHAMPION = "champion", "Champion"
    CHALLENGER = "challenger", "Challenger"


class Tag(models.Model):
    """A free-form label shared by models and versions."""

    name = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RegisteredModel(models.Model):
    """A model as the business knows it: a name, an owner, a risk tier and what it is for."""

    name = models.CharField(max_length=128, unique=True, validators=[name_validator])
    description = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    risk_tier = models.CharField(max_length=16, choices=RiskTier.choices, default=RiskTier.LIMITED, db_index=True)
    intended_use = models.TextField(blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="models")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    version_count = models.PositiveIntegerField(default=0)
    latest_version = models.ForeignKey(
        "ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Retired (NIST AI RMF GOVERN 1.7): kept with its versions and records, but none of them can be evaluated,
    # promoted, aliased or served any more.
    retired_at = models.DateTimeField(null=True, blank=True, db_index=True)
    retired_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    retired_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        # Names are one namespace whatever their case ("credit-risk" and "Credit-Risk" are the same model to a
        # person); the database holds it, so two requests at once cannot both pass a check made before inserting.
        constraints = [models.UniqueConstraint(Lower("name"), name="model_name_unique_ignoring_case")]

    def __str__(self) -> str:
        return self.name


class ModelVersionQuerySet(models.QuerySet["ModelVersion"]):
    def usable(self) -> ModelVersionQuerySet:
        """Versions that may be evaluated, promoted, aliased or served: ready, and neither they nor their model
        retired (the queryset form of ModelVersion.is_usable)."""
        return self.filter(status=VersionStatus.READY, retired_at__isnull=True, model__retired_at__isnull=True)


class ModelVersion(models.Model):
    """One immutable artifact of a model, content-addressed by SHA-256, with what inspection found."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=64, validators=[version_validator])
    description = models.TextField(blank=True)
    status = models.CharField(
        max_length=16, choices=VersionStatus.choices, default=VersionStatus.VALIDATING, db_index=True
    )
    reason = models.TextField(blank=True, help_text="why the version was rejected")
    artifact = models.CharField(max_length=255, help_text="storage name of the TorchScript archive")
    sha256 = models.CharField(max_length=64, db_index=True)
    size = models.PositiveBigIntegerField()
    original_filename = models.CharField(max_length=255, blank=True)
    onnx = models.CharField(max_length=255, blank=True)
    onnx_sha256 = models.CharField(max_length=64, blank=True)
    onnx_size = models.PositiveBigIntegerField(null=True, blank=True)
    sample_inputs = models.CharField(max_length=255, blank=True)
    sample_inputs_sha256 = models.CharField(max_length=64, blank=True)
    sample_inputs_size = models.PositiveBigIntegerField(null=True, blank=True)
    input_spec = models.JSONField(null=True, blank=True)
    inspection = models.JSONField(null=True, blank=True)
    source_commit = models.CharField(max_length=80, blank=True)
    training_data = models.CharField(max_length=500, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    metrics = models.JSONField(default=dict, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="versions")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    retired_at = models.DateTimeField(null=True, blank=True, db_index=True)
    retired_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    retired_reason = models.TextField(blank=True)

    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["model", "version"], name="unique_version_per_model")]

    def __str__(self) -> str:
        return f"{self.model.name}:{self.version}"

    @property
    def is_retired(self) -> bool:
        """Retired itself, or through its model."""
        return self.retired_at is not None or self.model.retired_at is not None

    @property
    def is_usable(self) -> bool:
        """May be evaluated, promoted, aliased or served: ready, and neither it nor its model is retired."""
        return self.status == VersionStatus.READY and not self.is_retired

    def unusable_reason(self) -> str:
        """Why the version may not be used, in words for a person (empty when it may)."""
        if self.model.retired_at is not None:
            return f"{self} is retired with its model ({self.model.retired_reason})"
        if self.retired_at is not None:
            return f"{self} is retired ({self.retired_reason})"
        if self.status != VersionStatus.READY:
            return f"{self} is {self.status}, not ready"
        return ""


class AliasAssignment(models.Model):
    """Which version held an alias, from when until when. The open row (ended_at null) is the current holder."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="alias_assignments")
    alias = models.CharField(max_length=32, choices=Alias.choices)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="alias_assignments")
    started_at = models.DateTimeField(db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True, db_index=True)
    assigned_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "alias"], condition=models.Q(ended_at__isnull=True), name="one_current_alias_holder"
            )
        ]

    def __str__(self) -> str:
        return f"{self.alias} -> {self.version_id} from {self.started_at:%Y-%m-%d}"
