"""Parity runs: streamed statistics checked against direct computations on the full outputs."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from models_registry.input_spec import InputDecl, parse_input_spec
from models_registry.parity import (
    DEFAULT_TOLERANCES,
    HISTOGRAM_EDGES,
    ParityCancelled,
    ParityComparison,
    ParityError,
    array_batches,
    batch_count,
    concat_outputs,
    flatten_output,
    random_inputs,
    run_parity,
    spec_batches,
    tolerance_for,
)
from models_registry.sandbox.runners import ModelCache, OnnxRunner, TorchScriptRunner
from tests.torchscript_models import GATED_SPEC, MLP_SPEC, TOKENS_SPEC, CreditMLP, Gated, TokenBag

MLP = parse_input_spec(MLP_SPEC)


class Heads(nn.Module):
    """A dict output: float scores and the integer class they pick."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        scores = self.linear(x)
        return {"scores": scores, "label": scores.argmax(dim=1)}


class Wider(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class Labels(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).argmax(dim=1, keepdim=True).expand(-1, 2)


def scripted(module: nn.Module) -> torch.jit.ScriptModule:
    """A real TorchScript round trip: script, save, load."""
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(module.eval()), buffer)
    buffer.seek(0)
    return torch.jit.load(buffer)


def runner(module: nn.Module, label: str, dtype: str = "float32") -> TorchScriptRunner:
    loaded = scripted(module)
    loaded.to(getattr(torch, dtype))
    return TorchScriptRunner(loaded, device="cpu", dtype=dtype, label=label)


def seeded(cls: type[nn.Module], seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return cls().eval()


def perturbed(module: nn.Module, scale: float, seed: int = 1) -> nn.Module:
    copy = type(module)().eval()
    copy.load_state_dict(module.state_dict())
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in copy.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * scale)
    return copy


def parity(candidate, reference, decls, *, samples, batch_size, seed=0, **kwargs):
    return run_parity(
        candidate=candidate,
        reference=reference,
        batches=spec_batches(decls, samples=samples, batch_size=batch_size, seed=seed),
        total_batches=batch_count(samples, batch_size),
        comparison=ParityComparison(**kwargs),
    )


def collect(module, decls, *, samples, batch_size, seed=0):
    """Each side's outputs, batch by batch, concatenated: what the streamed statistics must agree with."""
    outs = []
    with torch.inference_mode():
        for inputs in spec_batches(decls, samples=samples, batch_size=batch_size, seed=seed):
            outs.append(module(*inputs))
    if isinstance(outs[0], tuple):
        return tuple(torch.cat([o[i] for o in outs]) for i in range(len(outs[0])))
    if isinstance(outs[0], dict):
        return {key: torch.cat([o[key] for o in outs]) for key in outs[0]}
    return torch.cat(outs)


def assert_close_mismatches(actual: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float) -> int:
    """The number of mismatched elements torch.testing.assert_close reports (0 when it passes)."""
    try:
        torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)
    except AssertionError as exc:
        found = re.search(r"Mismatched elements: (\d+) / (\d+)", str(exc))
        assert found, str(exc)
        return int(found.group(1))
    return 0


def expected_stats(cand: torch.Tensor, ref: torch.Tensor, rtol: float, atol: float) -> dict:
    c = cand.double().numpy().reshape(cand.shape[0], -1)
    r = ref.double().numpy().reshape(ref.shape[0], -1)
    diff = np.abs(c - r)
    nonzero = diff[diff > 0]
    clipped = np.clip(np.log10(nonzero), HISTOGRAM_EDGES[0], np.nextafter(HISTOGRAM_EDGES[-1], -np.inf))
    row_error = diff.max(axis=1)
    order = sorted(range(len(row_error)), key=lambda i: (-row_error[i], i))
    return {
        "out_of_tolerance": int((diff > atol + rtol * np.abs(r)).sum()),
        "max_abs_error": float(diff.max()),
        "max_rel_error": float((diff[r != 0] / np.abs(r[r != 0])).max()),
        "mean_abs_error": float(diff.mean()),
        "cosine_similarity": float(
            torch.nn.functional.cosine_similarity(cand.double().flatten(), ref.double().flatten(), dim=0)
        ),
        "exact": int((diff == 0).sum()),
        "histogram": np.histogram(clipped, bins=HISTOGRAM_EDGES)[0].tolist(),
        "worst": [i for i in order[:5] if row_error[i] > 0],
        "row_error": row_error,
    }


