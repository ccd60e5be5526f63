"""Versions through the API: multipart upload, inspection on a real worker, detail, edit, download, list."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from forge_site.models import AuditEvent
from models_registry.models import ModelVersion, RegisteredModel, Tag
from models_registry.services import model_create
from tests.api.helpers import bearer_client, error_of, mlp, upload
from tests.conftest import wait_for


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_it_uploads_through_the_api_and_the_worker_makes_it_ready(celery_worker, engineer):
    client = bearer_client(engineer)
    created = client.post("/api/v1/models/", {"name": "credit-risk", "risk_tier": "high"}, format="json")
    assert created.status_code == 201
    data = mlp()
    created = upload(client, "credit-risk", "1.0.0", data, source_commit="abc123")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "validating"
    assert body["sha256"] == hashlib.sha256(data).hexdigest() and body["size"] == len(data)
    job_id = body["job_id"]
    assert job_id and body["jobs"][0]["id"] == job_id

    def finished():
        current = client.get("/api/v1/models/credit-risk/versions/1.0.0/").json()
        return current if current["status"] != "validating" else None

    version = wait_for(finished, timeout=90)
    assert version["status"] == "ready", version["reason"]
    assert version["inspection"]["parameters"] > 0
    assert version["inspection"]["dry_run"]["outputs"][0]["shape"] == [2, 2]
    assert version["lineage"]["source_commit"] == "abc123"

    job = client.get(f"/api/v1/jobs/{job_id}/").json()
    assert job["status"] == "succeeded" and job["progress"] == 100 and job["kind"] == "inspect"
    assert job["device"] == "cpu" and job["worker_host"] and job["error"] == ""
    assert job["timings"]["started_at"] and job["timings"]["finished_at"]
    assert job["subject"]["label"] == "credit-risk:1.0.0"

    download = client.get("/api/v1/models/credit-risk/versions/1.0.0/artifact/")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == data
    assert download["X-Checksum-SHA256"] == body["sha256"]


pytestmark_db = pytest.mark.django_db


@pytest.fixture
def credit(engineer) -> RegisteredModel:
    return model_create(name="credit-risk", owner=engineer, risk_tier="high")


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytestmark_db
def test_it_records_companions_lineage_tags_and_metrics(engineer, credit):
    client = bearer_client(engineer)
    assert upload(client, "credit-risk", "1", mlp(0)).status_code == 201
    onnx = b"\x08\x07onnx-bytes"
    samples = _npz(x=np.zeros((3, 32), dtype=np.float32))
    response = upload(
        client,
        "credit-risk",
        "2",
        mlp(1),
        parent_version="1",
        source_commit="deadbeef",
        training_data="s3://loans/2024-q4",
        description="retrained",
        tags="EU, tabular",
        metrics=json.dumps({"auc": 0.91}),
        onnx=SimpleUploadedFile("model.onnx", onnx),
        sample_inputs=SimpleUploadedFile("samples.npz", samples),
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["lineage"] == {
        "source_commit": "deadbeef",
        "training_data": "s3://loans/2024-q4",
        "parent_version": "1",
    }
    assert body["tags"] == ["eu", "tabular"] and body["metrics"] == {"auc": 0.91}
    assert body["onnx"] == {"sha256": hashlib.sha256(onnx).hexdigest(), "size": len(onnx)}
    assert body["sample_inputs"]["size"] == len(samples)
    assert body["input_spec"]["inputs"][0]["name"] == "x"
    assert body["created_by"] == engineer.username and body["description"] == "retrained"

    listed = client.get("/api/v1/models/credit-risk/versions/").json()
    assert [row["version"] for row in listed["results"]] == ["2", "1"]
    assert client.get("/api/v1/models/credit-risk/versions/?status=ready").json()["count"] == 0
    model = client.get("/api/v1/models/credit-risk/").json()
    assert model["version_count"] == 2 and model["latest_version"]["version"] == "2"


@pytestmark_db
@pytest.mark.parametrize(
    ("fields", "field", "needle"),
    [
        ({"parent_version": "9"}, "parent_version", "no version '9'"),
        ({"spec": None}, "input_spec", "Give an input_spec"),
        ({"metrics": "[1, 2]"}, "metrics", "JSON object"),
        ({"metrics": "{not json"}, "metrics", "valid JSON"),
        ({"version": "bad version"}, "version", "Use letters, digits"),
    ],
    ids=["unknown-parent", "no-spec", "metrics-not-object", "metrics-not-json", "bad-version-string"],
)
def test_it_refuses_bad_version_fields_with_a_clear_error(engineer, credit, fields, field, needle):
    version = fields.pop("version", "1")
    response = upload(bearer_client(engineer), "credit-risk", version, mlp(), **fields)
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["field"] == field and needle in error["message"]
    assert not ModelVersion.objects.exists()


@pytestmark_db
def test_it_refuses_an_upload_that_is_not_multipart(engineer, credit):
    response = bearer_client(engineer).post(
        "/api/v1/models/credit-risk/versions/", {"version": "1", "artifact": "AAAA"}, format="json"
    )
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


@pytestmark_db
def test_it_refuses_an_upload_to_an_unknown_model(engineer):
    response = upload(bearer_client(engineer), "nope", "1", mlp())
    assert response.status_code == 404
    assert error_of(response)["message"] == "There is no model named 'nope'."


@pytestmark_db
def test_it_edits_version_metadata_but_never_the_artifact(engineer, credit):
    client = bearer_client(engineer)
    original = upload(client, "credit-risk", "1", mlp()).json()
    response = client.patch(
        "/api/v1/models/credit-risk/versions/1/",
        {"description": "calibrated", "metrics": {"auc": 0.93}, "tags": ["prod"]},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["description"] == "calibrated" and body["metrics"] == {"auc": 0.93} and body["tags"] == ["prod"]
    assert body["sha256"] == original["sha256"]
    event = AuditEvent.objects.get(action="version.update")
    assert event.before["metrics"] == {} and event.after["metrics"] == {"auc": 0.93}

    refused = client.patch("/api/v1/models/credit-risk/versions/1/", {"metrics": [1]}, format="json")
    assert refused.status_code == 400
    assert error_of(refused)["field"] == "metrics"

    # A read-only field is refused by name, and nothing else in the request is applied (it used to answer 200).
    for field, value in [("sha256", "0" * 64), ("status", "ready"), ("version", "2"), ("lineage", {})]:
        refused = client.patch(
            "/api/v1/models/credit-risk/versions/1/", {"description": "other", field: value}, format="json"
        )
        assert refused.status_code == 400, refused.content
        assert (error_of(refused)["code"], error_of(refused)["field"]) == ("read_only", field)
    assert client.get("/api/v1/models/credit-risk/versions/1/").json()["description"] == "calibrated"


@pytestmark_db
def test_it_streams_the_artifact_to_officers_but_not_to_managers(engineer, officer, manager, credit):
    data = mlp()
    upload(bearer_client(engineer), "credit-risk", "1", data)
    download = bearer_client(officer).get("/api/v1/models/credit-risk/versions/1/artifact/")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == data
    assert "credit-risk-1.pt" in download["Content-Disposition"]
    refused = bearer_client(manager).get("/api/v1/models/credit-risk/versions/1/artifact/")
    assert refused.status_code == 403
    assert "version.download" in error_of(refused)["message"]


@pytestmark_db
def test_it_says_which_version_is_missing(officer, credit):
    response = bearer_client(officer).get("/api/v1/models/credit-risk/versions/7/")
    assert response.status_code == 404
    assert error_of(response)["message"] == "credit-risk has no version '7'."


def _populate_versions(model: RegisteredModel, start: int, stop: int) -> None:
    tags = [Tag.objects.get_or_create(name=f"t{i}")[0] for i in range(2)]
    parent = None
    for i in range(start, stop):
        mv = ModelVersion.objects.create(
            model=model, version=f"v{i}", artifact="x", sha256=f"{i:064d}", size=1, parent=parent, metrics={"i": i}
        )
        mv.tags.set(tags)
        parent = mv


@pytestmark_db
def test_it_lists_versions_with_a_constant_number_of_queries(api_as, officer, credit):
    client = api_as(officer)
    client.get("/api/v1/models/credit-risk/versions/")  # the first request also loads the caller's roles
    counts = []
    for start, stop in ((0, 5), (5, 50)):
        _populate_versions(credit, start, stop)
        with CaptureQueriesContext(connection) as queries:
            body = client.get("/api/v1/models/credit-risk/versions/").json()
        assert len(body["results"]) == stop
        counts.append(len(queries))
    assert body["results"][0]["lineage"]["parent_version"] == "v48"
    assert counts[0] == counts[1], f"{counts[0]} queries for 5 versions but {counts[1]} for 50"
