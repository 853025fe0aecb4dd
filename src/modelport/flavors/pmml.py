"""PMML documents, evaluated by JPMML-Evaluator in a JVM inside this process.

A PMML file is an XML description of a model (the DMG's Predictive Model Markup
Language): loading one runs no Python. ``jpmml_evaluator`` drives the JPMML Java library
through JPype (see ``pmml_jvm``): one JVM per process, started by the first load.
Documents with a DOCTYPE are refused: PMML needs none, and a DTD is how XML entity
attacks (billion laughs, external entities) get in.

Classifiers answer their predicted label from ``predict``; when the document declares
``probability`` output fields, ``predict_proba`` and ``classes_`` answer like
scikit-learn's, so gates compute AUC and log loss for a PMML version too.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelport.artifacts.bundle import Bundle
from modelport.errors import SignatureError, UnsupportedModelError
from modelport.flavors.base import (
    Flavor,
    Predictor,
    SavedModel,
    TrustPolicy,
    warn_on_major_mismatch,
)

FILE = "model.pmml"
_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?PMML[\s>]")
# The elements under <PMML> that are not the model itself.
_NOT_MODELS = {"Header", "MiningBuildTask", "DataDictionary", "TransformationDictionary",
               "Extension"}
_NUMBER_TYPES = {"integer": int, "float": float, "double": float}


@dataclass(frozen=True)
class PMMLDocument:
    """A PMML model in memory (what ``log_model`` takes for PMML): its XML bytes and,
    optionally, the names of the columns the model is fed, in order.

    ``columns`` is how positional input (a tensor, or a table named otherwise) is matched
    to the document's fields, which may be fewer: converters drop unused features.
    Without it, the DataDictionary's order (less the target) is used.
    """

    xml: bytes
    columns: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Layout:
    """What modelport reads from a document itself: fields, classes, input precision."""

    model: str  # the top-level model element: RegressionModel, MiningModel, ...
    inputs: tuple[str, ...]  # active fields, in document order
    fields: tuple[str, ...]  # every DataDictionary field but the target, in order
    target: str | None
    classes: tuple[Any, ...]  # one per probability output, in document order
    probabilities: tuple[str, ...]  # the names of those outputs
    precision: str  # "double", or "float" when every active field is a float


class PMMLPredictor:
    """A JPMML evaluator fed from arrays or DataFrames.

    Rows go to the JVM as one pickled dict of columns and come back the same way
    (jpmml_evaluator's ``PythonEvaluatorUtil``): building pandas frames around that
    call, as ``Evaluator.evaluateAll`` does, would cost several times the evaluation.
    """

    def __init__(self, evaluator: Any, layout: Layout,
                 columns: tuple[str, ...] | None = None) -> None:
        self.evaluator = evaluator
        self.layout = layout
        self.inputs = list(layout.inputs)
        self.columns = list(columns or layout.fields)
        self.check_columns(layout, columns)
        self._position = [self.columns.index(name) for name in self.inputs]
        targets = [f.getName() for f in evaluator.getTargetFields()]
        outputs = [f.getName() for f in evaluator.getOutputFields()]
        self.results = [*targets, *outputs]
        # The predicted value: the target field; a document without one (clustering,
        # say) answers its first output field.
        label = layout.target if layout.target in targets else (targets or outputs or [None])[0]
        if label is None:
            raise UnsupportedModelError("the PMML model has neither target nor output fields")
        self.label: str = label

    @staticmethod
    def check_columns(layout: Layout, columns: tuple[str, ...] | None) -> None:
        """Refuse input columns that do not name every field the model reads."""
        names = columns or layout.fields
        missing = [name for name in layout.inputs if name not in names]
        if missing:
            raise UnsupportedModelError(f"the PMML model reads fields {missing} that are not "
                                        f"among its input columns {list(names)}")

    @property
    def classes_(self) -> np.ndarray:
        """The class labels, in ``predict_proba``'s column order (classifiers only)."""
        if not self.layout.classes:
            raise AttributeError("this PMML model declares no probability outputs")
        return np.asarray(self.layout.classes)

    def predict(self, data: Any) -> np.ndarray:
        """The predicted value per row: a label for classifiers, a number for regressors."""
        return np.asarray(self._evaluate(data, [self.label])[self.label])

    def predict_proba(self, data: Any) -> np.ndarray:
        """Class probabilities per row, columns in ``classes_`` order."""
        names = list(self.layout.probabilities)
        if not names:
            raise UnsupportedModelError("this PMML model declares no probability outputs")
        out = self._evaluate(data, names)
        return np.column_stack([np.asarray(out[n], dtype=np.float64) for n in names])

    def _evaluate(self, data: Any, wanted: list[str]) -> dict[str, list[Any]]:
        from jpmml_evaluator import PythonEvaluatorUtil

        from modelport.flavors.pmml_jvm import java_error

        arguments = {"columns": self.inputs, "data": self._columns(data)}
        drop = [name for name in self.results if name not in wanted]
        ev = self.evaluator
        try:
            out = PythonEvaluatorUtil.evaluateAll(ev.backend, ev.javaEvaluator, arguments,
                                                  drop, -1)
        except Exception as exc:  # a Java exception, wrapped by jpmml_evaluator
            raise java_error(exc, "the PMML model failed") from exc
        errors = out.get("errors")
        if errors is not None:
            row = next((i for i, e in enumerate(errors) if e is not None), None)
            if row is not None:
                raise SignatureError(f"the PMML model refuses row {row}: {errors[row]}")
        return dict(zip(out["columns"], out["data"], strict=True))

    def _columns(self, data: Any) -> list[list[Any]]:
        """One list per active field: by name when the data has them all, else by
        position in ``columns`` (a tensor, or a table whose columns are named otherwise).
        NaN becomes None, which PMML reads as a missing value."""
        if hasattr(data, "columns") and set(self.inputs) <= set(map(str, data.columns)):
            columns = [data[name].to_numpy() for name in self.inputs]
        else:
            array = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
            if array.ndim == 1 and len(self.columns) == 1:
                array = array.reshape(-1, 1)
            if array.ndim != 2 or array.shape[1] != len(self.columns):
                raise SignatureError(
                    f"the PMML model expects {len(self.columns)} columns "
                    f"({', '.join(self.columns)}), got shape {list(array.shape)}")
            columns = [array[:, j] for j in self._position]
        out = []
        for column in columns:
            if column.dtype.kind == "f" and np.isnan(column).any():
                column = np.where(np.isnan(column), None, column)
            out.append(column.tolist())
        return out


class PMMLFlavor(Flavor):
    """PMML documents (``.pmml``), run by JPMML-Evaluator on a JVM."""

    name = "pmml"
    libraries = ("jpmml-evaluator", "JPype1")
    extensions = (".pmml",)

    def handles(self, model: Any) -> bool:
        """A ``PMMLDocument``."""
        return isinstance(model, PMMLDocument)

    def save(self, model: Any) -> SavedModel:
        """The XML bytes, as they are (after checking they are a readable PMML document)."""
        if not isinstance(model.xml, bytes):
            raise UnsupportedModelError("PMMLDocument.xml must be the document's bytes")
        layout = read_layout(model.xml)
        meta: dict[str, Any] = {"model": layout.model}
        if model.columns is not None:
            meta["columns"] = [str(c) for c in model.columns]
        PMMLPredictor.check_columns(layout, model.columns)
        return SavedModel({FILE: model.xml}, meta)

    def load(self, bundle: Bundle, policy: TrustPolicy) -> Predictor:
        """A JPMML evaluator over the verified bytes, in this process's JVM."""
        warn_on_major_mismatch(
            bundle.manifest.get("libraries") or {}, self.library_versions(), "model"
        )
        columns = bundle.meta.get("columns")
        if columns is not None and not (isinstance(columns, list)
                                        and all(isinstance(c, str) for c in columns)):
            raise UnsupportedModelError("unreadable PMML input columns in the bundle")
        return load_predictor(bundle.read(FILE), tuple(columns) if columns else None)

    def native(self, predictor: Predictor) -> Any:
        """The predictor itself: it answers ``predict_proba``/``classes_`` like an estimator."""
        return predictor

    def sniff(self, data: bytes) -> bool:
        """XML whose root element is ``PMML``."""
        head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
        return head.startswith(b"<") and _ROOT.search(head) is not None

    def from_file(self, data: bytes, extension: str) -> SavedModel:
        """A ``.pmml`` file, kept byte for byte (the caller loads it once to validate it)."""
        return self.save(PMMLDocument(data))


def load_predictor(xml: bytes, columns: tuple[str, ...] | None = None) -> PMMLPredictor:
    """A predictor over a PMML document's bytes (also used by ``modelport convert``)."""
    from modelport.flavors.pmml_jvm import build_evaluator

    layout = read_layout(xml)
    PMMLPredictor.check_columns(layout, columns)
    return PMMLPredictor(build_evaluator(xml), layout, columns)


def read_layout(xml: bytes) -> Layout:
    """The document's model type, fields and classes; refuses what is not plain PMML."""
    # The parser meets a DOCTYPE before any entity it declares: refusing it there means
    # no entity is ever expanded, in whatever encoding the document declares.
    parser = ET.XMLParser(target=_NoDoctype())  # noqa: S314
    try:
        parser.feed(xml)
        root = parser.close()
    except _DoctypeFound:
        raise UnsupportedModelError("the PMML document has a DOCTYPE: refused (PMML needs "
                                    "none, and DTDs are how XML entity attacks get in)"
                                    ) from None
    except ET.ParseError as exc:
        raise UnsupportedModelError(f"not a PMML document: {exc}") from exc
    if _local(root.tag) != "PMML":
        raise UnsupportedModelError(f"not a PMML document: the root is <{_local(root.tag)}>")
    models = [el for el in root if _local(el.tag) not in _NOT_MODELS]
    if not models:
        raise UnsupportedModelError("the PMML document holds no model")
    model = models[0]
    types = {f.get("name"): f.get("dataType", "") for f in root.iter() if
             _local(f.tag) == "DataField"}
    inputs, target = [], None
    for field in _children(model, "MiningSchema", "MiningField"):
        usage, name = field.get("usageType", "active"), field.get("name", "")
        if usage == "active":
            inputs.append(name)
        elif usage in ("target", "predicted") and target is None:
            target = name
    cast = _NUMBER_TYPES.get(types.get(target, "") if target else "", str)
    classes, probabilities = [], []
    for out in _children(model, "Output", "OutputField"):
        if out.get("feature") == "probability" and out.get("value") is not None:
            classes.append(_label(out.get("value", ""), cast))
            probabilities.append(out.get("name", ""))
    floats = bool(inputs) and all(types.get(n) == "float" for n in inputs)
    fields = tuple(str(name) for name in types if name and name != target)
    return Layout(_local(model.tag), tuple(inputs), fields, target, tuple(classes),
                  tuple(probabilities), "float" if floats else "double")


class _DoctypeFound(Exception):
    pass


class _NoDoctype(ET.TreeBuilder):
    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise _DoctypeFound(name)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element, *path: str) -> list[ET.Element]:
    found = [element]
    for step in path:
        found = [c for el in found for c in el if _local(c.tag) == step]
    return found


def _label(value: str, cast: type) -> Any:
    try:
        return cast(value)
    except ValueError:
        return value


__all__ = ["FILE", "Layout", "PMMLDocument", "PMMLFlavor", "PMMLPredictor", "load_predictor",
           "read_layout"]
