"""Per-window sketches: exact merges, storage, and drift from sketches against drift from raw rows."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.stats
from scipy.spatial.distance import jensenshannon as scipy_jensenshannon

from governance.drift import DriftOptions, drift_report
from governance.drift.columns import CATEGORICAL, NUMERIC, prepare
from governance.drift.sketch import (
    SketchLayout,
    SketchLayoutMismatch,
    WindowSketch,
    drift_from_sketches,
    ks_from_bins,
    merge_sketch_bytes,
    merge_sketches,
    sketch_of,
    wasserstein_from_bins,
)

KINDS = {"x": NUMERIC, "y": NUMERIC, "k": CATEGORICAL, "d": NUMERIC}


def make_rows(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    return {
        "x": rng.normal(shift, 1.0, n),
        "y": rng.exponential(1.0 + shift, n),
        "k": rng.choice(["red", "green", "blue"], n, p=[0.5 - shift / 4, 0.3, 0.2 + shift / 4]).astype(object),
        "d": rng.integers(0, 4, n).astype(float),
    }


@pytest.fixture(scope="module")
def baseline() -> tuple[dict, SketchLayout, WindowSketch]:
    rng = np.random.default_rng(11)
    raw = make_rows(rng, 5000)
    prepared = {name: prepare(values, KINDS[name]) for name, values in raw.items()}
    layout = SketchLayout.from_reference(prepared)
    return raw, layout, sketch_of(layout, prepared)


def test_the_layout_takes_quantile_edges_or_the_values_of_a_discrete_feature(baseline) -> None:
    raw, layout, reference = baseline
    x = layout.features[layout.index("x")]
    assert len(x.edges) == 29 and not x.discrete
    np.testing.assert_allclose(x.edges, np.quantile(raw["x"], np.arange(1, 30) / 30))
    assert layout.features[layout.index("d")].edges == (0.0, 1.0, 2.0, 3.0)
    assert layout.features[layout.index("k")].categories == ("blue", "green", "red")
    counts = reference.feature_counts(layout.index("x"))
    # Open outer bins hold the values below the first and above the last quantile: about 1/30 each.
    assert counts.sum() == 5000 and 150 <= counts[0] <= 170 and 150 <= counts[-1] <= 170
    assert SketchLayout.from_json(layout.to_json()).fingerprint == layout.fingerprint


def test_sketches_of_parts_merge_exactly_into_the_sketch_of_the_whole(baseline) -> None:
    _, layout, _ = baseline
    rng = np.random.default_rng(12)
    rows = make_rows(rng, 3000, shift=0.3)
    rows["x"][::7] = np.nan
    rows["k"][5] = "violet"
    whole = sketch_of(layout, rows)
    cuts = [0, 100, 1500, 1501, 3000]
    parts = [sketch_of(layout, {n: v[a:b] for n, v in rows.items()}) for a, b in itertools.pairwise(cuts)]
    for order in (parts, parts[::-1], [parts[2], parts[0], parts[3], parts[1]]):
        merged = merge_sketches(order)
        assert np.array_equal(merged.counts, whole.counts)
        assert np.array_equal(merged.tallies, whole.tallies)
        assert np.array_equal(merged.moments[:, 2:], whole.moments[:, 2:])  # min, max: exact
        np.testing.assert_allclose(merged.moments[:, :2], whole.moments[:, :2], rtol=1e-12)
        assert merged.unseen == {"k": {"violet": 1}}
    assert whole.tallies[layout.index("x")].tolist() == [3000 - 429, 429]


def test_a_sketch_survives_its_bytes_and_refuses_another_layout(baseline) -> None:
    raw, layout, reference = baseline
    blob = reference.to_bytes()
    back = WindowSketch.from_bytes(layout, blob)
    assert np.array_equal(back.counts, reference.counts) and np.array_equal(back.moments, reference.moments)
    merged = merge_sketch_bytes(layout, [blob, blob])
    assert merged is not None and int(merged.tallies[0, 0]) == 10_000
    other = SketchLayout.from_reference({"x": prepare(raw["x"][:100], NUMERIC)})
    with pytest.raises(SketchLayoutMismatch):
        WindowSketch.from_bytes(other, blob)
    with pytest.raises(SketchLayoutMismatch):
        merge_sketches([reference, WindowSketch.empty(other)])


def test_distances_on_counts_are_exact_from_sketches(baseline) -> None:
    raw, layout, reference = baseline
    rng = np.random.default_rng(13)
    current_rows = make_rows(rng, 2000, shift=0.4)
    current = sketch_of(layout, current_rows)
    result = drift_from_sketches(reference, current, DriftOptions(method="jensenshannon"))
    entry = next(e for e in result["features"] if e["name"] == "x")
    edges = np.asarray(layout.features[layout.index("x")].edges)
    bins = np.concatenate(([-np.inf], edges, [np.inf]))
    ref_counts = np.histogram(raw["x"], bins)[0]
    cur_counts = np.histogram(current_rows["x"], bins)[0]
    assert entry["exact"] is True
    assert entry["statistic"] == pytest.approx(
        scipy_jensenshannon(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()), abs=1e-9
    )
    cat = drift_from_sketches(reference, current, DriftOptions(method="chi2_contingency"))
    k = next(e for e in cat["features"] if e["name"] == "k")
    table = [
        [np.sum(raw["k"] == c) for c in ("blue", "green", "red")],
        [np.sum(current_rows["k"] == c) for c in ("blue", "green", "red")],
    ]
    assert k["p_value"] == pytest.approx(scipy.stats.chi2_contingency(table, correction=False).pvalue, abs=1e-9)


def test_wasserstein_and_ks_from_sketches_bound_the_exact_values(baseline) -> None:
    raw, layout, reference = baseline
    rng = np.random.default_rng(14)
    for shift in (0.0, 0.1, 0.5):
        current_rows = make_rows(rng, 4000, shift=shift)
        sketched = {e["name"]: e for e in drift_from_sketches(reference, sketch_of(layout, current_rows))["features"]}
        exact = {e["name"]: e for e in drift_report(raw, current_rows, KINDS)["features"]}
        for name in ("x", "y"):
            low, high = sketched[name]["bounds"]
            assert sketched[name]["method"] == "wasserstein" and sketched[name]["exact"] is False
            assert low <= exact[name]["statistic"] <= high
            assert low <= sketched[name]["statistic"] <= high
            assert abs(sketched[name]["statistic"] - exact[name]["statistic"]) < 0.02
        ks = drift_from_sketches(reference, sketch_of(layout, current_rows), DriftOptions(method="ks"))
        entry = next(e for e in ks["features"] if e["name"] == "x")
        true_d = scipy.stats.ks_2samp(raw["x"], current_rows["x"]).statistic
        assert entry["bounds"][0] <= true_d <= entry["bounds"][1]


def test_wasserstein_from_bins_is_exact_where_the_cdfs_do_not_cross() -> None:
    bounds = np.array([0.0, 1.0, 2.0, 3.0])
    # All reference mass at 0.25, all current mass at 2.5: W1 = 2.25, and the CDFs never cross.
    estimate, lower, upper = wasserstein_from_bins(
        bounds, np.array([1, 0, 0]), np.array([0, 0, 1]), np.array([0.25, 0, 0]), np.array([0, 0, 2.5])
    )
    assert estimate == pytest.approx(2.25) and lower == pytest.approx(2.25) and upper == pytest.approx(2.25)
    assert ks_from_bins(np.array([5, 5, 0]), np.array([0, 5, 5]))[0] == pytest.approx(0.5)


def test_an_empty_window_and_a_feature_missing_from_it(baseline) -> None:
    _, layout, reference = baseline
    rng = np.random.default_rng(15)
    rows = make_rows(rng, 300)
    del rows["y"]
    result = drift_from_sketches(reference, sketch_of(layout, rows))
    y = next(e for e in result["features"] if e["name"] == "y")
    assert y["drifted"] is None and y["missing"]["current"] == 300
    empty = drift_from_sketches(reference, WindowSketch.empty(layout))
    assert all(e["drifted"] is None for e in empty["features"]) and empty["dataset"]["drifted"] is False


def test_default_methods_from_sketches_match_the_raw_rule(baseline) -> None:
    raw, layout, reference = baseline
    rng = np.random.default_rng(16)
    rows = make_rows(rng, 1000, shift=0.2)
    from_sketch = {e["name"]: e["method"] for e in drift_from_sketches(reference, sketch_of(layout, rows))["features"]}
    from_raw = {e["name"]: e["method"] for e in drift_report(raw, rows, KINDS)["features"]}
    assert from_sketch == from_raw
