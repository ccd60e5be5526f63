"""Artifact intake and storage: stream uploads to disk while hashing, then file them by SHA-256."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest
from django.http.request import QueryDict
from django.utils.datastructures import MultiValueDict

ARTIFACT_FIELDS = frozenset({"artifact"})
# 1 MiB matches the largest read gunicorn hands a WSGI app in one step (its body reader reads at most 1 MiB at a
# time): larger chunks are re-assembled from 1 MiB pieces (more copies, more memory), smaller ones leave a
# remainder that is copied again on every read. benchmarks/upload_memory.py measured 4 MiB against 1 MiB.
CHUNK_SIZE = 1024 * 1024
MULTIPART_SLACK = 1024 * 1024  # form fields and boundaries around the files


class HashedUploadedFile(TemporaryUploadedFile):
    """A temporary file on disk whose SHA-256 was computed while it was written."""

    def __init__(self, name: str, content_type: str, size: int, charset: str | None, content_type_extra: Any) -> None:
        settings.FORGE_UPLOAD_DIR.mkdir(parents=True, exist_ok=True)
        file = tempfile.NamedTemporaryFile(suffix=".upload", dir=settings.FORGE_UPLOAD_DIR)  # noqa: SIM115
        UploadedFile.__init__(self, file, name, content_type, size, charset, content_type_extra)
        self.sha256 = ""


def field_limit(field_name: str) -> int:
    return settings.FORGE_MAX_ARTIFACT_BYTES if field_name in ARTIFACT_FIELDS else settings.FORGE_MAX_COMPANION_BYTES


def human_bytes(value: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value} bytes"


def upload_errors(request: HttpRequest) -> dict[str, str]:
    return getattr(request, "forge_upload_errors", {})


class HashingUploadHandler(FileUploadHandler):
    """Writes each uploaded file to disk in 1 MiB chunks, hashing as it goes; refuses a file over its limit."""

    chunk_size = CHUNK_SIZE

    def _errors(self) -> dict[str, str]:
        if self.request is None:
            return {}
        if not hasattr(self.request, "forge_upload_errors"):
            self.request.forge_upload_errors = {}  # type: ignore[attr-defined]
        return self.request.forge_upload_errors  # type: ignore[attr-defined]

    def handle_raw_input(
        self, input_data: Any, META: Any, content_length: int, boundary: Any, encoding: str | None = None
    ) -> tuple[QueryDict, MultiValueDict] | None:
        limit = settings.FORGE_MAX_ARTIFACT_BYTES + 2 * settings.FORGE_MAX_COMPANION_BYTES + MULTIPART_SLACK
        if content_length and content_length > limit:
            # Refuse before reading a byte: the request is larger than any acceptable upload.
            self._errors()["artifact"] = (
                f"The upload is {human_bytes(content_length)}; the limit for an artifact is "
                f"{human_bytes(settings.FORGE_MAX_ARTIFACT_BYTES)}."
            )
            return QueryDict(mutable=True), MultiValueDict()
        return None

    def new_file(
        self,
        field_name: str,
        file_name: str,
        content_type: str,
        content_length: int | None,
        charset: str | None = None,
        content_type_extra: Any = None,
    ) -> None:
        super().new_file(field_name, file_name, content_type, content_length, charset, content_type_extra)
        self.file = HashedUploadedFile(file_name, content_type, 0, charset, content_type_extra)
        self.hasher = hashlib.sha256()
        self.written = 0
        self.limit = field_limit(field_name)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.written += len(raw_data)
        if self.written > self.limit:
            self._errors()[self.field_name] = (
                f"{self.file_name} is larger than the limit of {human_bytes(self.limit)} for {self.field_name}."
            )
            raise StopUpload(connection_reset=False)
        self.hasher.update(raw_data)
        self.file.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> HashedUploadedFile:
        self.file.seek(0)
        self.file.size = file_size
        self.file.sha256 = self.hasher.hexdigest()
        self.file.flush()
        return self.file


@dataclass(frozen=True)
class StoredFile:
    name: str
    sha256: str
    size: int
    created: bool


def artifact_storage() -> Storage:
    return storages["artifacts"]


def _sha256_of(file: UploadedFile) -> str:
    digest = getattr(file, "sha256", "")
    if digest:
        return digest
    hasher = hashlib.sha256()
    file.seek(0)
    for chunk in file.chunks(CHUNK_SIZE):
        hasher.update(chunk)
    file.seek(0)
    return hasher.hexdigest()


def artifact_store(file: UploadedFile, *, kind: str, suffix: str) -> StoredFile:
    """File the upload under `<kind>/<sha[:2]>/<sha><suffix>`; identical content is stored once."""
    sha = _sha256_of(file)
    name = f"{kind}/{sha[:2]}/{sha}{suffix}"
    storage = artifact_storage()
    if storage.exists(name):
        return StoredFile(name=name, sha256=sha, size=file.size or 0, created=False)
    saved = storage.save(name, file)
    if saved != name:  # another request stored the same bytes at the same moment
        storage.delete(saved)
        return StoredFile(name=name, sha256=sha, size=file.size or 0, created=False)
    return StoredFile(name=name, sha256=sha, size=file.size or 0, created=True)


def artifact_discard(stored: StoredFile | None) -> None:
    """Remove a file this request stored, when the version that would reference it was not written."""
    if stored is not None and stored.created:
        artifact_storage().delete(stored.name)


@contextmanager
def artifact_local_copy(name: str) -> Iterator[str]:
    """A local path for a stored file while the block runs: the storage's own file for a filesystem backend, or a
    temporary copy (removed afterwards) for object storage."""
    storage = artifact_storage()
    try:
        yield storage.path(name)
        return
    except NotImplementedError:  # object storage has no local path
        pass
    settings.FORGE_UPLOAD_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=settings.FORGE_UPLOAD_DIR, suffix=os.path.basename(name)) as tmp:
        with storage.open(name, "rb") as src:
            for chunk in iter(lambda: src.read(CHUNK_SIZE), b""):
                tmp.write(chunk)
        tmp.flush()
        yield tmp.name
