"""The API's JSON renderer, filter backend and response clean-up: what they change and what they must not."""

from __future__ import annotations

import datetime
import decimal
import gc
import io
import json
import os
import subprocess
import sys
import uuid
import weakref
from typing import Any
from wsgiref.util import setup_testing_defaults

import django_filters
import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer as DrfJSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from forge_site.filters import FilterBackend
from forge_site.models import Job
from forge_site.renderers import JSONRenderer
from forge_site.tokens import token_create
from models_registry.models import RegisteredModel


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


def test_the_renderer_writes_integers_beyond_64_bits_exactly():
    data = {"metrics": {"exact": 123456789012345678901234567890, "small": -(2**63)}, "at": datetime.date(2026, 1, 31)}
    ours = JSONRenderer().render(data)
    assert ours == DrfJSONRenderer().render(data)
    assert json.loads(ours)["metrics"]["exact"] == 123456789012345678901234567890


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


def _wsgi_get(handler: Any, path: str, **headers: str) -> Any:
    """One GET through the WSGI handler, as gunicorn calls it: the response is the iterable, closed after reading."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "wsgi.input": io.BytesIO(), **headers}
    setup_testing_defaults(environ)
    environ["HTTP_HOST"] = "testserver"
    statuses: list[str] = []
    for signal in (request_started, request_finished):  # as Django's test client does: keep the test's transaction
        signal.disconnect(close_old_connections)
    try:
        response = handler(environ, lambda status, _headers, _exc=None: statuses.append(status))
        b"".join(response)
        response.close()
    finally:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)
    assert statuses == ["200 OK"]
    return response


def _freed_when_dropped(user: Any) -> tuple[bool, Any]:
    """GET the models list through a fresh WSGI handler with the collector off; drop the response. Was it freed?"""
    _, plain = token_create(user=user, name="tests")
    handler = WSGIHandler()
    gc.collect()
    gc.disable()
    try:
        response = _wsgi_get(handler, "/api/v1/models/", HTTP_AUTHORIZATION=f"Bearer {plain}")
        names = [row["name"] for row in response.data["results"]]
        alive = weakref.ref(response)
        del response
        freed = alive() is None
        gc.collect()
        assert alive() is None  # either way the collector gets it in the end
    finally:
        gc.enable()
    return freed, names


@pytest.mark.django_db
def test_an_api_response_is_freed_when_the_server_drops_it_not_by_the_cycle_collector(engineer):
    # DRF links the response to its view and the view to itself (Django's `self.head = self.get`): without
    # ReleaseResponseCyclesMiddleware the page's objects wait for the cyclic collector.
    RegisteredModel.objects.create(name="credit-risk", owner=engineer)
    assert _freed_when_dropped(engineer) == (True, ["credit-risk"])


@pytest.mark.django_db
def test_without_the_middleware_that_response_would_wait_for_the_collector(engineer, settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("ReleaseResponseCyclesMiddleware")]
    assert _freed_when_dropped(engineer) == (False, [])


def test_the_web_process_imports_its_views_before_it_freezes_the_heap():
    # What exists before gc.freeze() in forge_site.wsgi is never walked again by a full collection; the URLconf's
    # modules (views, DRF, drf-spectacular, the clients) would otherwise be imported by the first request, after it.
    code = (
        "import gc, sys; import forge_site.wsgi; "
        "missing = [m for m in ('models_registry.api.views', 'rest_framework.generics', 'drf_spectacular.views') "
        "if m not in sys.modules]; print(missing, gc.get_freeze_count()); "
        "sys.exit(1 if missing or gc.get_freeze_count() < 100_000 else 0)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "forge_site.settings"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
