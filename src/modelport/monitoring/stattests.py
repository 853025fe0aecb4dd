"""The drift tests, and which one a feature gets by default.

Every test compares a reference with a current window of one feature and returns a
statistic, a p-value (tests that have one) and whether that means drift:

==============  ===========  =====================================  ==========  ========
test            kinds        statistic                              drift when  default
==============  ===========  =====================================  ==========  ========
ks              numeric      Kolmogorov-Smirnov D (``ks_2samp``)    p < 0.05
wasserstein     numeric      Wasserstein-1 / reference std          >= 0.1
chisquare       categorical  Pearson chi-squared (contingency)      p < 0.05
jensenshannon   both         Jensen-Shannon distance, base 2        >= 0.1
psi             both         population stability index             >= 0.1
==============  ===========  =====================================  ==========  ========

The default choice follows Evidently's (``_get_default_stattest``): for small data a
p-value test (KS for numbers, chi-squared for categories), for large data a distance
(normed Wasserstein for numbers, Jensen-Shannon for categories), because on large
samples a p-value test calls every negligible difference significant. Where we differ:

* "small" is decided on the *smaller* side of the comparison, not on the reference:
  our reference is the whole training set, nearly always above 1,000 rows, while what
  makes a p-value test oversensitive is the size of both samples together.
* Binary categories get chi-squared too; on a 2x2 table without continuity correction
  it is the square of Evidently's two-proportion z-test, so the p-value is the same.
* Chi-squared pools categories expected fewer than 5 times in the window into one
  cell (the test's approximation needs it), as ``registry.traffic.shift_p_value`` does.
* Jensen-Shannon uses base 2 (0 = same, 1 = disjoint) like the rollout's output
  distance; Evidently's natural-log distance is 0.83 times as large.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from modelport.errors import InvalidInputError
from modelport.monitoring.profile import CATEGORICAL, NUMERIC

EPSILON = 1e-4  # share given to an empty bin, so PSI stays finite (Evidently's value)
SMALL_SAMPLE = 1_000
AUTO = "auto"

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True)
class StatTest:
    """A drift test: its name, the kinds it applies to and its default threshold."""

    name: str
    kinds: frozenset[str]
    threshold: float
    p_value: bool  # True: drift when p < threshold; False: when statistic >= threshold

    def drifted(self, statistic: float, p_value: float | None, threshold: float) -> bool:
        """Whether a result at ``threshold`` means drift."""
        if self.p_value:
            return p_value is not None and p_value < threshold
        return statistic >= threshold


_BOTH = frozenset((NUMERIC, CATEGORICAL))
TESTS: dict[str, StatTest] = {t.name: t for t in (
    StatTest("ks", frozenset((NUMERIC,)), 0.05, True),
    StatTest("wasserstein", frozenset((NUMERIC,)), 0.1, False),
    StatTest("chisquare", frozenset((CATEGORICAL,)), 0.05, True),
    StatTest("jensenshannon", _BOTH, 0.1, False),
    StatTest("psi", _BOTH, 0.1, False),
)}


def get_test(name: str, kind: str, feature: str | None = None) -> StatTest:
    """The test called ``name``, checked to apply to ``kind``."""
    test = TESTS.get(name)
    where = f" for feature {feature!r}" if feature else ""
    if test is None:
        raise InvalidInputError(f"unknown drift test {name!r}{where}; choose one of "
                                f"{', '.join(TESTS)} or {AUTO!r}")
    if kind not in test.kinds:
        kinds = " or ".join(sorted(test.kinds))
        raise InvalidInputError(f"drift test {name!r}{where} is for {kinds} features, "
                                f"not {kind}")
    return test


def default_test(kind: str, n_reference: int, n_current: int,
                 small: int = SMALL_SAMPLE) -> str:
    """The test Evidently would pick (see the module docstring for where we differ)."""
    if min(n_reference, n_current) <= small:
        return "ks" if kind == NUMERIC else "chisquare"
    return "wasserstein" if kind == NUMERIC else "jensenshannon"


def shares(counts: FloatArray) -> FloatArray:
    """Counts as shares (all zeros stay zeros)."""
    total = counts.sum()
    return counts / total if total else counts.astype(np.float64)


def psi(reference: FloatArray, current: FloatArray) -> float:
    """Population stability index of two count vectors over the same bins.

    ``sum((c - r) * ln(c / r))`` over shares, an empty bin counted as ``EPSILON``; every
    term is >= 0, so PSI is >= 0 and exactly 0 for equal shares.
    """
    r, c = shares(np.asarray(reference, float)), shares(np.asarray(current, float))
    r = np.where(r == 0, EPSILON, r)
    c = np.where(c == 0, EPSILON, c)
    return float(np.sum((c - r) * np.log(c / r)))


def jensenshannon(reference: FloatArray, current: FloatArray) -> float:
    """Jensen-Shannon distance (base 2) of two count vectors over the same bins."""
    from scipy.spatial.distance import jensenshannon as js

    return float(js(np.asarray(reference, float), np.asarray(current, float), base=2))


def ks(reference_sample: FloatArray, current: FloatArray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value."""
    from scipy.stats import ks_2samp

    result = ks_2samp(reference_sample, current)
    return float(result.statistic), float(result.pvalue)


def wasserstein(reference_sample: FloatArray, current: FloatArray, reference_std: float) -> float:
    """Wasserstein-1 distance in units of the reference's standard deviation.

    A constant reference has no spread; 0.001 stands in for it (as in Evidently).
    """
    from scipy.stats import wasserstein_distance

    return float(wasserstein_distance(reference_sample, current) / max(reference_std, 0.001))


def chisquare(reference: FloatArray, current: FloatArray) -> tuple[float, float]:
    """Pearson chi-squared test of homogeneity of two count vectors (no continuity
    correction), categories expected fewer than 5 times in ``current`` pooled.

    One non-empty category left means nothing can differ: statistic 0, p-value 1.
    """
    from scipy.stats import chi2_contingency

    ref, cur = np.asarray(reference, float), np.asarray(current, float)
    total = ref + cur
    expected = total * cur.sum() / total.sum() if total.sum() else total
    small = (expected < 5) & (total > 0)
    if small.any() and small.sum() < (total > 0).sum():
        ref = np.append(ref[~small], ref[small].sum())
        cur = np.append(cur[~small], cur[small].sum())
    table = np.vstack([ref, cur])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0
    result = chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)