def test_identical_models_pass_with_zero_error():
    model = seeded(CreditMLP)
    result = parity(runner(model, "candidate"), runner(model, "reference"), MLP, samples=300, batch_size=64)
    assert result["passed"] is True
    assert result["summary"] == "1 output compared on 300 samples: all within tolerance."
    assert result["samples"] == 300 and result["batches"] == 5
    assert result["tolerance"] == {"rtol": 1.3e-6, "atol": 1e-5, "dtype": "float32", "source": "default"}
    (out,) = result["outputs"]
    assert out["path"] == "output" and out["shape"] == [300, 2] and out["elements"] == 600
    assert out["max_abs_error"] == 0.0 and out["max_rel_error"] == 0.0 and out["mean_abs_error"] == 0.0
    assert out["out_of_tolerance"] == 0 and out["nan_mismatch"] == 0
    assert out["cosine_similarity"] == pytest.approx(1.0, abs=1e-12)
    assert out["argmax_agreement"] == 1.0
    assert out["worst_rows"] == []
    assert out["histogram"]["exact"] == 600 and sum(out["histogram"]["counts"]) == 0
    assert set(result["timing"]) == {"candidate_s", "reference_s", "compare_s", "total_s"}
    json.dumps(result, allow_nan=False)


@pytest.mark.parametrize("batch_size", [7, 64, 500])
def test_a_perturbed_copy_fails_with_the_counts_of_a_direct_computation(batch_size):
    model = seeded(CreditMLP)
    changed = perturbed(model, 3e-5)
    samples = 500
    result = parity(runner(changed, "retrained"), runner(model, "1.0.0"), MLP, samples=samples, batch_size=batch_size)
    cand = collect(changed, MLP, samples=samples, batch_size=batch_size)
    ref = collect(model, MLP, samples=samples, batch_size=batch_size)
    rtol, atol = DEFAULT_TOLERANCES["float32"]
    want = expected_stats(cand, ref, rtol, atol)
    (out,) = result["outputs"]
    assert 0 < out["out_of_tolerance"] < out["elements"] == 2 * samples
    assert out["out_of_tolerance"] == want["out_of_tolerance"] == assert_close_mismatches(cand, ref, rtol, atol)
    assert out["out_of_tolerance_share"] == pytest.approx(want["out_of_tolerance"] / (2 * samples))
    assert result["passed"] is False and out["passed"] is False
    assert out["max_abs_error"] == pytest.approx(want["max_abs_error"], rel=1e-12)
    assert out["max_rel_error"] == pytest.approx(want["max_rel_error"], rel=1e-12)
    assert out["mean_abs_error"] == pytest.approx(want["mean_abs_error"], rel=1e-9)
    assert out["cosine_similarity"] == pytest.approx(want["cosine_similarity"], abs=1e-12)
    agree = float((cand.argmax(dim=1) == ref.argmax(dim=1)).double().mean())
    assert out["argmax_agreement"] == agree
    assert out["histogram"]["counts"] == want["histogram"]
    assert out["histogram"]["exact"] == want["exact"]
    assert [row["row"] for row in out["worst_rows"]] == want["worst"]
    worst = out["worst_rows"][0]
    assert worst["max_abs_error"] == pytest.approx(want["row_error"][worst["row"]])
    assert worst["candidate"] == pytest.approx(cand[worst["row"]].tolist())
    assert worst["reference"] == pytest.approx(ref[worst["row"]].tolist())
    assert f"{out['out_of_tolerance']:,} of 1,000 elements" in result["summary"]


