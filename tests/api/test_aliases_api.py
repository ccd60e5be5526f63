"""Aliases through the API: current holders, full history, and who held an alias at a given instant."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models_registry.models import AliasAssignment, ModelVersion
from models_registry.services import alias_set, model_create, version_create, version_record_inspection
from tests.api.helpers import bearer_client, error_of, mlp, temp_upload
from tests.torchscript_models import MLP_SPEC

pytestmark = pytest.mark.django_db

JAN, FEB, MAR = (datetime(2025, month, 1, tzinfo=UTC) for month in (1, 2, 3))


def _ready(model, version: str, seed: int, user) -> ModelVersion:
    mv = version_create(
        model=model, version=version, artifact=temp_upload("m.pt", mlp(seed)), input_spec=MLP_SPEC, created_by=user
    )
    return version_record_inspection(version_id=mv.pk, ok=True, inspection={}, reason="")


@pytest.fixture
def history(engineer, manager):
    model = model_create(name="credit-risk", owner=engineer)
    v1, v2 = _ready(model, "1", 0, engineer), _ready(model, "2", 1, engineer)
    alias_set(model=model, alias="champion", version=v1, actor=manager, reason="first launch", at=JAN)
    alias_set(model=model, alias="challenger", version=v2, actor=manager, at=FEB)
    alias_set(model=model, alias="champion", version=v2, actor=manager, reason="won the A/B test", at=MAR)
    return model


def test_it_lists_the_current_alias_holders(officer, history):
    response = bearer_client(officer).get("/api/v1/models/credit-risk/aliases/")
    assert response.status_code == 200
    rows = response.json()
    assert [(row["alias"], row["version"], row["ended_at"]) for row in rows] == [
        ("challenger", "2", None),
        ("champion", "2", None),
    ]
    assert rows[1]["reason"] == "won the A/B test" and rows[1]["assigned_by"] == "mo"


def test_it_returns_the_full_history_of_an_alias(officer, history):
    body = bearer_client(officer).get("/api/v1/models/credit-risk/aliases/champion/history/").json()
    assert body["at"] is None and body["holder"]["version"] == "2"
    assert [(row["version"], row["started_at"][:10], (row["ended_at"] or "")[:10]) for row in body["history"]] == [
        ("2", "2025-03-01", ""),
        ("1", "2025-01-01", "2025-03-01"),
    ]


@pytest.mark.parametrize(
    ("at", "version"),
    [
        ("2025-02-15", "1"),
        ("2025-02-15T12:00:00+01:00", "1"),
        ("2025-03-01T00:00:00Z", "2"),
        ("2024-12-31T23:59:59Z", None),
    ],
)
def test_it_says_who_held_champion_at_an_instant(officer, history, at, version):
    body = bearer_client(officer).get(f"/api/v1/models/credit-risk/aliases/champion/history/?at={at}").json()
    if version is None:
        assert body["holder"] is None and body["history"] == []
    else:
        assert body["holder"]["version"] == version and len(body["history"]) == 1


def test_it_refuses_a_bad_instant_and_an_unknown_alias(officer, history):
    client = bearer_client(officer)
    bad_at = client.get("/api/v1/models/credit-risk/aliases/champion/history/?at=last-tuesday")
    assert bad_at.status_code == 400
    error = error_of(bad_at)
    assert error["field"] == "at" and "ISO 8601" in error["message"]
    unknown = client.get("/api/v1/models/credit-risk/aliases/king/history/")
    assert unknown.status_code == 404
    assert "champion, challenger" in error_of(unknown)["message"]


def test_it_offers_no_way_to_move_an_alias(engineer, manager, history):
    for user in (engineer, manager):
        client = bearer_client(user)
        assert client.post("/api/v1/models/credit-risk/aliases/", {"alias": "champion"}).status_code == 405
        assert client.delete("/api/v1/models/credit-risk/aliases/champion/history/").status_code == 405
    assert AliasAssignment.objects.count() == 3
