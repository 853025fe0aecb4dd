"""A version as an ONNX graph: as stored (onnx flavor) or converted with skl2onnx, and
checked against the source model's own predictions on the signature's input example.

Conversion tries 64-bit floats first (what the source computes with), then 32-bit
floats (what more converters support). A graph is accepted only when its first output
agrees with the source on the example: labels identical, numbers within
``RTOL``/``ATOL``, on the example and on any rows the caller adds. Otherwise the
build is refused, saying what was tried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from modelport.client import LoadedModel
from modelport.errors import InvalidInputError, UnsupportedModelError

RTOL = 1e-4
ATOL = 1e-5
_NUMERIC = ("float", "int", "uint", "bool")


@dataclass(frozen=True)
class Converted:
    """An ONNX model and how well it matches its source on the check rows."""

    data: bytes
    how: str  # "as stored" | "skl2onnx (float64)" | "skl2onnx (float32)"
    rows_checked: int
    max_abs_diff: float | None  # numeric outputs
    label_agreement: float | None  # label (non-float) outputs

    def to_dict(self) -> dict[str, Any]:
        """The figures for model.json and the README."""
        return {"how": self.how, "rows_checked": self.rows_checked,
                "max_abs_diff": self.max_abs_diff, "label_agreement": self.label_agreement,
                "rtol": RTOL, "atol": ATOL}


def supported() -> str:
    """What an edge bundle can be made from, for refusals."""
    return (f"edge bundles are made from onnx versions as stored, or from sklearn versions "
            f"with numeric inputs whose estimator skl2onnx converts: {_sklearn_names()}")


def _sklearn_names() -> str:
    try:
        # The scikit-learn classes skl2onnx registers converters for (its public
        # supported_converters() lists converter aliases, e.g. no LogisticRegression).
        from skl2onnx._supported_operators import sklearn_operator_name_map
    except ImportError:
        try:
            from skl2onnx import supported_converters
        except ImportError:
            return "(install modelport[onnx] to list them)"
        return ", ".join(sorted(supported_converters(from_sklearn=True)))
    return ", ".join(sorted({cls.__name__ for cls in sklearn_operator_name_map
                             if not cls.__name__.startswith("_")}))


def to_onnx(model: LoadedModel, stored: bytes | None = None, check_rows: Any = None
            ) -> Converted:
    """The version as a checked ONNX graph (``stored``: the onnx flavor's own file), or
    UnsupportedModelError saying why not. The check runs on the input example plus
    ``check_rows`` (a table with the signature's columns), when given."""
    columns = [c["name"] for c in numeric_columns(model.signature)]
    if model.flavor.name not in ("onnx", "sklearn") or (
            model.flavor.name == "onnx" and stored is None):
        raise UnsupportedModelError(
            f"{model.version.uri} is a {model.flavor.name} model. {supported()}")
    rows = _check_input(model, check_rows, columns)
    if model.flavor.name == "onnx":
        return _as_stored(model, rows, stored or b"")
    if rows is None:
        raise UnsupportedModelError(
            f"{model.version.uri} has no input example, so a conversion could not be "
            "checked: register it with input_example=, or give rows to check on")
    return _convert(model, rows, columns)


def _check_input(model: LoadedModel, check_rows: Any, columns: list[str]) -> Any:
    """The rows the check predicts on, in the signature's layout (None: no rows)."""
    import pandas as pd

    parts = []
    if model.input_example is not None:
        parts.append(model.validate(model.input_example))
    if check_rows is not None:
        missing = [c for c in columns if c not in check_rows.columns]
        if (model.signature or {})["inputs"]["type"] == "dataframe":
            if missing:
                raise InvalidInputError(
                    f"the check data lacks column(s) {', '.join(missing)} of the signature")
            parts.append(model.validate(check_rows[columns]))
        else:
            parts.append(model.validate(check_rows.to_numpy()))
    if not parts:
        return None
    if isinstance(parts[0], pd.DataFrame):
        return pd.concat(parts, ignore_index=True)
    return np.concatenate([np.asarray(p) for p in parts])


def numeric_columns(signature: dict[str, Any] | None) -> list[dict[str, str]]:
    """The input columns (name, dtype) when every input is numeric, else refuse."""
    inputs = (signature or {}).get("inputs")
    if not inputs:
        raise UnsupportedModelError(
            "the version has no signature: register it with input_example= so the edge "
            "runner knows its columns")
    if inputs.get("type") == "dataframe":
        cols = [{"name": c["name"], "dtype": c["dtype"]} for c in inputs["columns"]]
    elif inputs.get("type") == "tensor" and len(inputs.get("shape") or []) == 2:
        width = int(inputs["shape"][1])
        cols = [{"name": f"x{i}", "dtype": inputs["dtype"]} for i in range(width)]
    else:
        raise UnsupportedModelError(
            f"edge bundles take one table of features; this signature is {inputs!r}")
    text = [c["name"] for c in cols if not c["dtype"].startswith(_NUMERIC)]
    if text:
        raise UnsupportedModelError(
            f"edge bundles take numeric inputs only; non-numeric columns: {', '.join(text)}")
    return cols


def _convert(model: LoadedModel, rows: Any, columns: list[str]) -> Converted:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    estimator = model.native
    expected = np.asarray(model.predict(rows))
    array = np.asarray(rows, dtype=np.float64)
    failures = []
    for label, tensor_type, dtype in (("float64", DoubleTensorType, np.float64),
                                      ("float32", FloatTensorType, np.float32)):
        try:
            # Probabilities as a tensor, not skl2onnx's default list of maps (ZipMap).
            options = ({id(estimator): {"zipmap": False}}
                       if hasattr(estimator, "predict_proba") else None)
            onx = convert_sklearn(estimator, options=options,
                                  initial_types=[("input", tensor_type([None, len(columns)]))])
            data = onx.SerializeToString()
            got = _run(data, array.astype(dtype))
        except Exception as exc:  # skl2onnx and onnxruntime raise many unrelated types
            failures.append(f"{label}: {str(exc).splitlines()[0][:160]}")
            continue
        result = _compare(expected, got, f"skl2onnx ({label})", data)
        if result is not None:
            return result
        failures.append(f"{label}: predictions differ from the source on the check rows")
    raise UnsupportedModelError(
        f"cannot convert {model.version.uri} ({type(estimator).__name__}) to a matching ONNX "
        f"graph ({'; '.join(failures)}). {supported()}")


def _as_stored(model: LoadedModel, rows: Any, data: bytes) -> Converted:
    if rows is None:
        return Converted(data, "as stored", 0, None, None)
    expected = np.asarray(model.predict(rows))
    got = _run(data, rows)
    result = _compare(expected, got, "as stored", data)
    if result is None:
        raise UnsupportedModelError(
            f"{model.version.uri}: onnxruntime run directly disagrees with the served "
            "model on the check rows")
    return result


def _run(data: bytes, rows: Any) -> np.ndarray:
    """The graph's first output on ``rows``, through modelport's own ONNX flavor (the
    graph checked as at registration, inputs fed and cast as the edge runner does)."""
    from modelport.flavors import SavedModel, TrustPolicy, get_flavor
    from modelport.flavors.onnx import FILE

    predictor = get_flavor("onnx").validate(SavedModel({FILE: data}), TrustPolicy())
    return np.asarray(predictor.predict(rows))


def _compare(expected: np.ndarray, got: np.ndarray, how: str, data: bytes
             ) -> Converted | None:
    rows = len(expected)
    got = got.reshape(expected.shape) if got.size == expected.size else got
    if got.shape != expected.shape:
        return None
    if expected.dtype.kind == "f":
        diff = float(np.max(np.abs(got.astype(np.float64) - expected))) if rows else 0.0
        ok = bool(np.allclose(got, expected, rtol=RTOL, atol=ATOL))
        return Converted(data, how, rows, diff, None) if ok else None
    agreement = float(np.mean(got.astype(expected.dtype) == expected)) if rows else 1.0
    return Converted(data, how, rows, None, agreement) if agreement == 1.0 else None
