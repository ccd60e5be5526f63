"""Requests that used to answer 500 or an HTML page: each is a 4xx in the API's error shape, and changes nothing."""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from forge_site.models import ApiToken, AuditEvent
from models_registry.models import RegisteredModel
from models_registry.services import model_create
from tests.api.helpers import bearer_client, error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(engineer):
    model_create(name="credit-risk", owner=engineer)
    client = bearer_client(engineer)
    client.raise_request_exception = False  # a 500 must come back as a response, not as the test's exception
    return client


@pytest.mark.parametrize("ordering", [",", "name,", ",,,,,", ",-name", "name,,updated"])
def test_an_empty_sort_key_is_a_400_naming_the_keys(client, ordering):
    # order_by("") raised FieldError: a 500.
    response = client.get("/api/v1/models/", {"ordering": ordering})
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["field"] == "ordering"
    assert "empty sort key" in error["message"] and "name, updated, created, versions, risk" in error["message"]


def test_sort_keys_still_sort(client, engineer):
    model_create(name="alpha", owner=engineer)
    names = [row["name"] for row in client.get("/api/v1/models/", {"ordering": "-name"}).json()["results"]]
    assert names == ["credit-risk", "alpha"]


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_an_instant_outside_the_years_1_to_9999_in_utc_is_a_422(client, at):
    # Converting it to UTC raised OverflowError: a 500 on SQLite (PostgreSQL's driver failed later, differently).
    response = client.get("/api/v1/models/credit-risk/aliases/champion/history/", {"at": at})
    assert response.status_code == 422, response.content
    error = error_of(response)
    assert (error["code"], error["field"]) == ("out_of_range", "at")
    assert "years 1 to 9999 in UTC" in error["message"]


def test_the_last_representable_instants_are_answered(client):
    for at in ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00-05:00"]:
        response = client.get("/api/v1/models/credit-risk/aliases/champion/history/", {"at": at})
        assert response.status_code == 200, (at, response.content)
        assert response.json()["holder"] is None


def test_an_empty_instant_is_refused_rather_than_read_as_no_instant(client):
    response = client.get("/api/v1/models/credit-risk/aliases/champion/history/?at=")
    assert response.status_code == 400
    assert error_of(response)["field"] == "at"


