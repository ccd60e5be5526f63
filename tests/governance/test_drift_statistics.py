"""The drift kernels against scipy, on a real data set (scikit-learn's bundled breast-cancer and digits data)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from scipy.spatial.distance import jensenshannon as scipy_jensenshannon
from sklearn.datasets import load_breast_cancer, load_digits

from governance.drift import counts, numeric, torch_kernels


@pytest.fixture(scope="module")
def shifted_pair() -> tuple[np.ndarray, np.ndarray]:
    """Breast-cancer rows split by tumour class: benign (357 rows) vs malignant (212), a real shift in every column."""
    data = load_breast_cancer()
    return data.data[data.target == 1], data.data[data.target == 0]


@pytest.fixture(scope="module")
def digits_pair() -> tuple[np.ndarray, np.ndarray]:
    """Digit images (pixel values 0..16, many ties): zeros-to-fours vs fives-to-nines."""
    data = load_digits()
    return data.data[data.target < 5], data.data[data.target >= 5]


def test_ks_statistic_and_exact_p_value_match_scipy(shifted_pair: tuple[np.ndarray, np.ndarray]) -> None:
    reference, current = shifted_pair
    for column in range(reference.shape[1]):
        expected = scipy.stats.ks_2samp(reference[:, column], current[:, column])  # auto: exact at these sizes
        statistic = numeric.ks_statistic(np.sort(reference[:, column]), np.sort(current[:, column]))
        p_value, mode = numeric.ks_pvalue(statistic, len(reference), len(current))
        assert mode == "exact"
        assert statistic == pytest.approx(expected.statistic, abs=1e-9)
        assert p_value == pytest.approx(expected.pvalue, abs=1e-6)


def test_ks_matches_scipy_in_the_asymptotic_mode_and_with_ties(digits_pair: tuple[np.ndarray, np.ndarray]) -> None:
    reference, current = digits_pair
    checked = 0
    for column in range(reference.shape[1]):
        ref, cur = reference[:, column], current[:, column]
        if ref.min() == ref.max() and cur.min() == cur.max():
            continue
        for mode in ("asymp", "exact"):
            expected = scipy.stats.ks_2samp(ref, cur, method=mode)
            statistic = numeric.ks_statistic(np.sort(ref), np.sort(cur))
            p_value, used = numeric.ks_pvalue(statistic, len(ref), len(cur), mode)
            assert used == mode
            assert statistic == pytest.approx(expected.statistic, abs=1e-9)
            assert p_value == pytest.approx(expected.pvalue, abs=1e-6)
        checked += 1
    assert checked > 50


def test_ks_of_a_tiny_and_an_unequal_sample_matches_scipy(shifted_pair: tuple[np.ndarray, np.ndarray]) -> None:
    reference, current = shifted_pair
    for n, m in ((1, 1), (3, 7), (40, 200), (357, 1)):
        ref, cur = reference[:n, 2], current[:m, 2]
        expected = scipy.stats.ks_2samp(ref, cur)
        statistic = numeric.ks_statistic(np.sort(ref), np.sort(cur))
        assert statistic == pytest.approx(expected.statistic, abs=1e-9)
        assert numeric.ks_pvalue(statistic, n, m)[0] == pytest.approx(expected.pvalue, abs=1e-6)


def test_ks_p_value_picks_asymptotic_above_ten_thousand_rows() -> None:
    rng = np.random.default_rng(7)
    ref, cur = rng.normal(size=12_000), rng.normal(0.03, 1.0, size=9_000)
    expected = scipy.stats.ks_2samp(ref, cur)
    statistic = numeric.ks_statistic(np.sort(ref), np.sort(cur))
    p_value, mode = numeric.ks_pvalue(statistic, len(ref), len(cur))
    assert mode == "asymp"
    assert statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert p_value == pytest.approx(expected.pvalue, abs=1e-6)


def test_wasserstein_matches_scipy_for_equal_and_unequal_sizes(shifted_pair: tuple[np.ndarray, np.ndarray]) -> None:
    reference, current = shifted_pair
    for column in range(reference.shape[1]):
        for ref, cur in ((reference[:, column], current[:, column]), (reference[:212, column], current[:, column])):
            expected = scipy.stats.wasserstein_distance(ref, cur)
            assert numeric.wasserstein(np.sort(ref), np.sort(cur)) == pytest.approx(expected, rel=1e-9, abs=1e-6)


def test_jensenshannon_and_psi_on_the_same_bins_match_scipy(shifted_pair: tuple[np.ndarray, np.ndarray]) -> None:
    reference, current = shifted_pair
    for column in range(reference.shape[1]):
        ref, cur = np.sort(reference[:, column]), np.sort(current[:, column])
        edges = numeric.sturges_edges(ref, cur)
        assert np.array_equal(edges, np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges"))
        ref_counts, cur_counts = numeric.histogram_sorted(ref, edges), numeric.histogram_sorted(cur, edges)
        assert np.array_equal(ref_counts, np.histogram(ref, edges)[0])
        expected = scipy_jensenshannon(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum())
        assert counts.jensenshannon(ref_counts, cur_counts) == pytest.approx(expected, abs=1e-6)
        # PSI by its definition, computed independently on the same shares (zero shares filled as Evidently does).
        r, c = ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()
        r = np.where(r == 0, 0.0001 if r[r > 0].min() > 0.0001 else r[r > 0].min() / 1e6, r)
        c = np.where(c == 0, 0.0001 if c[c > 0].min() > 0.0001 else c[c > 0].min() / 1e6, c)
        assert counts.psi(ref_counts, cur_counts) == pytest.approx(float(np.sum((r - c) * np.log(r / c))), abs=1e-9)


def test_chi_squared_matches_scipy_on_the_same_counts(digits_pair: tuple[np.ndarray, np.ndarray]) -> None:
    reference, current = digits_pair
    for column in (10, 20, 21, 43, 50):
        values = np.union1d(reference[:, column], current[:, column])
        ref = np.array([(reference[:, column] == v).sum() for v in values], dtype=float)
        cur = np.array([(current[:, column] == v).sum() for v in values], dtype=float)
        statistic, _, _, _ = scipy.stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
        p_value = scipy.stats.chi2_contingency(np.vstack([ref, cur]), correction=False).pvalue
        ours = counts.chisquare_homogeneity(ref, cur)
        assert ours[0] == pytest.approx(statistic, rel=1e-9)
        assert ours[1] == pytest.approx(p_value, abs=1e-6)
        seen = ref > 0  # the goodness-of-fit form (Evidently's) needs expected counts > 0
        gof = scipy.stats.chisquare(cur[seen], ref[seen] * cur[seen].sum() / ref[seen].sum())
        ours_gof = counts.chisquare_goodness_of_fit(ref[seen], cur[seen])
        assert ours_gof[0] == pytest.approx(gof.statistic, rel=1e-9)
        assert ours_gof[1] == pytest.approx(gof.pvalue, abs=1e-6)


def test_two_proportion_z_equals_the_uncorrected_two_by_two_chi_squared() -> None:
    ref, cur = np.array([120.0, 80.0]), np.array([90.0, 110.0])
    z, p_value = counts.two_proportion_z(ref, cur)
    expected = scipy.stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert z**2 == pytest.approx(expected.statistic, rel=1e-9)
    assert p_value == pytest.approx(expected.pvalue, abs=1e-9)


def test_a_category_the_reference_never_saw_is_drift_for_goodness_of_fit() -> None:
    statistic, p_value = counts.chisquare_goodness_of_fit(np.array([50.0, 50.0, 0.0]), np.array([40.0, 40.0, 20.0]))
    assert statistic == float("inf") and p_value == 0.0


def test_sorted_finite_drops_nan_and_infinities() -> None:
    values = np.array([3.0, np.nan, -np.inf, 1.0, np.inf, 2.0, np.nan], dtype=np.float32)
    assert numeric.sorted_finite(values).tolist() == [1.0, 2.0, 3.0]
    matrix = np.array([[1.0, np.nan], [np.inf, 2.0], [0.5, -np.inf], [-np.inf, 1.5]])
    columns = numeric.sorted_finite_columns(matrix)
    assert [c.tolist() for c in columns] == [[0.5, 1.0], [1.5, 2.0]]


def test_the_torch_kernels_agree_with_numpy_on_the_cpu_device(shifted_pair: tuple[np.ndarray, np.ndarray]) -> None:
    reference, current = shifted_pair
    ref_t = torch_kernels.sorted_finite_columns(reference, "cpu")
    cur_t = torch_kernels.sorted_finite_columns(current[:200], "cpu")
    for column in range(reference.shape[1]):
        ref, cur = np.sort(reference[:, column]), np.sort(current[:200, column])
        assert torch_kernels.ks_statistic(ref_t[column], cur_t[column]) == pytest.approx(
            numeric.ks_statistic(ref, cur), abs=1e-12
        )
        assert torch_kernels.wasserstein(ref_t[column], cur_t[column]) == pytest.approx(
            numeric.wasserstein(ref, cur), rel=1e-12
        )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_torch_kernels_agree_with_numpy_on_cuda(shifted_pair: tuple[np.ndarray, np.ndarray]) -> None:
    reference, current = shifted_pair
    ref_t = torch_kernels.sorted_finite_columns(reference, "cuda")
    cur_t = torch_kernels.sorted_finite_columns(current, "cuda")
    for column in range(reference.shape[1]):
        ref, cur = np.sort(reference[:, column]), np.sort(current[:, column])
        assert torch_kernels.ks_statistic(ref_t[column], cur_t[column]) == pytest.approx(
            numeric.ks_statistic(ref, cur), abs=1e-12
        )
        assert torch_kernels.wasserstein(ref_t[column], cur_t[column]) == pytest.approx(
            numeric.wasserstein(ref, cur), rel=1e-9
        )


def test_the_drift_package_imports_neither_django_nor_celery() -> None:
    import subprocess
    import sys

    code = (
        "import sys, governance.drift, governance.drift.fairness, governance.drift.torch_kernels; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'celery', 'forge_site')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
