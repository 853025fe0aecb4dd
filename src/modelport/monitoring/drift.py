"""Drift of a live window against a version's reference profile, per feature and overall.

``compare(profile, window, predictions=...)`` gives a :class:`DriftReport`: for every
feature (and every model output) the test used, its statistic, p-value, threshold and
drift flag, the missing rates on both sides and the window's row count, plus a
dataset-level summary (share of drifted features, dataset drift when that share
reaches ``drift_share``). PSI and the Jensen-Shannon distance are reported for every
compared feature whatever the test, so alert rules can use them.

Nothing about the window raises: an empty window, a feature absent on either side, an
all-missing column, text where the reference has numbers or too few values each get a
status and a message instead of a statistic. Only invalid *options* raise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from modelport.errors import InvalidInputError
from modelport.monitoring import stattests as st
from modelport.monitoring.columns import (
    NUMBER,
    STRING,
    as_columns,
    first_non_number,
    to_float,
    value_type,
)
from modelport.monitoring.profile import CATEGORICAL, NUMERIC, FeatureProfile, ReferenceProfile
from modelport.monitoring.profiler import PREDICTION, category_key


class FeatureStatus(StrEnum):
    """What could be said about one feature of a window."""

    OK = "ok"  # a test ran; see ``drifted``
    EMPTY = "empty"  # the window has no rows
    TOO_FEW = "too_few"  # fewer present values than ``min_count``
    ALL_MISSING = "all_missing"  # the window's column holds no value
    REFERENCE_ALL_MISSING = "reference_all_missing"
    MISSING_IN_WINDOW = "missing_in_window"
    MISSING_IN_REFERENCE = "missing_in_reference"
    TYPE_MISMATCH = "type_mismatch"  # e.g. text where the reference has numbers


@dataclass(frozen=True)
class DriftOptions:
    """How drift is judged.

    ``numeric_test``/``categorical_test`` name a test from ``stattests.TESTS`` or
    ``"auto"`` (by kind and sample size); ``feature_tests`` overrides per feature.
    ``thresholds`` overrides a test's default threshold, ``feature_thresholds`` one
    feature's. ``max_sample`` bounds the window rows KS and Wasserstein see (a seeded
    sample); bins and categories always count every row.
    """

    numeric_test: str = st.AUTO
    categorical_test: str = st.AUTO
    feature_tests: Mapping[str, str] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    feature_thresholds: Mapping[str, float] = field(default_factory=dict)
    drift_share: float = 0.5
    min_count: int = 30
    small_sample: int = st.SMALL_SAMPLE
    max_sample: int = 50_000
    seed: int = 0

    def __post_init__(self) -> None:
        for name, kind in ((self.numeric_test, NUMERIC), (self.categorical_test, CATEGORICAL)):
            if name != st.AUTO:
                st.get_test(name, kind)
        for name in (*self.thresholds, *self.feature_tests.values()):
            if name not in st.TESTS:
                st.get_test(name, NUMERIC)  # raises the precise message
        for what, value in (*self.thresholds.items(), *self.feature_thresholds.items()):
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise InvalidInputError(f"drift threshold for {what!r} must be a number >= 0")
        if not 0 < self.drift_share <= 1:
            raise InvalidInputError("drift_share must be in (0, 1]")
        for name in ("min_count", "small_sample", "max_sample"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InvalidInputError(f"drift option {name} must be a positive integer")

    def test_for(self, profile: FeatureProfile, n_current: int) -> st.StatTest:
        """The test feature ``profile`` gets against ``n_current`` present values."""
        name = self.feature_tests.get(profile.name) or (
            self.numeric_test if profile.kind == NUMERIC else self.categorical_test)
        if name == st.AUTO:
            name = st.default_test(profile.kind, profile.present, n_current, self.small_sample)
        return st.get_test(name, profile.kind, profile.name)

    def threshold_for(self, feature: str, test: st.StatTest) -> float:
        """The threshold ``test`` uses for ``feature``."""
        if feature in self.feature_thresholds:
            return float(self.feature_thresholds[feature])
        return float(self.thresholds.get(test.name, test.threshold))


@dataclass(frozen=True)
class FeatureDrift:
    """The verdict on one feature. ``current_count`` counts the window's rows (missing
    included); statistics are None unless ``status`` is ``ok``."""

    feature: str
    kind: str | None
    status: FeatureStatus
    test: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    threshold: float | None = None
    drifted: bool | None = None
    psi: float | None = None
    jensenshannon: float | None = None
    reference_missing_rate: float | None = None
    current_missing_rate: float | None = None
    current_count: int = 0
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return {**asdict(self), "status": self.status.value}


@dataclass(frozen=True)
class DriftSummary:
    """Dataset-level drift: over the features a test ran on."""

    features: int
    tested: int
    drifted: int
    share: float | None
    drift_share: float
    dataset_drift: bool | None
    problems: int  # features missing on a side, of the wrong type or all missing


@dataclass(frozen=True)
class DriftReport:
    """Drift of one window: per feature, per model output, and overall."""

    status: str  # "ok" or "empty"
    rows: int
    features: tuple[FeatureDrift, ...]
    predictions: tuple[FeatureDrift, ...]
    summary: DriftSummary
    prediction_drift: bool | None
    message: str = ""

    def feature(self, name: str) -> FeatureDrift | None:
        """The verdict on feature ``name`` (inputs first, then outputs), or None."""
        return next((f for f in (*self.features, *self.predictions) if f.feature == name), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return {"status": self.status, "rows": self.rows, "message": self.message,
                "summary": asdict(self.summary), "prediction_drift": self.prediction_drift,
                "features": [f.to_dict() for f in self.features],
                "predictions": [f.to_dict() for f in self.predictions]}


_PROBLEMS = {FeatureStatus.ALL_MISSING, FeatureStatus.REFERENCE_ALL_MISSING,
             FeatureStatus.MISSING_IN_WINDOW, FeatureStatus.MISSING_IN_REFERENCE,
             FeatureStatus.TYPE_MISMATCH}


def compare(reference: ReferenceProfile, window: Any, *, predictions: Any = None,
            options: DriftOptions | None = None) -> DriftReport:
    """Drift of ``window`` (DataFrame, dict of arrays or 2-D array of the features) and,
    optionally, of the model's outputs on it (``predictions``) against ``reference``."""
    opts = options or DriftOptions()
    columns = as_columns(window, "the window")
    rows = max((len(c) for c in columns.values()), default=0)
    features = compare_columns(reference.features, columns, opts)
    outputs: tuple[FeatureDrift, ...] = ()
    if predictions is not None and reference.predictions is not None:
        outputs = compare_columns(reference.predictions, as_columns(
            predictions, "predictions", default=PREDICTION, prefix=f"{PREDICTION}_"), opts)
    tested = [f for f in features if f.drifted is not None]
    drifted = sum(bool(f.drifted) for f in tested)
    share = drifted / len(tested) if tested else None
    summary = DriftSummary(
        features=len(reference.features), tested=len(tested), drifted=drifted, share=share,
        drift_share=opts.drift_share,
        dataset_drift=None if share is None else share >= opts.drift_share,
        problems=sum(f.status in _PROBLEMS for f in features))
    judged = [f.drifted for f in outputs if f.drifted is not None]
    message = ""
    if rows == 0:
        message = "the window holds no rows: no drift computed"
    elif predictions is not None and reference.predictions is None:
        message = "the reference has no prediction profile: predictions not compared"
    return DriftReport(status="empty" if rows == 0 else "ok", rows=rows, features=features,
                       predictions=outputs, summary=summary,
                       prediction_drift=any(judged) if judged else None, message=message)