def test_the_mlp_matches_its_onnx_export(tmp_path):
    model = seeded(CreditMLP)
    path = tmp_path / "m.onnx"
    torch.onnx.export(
        model,
        (torch.randn(2, 32),),
        str(path),
        dynamo=False,
        input_names=["x"],
        output_names=["logits"],
        dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
    )
    session, _ = ModelCache().onnx(path=str(path), sha256="0" * 64, device="cpu")
    onnx = OnnxRunner(session, input_names=["x"], label="ONNX companion")
    result = parity(runner(model, "credit-risk:1.0.0"), onnx, MLP, samples=1000, batch_size=64)
    (out,) = result["outputs"]
    assert result["passed"] is True, result["summary"]
    assert out["path"] == "output" and out["dtype"] == "float32" and out["reference_dtype"] == "float32"
    assert out["max_abs_error"] < 1e-5 and out["argmax_agreement"] == 1.0


def test_multi_input_integer_models_pass_against_onnx(tmp_path):
    model = seeded(TokenBag)
    decls = parse_input_spec(TOKENS_SPEC)
    path = tmp_path / "tokens.onnx"
    torch.onnx.export(
        model,
        tuple(random_inputs(decls, 2, torch.Generator().manual_seed(0))),
        str(path),
        dynamo=False,
        input_names=["tokens", "extra"],
        output_names=["scores"],
        dynamic_axes={"tokens": {0: "batch"}, "extra": {0: "batch"}, "scores": {0: "batch"}},
    )
    session, _ = ModelCache().onnx(path=str(path), sha256="1" * 64, device="cpu")
    onnx = OnnxRunner(session, input_names=["tokens", "extra"], label="ONNX companion")
    result = parity(runner(model, "router:1.0.0"), onnx, decls, samples=200, batch_size=32)
    assert result["passed"] is True, result["summary"]
    assert result["outputs"][0]["shape"] == [200, 3]


def test_tuple_outputs_are_compared_leaf_by_leaf():
    model = seeded(Gated)
    changed = Gated().eval()
    changed.load_state_dict(model.state_dict())
    with torch.no_grad():
        changed.b.bias.add_(1e-3)  # the head moves; the hidden state h does not
    decls = parse_input_spec(GATED_SPEC)
    result = parity(runner(changed, "candidate"), runner(model, "reference"), decls, samples=100, batch_size=16)
    first, second = result["outputs"]
    assert [first["path"], second["path"]] == ["output[0]", "output[1]"]
    assert [first["shape"], second["shape"]] == [[100, 2], [100, 4]]
    assert first["passed"] is False and first["out_of_tolerance"] == 200
    assert first["max_abs_error"] == pytest.approx(1e-3, rel=1e-3)
    assert second["passed"] is True and second["max_abs_error"] == 0.0
    assert result["passed"] is False
    assert result["summary"].startswith("2 outputs compared on 100 samples: output[0] has 200 of 200 elements")


def test_dict_outputs_compare_floats_with_tolerance_and_integers_exactly():
    model = seeded(Heads)
    changed = perturbed(model, 0.05)
    result = parity(runner(changed, "candidate"), runner(model, "reference"), MLP, samples=256, batch_size=50)
    scores, label = result["outputs"]
    assert scores["path"] == "output['scores']" and label["path"] == "output['label']"
    assert label["kind"] == "integer" and label["dtype"] == "int64" and (label["rtol"], label["atol"]) == (0.0, 0.0)
    assert label["argmax_agreement"] is None
    cand = collect(changed, MLP, samples=256, batch_size=50)
    ref = collect(model, MLP, samples=256, batch_size=50)
    disagreements = int((cand["label"] != ref["label"]).sum())
    assert 0 < disagreements < 256
    assert label["out_of_tolerance"] == disagreements
    assert scores["argmax_agreement"] == pytest.approx(1 - disagreements / 256)
    assert scores["out_of_tolerance"] == assert_close_mismatches(cand["scores"], ref["scores"], 1.3e-6, 1e-5)


