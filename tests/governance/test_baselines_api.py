"""Baselines through the API: upload, the job that prepares it, what GET shows, and bad uploads."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from forge_site.models import AuditEvent
from governance.models import Baseline
from governance.tasks import prepare_baseline_now
from tests.governance.conftest import table_rows, to_csv

pytestmark = pytest.mark.django_db
URL = "/api/v1/models/credit-risk/versions/1.0.0/baseline/"


def test_an_uploaded_baseline_is_prepared_by_its_job_and_shown(version, make_baseline, api_as, officer) -> None:
    baseline = make_baseline(version)
    assert baseline.status == "ready" and baseline.rows == 2000
    body = api_as(officer).get(URL).json()
    assert body["status"] == "ready" and body["rows"] == 2000
    assert {c["name"]: (c["kind"], c["role"]) for c in body["columns"]} == {
        "a": ("numeric", "feature"),
        "b": ("numeric", "feature"),
        "color": ("categorical", "feature"),
        "score": ("numeric", "prediction"),
        "default": ("categorical", "label"),
        "region": ("categorical", "segment"),
    }
    assert body["summary"]["a"]["count"] == 2000 and body["summary"]["color"]["categories"] == 3
    assert body["job"]["kind"] == "score_baseline" and body["job"]["status"] == "succeeded"
    assert AuditEvent.objects.filter(action="baseline.create").count() == 1
    assert baseline.layout_fingerprint and baseline.fairness["region"]


def test_a_parquet_baseline_works_like_a_csv_one(version, engineer, api_as) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table(table_rows(500, 2)), buffer)
    response = api_as(engineer).post(
        URL, {"file": SimpleUploadedFile("b.parquet", buffer.getvalue()), "prediction": "score"}, format="multipart"
    )
    assert response.status_code == 202, response.content
    assert prepare_baseline_now(response.json()["id"]).status == "succeeded"
    baseline = Baseline.objects.get()
    assert baseline.source_format == "parquet" and baseline.feature_names == ["a", "b", "color", "default", "region"]


def test_a_declared_column_the_file_lacks_is_named(version, engineer, api_as) -> None:
    response = api_as(engineer).post(
        URL, {"file": SimpleUploadedFile("b.csv", to_csv(table_rows(50, 1))), "label": "defaulted"}, format="multipart"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "label" and "'defaulted'" in error["message"]
    assert not Baseline.objects.exists()


def test_a_baseline_whose_columns_do_not_fit_the_input_spec_is_refused_naming_them(version, engineer, api_as) -> None:
    # The MLP takes one input of 32 columns; without a prediction column Forge would have to score these 6.
    response = api_as(engineer).post(
        URL, {"file": SimpleUploadedFile("b.csv", to_csv(table_rows(50, 1)))}, format="multipart"
    )
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "32 columns" in message and "6 feature columns (a, b, color, score, default, region)" in message
    assert not Baseline.objects.exists()


def test_a_malformed_csv_is_refused_at_upload(version, engineer, api_as) -> None:
    response = api_as(engineer).post(
        URL,
        {"file": SimpleUploadedFile("b.csv", b"a,score\n1,0.5\n2,0.1,7\n"), "prediction": "score"},
        format="multipart",
    )
    assert response.status_code == 400 and "cannot be read" in response.json()["error"]["message"]
    assert not Baseline.objects.exists()


def test_a_binary_file_is_refused_as_neither_parquet_nor_csv(version, engineer, api_as) -> None:
    response = api_as(engineer).post(
        URL,
        {"file": SimpleUploadedFile("b.csv", b"\x89PNG\r\n\x1a\n\x00\xff\xfe"), "prediction": "score"},
        format="multipart",
    )
    assert response.status_code == 400 and "neither Parquet nor CSV" in response.json()["error"]["message"]
    assert not Baseline.objects.exists()


def test_a_file_without_rows_fails_its_job_with_a_reason(version, engineer, api_as) -> None:
    response = api_as(engineer).post(
        URL, {"file": SimpleUploadedFile("b.csv", b"a,score\n"), "prediction": "score"}, format="multipart"
    )
    assert response.status_code == 202
    job = prepare_baseline_now(response.json()["id"])
    assert job.status == "failed" and "no rows" in job.error
    assert Baseline.objects.get().status == "failed"


def test_only_engineers_upload_baselines(version, manager, api_as) -> None:
    response = api_as(manager).post(URL, {"file": SimpleUploadedFile("b.csv", b"a\n1\n")}, format="multipart")
    assert response.status_code == 403
