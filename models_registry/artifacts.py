"""Artifact intake and storage: stream uploads to disk while hashing, then file them by SHA-256."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.db import connection, transaction
from django.http import HttpRequest
from django.http.request import QueryDict
from django.utils.datastructures import MultiValueDict

logger = logging.getLogger(__name__)

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
    """A file field's size limit: the artifact's, a limit an app declared for its field in
    FORGE_UPLOAD_FIELD_LIMITS (e.g. governance's data files), or the companions'."""
    if field_name in ARTIFACT_FIELDS:
        return settings.FORGE_MAX_ARTIFACT_BYTES
    return int(getattr(settings, "FORGE_UPLOAD_FIELD_LIMITS", {}).get(field_name, settings.FORGE_MAX_COMPANION_BYTES))


def human_bytes(value: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value} bytes"


def upload_errors(request: HttpRequest) -> dict[str, str]:
    return getattr(request, "forge_upload_errors", {})


def repeated_file_part(files: MultiValueDict) -> tuple[str, str] | None:
    """(field, message) for the first file field sent more than once: a form keeps only the last part of a name,
    so a second `artifact` would silently replace the first."""
    for part in files:
        count = len(files.getlist(part))
        if count > 1:
            return part, f"The upload has {count} file parts named {part!r}; send exactly one {part} file."
    return None


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
        if getattr(self.request, "forge_data_upload", False):
            # A view that takes a data file (it set the flag before reading the body): its field's limit applies.
            limit = max([limit, *getattr(settings, "FORGE_UPLOAD_FIELD_LIMITS", {}).values()]) + MULTIPART_SLACK
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
    file: UploadedFile = field(repr=False, compare=False)  # the upload it came from, to store it again if need be


class ArtifactStoreError(Exception):
    """The artifact store could not be written (read-only, full, unreachable). The message is for the person who
    uploaded; the cause, with the server's paths, goes to the log."""


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


# Content-addressed files are shared: every version with the same bytes references the same name, and a request
# that stored a file cannot know whether another request (or a version row) uses it by now. So a file is deleted
# only by `artifact_discard`, and only when no row references it, decided under a lock on its name; and a request
# re-checks its file under the same lock, in the transaction that writes its row, and stores it again if a clean-up
# removed it meanwhile (it still holds the upload). Either the clean-up runs first and the writer re-stores the
# file, or the writer commits first and the clean-up sees its row. A file that nothing references is left behind
# only if a process dies between storing it and deciding; such orphans are harmless (see docs/architecture.md).


def _lock_name(name: str) -> None:
    """Take the transaction-scoped lock on one stored name. PostgreSQL: an advisory lock keyed by the name's hash.
    SQLite: a write transaction already holds the database's single write lock (transaction_mode IMMEDIATE)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("the lock on a stored name is held by a transaction; call this inside one")
    if connection.vendor == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def _present(storage: Storage, name: str, size: int) -> bool:
    # A file of the wrong size is a leftover of a write that never finished (before writes were atomic): replace it.
    return bool(storage.exists(name)) and storage.size(name) == size


def _write(storage: Storage, name: str, file: UploadedFile) -> None:
    """Store `file` under `name` so that a reader sees the whole file or none of it."""
    try:
        final = Path(storage.path(name))
    except NotImplementedError:  # object storage: an object appears whole, or not at all, when its upload ends
        file.seek(0)
        saved = storage.save(name, file)
        if saved != name:  # the same bytes are there already (a concurrent request, or file_overwrite=False)
            storage.delete(saved)
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.parent / f".{final.name}.{uuid.uuid4().hex}.partial"
    try:
        try:
            # The upload is a finished temporary file (HashingUploadHandler): on the same filesystem, a second name
            # for it costs nothing, where a copy of 2 GiB would halve the upload's throughput.
            os.link(file.temporary_file_path(), partial)  # type: ignore[attr-defined]
        except (AttributeError, OSError):  # not a temporary file, or another filesystem: copy it
            with open(partial, "xb") as out:
                file.seek(0)
                for chunk in file.chunks(CHUNK_SIZE):
                    out.write(chunk)  # a buffered write raises on a short write (a full disk), unlike os.write
        os.chmod(partial, getattr(storage, "file_permissions_mode", None) or 0o640)
        os.replace(partial, final)  # atomic on one filesystem: a reader sees the whole file or none of it
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise


def _store_failed(name: str, exc: Exception) -> ArtifactStoreError:
    logger.error("the artifact store could not store %s", name, exc_info=exc)
    cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
    return ArtifactStoreError(
        f"The artifact store is not accepting files ({cause}); nothing was stored. This is a server problem, "
        "not a problem with the upload: try again later, or ask an operator to check that the artifact store "
        "(FORGE_STORAGE) is writable and has space."
    )


def artifact_store(file: UploadedFile, *, kind: str, suffix: str) -> StoredFile:
    """File the upload under `<kind>/<sha[:2]>/<sha><suffix>`; identical content is stored once. Raises
    ArtifactStoreError when the store cannot take it, leaving no partial file."""
    sha = _sha256_of(file)
    stored = StoredFile(name=f"{kind}/{sha[:2]}/{sha}{suffix}", sha256=sha, size=file.size or 0, file=file)
    storage = artifact_storage()
    try:
        if not _present(storage, stored.name, stored.size):
            _write(storage, stored.name, file)
    except Exception as exc:
        raise _store_failed(stored.name, exc) from exc
    return stored


def artifact_claim(stored: StoredFile) -> None:
    """Make sure a stored file is there for the row about to reference it. Call inside the transaction that writes
    the row: it holds the name's lock until the row commits, so no clean-up can delete the file in between."""
    _lock_name(stored.name)
    storage = artifact_storage()
    try:
        if not _present(storage, stored.name, stored.size):  # a concurrent clean-up removed it: store it again
            logger.info("stored file %s was removed by a concurrent clean-up; storing it again", stored.name)
            _write(storage, stored.name, stored.file)
    except Exception as exc:
        raise _store_failed(stored.name, exc) from exc


def artifact_discard(stored: StoredFile | None, *, referenced: Callable[[str], bool]) -> None:
    """Delete a stored file when no row references it any more (`referenced(name)` says; the kind's owner knows
    which rows can). Decided under the name's lock, so a writer that is about to reference it stores it again."""
    if stored is None:
        return
    try:
        with transaction.atomic():
            _lock_name(stored.name)
            if not referenced(stored.name):
                artifact_storage().delete(stored.name)
    except Exception:  # a clean-up that fails leaves an orphan, which is harmless; the original error matters
        logger.exception("could not remove unreferenced stored file %s", stored.name)


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
