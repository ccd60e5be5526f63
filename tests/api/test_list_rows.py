"""The API lists read their rows with plain SQL (selectors.model_page_rows, version_page_rows) while the detail
endpoints go through the serializers: a row of a list must say exactly what the detail says, on either database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models_registry.models import AliasAssignment, ModelVersion, RegisteredModel, Tag

pytestmark = pytest.mark.django_db

ON_THE_SECOND = datetime(2026, 1, 31, 9, 5, tzinfo=UTC)  # no microseconds: DRF writes no fraction then


def _aliases_by_name(body: dict) -> dict:
    """The list shows champion first; the detail keeps the order the aliases were assigned in."""
    return {**body, "aliases": sorted(body["aliases"], key=lambda alias: alias["alias"])}


def test_each_row_of_the_models_list_is_that_models_detail(api_as, officer, engineer):
    whole = RegisteredModel.objects.create(
        name="whole", owner=engineer, description='Scores <loans> & "more".', intended_use="Pre-screening."
    )
    whole.tags.set([Tag.objects.create(name="zeta"), Tag.objects.create(name="alpha")])
    first = ModelVersion.objects.create(model=whole, version="1", artifact="x", sha256="1" * 64, size=1, status="ready")
    second = ModelVersion.objects.create(model=whole, version="2", artifact="x", sha256="2" * 64, size=1)
    AliasAssignment.objects.create(
        model=whole,
        alias="champion",
        version=second,
        started_at=ON_THE_SECOND - timedelta(days=3),
        ended_at=ON_THE_SECOND,
    )
    AliasAssignment.objects.create(model=whole, alias="champion", version=first, started_at=ON_THE_SECOND)
    AliasAssignment.objects.create(
        model=whole, alias="challenger", version=second, started_at=ON_THE_SECOND + timedelta(microseconds=5)
    )
    RegisteredModel.objects.filter(pk=whole.pk).update(version_count=2, latest_version=second, updated_at=ON_THE_SECOND)
    RegisteredModel.objects.create(name="bare")  # no owner, tags, versions or aliases
    client = api_as(officer)

    rows = client.get("/api/v1/models/").json()["results"]

    assert [row["name"] for row in rows] == ["bare", "whole"]
    for row in rows:
        assert _aliases_by_name(row) == _aliases_by_name(client.get(f"/api/v1/models/{row['name']}/").json())
    listed = rows[1]
    assert listed["tags"] == ["alpha", "zeta"]
    assert listed["aliases"] == [
        {"alias": "champion", "version": "1", "started_at": "2026-01-31T09:05:00Z"},
        {"alias": "challenger", "version": "2", "started_at": "2026-01-31T09:05:00.000005Z"},
    ]
    assert listed["updated_at"] == "2026-01-31T09:05:00Z"
    assert rows[0]["owner"] is None and rows[0]["latest_version"] is None and rows[0]["aliases"] == []


def test_each_row_of_the_versions_list_is_that_versions_detail(api_as, officer, engineer):
    model = RegisteredModel.objects.create(name="credit-risk", owner=engineer)
    parent = ModelVersion.objects.create(
        model=model,
        version="1",
        artifact="x",
        sha256="1" * 64,
        size=10,
        created_by=engineer,
        status="rejected",
        reason="The forward pass failed.",
        input_spec={"inputs": [{"name": "x", "shape": [None, 32], "dtype": "float32"}]},
    )
    child = ModelVersion.objects.create(
        model=model,
        version="2",
        artifact="x",
        sha256="2" * 64,
        size=2**40,
        parent=parent,
        metrics={"auc": 0.91},
        source_commit="abc123",
        training_data="s3://data/v2",
        original_filename="model.pt",
        inspection={"big": "x"},
    )
    child.tags.set([Tag.objects.create(name="candidate"), Tag.objects.create(name="baseline")])
    ModelVersion.objects.filter(pk=parent.pk).update(created_at=ON_THE_SECOND)
    client = api_as(officer)

    rows = client.get("/api/v1/models/credit-risk/versions/").json()["results"]

    assert [row["version"] for row in rows] == ["2", "1"]
    for row in rows:
        detail = client.get(f"/api/v1/models/credit-risk/versions/{row['version']}/").json()
        assert row == {key: detail[key] for key in row}
    assert rows[0]["tags"] == ["baseline", "candidate"] and rows[0]["lineage"]["parent_version"] == "1"
    assert rows[0]["size"] == 2**40 and rows[0]["metrics"] == {"auc": 0.91}
    assert rows[1]["created_at"] == "2026-01-31T09:05:00Z" and rows[1]["input_spec"]["inputs"][0]["shape"] == [None, 32]


@pytest.mark.parametrize("deferred_from_row", [0, 10**9], ids=["by-key-first", "one-query"])
@pytest.mark.parametrize("sort", ["name", "-versions", "updated", "-created"])
def test_a_page_read_by_its_keys_first_has_the_rows_and_order_of_the_slice(
    engineer, sort, deferred_from_row, monkeypatch
):
    from models_registry import selectors

    monkeypatch.setattr(selectors, "DEFERRED_JOIN_FROM_ROW", deferred_from_row)
    tagged = Tag.objects.create(name="tagged")
    for n in range(25):
        model = RegisteredModel.objects.create(name=f"m{(n * 7) % 25:02d}", owner=engineer, version_count=n % 3)
        if n % 2:
            model.tags.add(tagged)
    RegisteredModel.objects.update(updated_at=ON_THE_SECOND)  # ties everywhere: the order falls back to the key

    for filters in [{}, {"tag": "tagged"}, {"search": "m1"}]:
        ordered = selectors.model_search(sort=sort, **filters)
        for start in range(0, 30, 10):
            page = ordered[start : start + 10]
            assert [row["name"] for row in selectors.model_page_rows(page)] == [m.name for m in page], (filters, start)
    assert selectors.model_page_rows(selectors.model_search()[40:50]) == []


def test_a_page_ordered_by_an_annotation_is_read_as_it_is(engineer, monkeypatch):
    from django.db.models import Count

    from models_registry import selectors

    monkeypatch.setattr(selectors, "DEFERRED_JOIN_FROM_ROW", 0)
    for n in range(12):
        model = RegisteredModel.objects.create(name=f"m{n:02d}", owner=engineer)
        for v in range(n % 4):
            ModelVersion.objects.create(
                model=model, version=str(v), artifact="x", sha256=f"{n:02d}{v}".ljust(64, "0"), size=1
            )
    ordered = selectors.model_search().annotate(n=Count("versions")).order_by("-n", "-name")

    for start in (0, 5, 10):
        page = ordered[start : start + 5]
        assert [row["name"] for row in selectors.model_page_rows(page)] == [m.name for m in page]


def test_a_model_by_name_is_the_whole_model(engineer):
    from models_registry import selectors

    model = RegisteredModel.objects.create(name="credit-risk", owner=engineer, description="d", risk_tier="high")
    RegisteredModel.objects.filter(pk=model.pk).update(updated_at=ON_THE_SECOND, version_count=3)
    expected = RegisteredModel.objects.get(pk=model.pk)

    found = selectors.model_by_name("credit-risk")

    columns = [field.attname for field in RegisteredModel._meta.concrete_fields]
    assert [getattr(found, c) for c in columns] == [getattr(expected, c) for c in columns]
    assert found.updated_at == ON_THE_SECOND and found.owner == engineer
    assert selectors.model_by_name("Credit-Risk") is None and selectors.model_by_name("") is None


def test_json_columns_read_exactly_as_the_detail_reads_them(api_as, officer, engineer):
    model = RegisteredModel.objects.create(name="odd-metrics", owner=engineer)
    odd = {"exact": 123456789012345678901234567890, "long": 0.1234567890123456789, "int64": 2**63 - 1}
    for n, metrics in enumerate([odd, {"auc": 0.5, "label": "é ✓ \U0001f600"}]):
        ModelVersion.objects.create(
            model=model, version=str(n), artifact="x", sha256=str(n) * 64, size=1, metrics=metrics
        )
    client = api_as(officer)

    rows = client.get("/api/v1/models/odd-metrics/versions/").json()["results"]

    for row in rows:
        assert row["metrics"] == client.get(f"/api/v1/models/odd-metrics/versions/{row['version']}/").json()["metrics"]
    assert {row["version"]: row["metrics"] for row in rows}["0"]["exact"] == 123456789012345678901234567890


def test_json_that_orjson_reads_differently_or_refuses_is_read_by_json():
    import json
    import math

    from models_registry.selectors import _db_json

    for text in ['{"n": 123456789012345678901234567890}', '{"s": "\\ud800"}', '{"a": [1, 2.5, null, "x"]}']:
        assert _db_json(text) == json.loads(text)
    assert math.isinf(_db_json("[1e400]")[0]) and _db_json({"already": "decoded"}) == {"already": "decoded"}
