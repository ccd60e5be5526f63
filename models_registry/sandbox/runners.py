"""Load and run registered artifacts for parity and benchmark jobs: TorchScript and ONNX Runtime, cached by SHA-256.

Pure module (no Django, no Celery): used inside the job sandbox process. TorchScript is loaded with
`torch.jit.load` only, never `torch.load` or pickle.
"""

from __future__ import annotations

import functools
import platform
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

FLOAT_DTYPES = ("float32", "float16", "bfloat16", "float64")

# ONNX Runtime's element type names -> numpy, for feeding inputs in the dtype the graph declares.
_ORT_NUMPY = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}
_NP_FLOAT32 = np.dtype(np.float32)
FALLBACK_HOW = "the form's fallback box, or allow_fallback in the API"  # how a refused device request is let through


class RunnerError(Exception):
    """An artifact could not be loaded or run; the message says what is wrong and what to do."""


def cuda_available() -> bool:
    try:
        return bool(torch.cuda.is_available())
    except Exception:
        return False


def resolve_device(requested: str, *, allow_fallback: bool) -> tuple[str, str | None]:
    """The device a job runs on, and a note when it is not the one asked for."""
    wanted = (requested or "auto").strip().lower()
    if wanted == "auto":
        return ("cuda" if cuda_available() else "cpu"), None
    if wanted == "cpu":
        return "cpu", None
    if wanted != "cuda" and not wanted.startswith("cuda:"):
        raise RunnerError(f"Unknown device {requested!r}: use auto, cpu, cuda or cuda:N.")
    index = 0
    if wanted.startswith("cuda:"):
        suffix = wanted.removeprefix("cuda:")
        if not suffix.isdigit():
            raise RunnerError(f"Unknown device {requested!r}: use auto, cpu, cuda or cuda:N.")
        index = int(suffix)
    visible = torch.cuda.device_count() if cuda_available() else 0
    if visible == 0:
        if allow_fallback:
            return "cpu", f"{requested} was requested but this worker sees no GPU; ran on the CPU (fallback allowed)."
        raise RunnerError(
            f"CUDA was requested ({requested}) but this worker sees no GPU. Run it on a GPU worker, "
            f"or allow a fallback to the CPU ({FALLBACK_HOW})."
        )
    if index >= visible:
        if allow_fallback:
            return "cuda", f"{requested} was requested but this worker sees {visible} GPU(s); ran on cuda:0."
        raise RunnerError(
            f"{requested} was requested but this worker sees {visible} GPU(s) (cuda:0..cuda:{visible - 1}). "
            f"Pick a visible device, or allow a fallback to cuda:0 ({FALLBACK_HOW})."
        )
    return wanted, None


def strict_float32() -> None:
    """Make float32 mean float32 on a GPU: no TF32 in matrix products, convolutions or RNNs.

    PyTorch lets cuDNN run float32 convolutions in TF32 (a 10-bit mantissa) by default. On an H200 that put 30% of
    a small CNN's outputs outside `assert_close`'s float32 tolerance against the CPU (tests/models_registry/
    test_gpu.py). Parity must compare what was asked for, and a float32 benchmark must time float32; float16 and
    bfloat16 are the dtypes for trading precision for speed.
    """
    backends: Any = torch.backends
    if hasattr(backends, "fp32_precision"):  # torch >= 2.9; never mix in the legacy allow_tf32 flags
        backends.fp32_precision = "ieee"
        backends.cuda.matmul.fp32_precision = "ieee"
        backends.cudnn.conv.fp32_precision = "ieee"
        backends.cudnn.rnn.fp32_precision = "ieee"
    else:  # pragma: no cover - older torch
        backends.cuda.matmul.allow_tf32 = False
        backends.cudnn.allow_tf32 = False


def torch_dtype(name: str) -> torch.dtype:
    if name not in FLOAT_DTYPES:
        raise RunnerError(f"dtype {name!r} is not one of {', '.join(FLOAT_DTYPES)}.")
    dtype: torch.dtype = getattr(torch, name)
    return dtype


