"""Scoring a baseline with the version's own TorchScript artifact, inside the job sandbox (no Django).

A request kind of the job sandbox (settings FORGE_SANDBOX_HANDLERS): `{"type": "score_baseline", "candidate":
{"path", "sha256", "label"}, "inputs": <.npy of float32 (rows, N)>, "output": <.npy to write>, "device",
"batch_size"}`. The model is loaded through the sandbox's artifact cache (torch.jit.load only, after the archive's
structural check) and run in batches; the outputs become one prediction per row:

- one value per row (shape (n,) or (n, 1)): that value, a score;
- two values per row: softmax, the second class's probability (a binary classifier's logits or probabilities);
- more: the argmax class, as text (a multi-class classifier).
"""

from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT_BATCH = 4096


def predictions_from_outputs(outputs: np.ndarray) -> tuple[np.ndarray, str]:
    """One prediction per row from a model's outputs, and how it was read (see the module docstring)."""
    if outputs.ndim == 1 or (outputs.ndim == 2 and outputs.shape[1] == 1):
        return outputs.reshape(-1).astype(np.float64), "score"
    if outputs.ndim == 2 and outputs.shape[1] == 2:
        logits = outputs.astype(np.float64)
        if np.all(logits >= 0) and np.allclose(logits.sum(axis=1), 1.0, atol=1e-4):
            return logits[:, 1], "probability of class 1"
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted[:, 1] / shifted.sum(axis=1), "softmax of 2 logits, class 1"
    if outputs.ndim == 2:
        return outputs.argmax(axis=1).astype(str).astype(object), "argmax class"
    raise ValueError(f"outputs of shape {tuple(outputs.shape)} do not give one prediction per row")


def score_baseline(request: dict[str, Any], channel: Any, cache: Any) -> dict[str, Any]:
    import torch

    from models_registry.sandbox import runners
    from models_registry.sandbox.job_sandbox import Refused, _check_archive

    device, fallback = runners.resolve_device(request.get("device") or "auto", allow_fallback=True)
    runners.strict_float32()
    channel.send({"type": "device", "device": device})
    spec = request["candidate"]
    channel.progress(1, "loading the model", force=True)
    _check_archive(spec["path"], spec["sha256"], request)
    module, hit = cache.torchscript(path=spec["path"], sha256=spec["sha256"], device=device, dtype="float32")
    inputs = np.load(request["inputs"], allow_pickle=False)
    if inputs.ndim != 2:
        raise Refused(f"the baseline's features are not a 2-D matrix (shape {inputs.shape})")
    batch = int(request.get("batch_size") or DEFAULT_BATCH)
    parts = []
    with torch.inference_mode():
        for start in range(0, len(inputs), batch):
            tensor = torch.from_numpy(np.ascontiguousarray(inputs[start : start + batch], dtype=np.float32))
            output = module(tensor.to(device))
            if isinstance(output, tuple | list):
                output = output[0]
            if not isinstance(output, torch.Tensor):
                raise Refused(f"the model returned {type(output).__name__}, not a tensor")
            parts.append(output.detach().float().cpu().numpy())
            channel.progress(5 + 90 * min(1.0, (start + batch) / len(inputs)), f"scored {start + batch:,} rows")
    outputs = np.concatenate(parts) if parts else np.empty((0,))
    try:
        values, reading = predictions_from_outputs(outputs)
    except ValueError as exc:
        raise Refused(str(exc)) from None
    kind = "categorical" if values.dtype == object else "numeric"
    np.save(request["output"], values.astype(str) if kind == "categorical" else values, allow_pickle=False)
    return {
        "rows": len(values),
        "kind": kind,
        "reading": reading,
        "output_shape": list(outputs.shape),
        "device": device,
        "fallback": fallback,
        "artifact_cache": "hit" if hit else "miss",
    }
