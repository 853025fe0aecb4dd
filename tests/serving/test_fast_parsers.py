"""The fast parsers answer exactly what the general ones do, or leave the body to them.

``parse_infer`` and ``parse_predict`` try ``protocols/fast.py`` on ``bytes`` bodies; a
``bytearray`` of the same body skips it, which gives the general parser's answer (or
error) to compare with.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelport.errors import ModelportError
from modelport.serving.protocols import fast, oip, simple
from modelport.serving.protocols.payloads import ROWS_INPUT_NAME
from modelport.serving.types import InferenceRequest

ROW = [5.1, 3.5, 1.4, 0.2]


def _oip_general(body: bytes, version: int | None = None) -> InferenceRequest | None:
    try:
        return oip.parse_infer(bytearray(body), model="iris", version=version,
                               header_length=None)
    except ModelportError:
        return None


def _predict_general(body: bytes, max_rows: int = 100) -> InferenceRequest | None:
    try:
        return simple.parse_predict(bytearray(body), model="iris", max_rows=max_rows)
    except ModelportError:
        return None


def _same(a: InferenceRequest, b: InferenceRequest) -> bool:
    fields = ("model", "version", "id", "parameters", "outputs", "binary_outputs", "headers")
    if any(getattr(a, f) != getattr(b, f) for f in fields) or len(a.inputs) != len(b.inputs):
        return False
    return all(x.name == y.name and x.datatype == y.datatype and x.data.dtype == y.data.dtype
               and x.data.shape == y.data.shape and x.data.flags.c_contiguous
               and np.array_equal(x.data, y.data) for x, y in zip(a.inputs, b.inputs,
                                                                   strict=True))


@pytest.mark.parametrize("doc", [
    {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": ROW}]},
    {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64",
                 "data": [ROW, [1, 2, 3, 4.5]]}]},
    {"id": "req-7", "inputs": [{"datatype": "FP64", "name": "x", "shape": [4],
                                "data": [1, 2.5, 3, 4]}]},
    {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1e308, -0.0]}]},
])
def test_common_oip_bodies_take_the_fast_path_with_the_general_answer(doc: Any) -> None:
    body = json.dumps(doc).encode()
    got = fast.oip_infer(body, "iris", 3, 50_000_000)
    want = _oip_general(body, 3)
    assert got is not None and want is not None and _same(got, want)
    assert _same(oip.parse_infer(body, model="iris", version=3, header_length=None), want)


@pytest.mark.parametrize("body", [
    b'{"features": [[5.1, 3.5, 1.4, 0.2]]}', b'{"features": [5.1, 3, 1.4]}',
    b'{"features": [[1.5, 2], [3, 4]]}',
])
def test_common_predict_bodies_take_the_fast_path_with_the_general_answer(body: bytes) -> None:
    got = fast.predict_rows(body, "iris", 100, ROWS_INPUT_NAME)
    want = _predict_general(body)
    assert got is not None and want is not None and _same(got, want)


@pytest.mark.parametrize("body", [
    # duplicate keys: orjson would keep the last; the general parser refuses them
    b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1.0],'
    b' "data": [2.0]}]}',
    b'{"inputs": [], "inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1.0]}]}',
    b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [NaN]}]}',
    b'{"inputs": [{"name": "a", "shape": [2], "datatype": "FP64", "data": [1.0]}]}',
    b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": [1.0]}]}',
    b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [true]}]}',
    b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1]}]}',
    b'{"inputs": [{"name": "a:b", "shape": [1], "datatype": "FP64", "data": [1.5]}]}',
    b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", '
    b'"data": [12345678901234567890123.0]}]}',
])
def test_other_oip_bodies_are_left_to_the_general_parser(body: bytes) -> None:
    assert fast.oip_infer(body, "iris", None, 50_000_000) is None


@pytest.mark.parametrize("body", [
    b'{"features": [[1.0]], "features": [[2.0]]}', b'{"features": [[1, 2]]}',
    b'{"features": [[1.0, 2.0], [3.0]]}', b'{"features": [[1.0, null]]}',
    b'{"features": [{"a": 1.0}]}', b'{"features": [[[1.0]]]}', b'{"features": []}',
    b'{"features": [[1.0]] }  x', b'{"rows": [[1.0]]}',
])
def test_other_predict_bodies_are_left_to_the_general_parser(body: bytes) -> None:
    assert fast.predict_rows(body, "iris", 100, ROWS_INPUT_NAME) is None


def test_row_limits_stay_the_general_parsers() -> None:
    body = json.dumps({"features": [ROW] * 3}).encode()
    assert fast.predict_rows(body, "iris", 2, ROWS_INPUT_NAME) is None
    doc = {"inputs": [{"name": "x", "shape": [3, 4], "datatype": "FP64", "data": ROW * 3}]}
    assert fast.oip_infer(json.dumps(doc).encode(), "iris", None, 11) is None


# -- properties: whatever the body, the fast answer is the general one ---------------------

numbers = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-5, 5),
                    st.booleans(), st.none(), st.text(max_size=2))
rows = st.lists(st.lists(numbers, min_size=0, max_size=4), min_size=0, max_size=4)


@st.composite
def oip_docs(draw: st.DrawFn) -> Any:
    data = draw(st.one_of(rows, st.lists(numbers, max_size=8)))
    item: dict[str, Any] = {
        "name": draw(st.sampled_from(["input-0", "", "a:b", "x"])),
        "shape": draw(st.lists(st.integers(-1, 4), max_size=3)),
        "datatype": draw(st.sampled_from(["FP64", "FP64", "FP32", "INT64", "fp64"])),
        "data": data,
    }
    for key in draw(st.lists(st.sampled_from(["name", "shape", "datatype", "data"]),
                             max_size=1)):
        del item[key]
    if draw(st.booleans()):
        item["parameters"] = {}
    doc: dict[str, Any] = {"inputs": draw(st.sampled_from([[item], [item, item], []]))}
    if draw(st.booleans()):
        doc["id"] = draw(st.one_of(st.text(max_size=4), st.integers()))
    return doc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(oip_docs())
def test_property_oip_fast_answer_is_the_general_answer(doc: Any) -> None:
    body = json.dumps(doc).encode()
    got = fast.oip_infer(body, "iris", None, 50_000_000)
    if got is not None:
        want = _oip_general(body)
        assert want is not None and _same(got, want), body


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(rows, st.lists(numbers, max_size=6)), st.booleans())
def test_property_predict_fast_answer_is_the_general_answer(features: Any, extra: bool
                                                            ) -> None:
    doc: dict[str, Any] = {"features": features}
    if extra:
        doc["model"] = "x"
    body = json.dumps(doc).encode()
    got = fast.predict_rows(body, "iris", 3, ROWS_INPUT_NAME)
    if got is not None:
        want = _predict_general(body, 3)
        assert want is not None and _same(got, want), body
