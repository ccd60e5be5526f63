"""Loading and running artifacts for parity and benchmark jobs: devices, TorchScript, ONNX Runtime, the cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from models_registry.sandbox.runners import (
    ModelCache,
    OnnxRunner,
    RunnerError,
    TorchScriptRunner,
    library_versions,
    resolve_device,
    strict_float32,
)
from tests.torchscript_models import (
    CreditMLP,
    TokenBag,
    mlp_bytes,
    scripted_bytes,
    state_dict_bytes,
    swapped_pickle_archive,
    write,
)

REPO = Path(__file__).resolve().parents[2]
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour of a worker without a GPU")


class Picky(nn.Module):
    """Raises from inside a scripted forward when its input is out of range."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool(x.abs().max() > 100.0):
            raise ValueError("input outside the calibrated range")
        return self.linear(x)


def export_onnx(module: nn.Module, args: tuple[torch.Tensor, ...], path: Path, names: list[str]) -> Path:
    torch.onnx.export(
        module.eval(),
        args,
        str(path),
        dynamo=False,
        input_names=names,
        output_names=["out"],
        dynamic_axes={**{name: {0: "batch"} for name in names}, "out": {0: "batch"}},
    )
    return path


def test_pure_modules_import_neither_django_nor_celery():
    code = (
        "import sys; import models_registry.sandbox.runners, models_registry.parity, models_registry.benchmark; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'celery', 'kombu')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_comparison_the_web_process_renders_does_not_load_torch():
    code = (
        "import sys; import models_registry.benchmark_compare; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'django')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_auto_and_cpu_resolve_without_a_note():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto", allow_fallback=False) == (expected, None)
    assert resolve_device("cpu", allow_fallback=False) == ("cpu", None)


@no_gpu
def test_it_refuses_cuda_on_a_worker_without_a_gpu():
    for requested in ("cuda", "cuda:1"):
        with pytest.raises(RunnerError) as caught:
            resolve_device(requested, allow_fallback=False)
        message = str(caught.value)
        assert "no GPU" in message and "allow_fallback" in message and requested in message


@no_gpu
def test_it_falls_back_to_the_cpu_only_when_allowed():
    device, note = resolve_device("cuda", allow_fallback=True)
    assert device == "cpu"
    assert note is not None and "no GPU" in note and "CPU" in note


@pytest.mark.parametrize("requested", ["tpu", "cuda:x", "cuda:"])
def test_it_rejects_an_unknown_device(requested):
    with pytest.raises(RunnerError, match="Unknown device"):
        resolve_device(requested, allow_fallback=True)


def test_the_cache_loads_once_per_sha_device_and_dtype_and_evicts_the_least_recent(tmp_path):
    a = write(tmp_path, "a.pt", mlp_bytes(0))
    b = write(tmp_path, "b.pt", mlp_bytes(1))
    c = write(tmp_path, "c.pt", mlp_bytes(2))
    cache = ModelCache(max_entries=2)
    module_a, hit = cache.torchscript(path=str(a), sha256="a" * 64, device="cpu", dtype="float32")
    assert hit is False
    assert cache.torchscript(path=str(a), sha256="a" * 64, device="cpu", dtype="float32") == (module_a, True)
    cache.torchscript(path=str(b), sha256="b" * 64, device="cpu", dtype="float32")
    cache.torchscript(path=str(a), sha256="a" * 64, device="cpu", dtype="float32")  # a is now the most recent
    cache.torchscript(path=str(c), sha256="c" * 64, device="cpu", dtype="float32")  # evicts b
    assert cache.stats == {"entries": 2, "hits": 2, "misses": 3, "evictions": 1}
    assert cache.torchscript(path=str(a), sha256="a" * 64, device="cpu", dtype="float32")[1] is True
    assert cache.torchscript(path=str(b), sha256="b" * 64, device="cpu", dtype="float32")[1] is False
    half, hit = cache.torchscript(path=str(a), sha256="a" * 64, device="cpu", dtype="float16")
    assert hit is False and half is not module_a
    assert {p.dtype for p in half.parameters()} == {torch.float16}
    assert {p.dtype for p in module_a.parameters()} == {torch.float32}
    assert not module_a.training


def test_the_cache_never_unpickles_with_torch_load(tmp_path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("torch.load must not be used")

    monkeypatch.setattr(torch, "load", forbidden)
    path = write(tmp_path, "m.pt", mlp_bytes())
    module, _ = ModelCache().torchscript(path=str(path), sha256="d" * 64, device="cpu", dtype="float32")
    assert module(torch.zeros(1, 32)).shape == (1, 2)


@pytest.mark.parametrize(
    "data",
    [state_dict_bytes(), swapped_pickle_archive(mlp_bytes()), b"PK\x03\x04 not really a zip"],
    ids=["state-dict", "swapped-pickle", "garbage"],
)
def test_it_reports_an_archive_torch_jit_load_cannot_load(tmp_path, data):
    path = write(tmp_path, "bad.pt", data)
    cache = ModelCache()
    with pytest.raises(RunnerError, match=r"^torch\.jit\.load could not load bad\.pt") as caught:
        cache.torchscript(path=str(path), sha256="e" * 64, device="cpu", dtype="float32")
    assert "torch.jit.save" in str(caught.value)
    assert cache.stats["entries"] == 0
    assert not Path("/tmp/forge-pwned").exists()


def test_floating_inputs_take_the_runner_dtype_and_integer_inputs_stay(tmp_path):
    path = write(tmp_path, "tokens.pt", scripted_bytes(TokenBag()))
    module, _ = ModelCache().torchscript(path=str(path), sha256="f" * 64, device="cpu", dtype="float16")
    runner = TorchScriptRunner(module, device="cpu", dtype="float16", label="tokens:1.0.0")
    tokens = torch.randint(0, 100, (3, 6))
    extra = torch.randn(3, 4)
    prepared = runner.prepare([tokens, extra])
    assert prepared[0] is tokens and prepared[1].dtype == torch.float16
    out = runner([tokens, extra])
    assert out.dtype == torch.float16 and out.shape == (3, 3)
    assert torch.is_inference(out)


def test_a_forward_that_raises_becomes_a_runner_error_naming_the_inputs(tmp_path):
    path = write(tmp_path, "picky.pt", scripted_bytes(Picky()))
    module, _ = ModelCache().torchscript(path=str(path), sha256="1" * 64, device="cpu", dtype="float32")
    runner = TorchScriptRunner(module, device="cpu", dtype="float32", label="picky:2.0.0")
    assert runner([torch.ones(2, 4)]).shape == (2, 2)
    with pytest.raises(RunnerError) as caught:
        runner([torch.full((2, 4), 1000.0)])
    message = str(caught.value)
    assert message.startswith("picky:2.0.0 raised inside forward on inputs [[2, 4] float32]")
    assert message.endswith("input outside the calibrated range")
    assert "\n" not in message


def test_an_input_of_the_wrong_width_names_the_shape_error(tmp_path):
    path = write(tmp_path, "m.pt", mlp_bytes())
    module, _ = ModelCache().torchscript(path=str(path), sha256="2" * 64, device="cpu", dtype="float32")
    runner = TorchScriptRunner(module, device="cpu", dtype="float32", label="credit-risk:1.0.0")
    with pytest.raises(RunnerError, match=r"inputs \[\[5, 7\] float32\]: .*5x7"):
        runner([torch.randn(5, 7)])


def test_the_onnx_runner_feeds_the_spec_names_and_matches_torchscript(tmp_path):
    torch.manual_seed(3)
    eager = TokenBag().eval()
    tokens, extra = torch.randint(0, 100, (4, 6)), torch.randn(4, 4)
    path = export_onnx(eager, (tokens, extra), tmp_path / "m.onnx", ["tokens", "extra"])
    cache = ModelCache()
    session, hit = cache.onnx(path=str(path), sha256="3" * 64, device="cpu")
    assert hit is False and cache.onnx(path=str(path), sha256="3" * 64, device="cpu") == (session, True)
    runner = OnnxRunner(session, input_names=["tokens", "extra"], label="ONNX companion")
    assert runner.provider == "CPUExecutionProvider" and runner.device == "cpu"
    out = runner([tokens, extra.double()])  # fed in the dtype the graph declares
    assert isinstance(out, list) and out[0].dtype == np.float32
    with torch.inference_mode():
        expected = eager(tokens, extra).numpy()
    np.testing.assert_allclose(out[0], expected, rtol=1e-5, atol=1e-6)
    by_position = OnnxRunner(session, input_names=None, label="ONNX companion")
    np.testing.assert_array_equal(by_position([tokens, extra])[0], out[0])


def test_onnx_inputs_named_otherwise_than_the_spec_are_refused(tmp_path):
    path = export_onnx(CreditMLP(), (torch.randn(2, 32),), tmp_path / "m.onnx", ["input_0"])
    session, _ = ModelCache().onnx(path=str(path), sha256="4" * 64, device="cpu")
    with pytest.raises(RunnerError) as caught:
        OnnxRunner(session, input_names=["x"], label="ONNX companion")
    assert str(caught.value).startswith("The ONNX file's inputs are named input_0 but the input spec declares x.")
    runner = OnnxRunner(session, input_names=None, label="ONNX companion")
    with pytest.raises(RunnerError, match=r"takes 1 input\(s\) \(input_0\) but 2 were given"):
        runner([torch.randn(2, 32), torch.randn(2, 32)])
    with pytest.raises(RunnerError, match=r"^ONNX companion failed in ONNX Runtime on inputs \[\[2, 7\] float32\]"):
        runner([torch.randn(2, 7)])


@pytest.mark.parametrize("cut", [None, 0.5], ids=["garbage", "truncated"])
def test_a_corrupt_onnx_file_is_reported(tmp_path, cut):
    good = export_onnx(CreditMLP(), (torch.randn(2, 32),), tmp_path / "good.onnx", ["x"]).read_bytes()
    data = b"\x08\x07garbage" * 10 if cut is None else good[: int(len(good) * cut)]
    path = write(tmp_path, "bad.onnx", data)
    cache = ModelCache()
    with pytest.raises(RunnerError, match=r"^The ONNX companion could not be loaded by ONNX Runtime: "):
        cache.onnx(path=str(path), sha256="5" * 64, device="cpu")
    assert cache.stats["entries"] == 0


def test_library_versions_name_the_runtime():
    versions = library_versions()
    assert versions["torch"] == torch.__version__
    assert versions["numpy"] == np.__version__
    assert versions["onnxruntime"] and versions["python"].count(".") == 2
    assert set(versions) >= {"cuda", "cudnn"}


def test_float32_work_is_never_done_in_tf32_once_a_job_prepares():
    strict_float32()
    assert library_versions()["fp32_precision"] == "ieee"
    assert torch.backends.cuda.matmul.fp32_precision == "ieee"
    assert torch.backends.cudnn.conv.fp32_precision == "ieee"
    assert torch.backends.cudnn.rnn.fp32_precision == "ieee"
