"""KServe V1 / TF-Serving ``:predict``: row and columnar formats, errors, fuzzing."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelport.errors import InvalidInputError, InvalidNameError, PayloadTooLargeError
from modelport.serving.protocols import kserve_v1
from modelport.serving.protocols.kserve_v1 import model_status, parse_predict, render_predict
from modelport.serving.types import InferenceRequest, InferenceResponse, Tensor
from tests.serving.test_payloads import payload_values, rectangular_rows

# KServe's sklearn iris example
KSERVE_IRIS = '{"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}'

# TF-Serving REST API docs, row ("instances") format with named inputs
TF_ROW_FORMAT = """{
 "signature_name": "classify_x_to_y",
 "instances": [
   {
     "tag": "foo",
     "signal": [1, 2, 3, 4, 5],
     "sensor": [[1, 2], [3, 4]]
   },
   {
     "tag": "bar",
     "signal": [3, 4, 1, 2, 5],
     "sensor": [[4, 5], [6, 8]]
   }
 ]
}"""

# TF-Serving REST API docs, columnar ("inputs") format
TF_COLUMNAR_FORMAT = """{
 "inputs": {
   "tag": ["foo", "bar"],
   "signal": [[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]],
   "sensor": [[[1, 2], [3, 4]], [[4, 5], [6, 8]]]
 }
}"""

TF_SCALAR_INSTANCES = '{"instances": [1.0, 2.0, 5.0]}'


def parse(body: str | bytes, **kwargs) -> InferenceRequest:
    raw = body.encode() if isinstance(body, str) else body
    return parse_predict(raw, model=kwargs.pop("model", "iris"), **kwargs)


def test_kserve_instances_rows():
    request = parse(KSERVE_IRIS)
    [tensor] = request.inputs
    assert request.model == "iris" and tensor.name == "input-0"
    assert tensor.data.dtype == np.float64 and tensor.shape == (2, 4)
    assert tensor.data[1].tolist() == [6.0, 3.4, 4.5, 1.6]


@pytest.mark.parametrize("body", [TF_ROW_FORMAT, TF_COLUMNAR_FORMAT])
def test_tf_serving_named_inputs_row_and_columnar_agree(body):
    request = parse(body)
    shapes = {t.name: t.shape for t in request.inputs}
    assert shapes == {"tag": (2,), "signal": (2, 5), "sensor": (2, 2, 2)}
    tensors = {t.name: t.data for t in request.inputs}
    assert tensors["tag"].tolist() == ["foo", "bar"]
    assert tensors["sensor"].tolist() == [[[1, 2], [3, 4]], [[4, 5], [6, 8]]]


def test_signature_name_is_ignored():
    assert parse(TF_ROW_FORMAT).parameters == {}


def test_scalar_instances_are_one_feature():
    [tensor] = parse(TF_SCALAR_INSTANCES).inputs
    assert tensor.shape == (3, 1)


def test_inputs_as_a_list_is_rows():
    [tensor] = parse('{"inputs": [[1, 2], [3, 4]]}').inputs
    assert tensor.name == "input-0" and tensor.data.tolist() == [[1, 2], [3, 4]]


def test_inputs_as_a_list_of_records():
    request = parse('{"inputs": [{"a": 1, "b": true}, {"a": 2, "b": false}]}')
    assert {t.name: t.data.dtype for t in request.inputs} == {
        "a": np.dtype(np.int64),
        "b": np.dtype(np.bool_),
    }


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("{}", 'exactly one of "instances" (rows or records) and "inputs" (columns); got neither'),
        ('{"instances": [[1]], "inputs": [[1]]}', "got both"),
        ('{"signature_name": "serving_default"}', "got neither"),
        ('{"instances": [[1]], "extra": 1}', "unknown key 'extra'"),
        ("[[1, 2]]", "the request body must be a JSON object, got an array"),
        ('{"instances": 5}', "instances must be an array of rows or of objects, got a number"),
        ('{"inputs": "x"}', "inputs must be an object of named columns or an array of rows"),
        ('{"instances": []}', "instances: no rows"),
        ('{"inputs": {}}', "inputs: no columns"),
        ('{"instances": [[1, 2], [3]]}', "instances: row 1 has 1 value, expected 2 values"),
        ('{"instances": [{"a": 1}, {"b": 2}]}', "instances: record 1 is missing key 'a'"),
        ('{"instances": [{"a": 1}, 2]}', "element 1 is a number but element 0 is an object"),
        ('{"inputs": {"a": [1], "b": [1, 2]}}', "column 'b' has 2 values but column 'a' has 1"),
        ('{"instances": [{"a": {"b64": "aGk="}}]}', "column 'a': record 0 holds an object"),
        ('{"instances": [[1]], "instances": [[2]]}', "duplicate key 'instances'"),
        ("{", "invalid JSON"),
        (b"\xff", "not valid UTF-8"),
    ],
)
def test_malformed_bodies_are_400(body, needle):
    with pytest.raises(InvalidInputError) as info:
        parse(body)
    assert info.value.http_status == 400
    assert needle in str(info.value)


@pytest.mark.parametrize(
    "body",
    [
        '{"instances": [[1], [2], [3]]}',
        '{"instances": [{"a": 1}, {"a": 2}, {"a": 3}]}',
        '{"inputs": {"a": [1, 2, 3]}}',
        '{"inputs": [1, 2, 3]}',
    ],
)
def test_rows_over_max_rows_are_413(body):
    assert parse(body, max_rows=3).rows == 3
    with pytest.raises(PayloadTooLargeError) as info:
        parse(body, max_rows=2)
    assert info.value.http_status == 413


def test_invalid_model_name_is_400():
    with pytest.raises(InvalidNameError):
        parse(KSERVE_IRIS, model="../../etc/passwd")


def test_render_predict_and_status():
    response = InferenceResponse("iris", 1, [Tensor("y", np.array([1, 1]))])
    assert orjson.loads(render_predict(response)) == {"predictions": [1, 1]}
    assert model_status("iris", True) == {"name": "iris", "ready": True}
    assert model_status("iris", False) == {"name": "iris", "ready": False}
    assert orjson.loads(kserve_v1.render_error("boom")) == {"error": "boom"}


# ------------------------------------------------------------------------ properties


@settings(max_examples=60, deadline=None)
@given(rectangular_rows(), st.sampled_from(["instances", "inputs"]))
def test_rows_parse_to_numpy_asarray(rows, key):
    [tensor] = parse(orjson.dumps({key: rows})).inputs
    expected = np.asarray(rows)
    assert tensor.data.dtype == expected.dtype
    np.testing.assert_array_equal(tensor.data, expected)


wrapped = st.dictionaries(
    st.sampled_from(["instances", "inputs", "signature_name", "x"]),
    payload_values,
    min_size=1,
    max_size=2,
)


def _check(body: bytes) -> None:
    try:
        request = parse_predict(body, model="m", max_rows=50)
    except InvalidInputError as exc:  # 400 and 413
        assert exc.http_status in (400, 413)
        return
    assert request.inputs and len({t.shape[0] for t in request.inputs}) == 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_fuzz_arbitrary_bytes_only_raise_protocol_errors(body):
    _check(body)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.builds(
            dict,
            st.tuples(st.sampled_from(["instances", "inputs"]), payload_values).map(
                lambda kv: [kv]
            ),
        ),
        wrapped,
        payload_values,
    )
)
def test_fuzz_arbitrary_json_only_raise_protocol_errors(value):
    _check(json.dumps(value).encode())
