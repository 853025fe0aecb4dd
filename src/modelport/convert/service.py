"""``modelport convert``: a registered version → ONNX (optionally quantized) or PMML,
registered as a new version linked to its source only after its predictions are shown to
agree.

The check runs on the source's input example and, when given, an evaluation file: the
source as modelport serves it (``load_model(...).predict``) against the converted model
as its flavor will serve it (the graph in onnxruntime; the PMML document in
JPMML-Evaluator). Passing means every label agrees (``min_agreement``, default 100%) or,
for numeric outputs, the largest absolute difference is within ``tolerance``. A failed
check registers nothing and raises ``GateFailedError`` (exit 10) with the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelport.client import Registry
from modelport.convert.equivalence import Equivalence, compare
from modelport.convert.quantize import QuantizeReport, quantize, single_row_latency_ms
from modelport.errors import GateFailedError, InvalidInputError
from modelport.registry.entities import ModelVersion

TARGETS = ("onnx", "pmml")
# Default tolerances by input precision: a double graph repeats scikit-learn's arithmetic,
# a float one rounds every input to 24 bits.
TOLERANCE = {"double": 1e-9, "float": 1e-4}


@dataclass
class Conversion:
    """What a conversion measured, and the version it registered (None: refused)."""

    source: str
    target: str
    precision: str
    checks: dict[str, Equivalence]
    quantized: QuantizeReport | None = None
    version: ModelVersion | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether every equivalence check passed."""
        return all(c.passed for c in self.checks.values())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (``modelport convert --json``)."""
        return {"source": self.source, "target": self.target, "precision": self.precision,
                "passed": self.passed,
                "checks": {k: c.to_dict() for k, c in self.checks.items()},
                "quantized": self.quantized.to_dict() if self.quantized else None,
                "version": self.version.uri if self.version else None, "notes": self.notes}


def _rows(loaded: Any, data: Path | None, target: str | None) -> dict[str, tuple[Any, Any]]:
    """The row sets to compare on: the input example, and the eval file (with labels)."""
    from modelport.datafiles import read_table

    sets: dict[str, tuple[Any, Any]] = {}
    example = loaded.input_example
    if example is not None:
        sets["input_example"] = (example, None)
    if data is not None:
        frame = read_table(data)
        labels = None
        if target is not None:
            if target not in frame.columns:
                raise InvalidInputError(f"--target {target!r} is not a column of {data}")
            labels = frame[target].to_numpy()
            frame = frame.drop(columns=[target])
        sets["eval_data"] = (frame, labels)
    if not sets:
        raise InvalidInputError(f"{loaded.version.uri} has no input example: give --data FILE "
                                "so the conversion can be checked")
    return sets


def convert(registry: Registry, uri: str, *, to: str = "onnx", data: Path | None = None,
            target: str | None = None, tolerance: float | None = None,
            min_agreement: float = 1.0, quantized: bool = False, trusted: bool = False
            ) -> Conversion:
    """Convert ``uri``, check it, and register it as the model's next version."""
    if to not in TARGETS:
        raise InvalidInputError(f"--to {to!r}: supported targets are {', '.join(TARGETS)}")
    if quantized and to != "onnx":
        raise InvalidInputError("--quantize applies to --to onnx only")
    if not 0.0 <= min_agreement <= 1.0:
        raise InvalidInputError("--min-agreement must be between 0 and 1")
    if tolerance is not None and not (np.isfinite(tolerance) and tolerance >= 0):
        raise InvalidInputError("--tolerance must be a number >= 0")
    source = registry.get(uri)
    loaded = registry.load_model(source.uri, trusted=trusted)
    sets = _rows(loaded, data, target)
    n_features = int(np.asarray(next(iter(sets.values()))[0]).shape[1])
    graphs: tuple[bytes, bytes] | None = None  # ONNX before and after quantization
    if to == "pmml":
        converted, model, precision, notes = _pmml(loaded, source, n_features)
        result = Conversion(source.uri, "pmml", precision, {}, notes=notes)
    else:
        converted, model, precision, graphs = _onnx(loaded, source, n_features, quantized)
        result = Conversion(source.uri, "onnx-int8" if quantized else "onnx", precision, {})
    tol = TOLERANCE[precision] if tolerance is None else tolerance
    for name, (X, _) in sets.items():
        result.checks[name] = compare(loaded.predict(X), converted.predict(X), tolerance=tol,
                                      min_agreement=min_agreement)
    if quantized and graphs is not None:
        result.quantized = _quantize_report(*graphs, sets)
    if not result.passed:
        failed = "; ".join(f"{k}: {c.detail}" for k, c in result.checks.items() if not c.passed)
        raise GateFailedError(f"{source.uri} → {result.target} is not equivalent ({failed}); "
                              "nothing registered", report=result.to_dict())
    result.version = _register(registry, source, model, loaded, result)
    return result


