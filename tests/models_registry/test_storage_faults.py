"""An artifact store that cannot take a file (not a directory, a read-only mount, a full disk) answers 503 with a
message an operator can act on, in the API's shape and on the upload form, and leaves nothing half-written: no
row, no job, no audit event, no partial file, no temporary upload. The tests run as root, which ignores file
permissions, so the faults are real filesystem ones: a store path under a regular file, and tmpfs mounts that are
read-only or too small (where this machine lets the tests mount; the first case runs everywhere)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.urls import reverse

from forge_site.models import AuditEvent, Job
from models_registry.artifacts import artifact_storage
from models_registry.models import ModelVersion
from models_registry.services import model_create
from tests.api.helpers import bearer_client, error_of, mlp, upload, upload_dir_files
from tests.conftest import PASSWORD
from tests.torchscript_models import MLP_SPEC

pytestmark = pytest.mark.django_db

STRERROR = {"not-a-directory": "Not a directory", "read-only": "Read-only file system", "full": "No space left"}


def _mount(target: Path, options: str) -> bool:
    target.mkdir(parents=True, exist_ok=True)
    return (
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True).returncode
        == 0
    )


@pytest.fixture(params=list(STRERROR))
def broken_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The artifact store moved to a location where writes fail, for the length of the test."""
    fault = request.param
    mounted = False
    if fault == "not-a-directory":
        (tmp_path / "store").write_text("a file where the store's directory should be")
        location = tmp_path / "store" / "artifacts"
    else:
        location = tmp_path / "mnt"
        # A read-only tmpfs; or one of two pages, smaller than the artifact, so the write fails part way through.
        mounted = _mount(location, "ro,size=64k" if fault == "read-only" else "size=8k,nr_inodes=64")
        if not mounted:
            pytest.skip("this machine does not let the tests mount a tmpfs")
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "artifacts": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(location)}},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    try:
        with override_settings(STORAGES=storages, FORGE_STORAGE=str(location)):
            yield fault, location
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(location)], check=False)


def _files(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.is_dir() else []


def _nothing_written(location: Path, temp_before: set[str]) -> None:
    assert ModelVersion.objects.count() == 0 and Job.objects.count() == 0
    assert not AuditEvent.objects.filter(action__in=["version.upload", "job.queue"]).exists()
    assert _files(location) == [], "a partial file was left in the store"
    left = upload_dir_files() - temp_before
    assert not left, f"the temporary upload was left behind: {left}"


def test_the_api_answers_503_in_its_error_shape_and_writes_nothing(broken_store, engineer) -> None:
    fault, location = broken_store
    model_create(name="credit-risk", owner=engineer)
    temp_before = upload_dir_files()
    response = upload(bearer_client(engineer), "credit-risk", "1.0.0", mlp())
    assert response.status_code == 503, response.content
    error = error_of(response)
    assert error["code"] == "storage_unavailable" and error["field"] is None
    assert STRERROR[fault] in error["message"] and "nothing was stored" in error["message"]
    assert "FORGE_STORAGE" in error["message"]  # what an operator should look at
    assert str(location) not in error["message"] and "/tmp" not in error["message"]  # no server paths
    _nothing_written(location, temp_before)


def _form(version: str = "1.0.0") -> dict[str, Any]:
    return {
        "version": version,
        "artifact": SimpleUploadedFile("model.pt", mlp()),
        "input_spec": json.dumps(MLP_SPEC),
        "metrics": "",
        "tags": "",
    }


def test_the_upload_form_shows_the_error_and_writes_nothing(broken_store, engineer) -> None:
    fault, location = broken_store
    model_create(name="credit-risk", owner=engineer)
    client = Client()
    assert client.login(username=engineer.username, password=PASSWORD)
    temp_before = upload_dir_files()
    url = reverse("registry:version_upload", args=["credit-risk"])
    page = client.post(url, _form())
    assert page.status_code == 503
    assert any(STRERROR[fault] in message for message in page.context["form"].non_field_errors())
    assert STRERROR[fault] in page.content.decode()
    xhr = client.post(url, _form(), HTTP_X_REQUESTED_WITH="XMLHttpRequest", HTTP_ACCEPT="application/json")
    assert xhr.status_code == 503 and xhr.json()["error"]["code"] == "storage_unavailable"
    _nothing_written(location, temp_before)


def test_once_the_full_store_has_room_the_same_upload_succeeds(tmp_path, engineer) -> None:
    """The failed write left no partial file under the artifact's name that a retry would take for the artifact."""
    location = tmp_path / "mnt"
    if not _mount(location, "size=8k,nr_inodes=64"):
        pytest.skip("this machine does not let the tests mount a tmpfs")
    try:
        storages = {
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "artifacts": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(location)},
            },
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
        with override_settings(STORAGES=storages, FORGE_STORAGE=str(location)):
            model_create(name="credit-risk", owner=engineer)
            client = bearer_client(engineer)
            assert upload(client, "credit-risk", "1.0.0", mlp()).status_code == 503
            subprocess.run(["mount", "-o", "remount,size=1m", str(location)], check=True)
            response = upload(client, "credit-risk", "1.0.0", mlp())
            assert response.status_code == 201, response.content
            stored = artifact_storage().path(ModelVersion.objects.get().artifact)
            assert hashlib.sha256(Path(stored).read_bytes()).hexdigest() == hashlib.sha256(mlp()).hexdigest()
    finally:
        subprocess.run(["umount", "-l", str(location)], check=False)


def test_an_artifact_that_cannot_be_read_answers_503_not_a_server_error(engineer) -> None:
    """A read fault (here: the artifact's name is a directory, EISDIR) is the store's problem, said in the API's
    shape."""
    model_create(name="credit-risk", owner=engineer)
    client = bearer_client(engineer)
    assert upload(client, "credit-risk", "1.0.0", mlp()).status_code == 201
    path = Path(artifact_storage().path(ModelVersion.objects.get().artifact))
    path.unlink()
    path.mkdir()
    try:
        response = client.get("/api/v1/models/credit-risk/versions/1.0.0/artifact/")
        assert response.status_code == 503
        error = error_of(response)
        assert error["code"] == "storage_unavailable" and "Is a directory" in error["message"]
        assert str(path) not in error["message"]
    finally:
        path.rmdir()
