"""Model objects → ONNX graphs: skl2onnx for scikit-learn, onnxmltools for the boosters.

Classifiers are converted without skl2onnx's ZipMap (probabilities as a plain tensor), so
the graph's first output is the predicted label, as the ONNX flavor expects. Inputs are
one tensor of all features: double precision where the converter supports it (the
answers then match scikit-learn's to the last bit for linear models), float otherwise.
"""

from __future__ import annotations

from typing import Any

from modelport.errors import UnsupportedModelError

SUPPORTED = ("scikit-learn estimators and pipelines that skl2onnx converts (linear models, "
             "trees, forests, gradient boosting, SVMs, k-NN, scalers, ...)",
             "XGBoost XGBClassifier/XGBRegressor", "LightGBM LGBMClassifier/LGBMRegressor")


def to_onnx(model: Any, flavor: str, n_features: int,
            precisions: tuple[str, ...] = ("double", "float")) -> tuple[Any, str]:
    """The ONNX graph of ``model`` and the input precision used: the first of
    ``precisions`` ("double", "float") the converter supports."""
    if flavor == "sklearn":
        return _sklearn(model, n_features, precisions)
    if flavor in ("xgboost", "lightgbm"):
        return _booster(model, flavor, n_features), "float"
    raise UnsupportedModelError(
        f"cannot convert a {flavor!r} model to ONNX; supported: " + "; ".join(SUPPORTED))


def _sklearn(model: Any, n_features: int, precisions: tuple[str, ...]) -> tuple[Any, str]:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    options = {id(model): {"zipmap": False}} if hasattr(model, "classes_") else None
    errors = []
    kinds = {"double": DoubleTensorType, "float": FloatTensorType}
    for precision in precisions:
        kind = kinds[precision]
        try:
            graph = convert_sklearn(model, initial_types=[("input", kind([None, n_features]))],
                                    options=options, target_opset=None)
            return graph, precision
        except Exception as exc:  # skl2onnx raises many types; the message is what helps
            errors.append(f"{precision}: {type(exc).__name__}: {exc}")
    raise UnsupportedModelError(
        f"skl2onnx cannot convert {type(model).__name__}: {errors[-1][:300]}. Supported: "
        + "; ".join(SUPPORTED))


def _booster(model: Any, flavor: str, n_features: int) -> Any:
    try:
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType
    except ImportError as exc:
        raise UnsupportedModelError(
            f"converting {flavor} models needs onnxmltools (pip install 'modelport[onnx]')"
        ) from exc
    types = [("input", FloatTensorType([None, n_features]))]
    convert = onnxmltools.convert_xgboost if flavor == "xgboost" else onnxmltools.convert_lightgbm
    try:
        graph = convert(model, initial_types=types)
    except Exception as exc:  # the converters' own errors name what they cannot map
        raise UnsupportedModelError(
            f"onnxmltools cannot convert {type(model).__name__}: {str(exc)[:300]}. Supported: "
            + "; ".join(SUPPORTED)) from exc
    if hasattr(model, "classes_"):
        _first_output_is_label(graph)
    return graph


def _first_output_is_label(graph: Any) -> None:
    """onnxmltools already puts the label first; refuse a graph that does not."""
    outputs = [o.name for o in graph.graph.output]
    if not outputs or "label" not in outputs[0].lower():
        raise UnsupportedModelError(f"the converted graph's outputs {outputs} do not start "
                                    "with the predicted label")


__all__ = ["SUPPORTED", "to_onnx"]
