"""Inference ingestion: JSON batches and files, hourly sketches, late labels, and every bad input refused whole."""

from __future__ import annotations

import io
from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from governance import tabular
from governance.drift.sketch import WindowSketch
from governance.models import InferenceBatch, InferenceLabel, SketchWindow
from governance.reference import reference_for
from governance.services.ingest import IngestError, inferences_ingest
from governance.storage import artifact_local_copy
from tests.api.helpers import storage_files
from tests.governance.conftest import NOW, json_rows, table_rows, to_csv

pytestmark = pytest.mark.django_db
URL = "/api/v1/models/credit-risk/versions/1.0.0/inferences/"


@pytest.fixture
def ready(version, make_baseline):
    return make_baseline(version)


def post_rows(client, rows):
    return client.post(URL, {"rows": rows}, format="json")


def nothing_stored(before: set[str]) -> bool:
    return (
        not InferenceBatch.objects.exists()
        and not SketchWindow.objects.exists()
        and not InferenceLabel.objects.exists()
        and storage_files() == before
    )


def test_a_json_batch_is_stored_as_parquet_and_sketched_per_hour(ready, engineer, api_as) -> None:
    rows = json_rows(table_rows(300, 5), labels=True)  # 30 s apart from 12:30: 12:30-14:59:30
    response = post_rows(api_as(engineer), rows)
    assert response.status_code == 201, response.content
    assert response.json() == {"accepted": 300, "labels": 300}
    batch = InferenceBatch.objects.get()
    with artifact_local_copy(batch.file) as local:
        table = pq.read_table(local)
    assert table.num_rows == 300 and table.column("request_id")[0].as_py() == "r0"
    assert {"feature.a", "feature.color", "prediction", "label", "segment.region", "meta"} <= set(table.column_names)
    windows = list(SketchWindow.objects.order_by("start"))
    assert [w.start for w in windows] == [NOW.replace(minute=0) + timedelta(hours=h) for h in range(3)]
    assert [w.rows for w in windows] == [60, 120, 120]
    layout = reference_for(ready).layout
    first = WindowSketch.from_bytes(layout, bytes(windows[0].sketch))
    assert int(first.tallies[layout.index("a"), 0]) == windows[0].rows
    region = windows[0].fairness["region"]
    assert sum(counts[0] for counts in region.values()) == windows[0].rows


def test_batches_in_the_same_hour_merge_into_one_window(ready, engineer, api_as) -> None:
    columns = table_rows(40, 6)
    client = api_as(engineer)
    assert post_rows(client, json_rows(columns, prefix="x", step=timedelta(seconds=1))).status_code == 201
    assert post_rows(client, json_rows(columns, prefix="y", step=timedelta(seconds=1))).status_code == 201
    window = SketchWindow.objects.get()
    assert window.rows == 80
    sketch = WindowSketch.from_bytes(reference_for(ready).layout, bytes(window.sketch))
    assert int(sketch.tallies[0].sum()) == 80


@pytest.mark.parametrize(
    ("change", "row", "column"),
    [
        (lambda r: r[3]["features"].update(zip_code=1), 3, "features.zip_code"),
        (lambda r: r[5]["features"].update(a="high"), 5, "features.a"),
        (lambda r: r[2].update(timestamp="yesterday"), 2, "timestamp"),
        (lambda r: r[4]["segment"].update(planet="mars"), 4, "segment.planet"),
        (lambda r: r[1].pop("request_id"), 1, "request_id"),
        (lambda r: r[6].update(prediction=[0.1, 0.2, 0.7]), 6, "prediction"),
        (lambda r: r[7].update(surprise=1), 7, "surprise"),
    ],
    ids=[
        "unknown-column",
        "wrong-type",
        "bad-time",
        "unknown-segment",
        "no-request-id",
        "wrong-prediction",
        "unknown-field",
    ],
)
def test_a_bad_row_is_named_and_nothing_of_the_batch_is_stored(ready, engineer, api_as, change, row, column) -> None:
    rows = json_rows(table_rows(10, 7))
    change(rows)
    before = storage_files()
    response = post_rows(api_as(engineer), rows)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_row" and error["field"] == column and error["row"] == row
    assert f"row {row}" in error["message"] and repr(column) in error["message"]
    if column != "request_id":
        assert error["request_id"] == f"r{row}" and f"'r{row}'" in error["message"]
    assert nothing_stored(before)


