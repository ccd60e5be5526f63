"""Drift per column and for the dataset from raw values: Evidently's default rule, overrides and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from sklearn.datasets import load_breast_cancer

from governance.drift import DriftConfigError, DriftOptions, drift_report
from governance.drift.columns import CATEGORICAL, NUMERIC


@pytest.fixture(scope="module")
def cancer() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, str]]:
    data = load_breast_cancer()
    names = [n.replace(" ", "_") for n in data.feature_names]
    benign, malignant = data.data[data.target == 1], data.data[data.target == 0]
    kinds = dict.fromkeys(names, NUMERIC)
    return (
        {n: benign[:, i] for i, n in enumerate(names)},
        {n: malignant[:, i] for i, n in enumerate(names)},
        kinds,
    )


def by_name(result: dict) -> dict[str, dict]:
    return {entry["name"]: entry for entry in result["features"]}


def test_small_reference_uses_ks_and_flags_a_real_shift(cancer) -> None:
    reference, current, kinds = cancer
    result = by_name(drift_report(reference, current, kinds))
    radius = result["mean_radius"]
    expected = scipy.stats.ks_2samp(reference["mean_radius"], current["mean_radius"])
    assert radius["method"] == "ks" and radius["threshold"] == 0.05
    assert radius["statistic"] == pytest.approx(expected.statistic, abs=1e-9)
    assert radius["p_value"] == pytest.approx(expected.pvalue, abs=1e-6)
    assert radius["drifted"] is True and radius["exact"] is True and radius["ks_mode"] == "exact"


def test_a_random_split_of_the_same_data_does_not_drift(cancer) -> None:
    reference, current, kinds = cancer
    rng = np.random.default_rng(3)
    both = {n: np.concatenate([reference[n], current[n]]) for n in kinds}
    order = rng.permutation(len(both["mean_radius"]))
    first, second = order[:284], order[284:]
    result = drift_report({n: v[first] for n, v in both.items()}, {n: v[second] for n, v in both.items()}, kinds)
    assert result["dataset"]["drifted"] is False
    assert result["dataset"]["drifted_share"] < 0.2


def test_large_reference_uses_normed_wasserstein_like_evidently() -> None:
    rng = np.random.default_rng(1)
    reference = {"a": rng.normal(0, 2, 5000), "b": rng.normal(0, 1, 5000)}
    current = {"a": rng.normal(0.5, 2, 3000), "b": rng.normal(0.05, 1, 3000)}
    result = by_name(drift_report(reference, current, {"a": NUMERIC, "b": NUMERIC}))
    expected_a = scipy.stats.wasserstein_distance(reference["a"], current["a"]) / np.std(reference["a"])
    assert result["a"]["method"] == "wasserstein" and result["a"]["p_value"] is None
    assert result["a"]["statistic"] == pytest.approx(expected_a, rel=1e-9)
    assert result["a"]["drifted"] is True and result["b"]["drifted"] is False


def test_the_method_choice_follows_evidently_for_few_values_and_categories() -> None:
    rng = np.random.default_rng(2)
    small = {
        "few": rng.integers(0, 4, 500).astype(float),
        "two": rng.integers(0, 2, 500).astype(float),
        "cat": rng.choice(["x", "y", "z"], 500),
    }
    large = {n: np.concatenate([v, v, v]) for n, v in small.items()}
    kinds = {"few": NUMERIC, "two": NUMERIC, "cat": CATEGORICAL}
    assert {e["name"]: e["method"] for e in drift_report(small, small, kinds)["features"]} == {
        "few": "chisquare",
        "two": "z",
        "cat": "chisquare",
    }
    assert {e["name"]: e["method"] for e in drift_report(large, small, kinds)["features"]} == {
        "few": "jensenshannon",
        "two": "jensenshannon",
        "cat": "jensenshannon",
    }


def test_a_method_and_threshold_can_be_named_for_all_or_per_feature(cancer) -> None:
    reference, current, kinds = cancer
    options = DriftOptions(method="psi", threshold=0.2, per_feature={"mean_area": {"method": "jensenshannon"}})
    result = by_name(drift_report(reference, current, kinds, options))
    assert result["mean_radius"]["method"] == "psi" and result["mean_radius"]["threshold"] == 0.2
    assert result["mean_area"]["method"] == "jensenshannon" and result["mean_area"]["threshold"] == 0.1


def test_bad_methods_and_thresholds_are_refused_with_their_name() -> None:
    with pytest.raises(DriftConfigError, match="unknown drift method 'kss'"):
        DriftOptions(method="kss")
    with pytest.raises(DriftConfigError, match="between 0 and 1"):
        DriftOptions(method="ks", threshold=5)
    with pytest.raises(DriftConfigError, match="needs a method"):
        DriftOptions(threshold=0.3)
    with pytest.raises(DriftConfigError, match="unknown column"):
        drift_report(
            {"a": np.ones(3)}, {"a": np.ones(3)}, {"a": NUMERIC}, DriftOptions(per_feature={"b": {"method": "ks"}})
        )


def test_nan_and_infinities_are_dropped_and_counted() -> None:
    rng = np.random.default_rng(4)
    ref = rng.normal(size=400)
    cur = rng.normal(size=300)
    dirty = cur.copy()
    dirty[:30] = np.nan
    dirty[30:40] = np.inf
    dirty[40:45] = -np.inf
    entry = drift_report({"a": ref}, {"a": dirty}, {"a": NUMERIC})["features"][0]
    expected = scipy.stats.ks_2samp(ref, cur[45:])
    assert entry["missing"] == {"reference": 0, "current": 45}
    assert entry["rows"] == {"reference": 400, "current": 300}
    assert entry["statistic"] == pytest.approx(expected.statistic, abs=1e-9)
    assert entry["p_value"] == pytest.approx(expected.pvalue, abs=1e-6)


def test_a_column_missing_from_half_the_rows_is_judged_on_the_other_half() -> None:
    rng = np.random.default_rng(5)
    ref = rng.normal(size=2000)
    cur = rng.normal(1.0, 1.0, 2000)
    cur[::2] = np.nan  # the column was absent from every other logged row
    entry = drift_report({"a": ref}, {"a": cur}, {"a": NUMERIC})["features"][0]
    assert entry["missing"]["current"] == 1000 and entry["rows"]["current"] == 2000
    assert entry["statistic"] == pytest.approx(scipy.stats.wasserstein_distance(ref, cur[1::2]) / np.std(ref), rel=1e-9)
    assert entry["drifted"] is True


def test_a_column_absent_from_every_current_row_is_not_judged() -> None:
    result = drift_report(
        {"a": np.arange(10.0), "b": np.arange(10.0)}, {"a": np.arange(10.0)}, {"a": NUMERIC, "b": NUMERIC}
    )
    entry = by_name(result)["b"]
    assert entry["drifted"] is None and "no usable value in the current data" in entry["note"]
    assert result["dataset"]["judged_features"] == 1


def test_a_constant_baseline_column() -> None:
    ref = np.full(3000, 7.0)
    same = drift_report({"c": ref}, {"c": np.full(500, 7.0)}, {"c": NUMERIC})["features"][0]
    moved = drift_report({"c": ref}, {"c": np.full(500, 7.5)}, {"c": NUMERIC})["features"][0]
    # One distinct value: Evidently's rule picks Jensen-Shannon on the value counts.
    assert same["method"] == "jensenshannon" and same["statistic"] == 0.0 and same["drifted"] is False
    assert moved["drifted"] is True
    wide = drift_report({"c": ref}, {"c": np.linspace(7, 8, 500)}, {"c": NUMERIC})["features"][0]
    # Wasserstein normalised by the std floor 0.001 (Evidently's), not divided by zero.
    assert wide["method"] == "wasserstein" and wide["statistic"] == pytest.approx(0.5 / 0.001, rel=1e-9)


def test_a_category_never_seen_in_the_baseline_is_named() -> None:
    ref = np.array(["a"] * 300 + ["b"] * 200, dtype=object)
    cur = np.array(["a"] * 150 + ["b"] * 100 + ["c"] * 5 + [None] * 10, dtype=object)
    entry = drift_report({"k": ref}, {"k": cur}, {"k": CATEGORICAL})["features"][0]
    assert entry["method"] == "chisquare" and entry["drifted"] is True
    assert entry["new_categories"] == ["c"] and "'c'" in entry["note"]
    assert entry["missing"]["current"] == 10


def test_dataset_drift_is_the_share_of_drifted_features_against_a_configurable_threshold(cancer) -> None:
    reference, current, kinds = cancer
    result = drift_report(reference, current, kinds)
    share = sum(e["drifted"] for e in result["features"]) / len(result["features"])
    assert result["dataset"]["drifted_share"] == pytest.approx(share)
    assert result["dataset"]["drifted"] is (share >= 0.5)
    strict = drift_report(reference, current, kinds, DriftOptions(drift_share=1.0))
    assert strict["dataset"]["drifted"] is (share == 1.0)
    assert result["features"][0]["drifted"] is True  # drifted features lead the list


def test_the_prediction_is_reported_apart_from_the_features(cancer) -> None:
    reference, current, kinds = cancer
    result = drift_report(reference, current, kinds, prediction="mean_radius")
    assert result["prediction"]["name"] == "mean_radius"
    assert "mean_radius" not in by_name(result)
    assert result["rows"] == {"reference": 357, "current": 212}


def test_the_torch_path_gives_the_numpy_results(cancer) -> None:
    reference, current, kinds = cancer
    plain = by_name(drift_report(reference, current, kinds))
    on_device = by_name(drift_report(reference, current, kinds, device="cpu"))
    for name, entry in plain.items():
        assert on_device[name]["statistic"] == pytest.approx(entry["statistic"], abs=1e-12)
        assert on_device[name]["drifted"] == entry["drifted"]
        assert on_device[name]["device"] == "cpu"