def compare_columns(profiles: tuple[FeatureProfile, ...], columns: dict[str, pd.Series],
                    opts: DriftOptions) -> tuple[FeatureDrift, ...]:
    """One verdict per reference feature, then one per window column the reference lacks."""
    rows = max((len(c) for c in columns.values()), default=0)
    # One seeded row sample for the whole window: every feature sees the same rows.
    sample = None
    if rows > opts.max_sample:
        rng = np.random.default_rng(opts.seed)
        sample = np.sort(rng.choice(rows, size=opts.max_sample, replace=False))
    out = []
    for profile in profiles:
        series = columns.get(profile.name)
        if series is None:
            out.append(FeatureDrift(
                profile.name, profile.kind, FeatureStatus.MISSING_IN_WINDOW,
                reference_missing_rate=profile.missing_rate,
                message=f"feature {profile.name!r} is not in the window"))
        else:
            out.append(compare_feature(profile, series, opts, sample))
    known = {p.name for p in profiles}
    out.extend(FeatureDrift(name, None, FeatureStatus.MISSING_IN_REFERENCE,
                            current_count=len(series),
                            message=f"column {name!r} is not in the reference profile")
               for name, series in columns.items() if name not in known)
    return tuple(out)


def compare_feature(profile: FeatureProfile, series: pd.Series, opts: DriftOptions,
                    sample: np.ndarray[Any, Any] | None = None) -> FeatureDrift:
    """The verdict on one feature; ``sample`` picks the window rows KS/Wasserstein use."""
    head = FeatureDrift(profile.name, profile.kind, FeatureStatus.EMPTY,
                        reference_missing_rate=profile.missing_rate, current_count=len(series))
    if len(series) == 0:
        return replace(head, message="no rows")
    counted = _count(profile, series)
    if isinstance(counted, str):
        return replace(head, status=FeatureStatus.TYPE_MISMATCH, message=counted)
    counts, values = counted
    present = int(counts.sum())
    head = replace(head, current_missing_rate=1 - present / len(series))
    if profile.present == 0:
        return replace(head, status=FeatureStatus.REFERENCE_ALL_MISSING,
                       message="the reference has no values for this feature")
    if present == 0:
        return replace(head, status=FeatureStatus.ALL_MISSING,
                       message="the window has no values for this feature")
    if present < opts.min_count:
        return replace(head, status=FeatureStatus.TOO_FEW,
                       message=f"{present} values, fewer than min_count={opts.min_count}")
    test = opts.test_for(profile, present)
    ref = np.asarray(profile.counts, dtype=np.float64)
    psi, js = st.psi(ref, counts), st.jensenshannon(ref, counts)
    p_value: float | None = None
    if test.name in ("ks", "wasserstein"):
        assert values is not None
        cur = _bounded(values, sample, opts)
        ref_sample = np.asarray(profile.sample, dtype=np.float64)
        if test.name == "ks":
            statistic, p_value = st.ks(ref_sample, cur)
        else:
            statistic = st.wasserstein(ref_sample, cur, profile.stats.get("std", 0.0))
    elif test.name == "chisquare":
        statistic, p_value = st.chisquare(ref, counts)
    else:
        statistic = psi if test.name == "psi" else js
    threshold = opts.threshold_for(profile.name, test)
    return replace(head, status=FeatureStatus.OK, test=test.name, statistic=statistic,
                   p_value=p_value, threshold=threshold,
                   drifted=test.drifted(statistic, p_value, threshold), psi=psi,
                   jensenshannon=js)


