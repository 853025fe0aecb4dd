"""A version as an ONNX graph: as stored (onnx flavor) or converted with skl2onnx, and
checked against the source model's own predictions on the signature's input example.

Conversion tries 64-bit floats first (what the source computes with), then 32-bit
floats (what more converters support). A graph is accepted only when its first output
agrees with the source on the example: labels identical, numbers within
``RTOL``/``ATOL``. Otherwise the build is refused with the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from modelport.client import LoadedModel
from modelport.errors import UnsupportedModelError

RTOL = 1e-4
ATOL = 1e-5
_NUMERIC = ("float", "int", "uint", "bool")


@dataclass(frozen=True)
class Converted:
    """An ONNX model and how well it matches its source on the input example."""

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
    try:
        from skl2onnx import supported_converters

        names = ", ".join(sorted(supported_converters(from_sklearn=True)))
    except ImportError:
        names = "(install modelport[onnx] to list them)"
    return (f"edge bundles are made from onnx versions as stored, or from sklearn versions "
            f"with numeric inputs whose estimator skl2onnx converts: {names}")


def to_onnx(model: LoadedModel, stored: bytes | None = None) -> Converted:
    """The version as a checked ONNX graph (``stored``: the onnx flavor's own file), or
    UnsupportedModelError saying why not."""
    columns = [c["name"] for c in numeric_columns(model.signature)]
    example = model.input_example
    if model.flavor.name == "onnx" and stored is not None:
        return _as_stored(model, example, stored, columns)
    if model.flavor.name != "sklearn":
        raise UnsupportedModelError(
            f"{model.version.uri} is a {model.flavor.name} model. {supported()}")
    if example is None:
        raise UnsupportedModelError(
            f"{model.version.uri} has no input example, so a conversion could not be "
            "checked against it: register it with input_example=")
    return _convert(model, example, columns)


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


def _convert(model: LoadedModel, example: Any, columns: list[str]) -> Converted:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    estimator = model.native
    expected = np.asarray(model.predict(example))
    array = np.asarray(model.validate(example), dtype=np.float64)
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
            got = _run(data, array.astype(dtype), columns)
        except Exception as exc:  # skl2onnx and onnxruntime raise many unrelated types
            failures.append(f"{label}: {str(exc).splitlines()[0][:160]}")
            continue
        result = _compare(expected, got, f"skl2onnx ({label})", data)
        if result is not None:
            return result
        failures.append(f"{label}: predictions differ from the source on the input example")
    raise UnsupportedModelError(
        f"cannot convert {model.version.uri} ({type(estimator).__name__}) to a matching ONNX "
        f"graph ({'; '.join(failures)}). {supported()}")


def _as_stored(model: LoadedModel, example: Any, data: bytes, columns: list[str]
               ) -> Converted:
    if example is None:
        return Converted(data, "as stored", 0, None, None)
    expected = np.asarray(model.predict(example))
    got = _run(data, np.asarray(model.validate(example)), columns)
    result = _compare(expected, got, "as stored", data)
    if result is None:
        raise UnsupportedModelError(
            f"{model.version.uri}: onnxruntime run directly disagrees with the served "
            "model on its input example")
    return result


_CASTS: dict[str, Any] = {"tensor(float)": np.float32, "tensor(double)": np.float64,
                          "tensor(int64)": np.int64, "tensor(int32)": np.int32}


def _run(data: bytes, array: np.ndarray, columns: list[str]) -> np.ndarray:
    """The graph's first output, fed as the edge runner feeds it."""
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    nodes = session.get_inputs()
    if len(nodes) > 1 and {n.name for n in nodes} <= set(columns):
        feed = {n.name: array[:, [columns.index(n.name)]].astype(_CASTS.get(n.type, np.float32))
                for n in nodes}
    else:
        feed = {nodes[0].name: array.astype(_CASTS.get(nodes[0].type, np.float32))}
    return np.asarray(session.run(None, feed)[0])


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
