"""Filters of the alert history and the delivery log: one FilterSet per list, shared by the pages and the API."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet

from forge_site.filters import CachedFormFilterSet
from governance.models import Alert, AlertDelivery, AlertStatus, DeliveryEvent, DeliveryStatus, Severity
from governance.selectors.alerts import fits_id


class IdFilter(django_filters.Filter):
    """An id: a whole number (NumberFilter takes decimals such as 1e300, which no id column can compare with)."""

    field_class = forms.IntegerField

    def filter(self, qs: QuerySet[Any], value: Any) -> QuerySet[Any]:
        if value is not None and not fits_id(value):
            return qs.none()  # no row has it; the database would refuse to compare with it
        return super().filter(qs, value)


class AlertFilter(CachedFormFilterSet):
    model = django_filters.CharFilter(field_name="model__name", label="Model")
    version = django_filters.CharFilter(field_name="version__version", label="Version")
    status = django_filters.ChoiceFilter(choices=AlertStatus.choices, empty_label="any status")
    severity = django_filters.ChoiceFilter(choices=Severity.choices, empty_label="any severity")
    source = django_filters.CharFilter(label="Source")
    rule = IdFilter(field_name="rule_id", label="Rule id")

    class Meta:
        model = Alert
        fields: list[str] = []


class DeliveryFilter(CachedFormFilterSet):
    destination = IdFilter(field_name="destination_id")
    alert = IdFilter(field_name="alert_id")
    status = django_filters.ChoiceFilter(choices=DeliveryStatus.choices)
    event = django_filters.ChoiceFilter(choices=DeliveryEvent.choices)

    class Meta:
        model = AlertDelivery
        fields: list[str] = []