def test_a_reference_with_other_output_shapes_fails_with_a_message_not_a_crash():
    with pytest.raises(ParityError) as caught:
        parity(runner(seeded(CreditMLP), "1.1.0"), runner(seeded(Wider), "1.0.0"), MLP, samples=64, batch_size=64)
    assert str(caught.value) == (
        "Output output has shape [64, 2] (float32) in the candidate but [64, 3] (float32) in the reference."
    )


def test_a_reference_with_another_output_count_names_both():
    decls = parse_input_spec(GATED_SPEC)
    torch.manual_seed(0)
    with pytest.raises(
        ParityError, match=r"returns 2 output\(s\) \(output\[0\], output\[1\]\) .* returns 1 \(output\)"
    ):
        parity(runner(Gated(), "gated"), runner(CreditMLP(features=4), "mlp"), decls, samples=8, batch_size=8)


def test_a_dtype_kind_mismatch_is_named():
    with pytest.raises(ParityError) as caught:
        parity(runner(seeded(CreditMLP), "float"), runner(seeded(Labels), "labels"), MLP, samples=10, batch_size=10)
    assert str(caught.value) == (
        "Output output is float32 (floating point) in the candidate but int64 (integer) in the reference, "
        "shape [10, 2]."
    )


def _batched_outputs(module: nn.Module, decls: list[InputDecl], *, batches: int, rows: int) -> list:
    with torch.inference_mode():
        return [module(*inputs) for inputs in spec_batches(decls, samples=batches * rows, batch_size=rows, seed=0)]


@pytest.mark.parametrize(("cls", "spec"), [(Heads, MLP_SPEC), (Gated, GATED_SPEC)])
def test_a_group_compared_at_once_gives_what_its_batches_give_one_by_one(cls, spec):
    """Dict and tuple outputs of seven batches, joined (add_group) or not (add_batch): the same result."""
    decls = parse_input_spec(spec)
    model = seeded(cls)
    cand = _batched_outputs(perturbed(model, 0.01), decls, batches=7, rows=9)
    ref = _batched_outputs(model, decls, batches=7, rows=9)
    grouped, one_by_one = ParityComparison(), ParityComparison()
    grouped.add_group(cand[:1], ref[:1], row_offset=0, rows=[9])
    grouped.add_group(cand[1:], ref[1:], row_offset=9, rows=[9] * 6)
    for index, (c, r) in enumerate(zip(cand, ref, strict=True)):
        one_by_one.add_batch(c, r, row_offset=9 * index)
    joined, separate = grouped.result(), one_by_one.result()
    assert joined["passed"] is False and joined["batches"] == 7 and joined["samples"] == 63
    assert json.dumps(joined, sort_keys=True) == json.dumps(separate, sort_keys=True)


def test_a_group_whose_batches_cannot_be_joined_is_compared_batch_by_batch():
    """A last batch with another trailing shape: the error names that batch's shapes, not the group's."""
    cand = [torch.zeros(8, 2), torch.zeros(8, 2), torch.zeros(8, 3)]
    ref = [torch.zeros(8, 2), torch.zeros(8, 2), torch.zeros(8, 2)]
    comparison = ParityComparison()
    with pytest.raises(ParityError) as caught:
        comparison.add_group(cand, ref, row_offset=0, rows=[8, 8, 8])
    assert str(caught.value) == (
        "Output output has shape [8, 3] (float32) in the candidate but [8, 2] (float32) in the reference."
    )
    assert comparison.batches == 2  # the two batches before it were compared


def test_a_group_with_mismatched_sides_fails_on_its_first_batch():
    comparison = ParityComparison()
    with pytest.raises(ParityError) as caught:
        comparison.add_group([torch.zeros(8, 2)] * 3, [torch.zeros(8, 3)] * 3, row_offset=0, rows=[8, 8, 8])
    assert "shape [8, 2] (float32) in the candidate but [8, 3] (float32)" in str(caught.value)
    assert comparison.batches == 0


