"""Evaluation data: read a file (or take a DataFrame), split off the target, check it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelport.errors import InvalidInputError
from modelport.gates.metrics import Task, detect_task


@dataclass(frozen=True)
class EvalData:
    """Feature rows, the target column as an array, and where they came from."""

    features: Any  # a pandas DataFrame without the target column
    target: np.ndarray
    target_name: str
    source: str
    task: Task

    @property
    def rows(self) -> int:
        """Number of evaluation rows."""
        return len(self.target)

    def labels(self) -> np.ndarray:
        """The target's distinct labels, sorted (classification only)."""
        try:
            return np.unique(self.target)
        except TypeError as exc:  # e.g. numbers and text mixed in one object column
            raise InvalidInputError(
                f"target column {self.target_name!r} mixes value types: {exc}") from exc


def load_eval(data: Any, target: str, task: Task | str | None = None) -> EvalData:
    """``data`` (a CSV/Parquet/JSON path or a DataFrame) split into features and target."""
    import pandas as pd

    if isinstance(data, (str, os.PathLike)):
        from modelport.datafiles import read_table

        frame, source = read_table(Path(data)), Path(data).name
    elif isinstance(data, pd.DataFrame):
        frame, source = data, "DataFrame"
    else:
        raise InvalidInputError(f"evaluation data must be a file path or a pandas DataFrame, "
                                f"not {type(data).__name__}")
    if not isinstance(target, str) or not target:
        raise InvalidInputError("name the target column (--target COLUMN)")
    columns = [str(c) for c in frame.columns]
    if target not in columns:
        shown = ", ".join(columns[:20]) + (", ..." if len(columns) > 20 else "")
        raise InvalidInputError(f"{source} has no column {target!r}; its columns: "
                                f"{shown or '(none)'}")
    if len(frame) == 0:
        raise InvalidInputError(f"{source} has no rows to evaluate on")
    frame = frame.rename(columns=str)
    if len(frame.columns) < 2:
        raise InvalidInputError(f"{source} has only the target column {target!r}, no features")
    series = frame[target]
    missing = series.isna().to_numpy()
    if missing.any():
        first = int(np.argmax(missing))
        raise InvalidInputError(
            f"target column {target!r} has {int(missing.sum())} missing values (first at "
            f"row {first}); drop or fill them before gating")
    chosen = _task(task) if task is not None else detect_task(series)
    y = series.to_numpy()
    if chosen is Task.REGRESSION:
        if y.dtype.kind not in "biuf":
            raise InvalidInputError(f"target column {target!r} is not numeric ({series.dtype}); "
                                    "regression needs numbers (or use --task classification)")
        y = y.astype(float)
        if not np.isfinite(y).all():
            raise InvalidInputError(f"target column {target!r} has infinite values")
    elif y.dtype.kind == "O" or str(series.dtype) == "category":
        y = np.asarray(series.astype(object).to_numpy())
    return EvalData(frame.drop(columns=[target]), y, target, source, chosen)


def _task(value: Task | str) -> Task:
    try:
        return Task(value)
    except ValueError:
        raise InvalidInputError(f"unknown task {value!r}; use classification or regression"
                                ) from None


__all__ = ["EvalData", "load_eval"]
