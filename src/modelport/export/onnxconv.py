"""A version as a checked ONNX graph for an edge bundle: as stored (onnx flavor), or
converted by ``modelport.convert`` (skl2onnx; onnxmltools for XGBoost and LightGBM).

The check is ``modelport convert``'s: the source as modelport serves it against the
graph in onnxruntime, on the stored input example plus any rows the caller adds, with
``convert.service.TOLERANCE`` for the graph's precision. Double precision is tried
first; when its graph does not load or does not agree, float. A graph that disagrees
is refused (GateFailedError, exit 10); a model no converter handles is refused with
what is supported (UnsupportedModelError, exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from modelport.client import LoadedModel
from modelport.convert.equivalence import Equivalence, compare
from modelport.convert.onnx import SUPPORTED
from modelport.convert.service import TOLERANCE
from modelport.errors import GateFailedError, InvalidInputError, UnsupportedModelError

CONVERTIBLE = ("sklearn", "xgboost", "lightgbm")
_NUMERIC = ("float", "int", "uint", "bool")


@dataclass(frozen=True)
class Converted:
    """An ONNX graph, how it was made, and its check (None: no rows to check on)."""

    data: bytes
    how: str  # "as stored" | "converted (double)" | "converted (float)"
    check: Equivalence | None

    def to_dict(self) -> dict[str, Any]:
        """The figures for model.json, build.json and ``--json``."""
        figures = self.check.to_dict() if self.check else {"rows": 0}
        return {"how": self.how, **figures}


def supported() -> str:
    """What an edge bundle can be made from, for refusals."""
    return ("edge bundles are made from onnx versions as stored, or converted from: "
            + "; ".join(SUPPORTED) + f" (scikit-learn classes: {_sklearn_names()}); with "
            "numeric inputs only")


def _sklearn_names() -> str:
    try:
        # The classes skl2onnx has converters for (its public supported_converters()
        # lists converter aliases: no LogisticRegression there).
        from skl2onnx._supported_operators import sklearn_operator_name_map
    except ImportError:
        return "install modelport[onnx] to list them"
    return ", ".join(sorted({cls.__name__ for cls in sklearn_operator_name_map
                             if not cls.__name__.startswith("_")}))


def to_onnx(model: LoadedModel, stored: bytes | None = None, check_rows: Any = None
            ) -> Converted:
    """The version as a checked ONNX graph (``stored``: the onnx flavor's own file)."""
    flavor = model.flavor.name
    if flavor not in (*CONVERTIBLE, "onnx") or (flavor == "onnx" and stored is None):
        raise UnsupportedModelError(f"{model.version.uri} is a {flavor} model; {supported()}")
    columns = [c["name"] for c in numeric_columns(model.signature)]
    rows = _check_rows(model, check_rows, columns)
    if flavor == "onnx":
        data = stored or b""
        if rows is None:
            return Converted(data, "as stored", None)
        return _checked(model, data, "as stored", rows, TOLERANCE["double"])
    if rows is None:
        raise UnsupportedModelError(
            f"{model.version.uri} has no input example, so a conversion could not be "
            "checked: register it with input_example=, or give --check-data")
    return _convert(model, rows, len(columns))


def _convert(model: LoadedModel, rows: Any, width: int) -> Converted:
    from modelport.convert.onnx import to_onnx as convert

    refusals, disagreed = [], False
    for wanted in ("double", "float"):
        try:
            graph, precision = convert(model.native, model.flavor.name, width, (wanted,))
        except UnsupportedModelError as exc:  # no converter for this model at this precision
            refusals.append(f"{wanted}: {str(exc).split('. Supported:')[0][:200]}")
            continue
        try:
            return _checked(model, graph.SerializeToString(), f"converted ({precision})",
                            rows, TOLERANCE[precision])
        except GateFailedError as exc:
            disagreed = True
            refusals.append(str(exc))
        except UnsupportedModelError as exc:  # converted, but onnxruntime cannot run it
            refusals.append(f"{precision}: {exc}")
        if precision != wanted:  # the boosters' converters make float graphs only
            break
    if disagreed:
        raise GateFailedError(f"no ONNX graph of {model.version.uri} agrees with it ("
                              + "; ".join(refusals) + "); nothing written")
    raise UnsupportedModelError(f"cannot convert {model.version.uri} ("
                                + "; ".join(refusals) + f"). {supported()}")


def _checked(model: LoadedModel, data: bytes, how: str, rows: Any, tolerance: float
             ) -> Converted:
    """``data`` if its predictions on ``rows`` agree with the model's, else refuse."""
    from modelport.flavors import SavedModel, TrustPolicy, get_flavor
    from modelport.flavors.onnx import FILE

    # Through the onnx flavor: checked as at registration, fed as the runner feeds it.
    predictor = get_flavor("onnx").validate(SavedModel({FILE: data}), TrustPolicy())
    check = compare(model.predict(rows), predictor.predict(rows), tolerance=tolerance)
    if not check.passed:
        raise GateFailedError(f"{how}: {check.detail} on {check.rows} rows",
                              report=check.to_dict())
    return Converted(data, how, check)


def _check_rows(model: LoadedModel, extra: Any, columns: list[str]) -> Any:
    """The input example plus ``extra`` in the signature's layout (None: no rows)."""
    import pandas as pd

    parts = []
    if model.input_example is not None:
        parts.append(model.validate(model.input_example))
    if extra is not None:
        if (model.signature or {})["inputs"]["type"] == "dataframe":
            missing = [c for c in columns if c not in extra.columns]
            if missing:
                raise InvalidInputError(
                    f"the check data lacks column(s) {', '.join(missing)} of the signature")
            extra = extra[columns]
        else:
            extra = extra.to_numpy()
        parts.append(model.validate(extra))
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
        cols = [{"name": f"x{i}", "dtype": inputs["dtype"]} for i in range(inputs["shape"][1])]
    else:
        raise UnsupportedModelError(
            f"edge bundles take one table of features; this signature is {inputs!r}")
    text = [c["name"] for c in cols if not c["dtype"].startswith(_NUMERIC)]
    if text:
        raise UnsupportedModelError(
            f"edge bundles take numeric inputs only; non-numeric columns: {', '.join(text)}")
    return cols