def test_a_joined_group_whose_dict_outputs_differ_fails_on_the_batch_shapes():
    cand = [{"scores": torch.zeros(4, 2), "label": torch.zeros(4, dtype=torch.int64)} for _ in range(3)]
    ref = [{"scores": torch.zeros(4, 2), "label": torch.zeros(4, 1, dtype=torch.int64)} for _ in range(3)]
    with pytest.raises(ParityError) as caught:
        ParityComparison().add_group(cand, ref, row_offset=0, rows=[4, 4, 4])
    assert str(caught.value) == (
        "Output output['label'] has shape [4] (int64) in the candidate but [4, 1] (int64) in the reference."
    )


@pytest.mark.parametrize(
    ("outputs", "rows"),
    [
        ([torch.tensor(1.0), torch.tensor(2.0)], [1, 1]),  # scalars have no batch axis
        ([torch.zeros(4, 2), torch.zeros(3, 2)], [4, 4]),  # first axis is not the batch's rows
        ([torch.zeros(4, 2), torch.zeros(4, 2, dtype=torch.float64)], [4, 4]),  # dtype changes
        ([(torch.zeros(4, 2),), [torch.zeros(4, 2)]], [4, 4]),  # structure changes
        ([{"a": torch.zeros(4)}, {"b": torch.zeros(4)}], [4, 4]),
        ([np.zeros((4, 2)), torch.zeros(4, 2)], [4, 4]),
    ],
)
def test_outputs_that_cannot_be_joined_exactly_are_not(outputs, rows):
    assert concat_outputs(outputs, rows) is None


def test_outputs_are_joined_along_the_batch_axis_with_their_structure():
    first = {"p": (torch.ones(2, 3), np.zeros((2,), dtype=np.int64))}
    second = {"p": (torch.full((5, 3), 2.0), np.ones((5,), dtype=np.int64))}
    joined = concat_outputs([first, second], [2, 5])
    assert torch.equal(joined["p"][0], torch.cat([torch.ones(2, 3), torch.full((5, 3), 2.0)]))
    assert joined["p"][1].tolist() == [0, 0, 1, 1, 1, 1, 1]


def test_integer_and_bool_inputs_stay_inside_their_range():
    decls = [
        InputDecl(name="tokens", shape=(None, 6), dtype="int64", low=5, high=8),
        InputDecl(name="small", shape=(None, 3), dtype="uint8"),
        InputDecl(name="mask", shape=(None, 6), dtype="bool"),
        InputDecl(name="x", shape=(None, 4), dtype="float16"),
    ]
    tokens, small, mask, x = random_inputs(decls, 500, torch.Generator().manual_seed(0))
    assert tokens.dtype == torch.int64 and set(tokens.unique().tolist()) == {5, 6, 7}
    assert small.dtype == torch.uint8 and set(small.unique().tolist()) == {0, 1}
    assert mask.dtype == torch.bool and set(mask.unique().tolist()) == {False, True}
    assert x.dtype == torch.float16 and x.shape == (500, 4) and 0.8 < float(x.float().std()) < 1.2
    spec = parse_input_spec(TOKENS_SPEC)
    for batch in spec_batches(spec, samples=300, batch_size=64, seed=4):
        assert int(batch[0].min()) >= 0 and int(batch[0].max()) < 100


@pytest.mark.parametrize(
    "spec", [MLP, [InputDecl(name="grid", shape=(None, None), dtype="float32")]], ids=["rows", "square"]
)
def test_spec_batches_are_deterministic_for_a_seed(spec):
    def draw(seed: int) -> list[list[torch.Tensor]]:
        return list(spec_batches(spec, samples=150, batch_size=64, seed=seed))

    first, again, other = draw(7), draw(7), draw(8)
    assert [b[0].shape[0] for b in first] == [64, 64, 22]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0][0], other[0][0])


