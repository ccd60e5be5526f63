"""Hostile and broken uploads through the API: each gets a clear error, nothing runs, nothing is left behind."""

from __future__ import annotations

import io
import json
import random
import zipfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import cache
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from forge_site.models import ApiToken, AuditEvent, Job
from forge_site.tokens import token_revoke
from models_registry.artifacts import artifact_storage
from models_registry.models import ModelVersion, VersionStatus
from models_registry.services import model_create, version_inspect
from tests.api.helpers import bearer_client, error_of, mlp, storage_files, upload, upload_dir_files
from tests.conftest import wait_for
from tests.hostile_pickles import duplicate_member, memo_trick_protocol4, plain_exploit, swap_member
from tests.torchscript_models import (
    MLP_SPEC,
    hostile_pickle_bytes,
    state_dict_bytes,
    swapped_pickle_archive,
    zip_bomb_bytes,
)

PWNED = Path("/tmp/forge-pwned")


@cache
def zip_bomb() -> bytes:
    return zip_bomb_bytes()


def random_bytes() -> bytes:
    # A fixed seed, and a first byte that is neither a zip nor a pickle header, so the message is stable.
    return b"\x00" + random.Random(7).randbytes(64 * 1024)


def truncated() -> bytes:
    whole = mlp()
    return whole[: len(whole) // 2]


def broken_code_archive() -> bytes:
    """A structurally sound TorchScript archive whose code no longer compiles: only loading it can tell."""
    src = zipfile.ZipFile(io.BytesIO(mlp()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            # The class's code file; a mangled name (…/torchscript_models/___torch_mangle_3.py) when this process
            # scripted the class before.
            if "/code/__torch__/tests/torchscript_models" in info.filename and info.filename.endswith(".py"):
                data = data.replace(b"return (net).forward(x, )", b"return (net).forward(x, ")
            dst.writestr(info, data)
    return out.getvalue()


@pytest.fixture
def no_trace() -> Iterator[Callable[[int], None]]:
    """Snapshot storage and the upload folder; `check(versions)` asserts nothing new and nothing executed."""
    PWNED.unlink(missing_ok=True)
    stored, temp = storage_files(), upload_dir_files()
    jobs, uploads = Job.objects.count(), AuditEvent.objects.filter(action="version.upload").count()

    def check(versions: int = 0) -> None:
        assert not PWNED.exists(), "an uploaded payload was executed"
        assert ModelVersion.objects.count() == versions
        assert storage_files() == stored, "a refused upload left a file in artifact storage"
        assert upload_dir_files() == temp, "a refused upload left a temporary file behind"
        assert Job.objects.count() == jobs
        assert AuditEvent.objects.filter(action="version.upload").count() == uploads

    yield check
    assert not PWNED.exists()


@pytest.fixture
def credit(engineer):
    return model_create(name="credit-risk", owner=engineer, risk_tier="high")


HOSTILE_FILES = [
    ("random-bytes", random_bytes, "bad_artifact", "it is not a zip file"),
    ("empty-file", lambda: b"", "invalid", "The artifact file is empty."),
    ("text-file", lambda: b"def forward(x):\n    return x * 2\n", "bad_artifact", "This is a text file"),
    ("pickle-payload", hostile_pickle_bytes, "bad_artifact", "plain Python pickle"),
    ("torch-save-state-dict", state_dict_bytes, "bad_artifact", "torch.save checkpoint"),
    ("truncated-archive", truncated, "bad_artifact", "damaged or truncated"),
    ("zip-bomb", zip_bomb, "bad_artifact", "zip bomb"),
    ("swapped-pickle", lambda: swapped_pickle_archive(mlp()), "bad_artifact", "looks tampered with"),
    ("memo-trick", lambda: swap_member(mlp(), "/data.pkl", memo_trick_protocol4()), "bad_artifact", "os.system"),
    ("payload-in-a-debug-pickle", lambda: swap_member(mlp(), ".debug_pkl", plain_exploit(2)), "bad_artifact", "system"),
    (
        "second-data-pkl",
        lambda: duplicate_member(mlp(), "/data.pkl", plain_exploit(2)),
        "bad_artifact",
        "more than once",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("make", "code", "needle"), [c[1:] for c in HOSTILE_FILES], ids=[c[0] for c in HOSTILE_FILES])
def test_it_refuses_a_hostile_artifact(engineer, credit, no_trace, make, code, needle):
    response = upload(bearer_client(engineer), "credit-risk", "1.0.0", make())
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == code and error["field"] == "artifact"
    assert needle in error["message"]
    no_trace()


BAD_SPECS = [
    ("malformed-json", "{inputs: [x]", "input_spec is not valid JSON"),
    ("wrong-shape", json.dumps({"x": [None, 32]}), "input_spec must be an object like"),
    ("no-inputs", json.dumps({"inputs": []}), "at least one input"),
    (
        "negative-dim",
        json.dumps({"inputs": [{"name": "x", "shape": [-1, 32], "dtype": "float32"}]}),
        "sizes are positive integers or null",
    ),
    (
        "unknown-dtype",
        json.dumps({"inputs": [{"name": "x", "shape": [None, 32], "dtype": "complex1024"}]}),
        "is not one of",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("spec", "needle"), [c[1:] for c in BAD_SPECS], ids=[c[0] for c in BAD_SPECS])
def test_it_refuses_a_bad_input_spec(engineer, credit, no_trace, spec, needle):
    response = upload(bearer_client(engineer), "credit-risk", "1.0.0", mlp(), spec=spec)
    assert response.status_code == 400
    error = error_of(response)
    assert error["field"] == "input_spec" and needle in error["message"]
    no_trace()


@pytest.mark.django_db
def test_it_refuses_a_duplicate_version_string(engineer, credit, no_trace):
    client = bearer_client(engineer)
    first = upload(client, "credit-risk", "1.0.0", mlp(0))
    assert first.status_code == 201
    before = storage_files()
    again = upload(client, "credit-risk", "1.0.0", mlp(1))
    assert again.status_code == 409
    error = error_of(again)
    assert error["code"] == "duplicate" and error["field"] == "version"
    assert "already has a version '1.0.0'" in error["message"] and "immutable" in error["message"]
    assert ModelVersion.objects.get().sha256 == first.json()["sha256"]
    assert storage_files() == before


@pytest.mark.django_db
def test_it_refuses_an_artifact_over_the_size_limit(engineer, credit, no_trace):
    with override_settings(FORGE_MAX_ARTIFACT_BYTES=1024):
        response = upload(bearer_client(engineer), "credit-risk", "1.0.0", mlp())
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "too_large" and error["field"] == "artifact"
    assert "larger than the limit of 1.0 KiB" in error["message"]
    no_trace()


@pytest.mark.django_db
def test_it_refuses_a_request_too_large_for_any_upload_before_reading_it(engineer, credit, no_trace):
    with override_settings(FORGE_MAX_ARTIFACT_BYTES=1024, FORGE_MAX_COMPANION_BYTES=1024):
        # 2 MiB: more than an artifact, two companions and the form fields could add up to.
        response = upload(bearer_client(engineer), "credit-risk", "1.0.0", random_bytes() * 32)
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "too_large" and error["field"] == "artifact"
    assert error["message"].startswith("The upload is 2.0 MiB; the limit for an artifact is 1.0 KiB")
    no_trace()


@pytest.mark.django_db
def test_it_refuses_a_companion_over_its_limit(engineer, credit, no_trace):
    with override_settings(FORGE_MAX_COMPANION_BYTES=16):
        response = upload(
            bearer_client(engineer), "credit-risk", "1.0.0", mlp(), onnx=SimpleUploadedFile("m.onnx", b"o" * 64)
        )
    assert response.status_code == 413
    error = error_of(response)
    assert error["field"] == "onnx" and "m.onnx is larger than the limit" in error["message"]
    no_trace()


@pytest.mark.django_db
def test_it_refuses_an_upload_from_a_role_that_may_not_upload(manager, officer, credit, no_trace):
    for user in (manager, officer):
        response = upload(bearer_client(user), "credit-risk", "1.0.0", mlp())
        assert response.status_code == 403
        assert error_of(response)["message"] == "Your role may not do this (version.upload)."
    no_trace()


@pytest.mark.django_db
def test_it_refuses_an_expired_token(engineer, credit, no_trace):
    client = bearer_client(engineer, days=1)
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = upload(client, "credit-risk", "1.0.0", mlp())
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "expired" in error_of(response)["message"]
    no_trace()


@pytest.mark.django_db
def test_it_refuses_a_revoked_token(engineer, credit, no_trace):
    client = bearer_client(engineer)
    token_revoke(token=ApiToken.objects.get(), actor=engineer)
    response = upload(client, "credit-risk", "1.0.0", mlp())
    assert response.status_code == 401
    assert error_of(response)["message"] == "This token was revoked."
    no_trace()


def _finished(name: str, version: str) -> ModelVersion | None:
    mv = ModelVersion.objects.get(model__name=name, version=version)
    return mv if mv.status != VersionStatus.VALIDATING else None


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_the_worker_keeps_working_after_hostile_and_broken_uploads(celery_worker, engineer):
    PWNED.unlink(missing_ok=True)
    model = model_create(name="credit-risk", owner=engineer)
    client = bearer_client(engineer)
    for make, *_ in (c[1:] for c in HOSTILE_FILES):
        assert upload(client, "credit-risk", "hostile", make()).status_code == 400

    # Sound on the outside, broken inside: passes the web's checks, and only the sandboxed load can refuse it.
    broken = upload(client, "credit-risk", "broken", broken_code_archive())
    assert broken.status_code == 201, broken.content

    # A tampered archive that got into storage behind the web's back: the worker checks again before loading.
    data = swapped_pickle_archive(mlp(2))
    name = artifact_storage().save("torchscript/tampered.pt", ContentFile(data))
    with transaction.atomic():
        tampered = ModelVersion.objects.create(
            model=model, version="tampered", artifact=name, sha256="f" * 64, size=len(data), input_spec=MLP_SPEC
        )
        version_inspect(version=tampered, actor=None)

    good = upload(client, "credit-risk", "1.0.0", mlp())
    assert good.status_code == 201

    rejected = wait_for(lambda: _finished("credit-risk", "broken"), timeout=90)
    assert rejected.status == VersionStatus.REJECTED
    assert rejected.reason.startswith("torch.jit.load could not load this archive")
    refused = wait_for(lambda: _finished("credit-risk", "tampered"), timeout=90)
    assert refused.status == VersionStatus.REJECTED and "tampered" in refused.reason
    ready = wait_for(lambda: _finished("credit-risk", "1.0.0"), timeout=90)
    assert ready.status == VersionStatus.READY, ready.reason
    assert not PWNED.exists()
    assert not ModelVersion.objects.filter(version="hostile").exists()
    artifact_storage().delete(name)
