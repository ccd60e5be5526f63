"""Registry services: each change and its audit event together; refused input leaves nothing behind."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from forge_site.models import AuditEvent, Job
from models_registry.artifacts import HashedUploadedFile
from models_registry.models import AliasAssignment, ModelVersion, RegisteredModel, VersionStatus
from models_registry.selectors import alias_history, alias_holder_at
from models_registry.services import (
    RegistryError,
    alias_clear,
    alias_set,
    model_create,
    model_update,
    version_create,
    version_record_inspection,
)
from tests.torchscript_models import MLP_SPEC, hostile_pickle_bytes, mlp_bytes

pytestmark = pytest.mark.django_db


def upload(data: bytes, name: str = "m.pt") -> HashedUploadedFile:
    file = HashedUploadedFile(name, "application/octet-stream", len(data), None, None)
    file.write(data)
    file.seek(0)
    return file


def stored_files() -> set[Path]:
    root = Path(settings.FORGE_STORAGE)
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


@pytest.fixture
def model(engineer) -> RegisteredModel:
    return model_create(name="credit-risk", owner=engineer, risk_tier="high", tags=["Credit", "credit", " tabular "])


def ready_version(model: RegisteredModel, version: str, seed: int, user, parent: str = "") -> ModelVersion:
    mv = version_create(
        model=model,
        version=version,
        artifact=upload(mlp_bytes(seed)),
        input_spec=MLP_SPEC,
        created_by=user,
        parent_version=parent,
    )
    return version_record_inspection(version_id=mv.pk, ok=True, inspection={"parameters": 1}, reason="")


def test_model_create_cleans_tags_and_records_the_model(model) -> None:
    assert sorted(t.name for t in model.tags.all()) == ["credit", "tabular"]
    event = AuditEvent.objects.get(action="model.create")
    assert event.object_id == str(model.pk) and event.actor_label == "erin"
    assert event.after["tags"] == ["credit", "tabular"] and event.after["risk_tier"] == "high"


def test_model_create_refuses_a_name_that_differs_only_in_case(model, engineer) -> None:
    with pytest.raises(RegistryError, match="already exists") as info:
        model_create(name="Credit-Risk", owner=engineer)
    assert (info.value.status, info.value.field, info.value.code) == (409, "name", "duplicate")
    assert "'credit-risk' already exists (names are compared without regard to case)" in info.value.message
    assert RegisteredModel.objects.count() == 1


def test_the_database_itself_refuses_a_model_name_that_differs_only_in_case(model) -> None:
    """What holds when two requests pass the service's check at the same moment (raced in test_races.py)."""
    with pytest.raises(IntegrityError), transaction.atomic():
        RegisteredModel.objects.create(name="CREDIT-RISK")
    assert list(RegisteredModel.objects.values_list("name", flat=True)) == ["credit-risk"]


def test_model_update_records_before_and_after_only_when_something_changed(model, engineer) -> None:
    model_update(model=model, actor=engineer, description=model.description, tags=["tabular", "credit"])
    assert not AuditEvent.objects.filter(action="model.update").exists()
    model_update(model=model, actor=engineer, risk_tier="critical")
    event = AuditEvent.objects.get(action="model.update")
    assert event.before["risk_tier"] == "high" and event.after["risk_tier"] == "critical"


def test_version_create_stores_the_artifact_by_hash_and_queues_inspection(model, engineer) -> None:
    data = mlp_bytes(1)
    mv = version_create(model=model, version="1.0.0", artifact=upload(data), input_spec=MLP_SPEC, created_by=engineer)
    assert mv.status == VersionStatus.VALIDATING and mv.size == len(data)
    assert mv.artifact == f"torchscript/{mv.sha256[:2]}/{mv.sha256}.pt"
    assert (Path(settings.FORGE_STORAGE) / mv.artifact).read_bytes() == data
    job = Job.objects.get(subject_id=str(mv.pk))
    assert (job.kind, job.queue, job.status, job.params) == ("inspect", "gpu", "queued", {"sha256": mv.sha256})
    model.refresh_from_db()
    assert model.version_count == 1 and model.latest_version == mv
    assert [a for a in AuditEvent.objects.order_by("seq").values_list("action", flat=True)][-2:] == [
        "version.upload",
        "job.queue",
    ]


def test_version_create_refuses_a_hostile_file_and_leaves_nothing_behind(model, engineer) -> None:
    before_files, before_events = stored_files(), AuditEvent.objects.count()
    with pytest.raises(RegistryError, match="plain Python pickle") as info:
        version_create(
            model=model,
            version="1.0.0",
            artifact=upload(hostile_pickle_bytes()),
            input_spec=MLP_SPEC,
            created_by=engineer,
        )
    assert info.value.field == "artifact" and info.value.code == "bad_artifact"
    assert not ModelVersion.objects.exists() and not Job.objects.exists()
    assert stored_files() == before_files and AuditEvent.objects.count() == before_events


