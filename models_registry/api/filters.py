"""Query-string filters for the registry API (django-filter). Sort keys match the registry page's."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Exists, OuterRef, Q, QuerySet

from forge_site.filters import CachedFormFilterSet
from models_registry.models import ModelVersion, RegisteredModel, RiskTier, VersionStatus


class StableOrderingFilter(django_filters.OrderingFilter):
    """Ordering with the primary key as the tie-breaker, so pages never repeat or skip rows."""

    def filter(self, qs: QuerySet[Any], value: Any) -> QuerySet[Any]:
        if value in ([], (), {}, "", None):
            return qs
        return qs.order_by(*[self.get_ordering_value(param) for param in value], "pk")


class ModelFilter(CachedFormFilterSet):
    search = django_filters.CharFilter(method="filter_search", help_text="in the name or the description")
    tag = django_filters.CharFilter(method="filter_tag", help_text="models carrying this tag")
    risk_tier = django_filters.ChoiceFilter(choices=RiskTier.choices)
    status = django_filters.ChoiceFilter(
        choices=VersionStatus.choices, method="filter_status", help_text="models with a version in this status"
    )
    ordering = StableOrderingFilter(
        fields=(
            ("name", "name"),
            ("updated_at", "updated"),
            ("created_at", "created"),
            ("version_count", "versions"),
            ("risk_tier", "risk"),
        ),
        help_text="name, updated, created, versions or risk; prefix '-' to reverse",
    )

    class Meta:
        model = RegisteredModel
        fields: list[str] = []

    def filter_search(self, qs: QuerySet[RegisteredModel], name: str, value: str) -> QuerySet[RegisteredModel]:
        value = value.strip()
        return qs.filter(Q(name__icontains=value) | Q(description__icontains=value)) if value else qs

    def filter_tag(self, qs: QuerySet[RegisteredModel], name: str, value: str) -> QuerySet[RegisteredModel]:
        value = value.strip().lower()
        return qs.filter(tags__name=value) if value else qs

    def filter_status(self, qs: QuerySet[RegisteredModel], name: str, value: str) -> QuerySet[RegisteredModel]:
        # EXISTS rather than a join: a model with many matching versions still appears once, without DISTINCT.
        return qs.filter(Exists(ModelVersion.objects.filter(model=OuterRef("pk"), status=value)))


class VersionFilter(CachedFormFilterSet):
    status = django_filters.ChoiceFilter(choices=VersionStatus.choices)
    tag = django_filters.CharFilter(method="filter_tag", help_text="versions carrying this tag")

    class Meta:
        model = ModelVersion
        fields: list[str] = []

    def filter_tag(self, qs: QuerySet[ModelVersion], name: str, value: str) -> QuerySet[ModelVersion]:
        value = value.strip().lower()
        return qs.filter(tags__name=value) if value else qs
