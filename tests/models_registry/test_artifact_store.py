"""Content-addressed storage: a shared file is never deleted while a row references it, and never half-written.
The protocol step by step (raced for real, on PostgreSQL, in test_races.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.db import transaction

from models_registry.artifacts import StoredFile, artifact_claim, artifact_discard, artifact_storage, artifact_store
from tests.api.helpers import mlp, temp_upload

pytestmark = pytest.mark.django_db


def test_a_writer_stores_its_file_again_if_a_clean_up_removed_it_before_its_row(engineer) -> None:
    stored = artifact_store(temp_upload("m.pt", mlp()), kind="torchscript", suffix=".pt")
    artifact_discard(stored, referenced=lambda name: False)  # another request's clean-up: nothing references it yet
    assert not artifact_storage().exists(stored.name)
    with transaction.atomic():
        artifact_claim(stored)  # the writer, in the transaction that writes its row
    assert artifact_storage().exists(stored.name) and artifact_storage().size(stored.name) == len(mlp())


def test_a_clean_up_never_removes_a_file_a_row_references(engineer) -> None:
    stored = artifact_store(temp_upload("m.pt", mlp()), kind="torchscript", suffix=".pt")
    artifact_discard(stored, referenced=lambda name: name == stored.name)
    assert artifact_storage().exists(stored.name)


def test_a_leftover_partial_file_under_the_artifacts_name_is_replaced(engineer) -> None:
    """A write that never finished (before writes were atomic) left a short file under the content's name."""
    data = mlp()
    name = f"torchscript/{hashlib.sha256(data).hexdigest()[:2]}/{hashlib.sha256(data).hexdigest()}.pt"
    path = Path(artifact_storage().path(name))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[:100])
    stored: StoredFile = artifact_store(temp_upload("m.pt", data), kind="torchscript", suffix=".pt")
    assert stored.name == name and path.read_bytes() == data
