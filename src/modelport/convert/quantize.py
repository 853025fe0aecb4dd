"""Dynamic quantization of an ONNX graph (onnxruntime), and the cost/benefit measured.

Weights become 8-bit integers; activations stay float and are quantized on the fly.
Trees and linear models with few weights gain little, networks and large linear layers
shrink about 4x: the report says which, from the numbers.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelport.errors import UnsupportedModelError


@dataclass(frozen=True)
class QuantizeReport:
    """Size, single-row latency and accuracy, before and after."""

    bytes_before: int
    bytes_after: int
    latency_ms_before: float
    latency_ms_after: float
    accuracy_before: float | None
    accuracy_after: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return asdict(self)


def quantize(graph_bytes: bytes) -> bytes:
    """The dynamically quantized (int8 weights) copy of an ONNX graph."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load_from_string(graph_bytes)
    # The quantizer wants exactly one standard opset: skl2onnx may declare it twice, and
    # graphs of only ai.onnx.ml operators may not declare it at all.
    opsets: dict[str, int] = {}
    for op in graph.opset_import:
        domain = "" if op.domain == "ai.onnx" else op.domain
        opsets[domain] = max(opsets.get(domain, 0), op.version)
    opsets.setdefault("", 15)
    del graph.opset_import[:]
    graph.opset_import.extend(onnx.helper.make_opsetid(d, v) for d, v in opsets.items())
    graph_bytes = graph.SerializeToString()
    with tempfile.TemporaryDirectory(prefix="modelport-quant-") as tmp:
        src, dst = Path(tmp) / "in.onnx", Path(tmp) / "out.onnx"
        src.write_bytes(graph_bytes)
        try:
            quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
        except Exception as exc:  # onnxruntime's quantizer raises assorted types
            raise UnsupportedModelError(f"onnxruntime cannot quantize this graph: {exc}") from exc
        return dst.read_bytes()


def single_row_latency_ms(predict: Any, row: Any, repeats: int = 200) -> float:
    """Median wall time of ``predict(row)`` in ms, after a few warm-up calls."""
    for _ in range(5):
        predict(row)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        predict(row)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000.0)


__all__ = ["QuantizeReport", "quantize", "single_row_latency_ms"]
