"""``POST /predict`` with ``{"features": ...}``: rows, one flat row, records; errors; fuzzing."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelport.errors import InvalidInputError, InvalidNameError, PayloadTooLargeError
from modelport.serving.protocols import simple
from modelport.serving.protocols.simple import parse_predict, render_predict
from modelport.serving.types import InferenceRequest, InferenceResponse, Tensor
from tests.serving.test_payloads import (
    near_records,
    near_rows,
    payload_values,
    rectangular_rows,
)


def parse(body: str | bytes, **kwargs) -> InferenceRequest:
    raw = body.encode() if isinstance(body, str) else body
    return parse_predict(raw, model=kwargs.pop("model", "iris"), **kwargs)


def test_rows():
    request = parse('{"features": [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]]}')
    [tensor] = request.inputs
    assert request.model == "iris" and tensor.name == "input-0"
    assert tensor.shape == (2, 4) and tensor.data.dtype == np.float64


def test_single_flat_row_is_one_row():
    [tensor] = parse('{"features": [1, 2, 3]}').inputs
    assert tensor.shape == (1, 3) and tensor.data.dtype == np.int64
    assert tensor.data.tolist() == [[1, 2, 3]]


def test_records():
    request = parse('{"features": [{"age": 31, "city": "Oslo"}, {"age": 45, "city": "Lima"}]}')
    assert [(t.name, t.shape) for t in request.inputs] == [("age", (2,)), ("city", (2,))]
    assert request.inputs[1].data.dtype == object


def test_values_follow_the_dtype_convention():
    assert parse('{"features": [[true, false]]}').inputs[0].data.dtype == np.bool_
    data = parse('{"features": [[1, null]]}').inputs[0].data
    assert data.dtype == np.float64 and np.isnan(data[0, 1])
    assert parse('{"features": [["a", 1]]}').inputs[0].data.dtype == object


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("{}", 'needs a "features" key, e.g. {"features": [[1.0, 2.0], [3.0, 4.0]]}'),
        ('{"instances": [[1]]}', 'needs a "features" key'),
        ('{"features": [[1]], "model": "x"}', "unknown key 'model'"),
        ('{"features": {"a": [1]}}', "features must be an array of rows, of records or one flat"),
        ('{"features": 3}', "got a number"),
        ('{"features": []}', "features: no rows"),
        ('{"features": [[1, 2], [3]]}', "features: row 1 has 1 value, expected 2 values"),
        ('{"features": [[1], 2]}', "features: row 1 has a single value, expected 1 value"),
        ('{"features": [[[1, 2]]]}', "features: row 0 nests arrays more than 1 level deep"),
        ('{"features": [{"a": 1}, [1]]}', "element 0 is an object but others are not"),
        ('{"features": [[1], {"a": 1}]}', "element 1 is an object but others are not"),
        ('{"features": [{"a": 1}, {"b": 1}]}', "features: record 1 is missing key 'a'"),
        ('{"features": [{"a": [1, 2]}]}', "features: column 'a': record 0 holds an array"),
        ('{"features": [[1, {"x": 1}]]}', "features: row 0 holds an object"),
        ('{"features": [[1]], "features": [[2]]}', "duplicate key 'features'"),
        ("[[1, 2]]", "the request body must be a JSON object, got an array"),
        ("features=1", "invalid JSON"),
    ],
)
def test_malformed_bodies_are_400(body, needle):
    with pytest.raises(InvalidInputError) as info:
        parse(body)
    assert info.value.http_status == 400
    assert needle in str(info.value)


def test_rows_over_max_rows_are_413():
    assert parse('{"features": [1, 2, 3, 4]}', max_rows=1).rows == 1  # one flat row
    with pytest.raises(PayloadTooLargeError, match="features: 3 rows exceed the limit of 2"):
        parse('{"features": [[1], [2], [3]]}', max_rows=2)
    with pytest.raises(PayloadTooLargeError):
        parse('{"features": [{"a": 1}, {"a": 2}, {"a": 3}]}', max_rows=2)


def test_invalid_model_name_is_400():
    with pytest.raises(InvalidNameError):
        parse('{"features": [1]}', model="has space")


def test_render_predict():
    response = InferenceResponse("iris", 2, [Tensor("y", np.array([0.25, 0.75]))])
    assert orjson.loads(render_predict(response)) == {"predictions": [0.25, 0.75]}
    several = InferenceResponse(
        "iris", 2, [Tensor("label", np.array([1])), Tensor("proba", np.array([[0.1, 0.9]]))]
    )
    assert orjson.loads(render_predict(several)) == {
        "predictions": [{"label": 1, "proba": [0.1, 0.9]}]
    }
    assert orjson.loads(simple.render_error("x")) == {"error": "x"}


# ------------------------------------------------------------------------ properties


@settings(max_examples=60, deadline=None)
@given(rectangular_rows())
def test_rows_parse_to_numpy_asarray(rows):
    [tensor] = parse(orjson.dumps({"features": rows})).inputs
    expected = np.asarray(rows)
    assert tensor.data.dtype == expected.dtype
    np.testing.assert_array_equal(tensor.data, expected)


def _check(body: bytes) -> None:
    try:
        request = parse_predict(body, model="m", max_rows=50)
    except InvalidInputError as exc:  # 400 and 413
        assert exc.http_status in (400, 413)
        return
    assert request.inputs and len({t.shape[0] for t in request.inputs}) == 1
    assert all(t.data.ndim <= 2 for t in request.inputs)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_fuzz_arbitrary_bytes_only_raise_protocol_errors(body):
    _check(body)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        near_rows.map(lambda v: {"features": v}),
        near_records.map(lambda v: {"features": v}),
        payload_values.map(lambda v: {"features": v}),
        payload_values,
    )
)
def test_fuzz_arbitrary_json_only_raise_protocol_errors(value):
    _check(json.dumps(value).encode())