def test_an_empty_batch_is_refused(ready, engineer, api_as) -> None:
    response = post_rows(api_as(engineer), [])
    assert response.status_code == 400 and "empty" in response.json()["error"]["message"]


def test_ingestion_needs_a_ready_baseline(version, engineer, api_as) -> None:
    response = post_rows(api_as(engineer), json_rows(table_rows(3, 1)))
    assert response.status_code == 409 and "no ready baseline" in response.json()["error"]["message"]


def test_missing_values_and_unseen_categories_are_accepted_and_counted(ready, engineer, api_as) -> None:
    rows = json_rows(table_rows(100, 8), step=timedelta(seconds=1))
    for i, row in enumerate(rows):
        if i % 2:
            del row["features"]["b"]  # a column missing from half the rows
        if i % 10 == 0:
            row["features"]["color"] = "ultraviolet"  # never seen in the baseline
        if i % 25 == 0:
            row["features"]["a"] = None
    assert post_rows(api_as(engineer), rows).status_code == 201
    layout = reference_for(ready).layout
    sketch = WindowSketch.from_bytes(layout, bytes(SketchWindow.objects.get().sketch))
    assert sketch.tallies[layout.index("b")].tolist() == [50, 50]
    assert sketch.tallies[layout.index("a")].tolist() == [96, 4]
    assert sketch.unseen == {"color": {"ultraviolet": 10}}


