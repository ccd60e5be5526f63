"""gunicorn config for benchmark runs: `upload_memory.py --chunk-size N` overrides the upload handler's chunk size."""

from __future__ import annotations

import os
from typing import Any


def post_worker_init(worker: Any) -> None:
    override = os.environ.get("FORGE_BENCH_UPLOAD_CHUNK")
    if override:
        from models_registry.artifacts import HashingUploadHandler

        HashingUploadHandler.chunk_size = int(override)