def describe_tensors(inputs: list[Any]) -> str:
    parts = []
    for value in inputs:
        if isinstance(value, torch.Tensor):
            parts.append(f"{list(value.shape)} {str(value.dtype).removeprefix('torch.')}")
        elif isinstance(value, np.ndarray):
            parts.append(f"{list(value.shape)} {value.dtype}")
        else:
            parts.append(type(value).__name__)
    return ", ".join(parts)


def last_meaningful_line(exc: BaseException) -> str:
    """TorchScript errors carry a serialized traceback; the last non-empty line is the actual error."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:400]


def first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:400]


class TorchScriptRunner:
    """Calls a loaded TorchScript module on a list of input tensors, on its device and dtype."""

    runtime = "torchscript"

    def __init__(self, module: torch.jit.ScriptModule, *, device: str, dtype: str, label: str) -> None:
        self.module = module
        self.device = device
        self.dtype = dtype
        self.label = label
        self._device = torch.device(device)
        self._dtype = torch_dtype(dtype)
        self._on_cpu = self._device.type == "cpu"

    def prepare(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Inputs on the runner's device; floating inputs in its dtype, integer and bool inputs untouched."""
        prepared = []
        for tensor in inputs:
            if tensor.is_floating_point() and tensor.dtype is not self._dtype:
                tensor = tensor.to(device=self._device, dtype=self._dtype)
            elif tensor.is_cpu != self._on_cpu or (not self._on_cpu and tensor.device != self._device):
                tensor = tensor.to(self._device)
            prepared.append(tensor)
        return prepared

    def __call__(self, inputs: list[torch.Tensor]) -> Any:
        prepared = self.prepare(inputs)
        try:
            if torch.is_inference_mode_enabled():
                return self.module(*prepared)
            with torch.inference_mode():
                return self.module(*prepared)
        except Exception as exc:
            raise self.forward_error(exc, prepared) from exc

    def forward_error(self, exc: BaseException, inputs: list[torch.Tensor]) -> RunnerError:
        return RunnerError(
            f"{self.label} raised inside forward on inputs [{describe_tensors(inputs)}]: {last_meaningful_line(exc)}"
        )

    def bind(self, inputs: list[torch.Tensor]) -> Callable[[], Any]:
        """The bare forward on these inputs, prepared once: what a benchmark times. Call it in inference mode;
        its exceptions are raw (turn them into RunnerError with forward_error)."""
        return functools.partial(self.module, *self.prepare(inputs))


class OnnxRunner:
    """Calls an ONNX Runtime session on a list of input tensors, fed under the input spec's names."""

    runtime = "onnxruntime"
    dtype = "float32"

    def __init__(self, session: Any, *, input_names: list[str] | None, label: str) -> None:
        self.session = session
        self.label = label
        graph_inputs = session.get_inputs()
        graph_names = [item.name for item in graph_inputs]
        if input_names is not None:
            if sorted(input_names) != sorted(graph_names):
                raise RunnerError(
                    f"The ONNX file's inputs are named {', '.join(graph_names)} but the input spec declares "
                    f"{', '.join(input_names)}. Re-export the ONNX model with input_names matching the spec."
                )
            self.input_names = list(input_names)
        else:
            self.input_names = graph_names
        by_name = {item.name: item for item in graph_inputs}
        self._feed_dtypes = [
            np.dtype(_ORT_NUMPY[by_name[name].type]) if by_name[name].type in _ORT_NUMPY else None
            for name in self.input_names
        ]
        self.output_names = [item.name for item in session.get_outputs()]
        providers = session.get_providers()
        self.provider = providers[0] if providers else "CPUExecutionProvider"
        self.device = "cuda" if self.provider == "CUDAExecutionProvider" else "cpu"

    def feed(self, inputs: list[torch.Tensor]) -> dict[str, np.ndarray]:
        if len(inputs) != len(self.input_names):
            raise RunnerError(
                f"{self.label} takes {len(self.input_names)} input(s) ({', '.join(self.input_names)}) "
                f"but {len(inputs)} were given."
            )
        feed = {}
        for name, tensor, want in zip(self.input_names, inputs, self._feed_dtypes, strict=True):
            if tensor.dtype is torch.float32 and want is _NP_FLOAT32 and tensor.is_cpu and not tensor.requires_grad:
                feed[name] = tensor.numpy()  # the common case, a dozen microseconds a batch cheaper on tiny models
                continue
            if tensor.requires_grad or not tensor.is_cpu or tensor.dtype is torch.bfloat16:
                tensor = tensor.detach().cpu()
                if tensor.dtype is torch.bfloat16:
                    tensor = tensor.float()
            array = tensor.numpy()
            if want is not None and array.dtype is not want and array.dtype != want:
                array = array.astype(want)
            feed[name] = array
        return feed

    def __call__(self, inputs: list[torch.Tensor]) -> list[np.ndarray]:
        feed = self.feed(inputs)
        try:
            outputs: list[np.ndarray] = self.session.run(None, feed)
        except Exception as exc:
            raise RunnerError(
                f"{self.label} failed in ONNX Runtime on inputs [{describe_tensors(list(feed.values()))}]: "
                f"{first_line(exc)}"
            ) from exc
        return outputs


