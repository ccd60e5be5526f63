"""Limits on every input: the service refuses, so the API and the browser form give the same message, naming the
field and the limit, and nothing is written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from forge_site.models import AuditEvent
from models_registry import limits
from models_registry.models import ModelVersion, RegisteredModel, Tag
from models_registry.services import RegistryError, model_create, version_create
from tests.api.helpers import bearer_client, error_of, mlp, storage_files, temp_upload, upload, upload_dir_files
from tests.conftest import PASSWORD
from tests.torchscript_models import MLP_SPEC

pytestmark = pytest.mark.django_db


@pytest.fixture
def credit(engineer):
    return model_create(name="credit-risk", owner=engineer, tags=["credit"])


def _web(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def _refused(response: Any, field: str, *needles: str, status: int = 400) -> str:
    """400 when the API's schema states the limit (the serializer refuses), 422 when only the service can tell."""
    assert response.status_code == status, response.content[:500]
    error = error_of(response)
    assert error["field"] == field, error
    for needle in needles:
        assert needle in error["message"], error["message"]
    return error["message"]


# --- models: tags, description, intended use -----------------------------------------------------------------------

MODEL_CASES = [
    ("20,000 tags", {"tags": [f"t{i}" for i in range(20_000)]}, "tags", "20", 400),
    ("21 tags", {"tags": [f"t{i}" for i in range(21)]}, "tags", "20", 400),
    ("markup in a tag", {"tags": ["<b>bold</b>"]}, "tags", "not allowed", 422),
    ("a space in a tag", {"tags": ["credit risk"]}, "tags", "not allowed", 422),
    ("a 65-character tag", {"tags": ["a" * 65]}, "tags", "64", 400),
    ("a long description", {"description": "d" * (limits.DESCRIPTION_MAX + 1)}, "description", "5000", 400),
    ("a long intended use", {"intended_use": "u" * (limits.INTENDED_USE_MAX + 1)}, "intended_use", "5000", 400),
]


@pytest.mark.parametrize(
    ("body", "field", "needle", "status"), [c[1:] for c in MODEL_CASES], ids=[c[0] for c in MODEL_CASES]
)
def test_the_api_refuses_a_model_over_a_limit(engineer, body, field, needle, status):
    client = bearer_client(engineer)
    events = AuditEvent.objects.count()
    response = client.post("/api/v1/models/", {"name": "m", **body}, format="json")
    message = _refused(response, field, status=status)
    assert needle in message.replace(",", "")
    assert not RegisteredModel.objects.exists() and AuditEvent.objects.count() == events


@pytest.mark.parametrize(
    ("body", "field", "needle", "status"), [c[1:] for c in MODEL_CASES], ids=[c[0] for c in MODEL_CASES]
)
def test_an_edit_over_a_limit_changes_nothing(engineer, credit, body, field, needle, status):
    response = bearer_client(engineer).patch("/api/v1/models/credit-risk/", body, format="json")
    assert needle in _refused(response, field, status=status).replace(",", "")
    credit.refresh_from_db()
    assert [t.name for t in credit.tags.all()] == ["credit"] and credit.description == ""


@pytest.mark.parametrize(
    ("tags", "needle"),
    [
        (", ".join(f"t{i}" for i in range(21)), "limit is 20"),
        ("<b>bold</b>", "not allowed"),
    ],
)
def test_the_model_form_refuses_what_the_api_refuses(engineer, tags, needle):
    response = _web(engineer).post(
        reverse("registry:model_create"), {"name": "m", "risk_tier": "limited", "tags": tags}
    )
    assert response.status_code == 422
    assert needle in response.content.decode()
    assert not RegisteredModel.objects.exists() and not Tag.objects.filter(name__contains="<").exists()


def test_the_model_form_refuses_a_long_description(engineer):
    body = {"name": "m", "risk_tier": "limited", "description": "d" * (limits.DESCRIPTION_MAX + 1)}
    response = _web(engineer).post(reverse("registry:model_create"), body)
    assert response.status_code == 400 and "at most 5000 characters" in response.content.decode()
    assert 'maxlength="5000"' in _web(engineer).get(reverse("registry:model_create")).content.decode()


def test_tags_of_other_scripts_and_punctuation_within_the_set_are_kept(engineer):
    model = model_create(name="m", owner=engineer, tags=["Kredit-Ü", "eu:high", "v1.2_b", "kredit-ü"])
    assert sorted(t.name for t in model.tags.all()) == ["eu:high", "kredit-ü", "v1.2_b"]


def test_the_list_page_shows_a_preview_of_a_long_description(engineer):
    model_create(name="m", owner=engineer, description="word " * 1000)
    page = _web(engineer).get(reverse("registry:model_list")).content.decode()
    assert page.count("word") < 2 * 60 and "…" in page


# --- versions: version string, lineage, metrics, tags ---------------------------------------------------------------


def test_the_version_message_says_the_limit_is_64(engineer, credit):
    with pytest.raises(RegistryError) as refused:
        version_create(
            model=credit,
            version="1.0 beta",
            artifact=temp_upload("m.pt", mlp()),
            input_spec=MLP_SPEC,
            created_by=engineer,
        )
    assert refused.value.field == "version" and "max 64" in refused.value.message and "128" not in refused.value.message
    response = bearer_client(engineer).post("/api/v1/models/", {"name": "bad name"}, format="json")
    assert "max 128" in _refused(response, "name")


