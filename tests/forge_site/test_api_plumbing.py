"""The API's JSON renderer and filter backend: what they change and what they must not."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid

import django_filters
import pytest
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer as DrfJSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from forge_site.filters import FilterBackend
from forge_site.models import Job
from forge_site.renderers import JSONRenderer


def test_the_renderer_writes_what_drfs_renderer_writes():
    data = {
        "at": datetime.datetime(2026, 1, 31, 9, 5, 0, 120000, tzinfo=datetime.UTC),
        "day": datetime.date(2026, 1, 31),
        "amount": decimal.Decimal("1.50"),
        "id": uuid.UUID(int=5),
        "label": gettext_lazy("Models"),
        1: "an integer key",
        "nested": [{"é": 1.5, "none": None, "flag": True}],
    }
    ours = JSONRenderer().render(data)
    assert ours == DrfJSONRenderer().render(data)
    assert json.loads(ours)["at"] == "2026-01-31T09:05:00.120000Z"


def test_the_renderer_refuses_a_type_it_does_not_know_instead_of_writing_null():
    with pytest.raises(TypeError):
        JSONRenderer().render({"thing": object()})


class JobFilter(django_filters.FilterSet):
    status = django_filters.CharFilter()
    created = django_filters.DateFromToRangeFilter(field_name="created_at")

    class Meta:
        model = Job
        fields: list[str] = []

    instances = 0

    def __init__(self, *args, **kwargs) -> None:
        type(self).instances += 1
        super().__init__(*args, **kwargs)


class View:
    filterset_class = JobFilter


def _filter(query: str):
    request = Request(APIRequestFactory().get(f"/api/v1/jobs/{query}"))
    JobFilter.instances = 0
    qs = FilterBackend().filter_queryset(request, Job.objects.order_by("pk"), View())
    return qs, JobFilter.instances


@pytest.mark.django_db
def test_a_request_without_filter_parameters_skips_the_filterset():
    qs, built = _filter("?page=3&format=json")
    assert built == 0
    assert "WHERE" not in str(qs.query)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "where"),
    [
        ("?status=failed", '"status" = failed'),
        ("?created_after=2026-01-01", '"created_at" >= 2026-01-01'),  # a range filter's suffixed parameter
    ],
)
def test_a_request_with_a_filter_parameter_is_filtered(query, where):
    qs, built = _filter(query)
    assert built == 1
    assert where in str(qs.query)


@pytest.mark.django_db
def test_an_invalid_filter_value_is_still_refused():
    from rest_framework.exceptions import ValidationError

    with pytest.raises(ValidationError):
        _filter("?created_after=not-a-date")
