"""Specialised parsers for the bodies a busy server gets most: one all-number tensor.

The general parsers (``oip.parse_infer``, ``simple.parse_predict``) check every field
of every shape of body and cost 12-16 µs for a one-row request, more than the rest of a
small model's request path together. These recognise only the commonest bodies,

- OIP: ``{"inputs": [{"name", "shape", "datatype": "FP64", "data"}]}`` (and an ``id``),
  ``data`` flat or nested as rows of a 2-D shape;
- ``/predict``: ``{"features": [[...], ...]}`` or one flat row ``{"features": [...]}``,

with numbers only (at least one float), and answer exactly what the general parser
would: the same ``InferenceRequest``, with the same array. Anything else, including
every body the general parser would refuse, returns None and goes to it, so every error
message stays its own.

Duplicate keys: orjson keeps the last one silently. Each key in a body's text is
followed by one colon, so its colons are at least its keys, which are at least the
document's; a body with exactly as many colons as the document has keys lost none.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from modelport.serving.protocols.jsonbody import quick_json
from modelport.serving.types import InferenceRequest, Tensor

_NUMBERS = frozenset({float, int})
_INPUT_KEYS = frozenset({"name", "shape", "datatype", "data"})


def _floats(values: list[Any]) -> bool:
    """Only numbers and at least one float: what the general parsers turn into float64
    whether they look at int or float first (bools are neither: ``type(True) is bool``)."""
    types = set(map(type, values))
    return float in types and types <= _NUMBERS


def oip_infer(body: bytes, model: str, version: int | None, max_elements: int
              ) -> InferenceRequest | None:
    """The request of a one-FP64-input OIP JSON body, or None (use ``parse_infer``)."""
    doc = quick_json(body)
    if type(doc) is not dict or not 1 <= len(doc) <= 2 or "inputs" not in doc:
        return None
    req_id = doc.get("id")
    if len(doc) == 2 and type(req_id) is not str:
        return None
    inputs = doc["inputs"]
    if type(inputs) is not list or len(inputs) != 1:
        return None
    item = inputs[0]
    if type(item) is not dict or item.keys() != _INPUT_KEYS or item["datatype"] != "FP64":
        return None
    name, shape, data = item["name"], item["shape"], item["data"]
    if type(name) is not str or not name or type(shape) is not list or type(data) is not list:
        return None
    if not 1 <= len(shape) <= 2 or not all(type(d) is int and d > 0 for d in shape):
        return None
    count = shape[0] * (shape[1] if len(shape) == 2 else 1)
    if count > max_elements or body.count(b":") != len(doc) + 4:
        return None
    if len(data) == count:  # flat
        if not _floats(data):
            return None
        array = np.array(data, dtype=np.float64).reshape(shape)
    else:  # rows of a 2-D shape
        if len(shape) != 2 or len(data) != shape[0]:
            return None
        width = shape[1]
        if not all(type(row) is list and len(row) == width for row in data):
            return None
        if not _floats(list(itertools.chain.from_iterable(data))):
            return None
        array = np.array(data, dtype=np.float64)
    return InferenceRequest(model=model, inputs=[Tensor(name=name, data=array, datatype="FP64")],
                            version=version, id=req_id, parameters={}, outputs=None,
                            binary_outputs=False)


def predict_rows(body: bytes, model: str, max_rows: int, input_name: str
                 ) -> InferenceRequest | None:
    """The request of a ``{"features": rows of numbers}`` body, or None (use the general
    ``parse_predict``)."""
    doc = quick_json(body)
    if type(doc) is not dict or len(doc) != 1 or body.count(b":") != 1:
        return None
    features = doc.get("features")
    if type(features) is not list or not features:
        return None
    if type(features[0]) is not list:  # one flat row
        if not _floats(features):
            return None
        return InferenceRequest(model=model, inputs=[Tensor(
            input_name, np.array(features, dtype=np.float64).reshape(1, -1))])
    width = len(features[0])
    if width == 0 or len(features) > max_rows or not all(
            type(row) is list and len(row) == width for row in features):
        return None
    if not _floats(list(itertools.chain.from_iterable(features))):
        return None
    return InferenceRequest(model=model, inputs=[Tensor(
        input_name, np.array(features, dtype=np.float64))])


__all__ = ["oip_infer", "predict_rows"]