def place_module(module: torch.jit.ScriptModule, *, device: str, dtype: str) -> torch.jit.ScriptModule:
    """Move to `device` and cast floating parameters and buffers to `dtype` (integer buffers keep theirs)."""
    target = torch_dtype(dtype)
    try:
        module.to(device=torch.device(device), dtype=target)  # nn.Module.to casts floating tensors only
    except Exception as exc:
        raise RunnerError(f"The model could not be moved to {device} {dtype}: {last_meaningful_line(exc)}") from exc
    return module


class ModelCache:
    """Loaded artifacts of one sandbox process, keyed by (runtime, sha256, device, dtype); bounded LRU."""

    def __init__(self, max_entries: int = 4) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str, str, str], Any] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    @property
    def stats(self) -> dict[str, int]:
        return {"entries": len(self._entries), "hits": self.hits, "misses": self.misses, "evictions": self.evictions}

    def _get(self, key: tuple[str, str, str, str]) -> Any | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
            self.hits += 1
        return value

    def _put(self, key: tuple[str, str, str, str], value: Any) -> None:
        self.misses += 1
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
            self.evictions += 1

    def clear(self) -> None:
        self._entries.clear()

    def torchscript(self, *, path: str, sha256: str, device: str, dtype: str) -> tuple[torch.jit.ScriptModule, bool]:
        key = ("torchscript", sha256, device, dtype)
        cached = self._get(key)
        if cached is not None:
            return cached, True
        torch_dtype(dtype)
        try:
            module = torch.jit.load(path, map_location="cpu")
        except Exception as exc:
            raise RunnerError(
                f"torch.jit.load could not load {Path(path).name} (sha256 {sha256[:12]}): "
                f"{first_line(exc).rstrip('.:')}. Upload a TorchScript archive saved with torch.jit.save."
            ) from exc
        module.eval()
        module = place_module(module, device=device, dtype=dtype)
        self._put(key, module)
        return module, False

    def onnx(self, *, path: str, sha256: str, device: str, threads: int | None = None) -> tuple[Any, bool]:
        """An ONNX Runtime session; `threads` sets its intra-op pool (None: ONNX Runtime's default)."""
        key = ("onnx", sha256, device, f"float32/threads={threads}")
        cached = self._get(key)
        if cached is not None:
            return cached, True
        import onnxruntime

        providers: list[Any] = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            index = int(device.split(":", 1)[1]) if ":" in device else 0
            providers = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        # idle pool threads that spin would take the CPU from torch, which runs between ONNX Runtime calls
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = onnxruntime.InferenceSession(path, sess_options=options, providers=providers)
        except Exception as exc:
            raise RunnerError(
                f"The ONNX companion could not be loaded by ONNX Runtime: {first_line(exc).rstrip('.:')}. "
                "Upload a valid .onnx export of this version."
            ) from exc
        self._put(key, session)
        return session, False


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cuda": torch.version.cuda,
        "cudnn": None,
        "onnxruntime": None,
        # "ieee" once strict_float32() ran: float32 work on a GPU is not done in TF32
        "fp32_precision": str(getattr(torch.backends, "fp32_precision", "unknown")),
    }
    try:
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    if torch.backends.cudnn.is_available():
        cudnn = torch.backends.cudnn.version()
        versions["cudnn"] = str(cudnn) if cudnn is not None else None
    return versions