def _bounded(values: np.ndarray[Any, Any], sample: np.ndarray[Any, Any] | None,
             opts: DriftOptions) -> np.ndarray[Any, Any]:
    """At most ``opts.max_sample`` of the present ``values``, as a seeded row sample."""
    if len(values) > opts.max_sample:
        if sample is None or len(sample) != opts.max_sample or sample[-1] >= len(values):
            rng = np.random.default_rng(opts.seed)
            sample = np.sort(rng.choice(len(values), size=opts.max_sample, replace=False))
        values = values[sample]
    return values[np.isfinite(values)]


def _count(profile: FeatureProfile, series: pd.Series
           ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None] | str:
    """The window's counts over the reference bins or categories (and, for numbers, the
    values as floats), or a message saying why the column cannot be compared."""
    vt = value_type(series)
    if profile.kind == CATEGORICAL and profile.value_type == STRING:
        return _category_counts(profile, series.value_counts(dropna=True), STRING), None
    if vt == STRING:
        bad = first_non_number(series)
        if bad is not None:
            return (f"the window holds text (e.g. {str(bad)[:40]!r}) where the reference "
                    "has numbers")
    elif vt != NUMBER:
        return f"the window's type {series.dtype} cannot be compared with numbers"
    x = to_float(series)
    present = x[np.isfinite(x)]
    if profile.kind == CATEGORICAL:
        counts = pd.Series(present, copy=False).value_counts()
        return _category_counts(profile, counts, NUMBER), x
    edges = np.asarray(profile.edges, dtype=np.float64)
    bins = np.bincount(np.searchsorted(edges, present, side="right"), minlength=edges.size + 1)
    return bins.astype(np.float64), x


def _category_counts(profile: FeatureProfile, counts: pd.Series, kind: str) -> np.ndarray[Any, Any]:
    index = {c: i for i, c in enumerate(profile.categories)}
    other = len(profile.categories)
    out = np.zeros(other + 1, dtype=np.float64)
    for value, n in counts.items():
        out[index.get(category_key(value, kind), other)] += n
    return out
