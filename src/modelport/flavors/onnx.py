"""ONNX models, run with onnxruntime on the CPU.

An ONNX file is a protobuf graph of standard operators: loading it runs no Python.
Tensors stored outside the file ("external data") are refused: onnxruntime would read
them from paths relative to the working directory, i.e. from whatever lies there.
"""

from __future__ import annotations

from collections.abc import Iterator
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

FILE = "model.onnx"
# onnxruntime's input type names and the numpy dtypes to cast data to.
_DTYPES: dict[str, Any] = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int16)": np.int16,
    "tensor(int8)": np.int8, "tensor(uint64)": np.uint64, "tensor(uint32)": np.uint32,
    "tensor(uint16)": np.uint16, "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_,
    "tensor(string)": object,
}


class ONNXPredictor:
    """An onnxruntime session fed from arrays or DataFrames."""

    def __init__(self, session: Any) -> None:
        self.model = session
        self.inputs = session.get_inputs()
        self.output = session.get_outputs()[0].name

    def predict(self, data: Any) -> Any:
        """The graph's first output (labels, for skl2onnx classifiers) as a numpy array."""
        from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

        try:
            return np.asarray(self.model.run([self.output], self.feed(data))[0])
        except InvalidArgument as exc:  # wrong shape or type for the graph's inputs
            raise SignatureError(f"the ONNX model refuses this input: {exc}") from exc

    def feed(self, data: Any) -> dict[str, np.ndarray]:
        """Input tensors: one per column when the graph names its inputs after them."""
        names = {i.name for i in self.inputs}
        if len(names) > 1 and names <= set(getattr(data, "columns", ())):
            return {i.name: _cast(data[i.name].to_numpy().reshape(-1, 1), i) for i in self.inputs}
        array = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
        return {self.inputs[0].name: _cast(array, self.inputs[0])}


class ONNXFlavor(Flavor):
    """ONNX ``ModelProto`` graphs."""

    name = "onnx"
    libraries = ("onnx", "onnxruntime", "numpy")
    extensions = (".onnx",)

    def handles(self, model: Any) -> bool:
        """An ``onnx.ModelProto``."""
        # Checked before importing so that a missing onnx never breaks other flavors.
        if not type(model).__module__.startswith("onnx"):
            return False
        import onnx

        return isinstance(model, onnx.ModelProto)

    def save(self, model: Any) -> SavedModel:
        """The serialized protobuf, all tensors inside."""
        _refuse_external_data(model)
        try:
            data = model.SerializeToString()
        except ValueError as exc:  # protobuf refuses messages over 2 GB
            raise UnsupportedModelError(f"cannot serialize the ONNX model: {exc}") from exc
        return SavedModel({FILE: data}, {"ir_version": model.ir_version})

    def load(self, bundle: Bundle, policy: TrustPolicy) -> Predictor:
        """An onnxruntime ``InferenceSession`` on the CPU."""
        warn_on_major_mismatch(
            bundle.manifest.get("libraries") or {}, self.library_versions(), "model"
        )
        import onnxruntime

        data = bundle.read(FILE)
        # The bundle may come from anywhere: check it as at registration.
        _refuse_external_data(_parse(data))
        try:
            session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own, undocumented exception types
            raise UnsupportedModelError(f"onnxruntime cannot load this model: {exc}") from exc
        return ONNXPredictor(session)

    def sniff(self, data: bytes) -> bool:
        """A protobuf that parses as a ``ModelProto`` with an IR version and graph nodes."""
        try:
            model = _parse(data)
        except UnsupportedModelError:
            return False
        # Many byte strings parse as *some* protobuf: require what every real model has.
        return model.ir_version > 0 and len(model.graph.node) > 0

    def from_file(self, data: bytes, extension: str) -> SavedModel:
        """A ``.onnx`` file that passes ``onnx.checker`` and keeps all tensors inside."""
        import onnx

        model = _parse(data)
        try:
            onnx.checker.check_model(model)
        except Exception as exc:  # ValidationError, or protobuf's size limit
            raise UnsupportedModelError(f"invalid ONNX model: {exc}") from exc
        _refuse_external_data(model)
        return SavedModel({FILE: data}, {"ir_version": model.ir_version})


def _parse(data: bytes) -> Any:
    import onnx

    try:
        return onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise UnsupportedModelError(f"not an ONNX model: {exc}") from exc


def _cast(array: np.ndarray, node: Any) -> np.ndarray:
    dtype = _DTYPES.get(node.type)
    try:
        return array if dtype is None else array.astype(dtype, copy=False)
    except (TypeError, ValueError) as exc:
        raise SignatureError(f"cannot feed input {node.name!r} ({node.type}): {exc}") from exc


def _refuse_external_data(model: Any) -> None:
    import onnx

    graphs = [model.graph, *model.functions]
    for tensor in _tensors(graphs):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            raise UnsupportedModelError(
                f"ONNX tensor {tensor.name!r} is stored outside the model file; load it with "
                "onnx.load(path) (external data included) and save the model in one piece"
            )


def _tensors(graphs: list[Any]) -> Iterator[Any]:
    # Initializers, sparse initializers and tensor attributes, through nested subgraphs
    # (If/Loop bodies) and local functions.
    while graphs:
        graph = graphs.pop()
        yield from getattr(graph, "initializer", ())
        for sparse in getattr(graph, "sparse_initializer", ()):
            yield from (sparse.values, sparse.indices)
        for node in graph.node:
            for attr in node.attribute:
                yield from (attr.t, *attr.tensors)
                for sparse in (attr.sparse_tensor, *attr.sparse_tensors):
                    yield from (sparse.values, sparse.indices)
                graphs.extend((attr.g, *attr.graphs))
