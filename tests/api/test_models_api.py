"""Registered models through the API: create, search, filter, edit; errors; a constant number of queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from forge_site.models import AuditEvent
from models_registry.models import AliasAssignment, ModelVersion, RegisteredModel, Tag
from models_registry.services import model_create
from tests.api.helpers import bearer_client, error_of

pytestmark = pytest.mark.django_db


def test_it_creates_a_model(engineer):
    client = bearer_client(engineer)
    response = client.post(
        "/api/v1/models/",
        {
            "name": "credit-risk",
            "description": "Scores loan applications.",
            "risk_tier": "high",
            "tags": ["Credit", "tabular"],
            "intended_use": "Pre-screening only.",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "credit-risk"
    assert body["risk_tier"] == "high"
    assert body["tags"] == ["credit", "tabular"]
    assert body["intended_use"] == "Pre-screening only."
    assert body["owner"] == engineer.username
    assert body["version_count"] == 0 and body["latest_version"] is None and body["aliases"] == []
    event = AuditEvent.objects.get(action="model.create")
    assert event.actor == engineer and event.after["name"] == "credit-risk"


def test_it_refuses_a_duplicate_model_name(engineer):
    model_create(name="credit-risk", owner=engineer)
    response = bearer_client(engineer).post("/api/v1/models/", {"name": "Credit-Risk"}, format="json")
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "duplicate" and error["field"] == "name"
    assert "already exists" in error["message"]
    assert RegisteredModel.objects.count() == 1


@pytest.mark.parametrize(
    ("payload", "field", "needle"),
    [
        ({"name": "bad name!"}, "name", "Use letters, digits"),
        ({"name": "ok", "risk_tier": "extreme"}, "risk_tier", "not a valid choice"),
        ({}, "name", "required"),
        ({"name": "ok", "tags": ["x" * 65]}, "tags", "no more than 64"),
    ],
    ids=["bad-name", "bad-risk-tier", "missing-name", "long-tag"],
)
def test_it_refuses_bad_model_input_with_a_clear_error(engineer, payload, field, needle):
    response = bearer_client(engineer).post("/api/v1/models/", payload, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert error["field"] == field
    assert needle in error["message"]
    assert not RegisteredModel.objects.exists()


def test_it_refuses_model_creation_to_a_manager(manager):
    response = bearer_client(manager).post("/api/v1/models/", {"name": "credit-risk"}, format="json")
    assert response.status_code == 403
    assert "model.create" in error_of(response)["message"]
    assert not RegisteredModel.objects.exists()


def test_it_asks_anonymous_callers_for_a_bearer_token(api_client):
    response = api_client.get("/api/v1/models/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert error_of(response)["code"] == "not_authenticated"


def test_it_returns_not_found_in_the_error_shape(officer):
    response = bearer_client(officer).get("/api/v1/models/nope/")
    assert response.status_code == 404
    assert error_of(response) == {"code": "not_found", "message": "There is no model named 'nope'.", "field": None}


@pytest.fixture
def catalog(engineer):
    model_create(name="credit-risk", owner=engineer, risk_tier="high", tags=["credit"], description="loans")
    model_create(name="fraud-detector", owner=engineer, risk_tier="critical", tags=["payments", "credit"])
    model_create(name="churn", owner=engineer, risk_tier="minimal", description="who leaves; not credit related")
    ready = RegisteredModel.objects.get(name="fraud-detector")
    ModelVersion.objects.create(model=ready, version="1", artifact="x", sha256="0" * 64, size=1, status="ready")
    RegisteredModel.objects.filter(pk=ready.pk).update(version_count=1)


def _names(response):
    assert response.status_code == 200, response.content
    return [row["name"] for row in response.json()["results"]]


def test_it_searches_filters_and_sorts_models(officer, catalog):
    client = bearer_client(officer)
    assert _names(client.get("/api/v1/models/")) == ["churn", "credit-risk", "fraud-detector"]
    assert _names(client.get("/api/v1/models/?search=&tag=&risk_tier=&status=&ordering=")) == [
        "churn",
        "credit-risk",
        "fraud-detector",
    ]
    assert _names(client.get("/api/v1/models/?search=credit")) == ["churn", "credit-risk"]
    assert _names(client.get("/api/v1/models/?tag=Credit")) == ["credit-risk", "fraud-detector"]
    assert _names(client.get("/api/v1/models/?risk_tier=critical")) == ["fraud-detector"]
    assert _names(client.get("/api/v1/models/?status=ready")) == ["fraud-detector"]
    assert _names(client.get("/api/v1/models/?ordering=-name")) == ["fraud-detector", "credit-risk", "churn"]
    assert _names(client.get("/api/v1/models/?tag=credit&ordering=-versions")) == ["fraud-detector", "credit-risk"]
    assert client.get("/api/v1/models/").json()["count"] == 3


@pytest.mark.parametrize(
    ("query", "field"),
    [("risk_tier=extreme", "risk_tier"), ("ordering=size", "ordering"), ("page=9", None)],
)
def test_it_refuses_bad_list_parameters_with_a_clear_error(officer, catalog, query, field):
    response = bearer_client(officer).get(f"/api/v1/models/?{query}")
    assert response.status_code in {400, 404}
    error = error_of(response)
    assert error["field"] == field
    assert error["message"]


def _populate(owner, start: int, stop: int) -> None:
    """Models with tags, two versions and both aliases: everything the list shows."""
    tags = [Tag.objects.get_or_create(name=f"t{i}")[0] for i in range(3)]
    now = timezone.now()
    for i in range(start, stop):
        model = RegisteredModel.objects.create(name=f"m{i:03d}", owner=owner, risk_tier="high")
        model.tags.set(tags)
        versions = [
            ModelVersion.objects.create(
                model=model, version=str(v), artifact="x", sha256=f"{i:032d}{v:032d}", size=1, status="ready"
            )
            for v in range(2)
        ]
        AliasAssignment.objects.create(model=model, alias="champion", version=versions[0], started_at=now)
        AliasAssignment.objects.create(
            model=model, alias="challenger", version=versions[1], started_at=now - timedelta(days=1)
        )
        RegisteredModel.objects.filter(pk=model.pk).update(version_count=2, latest_version=versions[1])


def _count_queries(client, url: str) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries), response.json()


def test_it_lists_models_with_a_constant_number_of_queries(api_as, officer, engineer):
    client = api_as(officer)
    client.get("/api/v1/models/")  # the first request also loads the caller's roles
    _populate(engineer, 0, 5)
    few, body = _count_queries(client, "/api/v1/models/?tag=t1&ordering=-updated")
    assert len(body["results"]) == 5
    first = body["results"][0]
    assert {a["alias"] for a in first["aliases"]} == {"champion", "challenger"}
    assert first["tags"] == ["t0", "t1", "t2"] and first["latest_version"]["version"] == "1"
    _populate(engineer, 5, 50)
    many, body = _count_queries(client, "/api/v1/models/?tag=t1&ordering=-updated")
    assert len(body["results"]) == 50
    assert many == few, f"{few} queries for 5 models but {many} for 50"


def test_it_pages_models_100_at_a_time(api_as, officer, engineer):
    RegisteredModel.objects.bulk_create([RegisteredModel(name=f"m{i:03d}", owner=engineer) for i in range(105)])
    client = api_as(officer)
    first = client.get("/api/v1/models/").json()
    assert first["count"] == 105 and len(first["results"]) == 100 and first["next"]
    second = client.get("/api/v1/models/?page=2").json()
    assert [row["name"] for row in second["results"]] == [f"m{i:03d}" for i in range(100, 105)]


def test_it_edits_model_metadata(engineer):
    model_create(name="credit-risk", owner=engineer, risk_tier="high", tags=["credit"])
    response = bearer_client(engineer).patch(
        "/api/v1/models/credit-risk/",
        {"description": "v2 scoring", "risk_tier": "critical", "tags": ["credit", "eu"]},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["name"] == "credit-risk"
    assert body["description"] == "v2 scoring" and body["risk_tier"] == "critical"
    assert body["tags"] == ["credit", "eu"]
    event = AuditEvent.objects.get(action="model.update")
    assert event.before["risk_tier"] == "high" and event.after["risk_tier"] == "critical"


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "renamed"), ("owner", "mo"), ("created_at", "2020-01-01T00:00:00Z"), ("version_count", 9)],
)
def test_it_refuses_a_model_edit_that_names_a_read_only_field_and_changes_nothing(engineer, field, value):
    # It used to answer 200 and quietly ignore the field, so a client believed the name had changed.
    model_create(name="credit-risk", owner=engineer, description="v1")
    client = bearer_client(engineer)
    events = AuditEvent.objects.count()
    response = client.patch("/api/v1/models/credit-risk/", {"description": "v2", field: value}, format="json")
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert (error["code"], error["field"]) == ("read_only", field)
    assert "read-only" in error["message"] and "description, risk_tier, intended_use, tags" in error["message"]
    assert RegisteredModel.objects.get().description == "v1" and AuditEvent.objects.count() == events


def test_it_refuses_a_field_a_model_does_not_have(engineer):
    model_create(name="credit-risk", owner=engineer)
    response = bearer_client(engineer).patch("/api/v1/models/credit-risk/", {"descripton": "typo"}, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["field"]) == ("unknown_field", "descripton")


def test_it_refuses_a_model_edit_to_an_officer(officer, engineer):
    model_create(name="credit-risk", owner=engineer)
    response = bearer_client(officer).patch("/api/v1/models/credit-risk/", {"description": "x"}, format="json")
    assert response.status_code == 403
    assert RegisteredModel.objects.get().description == ""
