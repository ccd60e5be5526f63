"""JSON whose strings are not text: an escape such as "\\ud800" parses into a lone surrogate, which neither UTF-8 nor
either database can store. Such input is refused with a 400 and leaves nothing behind; whole characters pass."""

from __future__ import annotations

import json

import pytest

from forge_site.models import AuditEvent
from forge_site.parsers import surrogate_in
from models_registry.models import ModelVersion, RegisteredModel
from tests.api.helpers import bearer_client, error_of, mlp, storage_files, upload

pytestmark = pytest.mark.django_db

LONE = '{"note": "\\ud800"}'  # the JSON text: a backslash escape of a lone high surrogate
PAIR = '{"note": "\\ud83d\\ude00 fine"}'  # a surrogate pair: one whole character, U+1F600


@pytest.fixture
def version(engineer) -> ModelVersion:
    model = RegisteredModel.objects.create(name="credit-risk", owner=engineer)
    return ModelVersion.objects.create(
        model=model, version="1.0.0", artifact="x", sha256="1" * 64, size=1, metrics={"auc": 0.9}
    )


def test_surrogate_in_names_the_first_lone_surrogate() -> None:
    assert surrogate_in(json.loads(LONE)) == "U+D800"
    assert surrogate_in({"\udfff": 1}) == "U+DFFF"  # keys too
    assert surrogate_in([1, {"a": ["x", "y\udc00"]}]) == "U+DC00"
    assert surrogate_in(json.loads(PAIR)) is None and surrogate_in({"auc": 0.9, "n": None}) is None


def test_a_json_body_with_a_lone_surrogate_is_refused_and_changes_nothing(engineer, version) -> None:
    client = bearer_client(engineer)
    events = AuditEvent.objects.count()

    response = client.generic(
        "PATCH", "/api/v1/models/credit-risk/versions/1.0.0/", f'{{"metrics": {LONE}}}', content_type="application/json"
    )

    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == "parse_error" and "U+D800, a lone surrogate" in error["message"]
    version.refresh_from_db()
    assert version.metrics == {"auc": 0.9} and AuditEvent.objects.count() == events
    listed = client.get("/api/v1/models/credit-risk/versions/")
    assert listed.status_code == 200 and listed.json()["results"][0]["metrics"] == {"auc": 0.9}


def test_whole_characters_written_as_surrogate_pairs_are_kept(engineer, version) -> None:
    client = bearer_client(engineer)

    response = client.generic(
        "PATCH", "/api/v1/models/credit-risk/versions/1.0.0/", f'{{"metrics": {PAIR}}}', content_type="application/json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["metrics"] == {"note": "\U0001f600 fine"}
    assert client.get("/api/v1/models/credit-risk/versions/").json()["results"][0]["metrics"] == {
        "note": "\U0001f600 fine"
    }


def test_a_multipart_upload_with_a_lone_surrogate_in_its_metrics_leaves_nothing(engineer, version) -> None:
    client = bearer_client(engineer)
    files = storage_files()

    response = upload(client, "credit-risk", "2.0.0", mlp(), metrics=LONE)

    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["field"] == "metrics" and error["code"] == "surrogate_characters_not_allowed"
    assert "U+D800" in error["message"]
    assert not ModelVersion.objects.filter(version="2.0.0").exists() and storage_files() == files
