"""Registry writes. Services change rows and record the audit event in one transaction; side effects (enqueueing a
job) happen when the transaction commits."""

from models_registry.services.registry import (
    INSPECT_TASK,
    RegistryError,
    alias_clear,
    alias_set,
    model_create,
    model_update,
    version_create,
    version_inspect,
    version_record_inspection,
    version_update_metadata,
)
from models_registry.services.retirement import model_retire, version_retire
from models_registry.services.runs import (
    BENCHMARK_TASK,
    EVAL_DTYPES,
    MAX_BATCH,
    MAX_SAMPLES,
    PARITY_TASK,
    benchmark_start,
    parity_start,
)

__all__ = [
    "BENCHMARK_TASK",
    "EVAL_DTYPES",
    "INSPECT_TASK",
    "MAX_BATCH",
    "MAX_SAMPLES",
    "PARITY_TASK",
    "RegistryError",
    "alias_clear",
    "alias_set",
    "benchmark_start",
    "model_create",
    "model_retire",
    "model_update",
    "parity_start",
    "version_create",
    "version_inspect",
    "version_record_inspection",
    "version_retire",
    "version_update_metadata",
]