def _onnx(loaded: Any, source: ModelVersion, n_features: int, quantized: bool
          ) -> tuple[Any, Any, str, tuple[bytes, bytes]]:
    """The ONNX predictor, the ModelProto to register, its input precision, and the graph
    before and after quantization."""
    import onnx

    from modelport.convert.onnx import to_onnx

    # onnxruntime's quantizer leaves double tensors alone, so quantizing starts from float.
    precisions = ("float",) if quantized else ("double", "float")
    graph, precision = to_onnx(loaded.native, source.flavor, n_features, precisions)
    try:
        _session(graph.SerializeToString())
    except Exception:  # converted, but onnxruntime has no double kernel for some op
        if precision != "double":
            raise
        graph, precision = to_onnx(loaded.native, source.flavor, n_features, ("float",))
    before = graph.SerializeToString()
    raw = quantize(before) if quantized else before
    return _session(raw), onnx.load_from_string(raw), precision, (before, raw)


def _pmml(loaded: Any, source: ModelVersion, n_features: int
          ) -> tuple[Any, Any, str, list[str]]:
    """The PMML predictor (JPMML, in this process's JVM), the document to register, its
    input precision (sklearn2pmml declares float inputs for tree models) and notes."""
    from modelport.convert.pmml import to_pmml
    from modelport.flavors.pmml import PMMLDocument, load_predictor

    converted = to_pmml(loaded.native, source.flavor, n_features)
    predictor = load_predictor(converted.xml, converted.columns)
    return (predictor, PMMLDocument(converted.xml, converted.columns),
            predictor.layout.precision, converted.notes)


def _session(raw: bytes) -> Any:
    import onnxruntime as ort

    from modelport.flavors.onnx import ONNXPredictor

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ONNXPredictor(ort.InferenceSession(raw, options, providers=["CPUExecutionProvider"]))


def _quantize_report(before: bytes, after: bytes, sets: dict[str, tuple[Any, Any]]
                     ) -> QuantizeReport:
    a, b = _session(before), _session(after)
    X, labels = sets.get("eval_data", next(iter(sets.values())))
    row = np.asarray(X)[:1] if not hasattr(X, "iloc") else X.iloc[:1]
    acc_a = acc_b = None
    if labels is not None:
        acc_a = float((np.asarray(a.predict(X)).ravel() == labels).mean())
        acc_b = float((np.asarray(b.predict(X)).ravel() == labels).mean())
    return QuantizeReport(len(before), len(after), single_row_latency_ms(a.predict, row),
                          single_row_latency_ms(b.predict, row), acc_a, acc_b)


def _register(registry: Registry, source: ModelVersion, model: Any, loaded: Any,
              result: Conversion) -> ModelVersion:
    checks = result.checks.values()
    metrics = {}
    agreement = [c.label_agreement for c in checks if c.label_agreement is not None]
    diffs = [c.max_abs_diff for c in checks if c.max_abs_diff is not None]
    if agreement:
        metrics["equivalence_label_agreement"] = min(agreement)
    if diffs:
        metrics["equivalence_max_abs_diff"] = max(diffs)
    result.notes.append("the reference profile for drift is not carried over: re-register "
                        "with training_data= to monitor drift on this version")
    return registry.log_model(
        model, source.name, input_example=loaded.input_example,
        metrics=metrics, params=dict(source.params),
        tags={"converted_from": source.uri, "conversion": result.target,
              "conversion_precision": result.precision},
        description=f"{result.target} conversion of {source.uri}")


__all__ = ["TARGETS", "Conversion", "convert"]
