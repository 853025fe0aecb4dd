"""Metrics recomputed on evaluation data with scikit-learn (never the logged ones).

Classification: accuracy, f1, precision, recall (binary targets: of the positive class,
the greater of the two sorted labels, e.g. 1, True or "yes"; otherwise macro-averaged
over the target's labels), roc_auc and log_loss when the model gives probabilities.
Regression: rmse, mae, r2, mape (mape only when no target value is 0).

A metric that cannot be computed on these rows (roc_auc with one class present) is
``None`` with a note saying why.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from modelport.errors import InvalidInputError, ModelExecutionError


class Task(StrEnum):
    """What kind of target the gate evaluates."""

    CLASSIFICATION = "classification"
    REGRESSION = "regression"


CLASSIFICATION_METRICS = ("accuracy", "f1", "precision", "recall", "roc_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2", "mape")
ALL_METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS
METRICS = {Task.CLASSIFICATION: CLASSIFICATION_METRICS, Task.REGRESSION: REGRESSION_METRICS}
#: The metric the default rule ("no worse than the champion") looks at.
PRIMARY = {Task.CLASSIFICATION: "accuracy", Task.REGRESSION: "rmse"}
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae", "mape"})
#: Integer targets with at most this many distinct values are taken as class labels.
MAX_CLASSES = 20


def detect_task(target: Any) -> Task:
    """Classification for bool, text, categorical or few-valued integer targets."""
    dtype = target.dtype
    kind = getattr(dtype, "kind", "O")
    if str(dtype) in ("category", "string", "boolean") or kind in "bOUS":
        return Task.CLASSIFICATION
    if kind in "iu" and target.nunique() <= MAX_CLASSES:
        return Task.CLASSIFICATION
    return Task.REGRESSION


@dataclass(frozen=True)
class Outputs:
    """A model's predictions on the evaluation rows, plus class probabilities if any."""

    predictions: np.ndarray
    proba: np.ndarray | None = None  # (rows, classes), columns in ``classes`` order
    classes: np.ndarray | None = None


def as_column(raw: Any, rows: int, what: str) -> np.ndarray:
    """A model's output as one value per row (or a 2-D score matrix), else an error."""
    if isinstance(raw, dict):
        raise ModelExecutionError(f"{what} returns several named outputs "
                                  f"({', '.join(map(str, raw))}); a gate needs one per row")
    if type(raw).__name__ == "DataFrame":
        raw = raw.to_numpy()
        if raw.ndim == 2 and raw.shape[1] == 1:
            raw = raw[:, 0]
    arr = np.asarray(raw)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 0 or arr.shape[0] != rows:
        got = "a scalar" if arr.ndim == 0 else f"{arr.shape[0]} predictions"
        raise ModelExecutionError(f"{what} returned {got} for {rows} rows")
    if arr.ndim > 2:
        raise ModelExecutionError(f"{what} returned an array of shape {list(arr.shape)}")
    return arr


def classification_outputs(arr: np.ndarray, labels: np.ndarray,
                           native: tuple[np.ndarray, np.ndarray] | None) -> Outputs:
    """Labels and probabilities from a classifier's output.

    Most flavors return labels (scikit-learn, LightGBM, XGBoost wrappers, ONNX from
    skl2onnx); their probabilities come from ``native`` (e.g. ``predict_proba``). A bare
    XGBoost Booster returns probabilities instead: a positive-class column for binary
    targets or a (rows, classes) matrix, turned into labels here.
    """
    if arr.ndim == 2:
        if arr.dtype.kind != "f":
            raise ModelExecutionError(f"a classifier returned a {arr.shape[1]}-column array "
                                      "that is not probabilities")
        classes = labels if len(labels) == arr.shape[1] else np.arange(arr.shape[1])
        return Outputs(classes[np.argmax(arr, axis=1)], arr.astype(float), classes)
    if (arr.dtype.kind == "f" and len(labels) == 2 and np.isfinite(arr).all()
            and not np.all(arr == np.round(arr)) and arr.min() >= 0 and arr.max() <= 1):
        proba = np.column_stack((1.0 - arr, arr)).astype(float)
        return Outputs(labels[(arr >= 0.5).astype(int)], proba, labels)
    if native is not None:
        proba, classes = native
        if proba.shape == (len(arr), len(classes)) and np.isfinite(proba).all():
            return Outputs(arr, proba, classes)
    return Outputs(arr)


