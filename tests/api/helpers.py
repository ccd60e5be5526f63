"""Helpers for driving the API as a client would: Bearer tokens and multipart uploads."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.response import Response
from rest_framework.test import APIClient

from forge_site.tokens import token_create
from models_registry.artifacts import HashedUploadedFile
from tests.torchscript_models import MLP_SPEC, mlp_bytes


@cache
def mlp(seed: int = 0) -> bytes:
    """A real TorchScript MLP (scripting takes a moment, so each seed is built once per session)."""
    return mlp_bytes(seed)


def bearer_client(user: User, **token_args: Any) -> APIClient:
    """A client that authenticates the way CI does: `Authorization: Bearer <token>`."""
    _, plain = token_create(user=user, name="tests", **token_args)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


def temp_upload(name: str, data: bytes) -> HashedUploadedFile:
    """An upload as HashingUploadHandler leaves it (a temp file on disk), for calling services directly."""
    file = HashedUploadedFile(name, "application/octet-stream", len(data), None, None)
    file.write(data)
    file.seek(0)
    return file


def upload(
    client: APIClient,
    model: str,
    version: str,
    data: bytes,
    *,
    spec: Any = MLP_SPEC,
    filename: str = "model.pt",
    **fields: Any,
) -> Response:
    body: dict[str, Any] = {"version": version, "artifact": SimpleUploadedFile(filename, data), **fields}
    if spec is not None:
        body["input_spec"] = spec if isinstance(spec, str) else json.dumps(spec)
    return client.post(f"/api/v1/models/{model}/versions/", body, format="multipart")


def error_of(response: Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "field"}, body
    return body["error"]


def files_under(folder: str | Path) -> set[str]:
    root = Path(folder)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def storage_files() -> set[str]:
    return files_under(settings.FORGE_STORAGE)


def upload_dir_files() -> set[str]:
    return files_under(settings.FORGE_UPLOAD_DIR)


def mlp_version(
    model: Any, user: User, version: str, *, onnx: bool = False, ready: bool = True, spec: Any = MLP_SPEC
) -> Any:
    """A version of the real TorchScript MLP, marked ready as inspection would (no worker needed). The ONNX
    companion, when asked for, is placeholder bytes: pages and the API only need to know it is there."""
    from models_registry.services import version_create, version_record_inspection

    mv = version_create(
        model=model,
        version=version,
        artifact=temp_upload("m.pt", mlp(len(version))),
        input_spec=spec,
        onnx=SimpleUploadedFile("m.onnx", b"\x08\x07onnx-bytes") if onnx else None,
        created_by=user,
    )
    if ready:
        mv = version_record_inspection(version_id=mv.pk, ok=True, inspection={"parameters": 1}, reason="")
    return mv
