"""Tabular data as named 1-D columns, and whether each column holds numbers or labels.

Profiles and drift reports speak of features by name. A DataFrame names its columns; a
dict names its arrays; a 2-D numpy array does not, so its columns are named by position:
``"f0"``, ``"f1"``, ... as the prediction log names the columns of an unnamed 2-D tensor
(``"prediction_0"``, ... for model outputs). A 1-D array is one column (``default``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from modelport.errors import InvalidInputError

NUMBER, STRING, UNSUPPORTED = "number", "string", "unsupported"


def as_columns(data: Any, what: str, *, default: str = "f0",
               prefix: str = "f") -> dict[str, pd.Series]:
    """``data`` (DataFrame, Series, dict of arrays, 1-D/2-D array) as named columns."""
    if isinstance(data, pd.DataFrame):
        names = [str(c) for c in data.columns]
        _no_duplicates(names, what)
        return {n: data.iloc[:, i] for i, n in enumerate(names)}
    if isinstance(data, pd.Series):
        return {str(data.name) if data.name is not None else default: data}
    if isinstance(data, Mapping):
        out: dict[str, pd.Series] = {}
        for key, values in data.items():
            if str(key) in out:
                raise InvalidInputError(f"{what}: column {str(key)!r} appears twice")
            out[str(key)] = _series(values, f"{what} column {str(key)!r}")
        return out
    try:
        arr = np.asarray(data)
    except ValueError as exc:  # ragged nested lists
        raise InvalidInputError(f"{what} is not a rectangular table: {exc}") from exc
    if arr.ndim == 1:
        return {default: pd.Series(arr, copy=False)}
    if arr.ndim == 2:
        if arr.shape[1] == 1:
            return {default: pd.Series(arr[:, 0], copy=False)}
        return {f"{prefix}{i}": pd.Series(arr[:, i], copy=False) for i in range(arr.shape[1])}
    raise InvalidInputError(
        f"{what} must be a DataFrame, a dict of columns or a 1-D/2-D array, "
        f"got an array of shape {list(arr.shape)}"
    )


def _series(values: Any, what: str) -> pd.Series:
    if isinstance(values, pd.Series):
        return values.reset_index(drop=True)
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InvalidInputError(f"{what} must be one-dimensional, got shape {list(arr.shape)}")
    return pd.Series(arr, copy=False)


def _no_duplicates(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise InvalidInputError(f"{what}: column {n!r} appears twice")
        seen.add(n)


def value_type(series: pd.Series) -> str:
    """``number`` (bool, int, float), ``string`` (text, categories, mixed) or ``unsupported``."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return NUMBER if dtype.categories.dtype.kind in "biuf" else STRING
    kind = getattr(dtype, "kind", "O")
    if kind in "biuf":
        return NUMBER
    if kind in "mMc":
        return UNSUPPORTED
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred in ("integer", "floating", "mixed-integer-float", "boolean", "decimal"):
        return NUMBER
    if inferred in ("datetime", "datetime64", "timedelta", "timedelta64", "date", "time",
                    "period", "complex"):
        return UNSUPPORTED
    return STRING  # string, bytes, mixed, empty (all missing)


def to_float(series: pd.Series) -> np.ndarray[Any, Any]:
    """The column as float64 (bool as 0/1); missing values become NaN."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(np.float64)
    if getattr(series.dtype, "kind", "O") in "biuf" and isinstance(series.dtype, np.dtype):
        return series.to_numpy(dtype=np.float64, copy=False)
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def first_non_number(series: pd.Series) -> Any:
    """A value of a text column that is not a number, or None when every value is one."""
    present = series[series.notna()]
    converted = pd.to_numeric(present, errors="coerce")
    bad = present[converted.isna()]
    return None if bad.empty else bad.iloc[0]