def test_version_create_refuses_an_unknown_parent_before_storing_anything(model, engineer) -> None:
    before = stored_files()
    with pytest.raises(RegistryError, match=r"has no version '0\.9' to be the parent"):
        version_create(
            model=model,
            version="1.0.0",
            artifact=upload(mlp_bytes(2)),
            input_spec=MLP_SPEC,
            created_by=engineer,
            parent_version="0.9",
        )
    assert stored_files() == before and not ModelVersion.objects.exists()


def test_version_create_refuses_a_duplicate_version_and_keeps_the_first(model, engineer) -> None:
    first = ready_version(model, "1.0.0", 3, engineer)
    with pytest.raises(RegistryError, match="versions are immutable") as info:
        version_create(
            model=model, version="1.0.0", artifact=upload(mlp_bytes(4)), input_spec=MLP_SPEC, created_by=engineer
        )
    assert info.value.status == 409
    assert ModelVersion.objects.get().sha256 == first.sha256


def test_recording_an_inspection_twice_changes_nothing(model, engineer) -> None:
    mv = ready_version(model, "1.0.0", 5, engineer)
    again = version_record_inspection(version_id=mv.pk, ok=False, inspection=None, reason="late duplicate")
    assert again.status == VersionStatus.READY and again.reason == ""
    assert AuditEvent.objects.filter(action__in=["version.ready", "version.reject"]).count() == 1


def test_alias_history_answers_who_held_champion_on_a_date(model, engineer, manager) -> None:
    v1 = ready_version(model, "1.0.0", 6, engineer)
    v2 = ready_version(model, "1.1.0", 7, engineer, parent="1.0.0")
    now = timezone.now()
    alias_set(model=model, alias="champion", version=v1, actor=manager, at=now - timedelta(days=30), reason="first")
    alias_set(model=model, alias="champion", version=v2, actor=manager, at=now - timedelta(days=5), reason="better")
    assert alias_holder_at(model=model, alias="champion", at=now - timedelta(days=31)) is None
    assert alias_holder_at(model=model, alias="champion", at=now - timedelta(days=10)).version == v1
    assert alias_holder_at(model=model, alias="champion", at=now).version == v2
    periods = list(alias_history(model=model, alias="champion"))
    assert [(p.version.version, p.ended_at is None) for p in periods] == [("1.1.0", True), ("1.0.0", False)]
    assert periods[1].ended_at == periods[0].started_at  # no gap, no overlap
    moves = AuditEvent.objects.filter(action="alias.move").order_by("seq")
    assert [(e.before["version"], e.after["version"]) for e in moves] == [(None, "1.0.0"), ("1.0.0", "1.1.0")]
    assert all(e.actor == manager for e in moves)


def test_setting_an_alias_to_its_current_holder_records_nothing(model, engineer, manager) -> None:
    v1 = ready_version(model, "1.0.0", 8, engineer)
    first = alias_set(model=model, alias="champion", version=v1, actor=manager)
    again = alias_set(model=model, alias="champion", version=v1, actor=manager)
    assert again.pk == first.pk
    assert AliasAssignment.objects.count() == 1 and AuditEvent.objects.filter(action="alias.move").count() == 1


def test_alias_set_refuses_a_version_that_is_not_ready(model, engineer, manager) -> None:
    mv = version_create(
        model=model, version="1.0.0", artifact=upload(mlp_bytes(9)), input_spec=MLP_SPEC, created_by=engineer
    )
    with pytest.raises(RegistryError, match="is validating, not ready: only a ready version that is not retired"):
        alias_set(model=model, alias="champion", version=mv, actor=manager)
    assert not AliasAssignment.objects.exists()


def test_alias_set_refuses_an_unknown_alias_and_another_models_version(model, engineer, manager) -> None:
    v1 = ready_version(model, "1.0.0", 10, engineer)
    other = model_create(name="other", owner=engineer)
    with pytest.raises(RegistryError, match="alias must be one of champion, challenger"):
        alias_set(model=model, alias="production", version=v1, actor=manager)
    with pytest.raises(RegistryError, match="belongs to another model"):
        alias_set(model=other, alias="champion", version=v1, actor=manager)
    assert not AliasAssignment.objects.exists()


def test_alias_clear_ends_the_current_period(model, engineer, manager) -> None:
    v1 = ready_version(model, "1.0.0", 11, engineer)
    alias_set(model=model, alias="challenger", version=v1, actor=manager)
    alias_clear(model=model, alias="challenger", actor=manager, reason="A/B test stopped")
    alias_clear(model=model, alias="challenger", actor=manager)  # nothing to clear: no event
    assert AliasAssignment.objects.get().ended_at is not None
    assert AuditEvent.objects.filter(action="alias.clear").count() == 1