def averaging(labels: np.ndarray) -> str:
    """How f1, precision and recall are averaged for these target labels (for reports)."""
    if len(labels) == 2:
        return f"binary (positive class {labels[1]!r})"
    return f"macro over {len(labels)} classes"


def classification_metrics(y: np.ndarray, out: Outputs, labels: np.ndarray,
                           notes: list[str], who: str) -> dict[str, float | None]:
    """accuracy, f1, precision, recall, and roc_auc/log_loss when probabilities exist."""
    from sklearn import metrics as skm

    pred = out.predictions
    try:
        accuracy = float(skm.accuracy_score(y, pred))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"cannot compare the predictions of {who} ({pred.dtype}) with the target "
            f"({y.dtype}): {exc}") from exc
    # Binary metrics look at the positive class only, via labels=[pos] and a macro over
    # that one label: identical to average="binary" yet tolerant of predicted labels
    # the target never has (a third class), which average="binary" rejects.
    kw: dict[str, Any] = {"labels": [labels[1]] if len(labels) == 2 else list(labels),
                          "average": "macro", "zero_division": 0}
    result: dict[str, float | None] = {
        "accuracy": accuracy,
        "f1": float(skm.f1_score(y, pred, **kw)),
        "precision": float(skm.precision_score(y, pred, **kw)),
        "recall": float(skm.recall_score(y, pred, **kw)),
        "roc_auc": None, "log_loss": None,
    }
    if out.proba is None or out.classes is None:
        notes.append(f"{who} gives no probabilities: roc_auc and log_loss not computed")
        return result
    proba, classes = out.proba, list(out.classes)
    missing = [label for label in labels if label not in classes]
    if missing:
        notes.append(f"{who}'s probabilities have no column for {missing!r}: "
                     "roc_auc and log_loss not computed")
        return result
    result["roc_auc"] = _optional(notes, who, "roc_auc", lambda: skm.roc_auc_score(
        y == classes[1], proba[:, 1]) if len(classes) == 2 else skm.roc_auc_score(
        y, proba, multi_class="ovr", average="macro", labels=classes))
    result["log_loss"] = _optional(notes, who, "log_loss",
                                   lambda: skm.log_loss(y, proba, labels=classes))
    return result


def regression_values(arr: np.ndarray, who: str) -> np.ndarray:
    """A regressor's output as finite floats, else ModelExecutionError."""
    if arr.ndim != 1 or arr.dtype.kind not in "biuf":
        raise ModelExecutionError(f"{who} did not return one number per row "
                                  f"(got {arr.dtype}, shape {list(arr.shape)})")
    values = arr.astype(float)
    bad = int((~np.isfinite(values)).sum())
    if bad:
        raise ModelExecutionError(f"{who} returned NaN or infinity for {bad} of "
                                  f"{len(values)} rows")
    return values


def regression_metrics(y: np.ndarray, pred: np.ndarray, notes: list[str],
                       who: str) -> dict[str, float | None]:
    """rmse, mae, r2 and mape (None when a target is 0, where it is undefined)."""
    from sklearn import metrics as skm

    result: dict[str, float | None] = {
        "rmse": math.sqrt(float(skm.mean_squared_error(y, pred))),
        "mae": float(skm.mean_absolute_error(y, pred)),
        "r2": _optional(notes, who, "r2", lambda: skm.r2_score(y, pred)) if len(y) > 1 else None,
        "mape": None,
    }
    if np.any(y == 0):
        notes.append("the target has zeros: mape is undefined and not computed")
    else:
        result["mape"] = float(skm.mean_absolute_percentage_error(y, pred))
    return result


def _optional(notes: list[str], who: str, name: str, compute: Any) -> float | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn's UndefinedMetricWarning and kin
            value = float(compute())
    except ValueError as exc:  # e.g. only one class present in the target
        notes.append(f"{name} of {who} not computed: {exc}")
        return None
    if not math.isfinite(value):  # recent scikit-learn: NaN plus a warning, no error
        notes.append(f"{name} of {who} is not defined on these rows (one class only?)")
        return None
    return value


__all__ = [
    "ALL_METRICS", "CLASSIFICATION_METRICS", "LOWER_IS_BETTER", "METRICS", "PRIMARY",
    "REGRESSION_METRICS", "Outputs", "Task", "averaging", "classification_metrics",
    "detect_task", "regression_metrics",
]
