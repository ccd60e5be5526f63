"""django-filter for the API: a filter backend that skips requests without filters, a FilterSet that builds its form
once."""

from __future__ import annotations

from typing import Any, ClassVar

import django_filters
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.request import Request


class FilterBackend(DjangoFilterBackend):
    """DjangoFilterBackend that hands the queryset back untouched when the request names none of the filterset's
    parameters (a plain `?page=3`): building and validating a FilterSet costs about 0.6 ms a request here (it
    deep-copies its filters and its form's fields) and would change nothing. A parameter is matched by prefix, so
    the suffixed parameters of range filters (`x_min`, `x_after`) still reach the filterset."""

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> QuerySet[Any]:
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None and not any(
            param.startswith(name) for param in request.query_params for name in filterset_class.base_filters
        ):
            return queryset
        return super().filter_queryset(request, queryset, view)


class CachedFormFilterSet(django_filters.FilterSet):
    """Builds its form class once per filter class instead of once per request (no field here depends on the
    request); django-filter otherwise deep-copies every filter on each list request."""

    _form_classes: ClassVar[dict[type, type]] = {}

    def get_form_class(self) -> Any:
        cls = type(self)
        if cls not in self._form_classes:
            self._form_classes[cls] = super().get_form_class()
        return self._form_classes[cls]