def test_array_batches_are_capped_at_the_rows_available():
    features = np.arange(50 * 3, dtype=np.float32).reshape(50, 3)
    ids = np.arange(60, dtype=np.int64)
    batches = list(array_batches([features, ids], samples=1000, batch_size=16))
    assert [b[0].shape[0] for b in batches] == [16, 16, 16, 2]
    np.testing.assert_array_equal(torch.cat([b[0] for b in batches]).numpy(), features)
    np.testing.assert_array_equal(torch.cat([b[1] for b in batches]).numpy(), ids[:50])
    assert len(list(array_batches([features], samples=20, batch_size=16))) == 2
    with pytest.raises(ParityError, match="scalar"):
        list(array_batches([np.float32(1.0)], samples=1, batch_size=1))  # type: ignore[list-item]


def test_flatten_output_walks_nested_structures_in_order():
    t = torch.zeros(2)
    leaves = flatten_output({"a": (t, [t, 3.5]), "b": np.ones(1), "c": None})
    assert [path for path, _ in leaves] == [
        "output['a'][0]",
        "output['a'][1][0]",
        "output['a'][1][1]",
        "output['b']",
        "output['c']",
    ]
    assert leaves[2][1].shape == () and float(leaves[2][1]) == 3.5
    with pytest.raises(ParityError, match="output\\[0\\] is a str"):
        flatten_output(("text",))


@pytest.mark.parametrize(
    ("dtypes", "expected"),
    [
        (["float32", "float32"], "float32"),
        (["float16", "float32"], "float16"),
        (["float32", "bfloat16"], "bfloat16"),
        (["float16", "bfloat16"], "bfloat16"),
        (["float64", "float32"], "float32"),
    ],
)
def test_the_tolerance_is_that_of_the_lowest_precision_side(dtypes, expected):
    rtol, atol, dtype, source = tolerance_for(dtypes, rtol=None, atol=None)
    assert (rtol, atol, dtype, source) == (*DEFAULT_TOLERANCES[expected], expected, "default")


def test_an_override_replaces_the_default():
    assert tolerance_for(["float16"], rtol=0.1, atol=None) == (0.1, 1e-5, "float16", "override")
    assert tolerance_for(["float32"], rtol=None, atol=0.5) == (1.3e-6, 0.5, "float32", "override")
    model = seeded(CreditMLP)
    changed = perturbed(model, 3e-5)
    loose = parity(runner(changed, "c"), runner(model, "r"), MLP, samples=200, batch_size=50, rtol=0.0, atol=1.0)
    assert loose["passed"] is True
    assert loose["tolerance"] == {"rtol": 0.0, "atol": 1.0, "dtype": "float32", "source": "override"}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_a_half_precision_copy_is_judged_with_its_own_tolerance(dtype):
    model = seeded(CreditMLP)
    result = parity(
        runner(model, f"cpu {dtype}", dtype=dtype), runner(model, "cpu float32"), MLP, samples=256, batch_size=64
    )
    (out,) = result["outputs"]
    rtol, atol = DEFAULT_TOLERANCES[dtype]
    assert result["tolerance"] == {"rtol": rtol, "atol": atol, "dtype": dtype, "source": "default"}
    assert out["dtype"] == dtype and out["reference_dtype"] == "float32"
    cand = collect(
        scripted(model).to(getattr(torch, dtype)), [InputDecl("x", (None, 32), dtype)], samples=256, batch_size=64
    )
    ref = collect(model, MLP, samples=256, batch_size=64)
    assert out["out_of_tolerance"] == assert_close_mismatches(cand.float(), ref, rtol, atol)
    assert 0 < out["max_abs_error"] < 0.1 and out["cosine_similarity"] > 0.999