def test_a_csv_file_with_nan_and_inf_is_streamed_in_batches(ready, engineer, api_as, monkeypatch) -> None:
    monkeypatch.setattr(tabular, "BATCH_ROWS", 64)  # many batches from a small file: the streaming path
    monkeypatch.setattr(tabular, "CSV_BLOCK_BYTES", 4096)
    columns = table_rows(500, 9)
    data = {
        "request_id": [f"f{i}" for i in range(500)],
        "timestamp": [(NOW + timedelta(seconds=i)).isoformat() for i in range(500)],
        "a": columns["a"].astype(str),
        "b": columns["b"].astype(str),
        "color": columns["color"],
        "prediction": columns["score"],
        "region": columns["region"],
    }
    data["a"][3], data["a"][4], data["b"][5] = "nan", "inf", ""
    seen = []
    original = tabular.iter_batches

    def counting(*args, **kwargs):
        for batch in original(*args, **kwargs):
            seen.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(tabular, "iter_batches", counting)
    response = api_as(engineer).post(URL, {"file": SimpleUploadedFile("logs.csv", to_csv(data))}, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["accepted"] == 500 and len(seen) > 5 and max(seen) <= 64
    layout = reference_for(ready).layout
    sketch = WindowSketch.from_bytes(layout, bytes(SketchWindow.objects.get().sketch))
    assert sketch.tallies[layout.index("a")].tolist() == [498, 2]  # NaN and inf count as missing
    assert sketch.tallies[layout.index("b")].tolist() == [499, 1]
    with artifact_local_copy(InferenceBatch.objects.get().file) as local:
        assert pq.ParquetFile(local).metadata.num_row_groups > 5  # written as read, not held whole


def test_a_bad_value_deep_in_a_parquet_file_is_named_and_nothing_is_stored(ready, engineer, api_as, monkeypatch):
    monkeypatch.setattr(tabular, "BATCH_ROWS", 100)
    columns = table_rows(1000, 10)
    a = columns["a"].astype(str).astype(object)
    a[777] = "lots"
    table = pa.table(
        {
            "request_id": [f"p{i}" for i in range(1000)],
            "timestamp": pa.array([NOW + timedelta(seconds=i) for i in range(1000)]),
            "a": a,
            "b": columns["b"],
            "color": columns["color"],
            "prediction": columns["score"],
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    before = storage_files()
    response = api_as(engineer).post(
        URL, {"file": SimpleUploadedFile("l.parquet", buffer.getvalue())}, format="multipart"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["row"], error["request_id"], error["field"]) == (777, "p777", "a")
    assert "'lots' is not a number" in error["message"]
    assert nothing_stored(before)


def test_a_file_with_an_unknown_column_is_refused(ready, engineer, api_as) -> None:
    data = b"request_id,timestamp,a,shoe_size\nq1,2026-03-02T12:00:00Z,1.0,44\n"
    response = api_as(engineer).post(URL, {"file": SimpleUploadedFile("l.csv", data)}, format="multipart")
    assert response.status_code == 400 and response.json()["error"]["field"] == "shoe_size"


def test_labels_arriving_later_join_their_inference_and_update_fairness(ready, engineer, api_as) -> None:
    columns = table_rows(60, 11)
    client = api_as(engineer)
    assert post_rows(client, json_rows(columns, step=timedelta(seconds=1))).status_code == 201
    before = SketchWindow.objects.get().fairness["region"]
    assert sum(c[2] for c in before.values()) == 0  # nothing labelled yet
    labels = [{"request_id": f"r{i}", "label": int(columns["default"][i])} for i in range(60)]
    response = post_rows(client, labels)
    assert response.status_code == 201 and response.json() == {"accepted": 0, "labels": 60}
    after = SketchWindow.objects.get().fairness["region"]
    assert sum(c[2] for c in after.values()) == 60
    assert sum(c[3] for c in after.values()) == int(columns["default"].sum())
    assert sum(c[0] for c in after.values()) == 60  # rows are not counted twice
    again = post_rows(client, labels[:1])
    assert again.status_code == 400 and "already has a label" in again.json()["error"]["message"]


def test_a_late_label_for_an_inference_logged_with_its_label_is_refused(ready, engineer, api_as) -> None:
    client = api_as(engineer)
    assert post_rows(client, json_rows(table_rows(5, 14), labels=True)).status_code == 201
    response = post_rows(client, [{"request_id": "r3", "label": 0}])
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["row"], error["request_id"]) == (0, "r3") and "given with its inference" in error["message"]


def test_labels_for_unknown_request_ids_are_refused_naming_the_first(ready, engineer, api_as) -> None:
    client = api_as(engineer)
    assert post_rows(client, json_rows(table_rows(5, 12))).status_code == 201
    response = post_rows(client, [{"request_id": "r1", "label": 1}, {"request_id": "nobody", "label": 0}])
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["row"], error["request_id"], error["field"]) == (1, "nobody", "request_id")
    assert not InferenceLabel.objects.exists()


def test_the_service_takes_rows_from_a_serving_process(ready, engineer) -> None:
    rows = json_rows(table_rows(3, 13))
    rows[0]["meta"] = {"rollout": 4, "arm": "challenger", "latency_ms": 3.2}
    assert inferences_ingest(version=ready.version, rows=rows, actor=None, source="serving").accepted == 3
    assert InferenceBatch.objects.get().source == "serving"
    with pytest.raises(IngestError, match="rows must be a list"):
        inferences_ingest(version=ready.version, rows={"a": 1}, actor=None)


def test_only_engineers_log_inferences(ready, officer, api_as) -> None:
    assert post_rows(api_as(officer), json_rows(table_rows(2, 1))).status_code == 403


def test_a_log_file_larger_than_any_artifact_upload_is_taken(ready, engineer, api_as, settings) -> None:
    # The upload handler refuses requests larger than an artifact upload before reading them, except where a view
    # takes data files: their own limit (FORGE_MAX_DATA_FILE_BYTES) applies.
    settings.FORGE_MAX_ARTIFACT_BYTES = settings.FORGE_MAX_COMPANION_BYTES = 1024
    columns = table_rows(15_000, 15)
    data = {
        "request_id": [f"big{i}" for i in range(15_000)],
        "timestamp": [(NOW + timedelta(seconds=i)).isoformat() for i in range(15_000)],
        "a": columns["a"],
        "b": columns["b"],
        "color": columns["color"],
        "prediction": columns["score"],
    }
    body = to_csv(data)
    assert len(body) > 3 * 1024 + 1024 * 1024  # past any artifact upload (artifact, 2 companions, 1 MiB of form)
    response = api_as(engineer).post(URL, {"file": SimpleUploadedFile("l.csv", body)}, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["accepted"] == 15_000