def test_json_nested_100000_arrays_deep_is_a_400(client):
    depth = 100_000
    response = client.generic("POST", "/api/v1/models/", "[" * depth + "]" * depth, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    error = error_of(response)
    assert error["code"] == "parse_error" and "nested too deeply" in error["message"]
    assert RegisteredModel.objects.count() == 1


def test_json_nested_deep_inside_a_field_is_a_400_too(client):
    depth = 100_000
    body = '{"description": "x", "tags": ' + "[" * depth + "]" * depth + "}"
    response = client.generic("PATCH", "/api/v1/models/credit-risk/", body, content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "parse_error"
    assert RegisteredModel.objects.get().description == ""


def test_a_json_body_over_the_memory_limit_is_a_413_that_names_the_limit(client):
    # Django refused it with RequestDataTooBig, which it answers with its HTML 400 page.
    body = json.dumps({"name": "big", "description": "x" * 5_000_000})
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    events = AuditEvent.objects.count()
    response = client.generic("POST", "/api/v1/models/", body, content_type="application/json")
    assert response.status_code == 413, response.content[:300]
    assert response["Content-Type"] == "application/json"
    error = error_of(response)
    assert error["code"] == "too_large"
    assert "2,621,440 bytes" in error["message"] and "DATA_UPLOAD_MAX_MEMORY_SIZE" in error["message"]
    assert not RegisteredModel.objects.filter(name="big").exists() and AuditEvent.objects.count() == events


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/jobs/null,null/"),
        ("post", "/api/v1/jobs/null,null/cancel/"),
        ("get", "/api/v1/nothing-here/"),
        ("delete", "/api/v1/models/credit-risk/versions/1/nope/"),
        ("get", "/api/v2/models/"),
    ],
)
def test_a_path_no_endpoint_matches_is_a_json_404(client, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    error = error_of(response)
    assert error["code"] == "not_found" and path in error["message"] and "/api/schema/" in error["message"]
    assert response["X-Request-ID"]


def test_html_pages_keep_their_html_404(client):
    response = client.get("/registry/no/such/page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_method_media_type_and_accept_errors_are_in_the_shape(client):
    put = client.put("/api/v1/models/credit-risk/", {}, format="json")
    assert put.status_code == 405 and error_of(put)["code"] == "method_not_allowed" and "PATCH" in put["Allow"]
    not_json = client.generic("POST", "/api/v1/models/", "name=x", content_type="application/x-www-form-urlencoded")
    assert not_json.status_code == 415 and error_of(not_json)["code"] == "unsupported_media_type"
    csv = client.get("/api/v1/models/", HTTP_ACCEPT="text/csv")
    assert csv.status_code == 406 and error_of(csv)["code"] == "not_acceptable"


def test_a_crash_under_the_api_is_a_json_500_naming_the_request_id(client, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("boom at /srv/secret/path")

    monkeypatch.setattr("models_registry.selectors.model_by_name", crash)
    response = client.get("/api/v1/models/credit-risk/aliases/", HTTP_X_REQUEST_ID="req-42")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    error = error_of(response)
    assert error["code"] == "server_error" and "req-42" in error["message"]
    assert "secret" not in response.content.decode()


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/tokens/", {"name": 1.5}, "name"),
        ("/api/v1/tokens/", {"name": "ci", "days": "30"}, "days"),
        ("/api/v1/tokens/", {"name": "ci", "days": 30.0}, "days"),
        ("/api/v1/models/", {"name": 7}, "name"),
        ("/api/v1/models/", {"name": "m", "description": 1}, "description"),
        ("/api/v1/models/", {"name": "m", "tags": "a,b"}, "tags"),
        ("/api/v1/models/", {"name": "m", "tags": [1]}, "tags"),
        ("/api/v1/models/", {"name": " m"}, "name"),
        ("/api/v1/models/", {"name": "m\n"}, "name"),
        ("/api/v1/models/", {"name": "m", "owner": "mo"}, "owner"),
    ],
)
def test_a_value_of_the_wrong_json_type_is_refused_not_coerced(client, path, body, field):
    # A token named 1.5 used to be created as "1.5": the schema says a string.
    tokens, models = ApiToken.objects.count(), RegisteredModel.objects.count()
    response = client.post(path, body, format="json")
    assert response.status_code == 400, response.content
    assert error_of(response)["field"] == field
    assert (ApiToken.objects.count(), RegisteredModel.objects.count()) == (tokens, models)


@pytest.mark.parametrize("body", ['{"metrics": {"auc": 1e999}}', '{"metrics": {"auc": [-1e400]}}'])
def test_a_number_too_large_for_json_is_refused(client, engineer, body):
    # json reads 1e999 as infinity, which neither JSON nor PostgreSQL's jsonb can hold.
    from tests.api.helpers import mlp_version

    mlp_version(RegisteredModel.objects.get(), engineer, "1.0.0")
    response = client.generic(
        "PATCH", "/api/v1/models/credit-risk/versions/1.0.0/", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert error_of(response)["field"] in ("metrics", None)


def test_an_upload_whose_metrics_hold_a_number_too_large_for_json_leaves_nothing(client):
    from tests.api.helpers import mlp, upload

    response = upload(client, "credit-risk", "2.0.0", mlp(), metrics='{"auc": 1e999}')
    assert response.status_code == 400, response.content
    assert error_of(response)["field"] == "metrics"
    assert not RegisteredModel.objects.get().versions.exists()


def test_an_empty_page_parameter_is_refused_like_any_non_number(engineer):
    """`?page=` was read as page 1 (200), while the schema's page is an integer (schemathesis found it)."""
    response = bearer_client(engineer).get("/api/v1/models/?page=")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "page"
