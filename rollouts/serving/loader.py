"""Loaded TorchScript models of the serving process: once per process, a bounded cache keyed by SHA-256.

Only versions that passed inspection and are usable reach here (rollouts.serving.config checks). Before its first
`torch.jit.load` in this process an artifact is re-checked (its structure, its SHA-256): what is loaded is the file
inspection passed, byte for byte. `torch.jit.load` only, never `torch.load` or pickle.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

import torch

from models_registry.archive import ArchiveRejected, check_torchscript_archive
from models_registry.artifacts import artifact_local_copy


class ModelUnavailable(RuntimeError):
    """The artifact could not be loaded (missing, altered, or refused by the structural check)."""


def _sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ModelCache:
    """Loaded modules by SHA-256, least recently used out first; loads of one artifact are done once."""

    def __init__(self, capacity: int, *, max_uncompressed: int) -> None:
        self.capacity = max(1, capacity)
        self.max_uncompressed = max_uncompressed
        self._modules: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self.loads = 0

    def get(self, *, sha256: str, artifact: str) -> Any:
        module = self._modules.get(sha256)
        if module is not None:
            return module
        with self._lock:
            load_lock = self._loading.setdefault(sha256, threading.Lock())
        with load_lock:
            module = self._modules.get(sha256)
            if module is None:
                module = self._load(sha256, artifact)
                with self._lock:
                    self._modules[sha256] = module
                    while len(self._modules) > self.capacity:
                        self._modules.popitem(last=False)
                    self._loading.pop(sha256, None)
                    self.loads += 1
        with self._lock:
            if sha256 in self._modules:
                self._modules.move_to_end(sha256)
        return module

    def _load(self, sha256: str, artifact: str) -> Any:
        try:
            with artifact_local_copy(artifact) as path:
                if _sha256_of(path) != sha256:
                    raise ModelUnavailable(f"the stored artifact {artifact} no longer has SHA-256 {sha256[:12]}…")
                check_torchscript_archive(path, max_uncompressed=self.max_uncompressed)
                module = torch.jit.load(path, map_location="cpu")
        except ModelUnavailable:
            raise
        except ArchiveRejected as exc:
            raise ModelUnavailable(f"artifact {sha256[:12]}… failed its structural check: {exc}") from exc
        except OSError as exc:
            raise ModelUnavailable(f"artifact {sha256[:12]}… could not be read: {exc}") from exc
        except RuntimeError as exc:
            raise ModelUnavailable(f"torch.jit.load refused artifact {sha256[:12]}…: {str(exc)[:200]}") from exc
        module.eval()
        return module

    def __len__(self) -> int:
        return len(self._modules)
