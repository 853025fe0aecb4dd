"""Building a reference profile from training data (and the model's outputs on it).

Which kind a column is:

* **categorical**: text, pandas ``category``, mixed objects, booleans, and numbers with
  at most ``max_categories_numeric`` (default 10) distinct values in the reference:
  0/1 flags, small integer codes, one-hot floats, constant columns. Their quantile bins
  would collapse into one or two, and a category test reads them better. Evidently
  draws the same line at 5 distinct values (counted over reference and current).
* **numeric**: every other number column: quantile bins plus a raw sample.

Everything is vectorised (one quantile, one ``searchsorted``, one ``bincount`` per
column), so a million rows by twenty columns profiles in about a second; samples are
seeded per column, so the same data always gives the same profile.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelport.errors import InvalidInputError, ModelportError
from modelport.monitoring.columns import NUMBER, UNSUPPORTED, as_columns, to_float, value_type
from modelport.monitoring.profile import CATEGORICAL, NUMERIC, FeatureProfile, ReferenceProfile

PREDICTION = "prediction"


@dataclass(frozen=True)
class ProfileSettings:
    """How a profile is made: bins, categories kept, sample sizes and the seed."""

    bins: int = 10
    top_categories: int = 20
    sample_size: int = 5_000
    max_categories_numeric: int = 10
    prediction_rows: int = 10_000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("bins", "top_categories", "sample_size", "prediction_rows"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InvalidInputError(f"profile setting {name} must be a positive integer")
        if self.bins > 1000:
            raise InvalidInputError("profile setting bins must be at most 1000")

    def to_dict(self) -> dict[str, int]:
        """The settings as stored in the profile."""
        return {k: getattr(self, k) for k in ("bins", "top_categories", "sample_size",
                                               "max_categories_numeric", "prediction_rows",
                                               "seed")}


def build_reference(data: Any, predict: Callable[[Any], Any] | None = None,
                    settings: ProfileSettings | None = None) -> ReferenceProfile:
    """The profile of ``data`` and, with ``predict``, of the model's outputs on it.

    ``predict`` runs on a seeded sample of at most ``settings.prediction_rows`` rows. If it
    fails the profile is still made, without predictions: a warning says why (training
    data often carries columns the model does not take).
    """
    settings = settings or ProfileSettings()
    columns = as_columns(data, "training_data")
    if not columns:
        raise InvalidInputError("training_data has no columns to profile")
    rows = max(len(c) for c in columns.values())
    features = profile_columns(columns, settings)
    predictions, n_pred, note = None, 0, ""
    if predict is not None and rows:
        sample = sample_rows(data, settings.prediction_rows, settings.seed)
        try:
            output = predict(sample)
            predictions = profile_columns(
                as_columns(output, "the model's output", default=PREDICTION,
                           prefix=f"{PREDICTION}_"), settings)
            n_pred = len(sample)
        except Exception as exc:  # the user's model: any failure only costs the output profile
            why = exc if isinstance(exc, ModelportError) else (
                f"the model cannot predict on training_data: {exc}")
            note = f"no prediction profile: {why}"
            warnings.warn(note, stacklevel=3)
    return ReferenceProfile(rows=rows, features=features, predictions=predictions,
                            prediction_rows=n_pred, settings=settings.to_dict(), note=note)


def sample_rows(data: Any, n: int, seed: int) -> Any:
    """At most ``n`` rows of a DataFrame or array, chosen with ``seed``, in their order."""
    length = len(data)
    if length <= n:
        return data
    idx = np.sort(np.random.default_rng(seed).choice(length, size=n, replace=False))
    if isinstance(data, pd.DataFrame | pd.Series):
        return data.iloc[idx]
    if isinstance(data, dict):
        return {k: np.asarray(v)[idx] for k, v in data.items()}
    return np.asarray(data)[idx]


def profile_columns(columns: dict[str, pd.Series],
                    settings: ProfileSettings) -> tuple[FeatureProfile, ...]:
    """One profile per column, in column order (unsupported types are refused)."""
    out = []
    for i, (name, series) in enumerate(columns.items()):
        vt = value_type(series)
        if vt == UNSUPPORTED:
            raise InvalidInputError(
                f"training_data column {name!r} has type {series.dtype}, which cannot be "
                "profiled (use numbers, text or categories)"
            )
        rng = np.random.default_rng([settings.seed, i])
        if vt == NUMBER:
            out.append(_numbers(name, series, settings, rng))
        else:
            out.append(_strings(name, series, settings))
    return tuple(out)


def _numbers(name: str, series: pd.Series, settings: ProfileSettings,
             rng: np.random.Generator) -> FeatureProfile:
    x = to_float(series)
    values = x[np.isfinite(x)]
    n, missing = len(x), len(x) - len(values)
    dtype = str(series.dtype)
    cut = settings.max_categories_numeric
    few = values.size == 0 or np.unique(values[:10_000]).size <= cut
    if few:
        counts = pd.Series(values, copy=False).value_counts(sort=False)
        if len(counts) <= cut:
            return _categorical(name, dtype, n, missing, counts, settings, "number")
    q = np.linspace(0.0, 1.0, settings.bins + 1)[1:-1]
    edges = np.unique(np.quantile(values, q))
    counts_arr = np.bincount(np.searchsorted(edges, values, side="right"),
                             minlength=edges.size + 1)
    size = min(settings.sample_size, values.size)
    sample = values if values.size <= size else values[
        np.sort(rng.choice(values.size, size=size, replace=False))]
    stats = {"min": float(values.min()), "max": float(values.max()),
             "mean": float(values.mean()), "std": float(values.std())}
    return FeatureProfile(name=name, kind=NUMERIC, dtype=dtype, count=n, missing=missing,
                          counts=tuple(int(c) for c in counts_arr),
                          edges=tuple(float(e) for e in edges),
                          sample=tuple(float(v) for v in sample), stats=stats)


def _strings(name: str, series: pd.Series, settings: ProfileSettings) -> FeatureProfile:
    counts = series.value_counts(dropna=True, sort=False)
    # Only the distinct values are touched here: 1 and "1" are one category in text.
    counts = counts.groupby(counts.index.map(str)).sum()
    counts = counts[counts > 0]
    missing = len(series) - int(counts.sum())
    return _categorical(name, str(series.dtype), len(series), missing, counts, settings,
                        "string")


def _categorical(name: str, dtype: str, n: int, missing: int, counts: pd.Series,
                 settings: ProfileSettings, kind: str) -> FeatureProfile:
    # Most frequent first; ties by value, so equal data always lists them alike.
    pairs = sorted(((category_key(k, kind), int(c)) for k, c in counts.items()),
                   key=lambda kv: (-kv[1], str(kv[0])))
    top = pairs[: settings.top_categories]
    other = sum(c for _, c in pairs[settings.top_categories:])
    return FeatureProfile(name=name, kind=CATEGORICAL, dtype=dtype, count=n, missing=missing,
                          counts=(*(c for _, c in top), other),
                          categories=tuple(k for k, _ in top), value_type=kind,
                          distinct=len(pairs))


def category_key(value: Any, kind: str) -> Any:
    """A category as stored: text, or a number (integral numbers as ints)."""
    if kind != NUMBER:
        return str(value)
    number = float(value)
    return int(number) if number.is_integer() and abs(number) < 2**53 else number
