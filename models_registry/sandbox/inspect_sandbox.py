"""Runs in a throw-away child process with memory and time limits: load TorchScript, describe it, dry-run it.

Reads one JSON request on stdin, writes one JSON answer on stdout. Uses `torch.jit.load` only (never
`torch.load` or pickle); the archive is re-checked structurally first. No Django here.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from typing import Any

from models_registry.archive import ArchiveRejected, check_torchscript_archive
from models_registry.input_spec import InputDecl, InputSpecError, parse_input_spec

DRY_RUN_BATCH = 2
PRODUCER_FILE = "forge_producer.json"


class Rejected(Exception):
    pass


def build_inputs(torch: Any, decls: list[InputDecl], *, seed: int = 0, batch: int = DRY_RUN_BATCH) -> list[Any]:
    from models_registry.parity import random_inputs  # imports torch: only after the archive check

    return random_inputs(decls, batch, torch.Generator().manual_seed(seed))


def load_sample_inputs(torch: Any, path: str, decls: list[InputDecl] | None) -> list[Any]:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
            if decls:
                missing = [d.name for d in decls if d.name not in keys]
                if missing and len(keys) == len(decls):
                    keys_in_order = keys
                elif missing:
                    raise Rejected(f"sample inputs lack arrays named {', '.join(missing)} (found {', '.join(keys)}).")
                else:
                    keys_in_order = [d.name for d in decls]
            else:
                keys_in_order = keys
            arrays = [np.asarray(npz[key]) for key in keys_in_order]
    except Rejected:
        raise
    except Exception as exc:
        raise Rejected(f"sample inputs could not be read as .npz without pickle: {exc}") from exc
    return [torch.from_numpy(array[:DRY_RUN_BATCH].copy()) for array in arrays]


def describe_outputs(torch: Any, value: Any, path: str = "output") -> list[dict[str, Any]]:
    if isinstance(value, torch.Tensor):
        finite = bool(torch.isfinite(value).all()) if value.is_floating_point() else True
        return [
            {
                "path": path,
                "shape": list(value.shape),
                "dtype": str(value.dtype).removeprefix("torch."),
                "finite": finite,
            }
        ]
    if isinstance(value, tuple | list):
        return [leaf for i, item in enumerate(value) for leaf in describe_outputs(torch, item, f"{path}[{i}]")]
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in describe_outputs(torch, item, f"{path}[{key!r}]")]
    return [
        {"path": path, "type": type(value).__name__, "value": value if isinstance(value, int | float | bool) else None}
    ]


def _tensors_in(torch: Any, value: Any, depth: int = 0) -> list[Any]:
    if depth > 8:
        return []
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, tuple | list):
        return [t for item in value for t in _tensors_in(torch, item, depth + 1)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors_in(torch, item, depth + 1)]
    if (
        isinstance(value, torch.ScriptObject)
        and not isinstance(value, torch._C.ScriptModule)
        and value._has_method("__getstate__")
    ):
        return _tensors_in(torch, value.__getstate__(), depth + 1)
    return []


def packed_weights(torch: Any, module: Any) -> list[Any]:
    """Weights that are not parameters: quantized layers keep theirs in packed objects (LinearPackedParamsBase,
    Conv2dPackedParamsBase), whose state holds the qint8 weight and float bias. Floating and quantized tensors only
    (a packed convolution also keeps its strides and padding as an int16 tensor)."""
    found = []
    for _name, submodule in module.named_modules():
        try:
            attributes = torch._C.ConcreteModuleType.from_jit_type(submodule._c._type()).get_attributes()
            values = [submodule._c.getattr(attribute) for attribute in attributes]
            for value in values:
                if isinstance(value, torch.ScriptObject) and not isinstance(value, torch._C.ScriptModule):
                    found += [t for t in _tensors_in(torch, value) if t.is_floating_point() or t.is_quantized]
        except Exception:  # noqa: S112 - a description, never a reason to refuse a model that loaded and runs
            continue
    return found


def inspect(request: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    facts = check_torchscript_archive(request["artifact"], max_uncompressed=request["max_uncompressed"])
    import torch

    torch.set_num_threads(max(1, int(request.get("threads", 1))))
    extra = {PRODUCER_FILE: ""}
    load_started = time.perf_counter()
    try:
        module = torch.jit.load(request["artifact"], map_location="cpu", _extra_files=extra)
    except Exception as exc:
        raise Rejected(f"torch.jit.load could not load this archive: {str(exc).splitlines()[0][:400]}") from exc
    load_s = time.perf_counter() - load_started
    module.eval()
    params = list(module.parameters())
    buffers = list(module.buffers())
    packed = packed_weights(torch, module)
    parameter_dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in params})
    methods = sorted(module._c._method_names())
    if "forward" not in methods:
        raise Rejected("The TorchScript module has no forward method.")
    try:
        operators = sorted(set(torch.jit.export_opnames(module)))
    except Exception:
        operators = []
    producer: dict[str, Any] = {}
    if extra[PRODUCER_FILE]:
        try:
            producer = json.loads(extra[PRODUCER_FILE])
        except ValueError:
            producer = {}
    schema = module.forward.schema
    forward_args = [
        {"name": arg.name, "type": str(arg.type), "has_default": arg.default_value is not None}
        for arg in schema.arguments[1:]
    ]
    result: dict[str, Any] = {
        "parameters": sum(p.numel() for p in params),
        "parameter_tensors": len(params),
        "buffers": sum(b.numel() for b in buffers),
        "buffer_tensors": len(buffers),
        "parameter_dtypes": parameter_dtypes,
        # A quantized model has few or no parameters: its weights are packed (and counted here).
        "packed_parameters": sum(t.numel() for t in packed),
        "weight_dtypes": sorted(set(parameter_dtypes) | {str(t.dtype).removeprefix("torch.") for t in packed}),
        "stored_dtypes": facts.storage_dtypes,  # every tensor the archive stores, from the pickle scan
        "quantization": facts.qschemes,
        "file_size": request.get("size"),
        "format_version": facts.format_version,
        "saved_with_torch": producer.get("torch_version"),
        "loaded_with_torch": torch.__version__,
        "methods": methods,
        "forward_schema": str(schema),
        "forward_args": forward_args,
        "operators": operators,
        "archive": {
            "entries": facts.entries,
            "uncompressed_bytes": facts.uncompressed_bytes,
            "code_files": facts.code_files,
            "globals": facts.globals_seen,
        },
        "load_seconds": round(load_s, 4),
    }
    decls: list[InputDecl] | None = None
    if request.get("input_spec"):
        try:
            decls = parse_input_spec(request["input_spec"])
        except InputSpecError as exc:
            raise Rejected(str(exc)) from exc
        required = [a for a in forward_args if not a["has_default"]]
        if len(decls) < len(required) or len(decls) > len(forward_args):
            raise Rejected(
                f"The input spec declares {len(decls)} input(s) but forward takes {len(required)} required "
                f"argument(s) ({', '.join(a['name'] for a in forward_args)})."
            )
    if request.get("sample_inputs"):
        inputs = load_sample_inputs(torch, request["sample_inputs"], decls)
        source = "sample_inputs"
    elif decls:
        inputs = build_inputs(torch, decls)
        source = "input_spec"
    else:
        raise Rejected("Neither an input spec nor sample inputs were given, so the model cannot be dry-run.")
    run_started = time.perf_counter()
    try:
        with torch.inference_mode():
            output = module(*inputs)
    except Exception as exc:
        message = str(exc).strip().splitlines()
        detail = next((line for line in reversed(message) if line.strip()), type(exc).__name__)
        raise Rejected(
            f"The dry run failed with inputs built from the {source.replace('_', ' ')} "
            f"({', '.join(str(list(t.shape)) + ' ' + str(t.dtype).removeprefix('torch.') for t in inputs)}): "
            f"{detail[:400]}"
        ) from exc
    result["dry_run"] = {
        "source": source,
        "inputs": [
            {
                "name": decls[i].name if decls and i < len(decls) else f"input{i}",
                "shape": list(t.shape),
                "dtype": str(t.dtype).removeprefix("torch."),
            }
            for i, t in enumerate(inputs)
        ],
        "outputs": describe_outputs(torch, output),
        "seconds": round(time.perf_counter() - run_started, 4),
    }
    result["inspect_seconds"] = round(time.perf_counter() - started, 4)
    return result


# What an allocation refused by RLIMIT_AS looks like: torch's allocator, numpy, and the loader mapping torch's own
# libraries when the limit is below what importing torch needs.
OUT_OF_MEMORY_MARKERS = (
    "can't allocate memory",
    "not enough memory",
    "Cannot allocate memory",
    "failed to map segment",
)


def _over_memory_limit() -> str:
    import resource

    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    size = f" ({limit / 1024**3:.1f} GiB, FORGE_INSPECT_MEMORY_BYTES)" if limit != resource.RLIM_INFINITY else ""
    return f"The model needs more memory than the sandbox's limit{size} allows: an allocation failed."


def main() -> int:
    request = json.loads(sys.stdin.read())
    try:
        answer = {"ok": True, "inspection": inspect(request)}
    except (ArchiveRejected, Rejected) as exc:
        answer = {"ok": False, "reason": str(exc)}
    except MemoryError:
        answer = {"ok": False, "reason": _over_memory_limit()}
    except Exception as exc:
        text = str(exc)
        if any(marker in text for marker in OUT_OF_MEMORY_MARKERS):
            answer = {"ok": False, "reason": _over_memory_limit()}
        else:
            answer = {
                "ok": False,
                "reason": f"Inspection failed: {type(exc).__name__}: {text[:400]}",
                "traceback": traceback.format_exc()[-2000:],
            }
    sys.stdout.write("\n" + json.dumps(answer, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
