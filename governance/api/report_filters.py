"""The reports list's filters, shared by the page and the API (one filter path per resource)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet

from forge_site.filters import CachedFormFilterSet
from governance.models import Report, ReportStatus


class ReportFilter(CachedFormFilterSet):
    status = django_filters.ChoiceFilter(choices=ReportStatus.choices)
    model = django_filters.CharFilter(method="filter_model", label="model name, or - for whole-inventory reports")

    class Meta:
        model = Report
        fields: list[str] = []

    def filter_model(self, queryset: QuerySet[Report], name: str, value: Any) -> QuerySet[Report]:
        if value == "-":
            return queryset.filter(model__isnull=True)
        return queryset.filter(model__name=value)
