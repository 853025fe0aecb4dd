"""Each drift statistic against a known answer, the default choice, and PSI properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from modelport.errors import InvalidInputError
from modelport.monitoring import stattests
from modelport.monitoring.profile import CATEGORICAL, NUMERIC
from modelport.monitoring.profiler import ProfileSettings, build_reference
from modelport.monitoring.stattests import default_test, get_test, psi


def test_psi_by_hand() -> None:
    ref, cur = np.array([50.0, 30, 20]), np.array([20.0, 30, 50])
    expected = sum((c - r) * math.log(c / r) for r, c in [(0.5, 0.2), (0.3, 0.3), (0.2, 0.5)])
    assert psi(ref, cur) == pytest.approx(expected)


def test_psi_of_an_empty_bin_uses_epsilon() -> None:
    got = psi(np.array([100.0, 0]), np.array([50.0, 50]))
    e = stattests.EPSILON
    assert got == pytest.approx((0.5 - 1) * math.log(0.5) + (0.5 - e) * math.log(0.5 / e))
    assert math.isfinite(got)


def test_jensenshannon_matches_scipy_base_2() -> None:
    ref, cur = np.array([10.0, 20, 70]), np.array([30.0, 30, 40])
    assert stattests.jensenshannon(ref, cur) == pytest.approx(jensenshannon(ref, cur, base=2))
    assert stattests.jensenshannon(np.array([1.0, 0]), np.array([0.0, 1])) == pytest.approx(1)


def test_ks_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=400), rng.normal(0.3, size=300)
    want = stats.ks_2samp(a, b)
    assert stattests.ks(a, b) == pytest.approx((want.statistic, want.pvalue))


def test_wasserstein_is_normed_by_the_reference_std() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=2000), rng.normal(1, size=2000)
    want = stats.wasserstein_distance(a, b) / 2.0
    assert stattests.wasserstein(a, b, 2.0) == pytest.approx(want)
    assert stattests.wasserstein(a, a + 1, 0.0) == pytest.approx(1000.0)  # constant reference


def test_chisquare_matches_scipy_contingency() -> None:
    ref, cur = np.array([500.0, 300, 200]), np.array([40.0, 35, 25])
    want = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert stattests.chisquare(ref, cur) == pytest.approx((want.statistic, want.pvalue))


def test_binary_chisquare_equals_the_two_proportion_z_test() -> None:
    ref, cur = np.array([600.0, 400]), np.array([130.0, 70])
    n1, n2 = ref.sum(), cur.sum()
    p1, p2, pooled = ref[0] / n1, cur[0] / n2, (ref[0] + cur[0]) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    statistic, p_value = stattests.chisquare(ref, cur)
    assert statistic == pytest.approx(z * z)
    assert p_value == pytest.approx(2 * stats.norm.sf(abs(z)))


def test_chisquare_pools_rare_categories_and_handles_new_ones() -> None:
    ref, cur = np.array([1000.0, 1000, 2, 1]), np.array([50.0, 50, 0, 0])
    pooled = stats.chi2_contingency(np.array([[1000, 1000, 3], [50, 50, 0]]), correction=False)
    assert stattests.chisquare(ref, cur) == pytest.approx((pooled.statistic, pooled.pvalue))
    # A category the reference never saw: finite, and very significant.
    statistic, p_value = stattests.chisquare(np.array([1000.0, 0]), np.array([50.0, 50]))
    assert math.isfinite(statistic) and p_value < 1e-10
    assert stattests.chisquare(np.array([10.0, 0]), np.array([5.0, 0])) == (0.0, 1.0)


@pytest.mark.parametrize("kind, n_ref, n_cur, want", [
    (NUMERIC, 500, 100, "ks"), (NUMERIC, 1_000_000, 1000, "ks"),
    (NUMERIC, 800, 1_000_000, "ks"), (NUMERIC, 5000, 5000, "wasserstein"),
    (CATEGORICAL, 500, 100, "chisquare"), (CATEGORICAL, 1_000_000, 1000, "chisquare"),
    (CATEGORICAL, 5000, 1001, "jensenshannon"),
])
def test_default_test_by_kind_and_size(kind: str, n_ref: int, n_cur: int, want: str) -> None:
    assert default_test(kind, n_ref, n_cur) == want


def test_unknown_or_unfit_test_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="unknown drift test 'anderson'"):
        get_test("anderson", NUMERIC)
    with pytest.raises(InvalidInputError, match="'ks' for feature 'c' is for numeric"):
        get_test("ks", CATEGORICAL, "c")


# -- properties of the bins and PSI ------------------------------------------------------

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


def _bins(values: list[float]) -> tuple[np.ndarray, np.ndarray]:
    f = build_reference({"x": np.asarray(values)},
                        settings=ProfileSettings(max_categories_numeric=0)).features[0]
    return np.asarray(f.edges), np.asarray(f.counts, dtype=float)


def _count(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(edges, values, side="right"),
                       minlength=edges.size + 1).astype(float)


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=2, max_size=300), st.lists(finite, min_size=1, max_size=300))
def test_psi_is_never_negative(reference: list[float], current: list[float]) -> None:
    edges, ref = _bins(reference)
    assert list(edges) == sorted(set(edges))  # deduplicated, increasing
    assert ref.sum() == len(reference)
    assert psi(ref, _count(edges, np.asarray(current))) >= 0


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=2, max_size=300))
def test_psi_of_the_reference_against_itself_is_zero(reference: list[float]) -> None:
    edges, ref = _bins(reference)
    assert psi(ref, _count(edges, np.asarray(reference))) == pytest.approx(0, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=2, max_size=300), st.lists(finite, min_size=1, max_size=300),
       st.randoms(use_true_random=False))
def test_psi_ignores_row_order(reference: list[float], current: list[float], rnd) -> None:
    edges, ref = _bins(reference)
    shuffled = list(current)
    rnd.shuffle(shuffled)
    edges2, ref2 = _bins(sorted(reference))
    assert np.array_equal(edges, edges2) and np.array_equal(ref, ref2)
    assert psi(ref, _count(edges, np.asarray(current))) == psi(
        ref2, _count(edges2, np.asarray(shuffled)))
