"""Parity between a candidate and a reference on the same inputs: per-output error statistics, streamed over batches.

Pure module (no Django, no Celery). Outputs are compared leaf by leaf (tuples, lists and dicts are walked) with
the closeness rule of `torch.testing.assert_close`: an element is out of tolerance when |a - b| > atol + rtol * |b|,
b being the reference. Batches are buffered and compared in vectorised chunks accumulated in float64, so the
comparison costs little next to the two forward passes and memory stays bounded.
"""

from models_registry.parity.compare import (
    CHUNK_ELEMENTS,
    DEFAULT_TOLERANCES,
    HISTOGRAM_BINS,
    HISTOGRAM_EDGES,
    HISTOGRAM_HIGH,
    HISTOGRAM_LOW,
    HISTOGRAM_STEP,
    HostLeaf,
    ParityComparison,
    ParityError,
    concat_outputs,
    flatten_output,
    log10_bins,
    to_host,
    tolerance_for,
)
from models_registry.parity.inputs import array_batches, available_rows, batch_count, random_inputs, spec_batches
from models_registry.parity.run import ParityCancelled, run_parity

__all__ = [
    "CHUNK_ELEMENTS",
    "DEFAULT_TOLERANCES",
    "HISTOGRAM_BINS",
    "HISTOGRAM_EDGES",
    "HISTOGRAM_HIGH",
    "HISTOGRAM_LOW",
    "HISTOGRAM_STEP",
    "HostLeaf",
    "ParityCancelled",
    "ParityComparison",
    "ParityError",
    "array_batches",
    "available_rows",
    "batch_count",
    "concat_outputs",
    "flatten_output",
    "log10_bins",
    "random_inputs",
    "run_parity",
    "spec_batches",
    "to_host",
    "tolerance_for",
]