def test_nan_on_one_side_is_counted_and_nan_on_both_agrees():
    comparison = ParityComparison()
    cand = torch.tensor([[1.0, float("nan")], [float("nan"), 2.0], [float("inf"), 0.0]])
    ref = torch.tensor([[1.0, float("nan")], [3.0, 2.0], [float("inf"), float("-inf")]])
    comparison.add_batch(cand, ref.numpy(), row_offset=10)
    result = comparison.result()
    (out,) = result["outputs"]
    assert out["nan_mismatch"] == 1 and out["inf_mismatch"] == 1
    assert out["out_of_tolerance"] == 2 and out["histogram"]["exact"] == 4
    assert [row["row"] for row in out["worst_rows"]] == [11, 12]
    assert out["worst_rows"][0]["candidate"] == [None, 2.0]
    assert result["passed"] is False and result["summary"].endswith(", 1 NaN mismatch.")
    json.dumps(result, allow_nan=False)


def test_outputs_larger_than_a_chunk_are_streamed(monkeypatch):
    monkeypatch.setattr("models_registry.parity.compare.CHUNK_ELEMENTS", 100)
    model = seeded(CreditMLP)
    changed = perturbed(model, 3e-5)
    streamed = parity(runner(changed, "c"), runner(model, "r"), MLP, samples=400, batch_size=30)
    cand = collect(changed, MLP, samples=400, batch_size=30)
    ref = collect(model, MLP, samples=400, batch_size=30)
    want = expected_stats(cand, ref, 1.3e-6, 1e-5)
    (out,) = streamed["outputs"]
    assert out["out_of_tolerance"] == want["out_of_tolerance"]
    assert out["histogram"]["counts"] == want["histogram"]
    assert [row["row"] for row in out["worst_rows"]] == want["worst"]
    assert out["cosine_similarity"] == pytest.approx(want["cosine_similarity"], abs=1e-12)


def test_on_batch_returning_false_cancels_after_the_current_group():
    """Progress is reported, and a cancel seen, after each group of batches (the first group is one batch)."""
    model = seeded(CreditMLP)
    seen: list[tuple[int, int]] = []
    comparison = ParityComparison()

    def on_batch(done: int, total: int) -> bool:
        seen.append((done, total))
        return len(seen) < 2

    with pytest.raises(ParityCancelled) as caught:
        run_parity(
            candidate=runner(model, "c"),
            reference=runner(model, "r"),
            batches=spec_batches(MLP, samples=1000, batch_size=10, seed=0),
            total_batches=100,
            comparison=comparison,
            on_batch=on_batch,
        )
    (first, _), (done, _) = seen
    assert first == 1 and first < done < 100
    assert [total for _, total in seen] == [100, 100]
    assert (caught.value.done, caught.value.total) == (done, 100)
    assert str(caught.value) == f"Parity run cancelled after {done} of 100 batches ({done * 10} samples)."
    assert comparison.result()["samples"] == done * 10
    assert comparison.result()["batches"] == done


def test_a_runner_error_stops_the_run(tmp_path: Path):
    from models_registry.sandbox.runners import RunnerError

    model = seeded(CreditMLP)

    def broken(inputs: list[torch.Tensor]) -> torch.Tensor:
        raise RunnerError("reference raised inside forward")

    with pytest.raises(RunnerError, match="reference raised"):
        parity(runner(model, "c"), broken, MLP, samples=10, batch_size=5)


def test_statistics_are_float64_accurate_for_float64_outputs():
    comparison = ParityComparison()
    ref = torch.linspace(-1, 1, 1000, dtype=torch.float64).reshape(500, 2)
    cand = ref + 1e-9
    comparison.add_batch(cand, ref, row_offset=0)
    (out,) = comparison.result()["outputs"]
    assert comparison.tolerance()["dtype"] == "float64"
    rtol, atol = DEFAULT_TOLERANCES["float64"]
    assert out["out_of_tolerance"] == assert_close_mismatches(cand, ref, rtol, atol)
    assert out["max_abs_error"] == pytest.approx(1e-9, rel=1e-6)
    assert math.isclose(out["mean_abs_error"], 1e-9, rel_tol=1e-6)