VERSION_CASES = [
    ("metrics not an object", {"metrics": json.dumps([1, 2])}, "metrics", "JSON object", 400),
    ("NaN in metrics", {"metrics": '{"auc": NaN}'}, "metrics", "valid JSON", 400),  # the API's JSON is strict
    ("Infinity in metrics", {"metrics": '{"auc": Infinity}'}, "metrics", "valid JSON", 400),
    ("101 metrics", {"metrics": json.dumps({f"m{i}": i for i in range(101)})}, "metrics", "100", 422),
    ("a 65-character metric name", {"metrics": json.dumps({"k" * 65: 1})}, "metrics", "64", 422),
    ("an empty metric name", {"metrics": json.dumps({"": 1})}, "metrics", "1 to 64", 422),
    ("metrics 4 levels deep", {"metrics": json.dumps({"a": {"b": {"c": {"d": 1}}}})}, "metrics", "limit is 3", 422),
    ("a list of objects", {"metrics": json.dumps({"per_class": [{"auc": 1}]})}, "metrics", "a list holds", 422),
    ("a 257-item list", {"metrics": json.dumps({"roc": list(range(257))})}, "metrics", "256", 422),
    ("a long text value", {"metrics": json.dumps({"note": "n" * 257})}, "metrics", "256", 422),
    (
        "metrics over 32 KiB",
        {"metrics": json.dumps({f"m{i}": [0.123456789] * 256 for i in range(20)})},
        "metrics",
        "32,768",
        422,
    ),
    ("21 tags", {"tags": ",".join(f"t{i}" for i in range(21))}, "tags", "20", 400),
    ("markup in a tag", {"tags": "<script>"}, "tags", "not allowed", 422),
    ("a source commit on two lines", {"source_commit": "abc\ndef"}, "source_commit", "one line", 422),
    ("a training data path with a tab", {"training_data": "s3://a\tb"}, "training_data", "one line", 422),
    ("a long description", {"description": "d" * 5001}, "description", "5000", 400),
]


@pytest.mark.parametrize(
    ("fields", "field", "needle", "status"), [c[1:] for c in VERSION_CASES], ids=[c[0] for c in VERSION_CASES]
)
def test_an_upload_over_a_limit_is_refused_and_leaves_nothing(engineer, credit, fields, field, needle, status):
    stored, temp = storage_files(), upload_dir_files()
    response = upload(bearer_client(engineer), "credit-risk", "1.0.0", mlp(), **fields)
    message = _refused(response, field, status=status)
    assert needle in message.replace("5,000", "5000")
    assert not ModelVersion.objects.exists()
    assert storage_files() == stored and upload_dir_files() <= temp  # nothing new (a file of an earlier test may go)


def test_the_upload_form_refuses_what_the_api_refuses(engineer, credit):
    client = _web(engineer)
    url = reverse("registry:version_upload", args=["credit-risk"])
    body = {
        "version": "1.0.0",
        "artifact": SimpleUploadedFile("m.pt", mlp()),
        "input_spec": json.dumps(MLP_SPEC),
        "metrics": '{"auc": NaN}',
    }
    response = client.post(url, body)
    assert response.status_code == 400 and "finite" in response.content.decode()  # the form's JSON reads NaN
    body["artifact"] = SimpleUploadedFile("m.pt", mlp())
    body["metrics"] = json.dumps({"a": {"b": {"c": {"d": 1}}}})
    response = client.post(url, body, HTTP_X_REQUESTED_WITH="XMLHttpRequest", HTTP_ACCEPT="application/json")
    assert response.status_code == 422 and response.json()["error"]["field"] == "metrics"
    assert not ModelVersion.objects.exists()


def test_metrics_within_the_limits_are_kept(engineer, credit):
    metrics = {
        "auc": 0.91,
        "n": 12_000,
        "passed_review": True,
        "note": "holdout 2024q4",
        "baseline": None,
        "roc": [0.0, 0.5, 1.0],
        "by_segment": {"eu": {"auc": 0.9, "ks": 0.4}},
    }
    response = upload(bearer_client(engineer), "credit-risk", "1.0.0", mlp(), metrics=json.dumps(metrics))
    assert response.status_code == 201, response.content
    assert response.json()["metrics"] == metrics


def test_a_metrics_edit_over_a_limit_changes_nothing(engineer, credit):
    version_create(
        model=credit,
        version="1.0.0",
        artifact=temp_upload("m.pt", mlp()),
        input_spec=MLP_SPEC,
        created_by=engineer,
        metrics={"auc": 0.9},
    )
    client = bearer_client(engineer)
    response = client.patch(
        "/api/v1/models/credit-risk/versions/1.0.0/", {"metrics": {"k" * 65: 1}, "tags": ["ok"]}, format="json"
    )
    _refused(response, "metrics", "64", status=422)
    version = ModelVersion.objects.get()
    assert version.metrics == {"auc": 0.9} and not version.tags.exists()


# --- repeated file parts ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("part", ["artifact", "onnx"])
def test_two_file_parts_of_one_name_are_refused(engineer, credit, part):
    stored, temp = storage_files(), upload_dir_files()
    body: dict[str, Any] = {
        "version": "1.0.0",
        "artifact": SimpleUploadedFile("m.pt", mlp(0)),
        "input_spec": json.dumps(MLP_SPEC),
    }
    body[part] = [SimpleUploadedFile("first", mlp(1)), SimpleUploadedFile("second", mlp(2))]
    response = bearer_client(engineer).post("/api/v1/models/credit-risk/versions/", body, format="multipart")
    assert response.status_code == 400
    assert error_of(response) == {
        "code": "repeated_part",
        "message": f"The upload has 2 file parts named {part!r}; send exactly one {part} file.",
        "field": part,
    }
    form = _web(engineer).post(reverse("registry:version_upload", args=["credit-risk"]), body)
    assert form.status_code == 400 and "file parts named" in form.content.decode()
    assert not ModelVersion.objects.exists()
    assert storage_files() == stored and upload_dir_files() <= temp  # nothing new (a file of an earlier test may go)
