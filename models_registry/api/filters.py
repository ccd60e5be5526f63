"""Query-string filters for the registry API (django-filter). Sort keys match the registry page's."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import Exists, OuterRef, Q, QuerySet
from django_filters.fields import BaseCSVField

from forge_site.filters import CachedFormFilterSet
from models_registry.models import ModelVersion, RegisteredModel, RiskTier, VersionStatus


class SortKeysField(BaseCSVField):
    """Comma-separated sort keys, none of them empty: `ordering=name,` or `ordering=,` named an empty key, which
    django-filter let through to order_by("") (a FieldError, so a 500)."""

    def clean(self, value: Any) -> Any:
        if value and any(item in ("", None) for item in value):
            choices = ", ".join(str(key) for key, _ in getattr(self, "choices", ()) if not str(key).startswith("-"))
            raise forms.ValidationError(
                f"An empty sort key; give one or more of {choices}, each optionally prefixed with '-', separated by "
                "commas.",
                code="invalid_choice",
            )
        return super().clean(value)


TRUE_FALSE = [("true", "true"), ("false", "false")]


def true_false_filter(method: str, help_text: str) -> django_filters.ChoiceFilter:
    """`true` or `false` and nothing else: django-filter's BooleanFilter also takes `null`, `1`, `yes`…, which the
    schema's boolean does not."""
    return django_filters.ChoiceFilter(choices=TRUE_FALSE, method=method, help_text=help_text)


class StableOrderingFilter(django_filters.OrderingFilter):
    """Ordering with the primary key as the tie-breaker, so pages never repeat or skip rows."""

    base_field_class = SortKeysField

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
    retired = true_false_filter("filter_retired", "true: retired models only; false: models in use only")
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

    def filter_retired(self, qs: QuerySet[RegisteredModel], name: str, value: str) -> QuerySet[RegisteredModel]:
        return qs.filter(retired_at__isnull=value != "true")

    def filter_status(self, qs: QuerySet[RegisteredModel], name: str, value: str) -> QuerySet[RegisteredModel]:
        # EXISTS rather than a join: a model with many matching versions still appears once, without DISTINCT.
        return qs.filter(Exists(ModelVersion.objects.filter(model=OuterRef("pk"), status=value)))


class VersionFilter(CachedFormFilterSet):
    status = django_filters.ChoiceFilter(choices=VersionStatus.choices)
    tag = django_filters.CharFilter(method="filter_tag", help_text="versions carrying this tag")
    retired = true_false_filter("filter_retired", "true: versions retired (themselves or with their model)")
    usable = true_false_filter("filter_usable", "true: ready and not retired (may be evaluated, promoted or served)")

    class Meta:
        model = ModelVersion
        fields: list[str] = []

    def filter_tag(self, qs: QuerySet[ModelVersion], name: str, value: str) -> QuerySet[ModelVersion]:
        value = value.strip().lower()
        return qs.filter(tags__name=value) if value else qs

    def filter_retired(self, qs: QuerySet[ModelVersion], name: str, value: str) -> QuerySet[ModelVersion]:
        retired = Q(retired_at__isnull=False) | Q(model__retired_at__isnull=False)
        return qs.filter(retired) if value == "true" else qs.exclude(retired)

    def filter_usable(self, qs: QuerySet[ModelVersion], name: str, value: str) -> QuerySet[ModelVersion]:
        usable = ModelVersion.objects.usable().values("pk")
        return qs.filter(pk__in=usable) if value == "true" else qs.exclude(pk__in=usable)
