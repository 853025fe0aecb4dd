"""One model scored on the evaluation rows: predict through its signature, then metrics."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from modelport.errors import ModelExecutionError, ModelportError
from modelport.gates.evaldata import EvalData
from modelport.gates.metrics import (
    Task,
    as_column,
    classification_metrics,
    classification_outputs,
    regression_metrics,
    regression_values,
)

if TYPE_CHECKING:
    from modelport.client import LoadedModel


def score(model: LoadedModel, data: EvalData, who: str,
          notes: list[str]) -> dict[str, float | None]:
    """The metrics of ``model`` on ``data``.

    A SignatureError means the rows do not fit the model (bad input, raised as is); any
    other failure of the model itself becomes ModelExecutionError.
    """
    validated = model.validate(data.features)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # feature-name chatter
            raw = model.predictor.predict(validated)
    except ModelportError:
        raise
    except Exception as exc:  # the user's model: any failure is the model's
        raise ModelExecutionError(f"{who} failed to predict: {type(exc).__name__}: {exc}"
                                  ) from exc
    arr = as_column(raw, data.rows, who)
    if data.task is Task.REGRESSION:
        return regression_metrics(data.target, regression_values(arr, who), notes, who)
    labels = data.labels()
    native = native_probabilities(model, validated, data.rows)
    out = classification_outputs(arr, labels, native)
    return classification_metrics(data.target, out, labels, notes, who)


def native_probabilities(model: LoadedModel, validated: Any,
                         rows: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Class probabilities and their labels from the framework's own model, if it has them.

    scikit-learn estimators and XGBoost wrappers through ``predict_proba``/``classes_``,
    LightGBM boosters saved from a classifier through the booster's raw output, ONNX
    graphs from skl2onnx through their second output. Anything else: None.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = _probabilities(model, validated)
    except Exception:  # optional extras: a model without usable probabilities has none
        return None
    if found is None:
        return None
    proba, classes = np.asarray(found[0], dtype=float), np.asarray(found[1])
    if proba.ndim != 2 or proba.shape != (rows, len(classes)):
        return None
    return proba, classes


def _probabilities(model: LoadedModel, validated: Any) -> tuple[Any, Any] | None:
    native = model.native
    if callable(getattr(native, "predict_proba", None)) and hasattr(native, "classes_"):
        return native.predict_proba(validated), native.classes_
    classes = getattr(model.predictor, "classes", None)
    if model.flavor.name == "lightgbm" and classes is not None:
        out = np.asarray(native.predict(validated), dtype=float)
        return (out if out.ndim == 2 else np.column_stack((1.0 - out, out))), classes
    if model.flavor.name == "onnx":
        return _onnx_probabilities(model.predictor, validated)
    return None


def _onnx_probabilities(predictor: Any, validated: Any) -> tuple[Any, Any] | None:
    outputs = predictor.model.get_outputs()
    if len(outputs) < 2:
        return None
    result = predictor.model.run([outputs[1].name], predictor.feed(validated))[0]
    # skl2onnx's default ZipMap: one {label: probability} dict per row, in class order.
    if isinstance(result, list) and result and isinstance(result[0], dict):
        classes = list(result[0])
        return [[row[c] for c in classes] for row in result], classes
    return None


__all__ = ["native_probabilities", "score"]
