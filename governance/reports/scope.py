"""What a report covers: which models and versions, over which period."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from models_registry.models import AliasAssignment, ModelVersion, RegisteredModel


@dataclass(frozen=True)
class ReportScope:
    """A model (or the whole inventory, model None), its versions in scope, and the period [start, end]."""

    model: RegisteredModel | None
    chosen_versions: tuple[ModelVersion, ...]  # empty: all versions
    start: datetime
    end: datetime

    @property
    def models(self) -> QuerySet[RegisteredModel]:
        if self.model is not None:
            return RegisteredModel.objects.filter(pk=self.model.pk).select_related("owner")
        return RegisteredModel.objects.filter(created_at__lte=self.end).select_related("owner").order_by("name")

    @property
    def versions(self) -> QuerySet[ModelVersion]:
        """The versions in scope: those chosen, else every version that existed by the end of the period."""
        versions = ModelVersion.objects.select_related("model", "parent", "created_by")
        if self.chosen_versions:
            return versions.filter(pk__in=[v.pk for v in self.chosen_versions]).order_by("model__name", "created_at")
        if self.model is not None:
            versions = versions.filter(model=self.model)
        return versions.filter(created_at__lte=self.end).order_by("model__name", "created_at")

    def version_ids(self) -> list[int]:
        return list(self.versions.values_list("pk", flat=True))

    def model_ids(self) -> list[int]:
        return list(self.models.values_list("pk", flat=True))

    def versions_in_service(self) -> list[ModelVersion]:
        """The versions whose evidence matters most: those chosen; else those that held an alias during the period;
        else each model's latest version in scope. A version in service without a test run is a gap."""
        if self.chosen_versions:
            return list(self.versions)
        in_scope = self.versions
        held = AliasAssignment.objects.filter(version__in=in_scope, started_at__lte=self.end).filter(
            Q(ended_at__isnull=True) | Q(ended_at__gte=self.start)
        )
        ids = set(held.values_list("version_id", flat=True))
        latest: dict[int, ModelVersion] = {}
        for version in in_scope:
            latest[version.model_id] = version  # ordered by creation: the last one wins
        for model_id, version in latest.items():
            if not any(v.model_id == model_id for v in in_scope if v.pk in ids):
                ids.add(version.pk)
        return [version for version in in_scope if version.pk in ids]
