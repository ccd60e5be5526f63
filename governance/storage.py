"""Governance files in artifact storage ("artifacts" storage: a folder, or S3): baselines, batches, references."""

from __future__ import annotations

import contextlib
import io
import uuid
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from django.core.files import File
from django.core.files.base import ContentFile

from models_registry.artifacts import artifact_local_copy, artifact_storage

__all__ = ["artifact_local_copy", "delete_quietly", "load_arrays", "save_arrays", "store_file"]


def store_file(prefix: str, path: Path | str, suffix: str) -> str:
    """Store a local file under `prefix/<uuid><suffix>`; returns its storage name."""
    storage = artifact_storage()
    with open(path, "rb") as handle:
        return storage.save(f"{prefix}/{uuid.uuid4().hex}{suffix}", File(handle))


def delete_quietly(name: str) -> None:
    if name:
        with contextlib.suppress(OSError):
            artifact_storage().delete(name)


def save_arrays(prefix: str, arrays: Mapping[str, np.ndarray]) -> str:
    """Numeric arrays as an .npz (no pickles: plain numeric dtypes only) in storage."""
    buffer = io.BytesIO()
    np.savez(buffer, **{f"a{index}": array for index, array in enumerate(arrays.values())})  # type: ignore[arg-type]
    return artifact_storage().save(f"{prefix}/{uuid.uuid4().hex}.npz", ContentFile(buffer.getvalue()))


def load_arrays(name: str, names: list[str]) -> dict[str, np.ndarray]:
    with artifact_local_copy(name) as path, np.load(path, allow_pickle=False) as data:
        return {column: data[f"a{index}"] for index, column in enumerate(names)}
