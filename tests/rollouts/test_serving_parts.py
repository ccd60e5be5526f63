"""The serving process's parts on their own: inputs against a spec, the deadline pool, the governance overhead."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from models_registry.input_spec import parse_input_spec
from rollouts.serving.deadline import DeadlineExceeded, DeadlinePool
from rollouts.serving.inputs import InputRejected, inputs_sha256, outputs_json, tensors_from
from tests.torchscript_models import MLP_SPEC, TOKENS_SPEC, CreditMLP

TOKENS = parse_input_spec(TOKENS_SPEC)


def test_inputs_become_tensors_of_the_declared_dtype_in_the_spec_order():
    tokens, extra = tensors_from({"extra": [[0.5] * 4], "tokens": [[1, 2, 3, 4, 5, 99]]}, TOKENS, label="bag 1.0")
    assert tokens.dtype == torch.int64 and tokens.shape == (1, 6)
    assert extra.dtype == torch.float32 and extra.shape == (1, 4)


@pytest.mark.parametrize(
    ("inputs", "field", "words"),
    [
        ({"tokens": [[1, 2, 3, 4, 5, 100]], "extra": [[0.5] * 4]}, "inputs.tokens", "outside its range [0, 100)"),
        ({"tokens": [[1.5, 2, 3, 4, 5, 6]], "extra": [[0.5] * 4]}, "inputs.tokens", "values of another type"),
        ({"tokens": [[1, 2, 3, 4, 5, 6]], "extra": [[None] * 4]}, "inputs.extra", "not a regular array"),
        ({"tokens": [], "extra": [[0.5] * 4]}, "inputs.tokens", "shape [0]"),
        ({"tokens": "12", "extra": [[0.5] * 4]}, "inputs.tokens", "nested list"),
    ],
)
def test_inputs_that_do_not_fit_name_the_input_and_what_the_version_takes(inputs, field, words):
    with pytest.raises(InputRejected) as refused:
        tensors_from(inputs, TOKENS, label="bag 1.0")
    assert refused.value.field == field and words in refused.value.message
    assert "bag 1.0 takes" in refused.value.message or "range" in refused.value.message


def test_the_input_hash_covers_values_shape_and_dtype():
    x = torch.arange(8, dtype=torch.float32).reshape(2, 4)
    base = inputs_sha256([x])
    assert inputs_sha256([x.clone()]) == base and len(base) == 64
    assert inputs_sha256([x.reshape(4, 2)]) != base
    assert inputs_sha256([x.double()]) != base
    changed = x.clone()
    changed[1, 3] += 1
    assert inputs_sha256([changed]) != base


def test_outputs_are_json_values_whatever_their_structure():
    out = outputs_json((torch.ones(1, 2), {"p": torch.tensor([0.5], dtype=torch.bfloat16)}, 3))
    assert out == [[[1.0, 1.0]], {"p": [0.5]}, 3]
    with pytest.raises(TypeError):
        outputs_json(object())


def test_the_deadline_pool_answers_raises_and_abandons_a_call_past_its_deadline():
    pool = DeadlinePool()
    assert pool.call(1.0, lambda a, b: a + b, 2, 3) == 5
    with pytest.raises(ZeroDivisionError):
        pool.call(1.0, lambda: 1 / 0)
    assert not pool.tainted
    release = threading.Event()
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        pool.call(0.05, release.wait, 30)
    assert time.monotonic() - started < 5 and pool.tainted and pool.hung == 1
    assert pool.call(1.0, lambda: "a fresh thread answers") == "a fresh thread answers"
    assert pool.threads == 2  # the stuck thread was not reused
    release.set()


def test_governance_overhead_is_measured_on_the_serving_parts(settings):
    from rollouts.serving.overhead import COMPONENTS, governance_overhead

    torch.manual_seed(0)
    module = torch.jit.script(CreditMLP().eval())
    report = governance_overhead(module, {"x": [[0.1] * 32]}, parse_input_spec(MLP_SPEC), repeats=60)
    assert set(report["components_us"]) == set(COMPONENTS) and report["batch_size"] == 1
    assert all(value >= 0 for value in report["components_us"].values()) and report["bare_p50_us"] > 0
    assert report["governance_p50_us"] == pytest.approx(sum(report["components_us"].values()))
    assert report["ratio"] == pytest.approx(report["governance_p50_us"] / report["bare_p50_us"])
