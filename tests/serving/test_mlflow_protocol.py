"""MLflow scoring protocol: the payloads MLflow's docs show, content types, errors, fuzzing."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelport.errors import (
    InvalidInputError,
    InvalidNameError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from modelport.serving.protocols import mlflow
from modelport.serving.protocols.mlflow import parse_invocations
from modelport.serving.types import InferenceRequest, InferenceResponse, Tensor
from tests.serving.test_payloads import (
    near_records,
    near_split,
    payload_values,
    rectangular_rows,
)

JSON = "application/json"

# ---- payloads exactly as MLflow's "Deploy MLflow Model as a Local Inference Server" shows

DOCS_DATAFRAME_SPLIT = """{
  "dataframe_split": {
      "columns": ["a", "b", "c"],
      "data": [[1, 2, 3], [4, 5, 6]]
  }
}"""

DOCS_DATAFRAME_SPLIT_WITH_INDEX = """{
  "dataframe_split": {
      "index": [0, 1],
      "columns": ["a", "b", "c"],
      "data": [[1, 2, 3], [4, 5, 6]]
  }
}"""

DOCS_DATAFRAME_RECORDS = """{
  "dataframe_records": [
    {"a": 1,"b": 2,"c": 3},
    {"a": 4,"b": 5,"c": 6}
  ]
}"""

DOCS_INSTANCES = """{
    "instances": [
        {"a": "s1", "b": 1, "c": [1, 2, 3]},
        {"a": "s2", "b": 2, "c": [4, 5, 6]},
        {"a": "s3", "b": 3, "c": [7, 8, 9]}
    ]
}"""

DOCS_INPUTS_COLUMNS = """{
    "inputs": {"a": ["s1", "s2", "s3"], "b": [1, 2, 3], "c": [[1, 2, 3], [4, 5, 6], [7, 8, 9]]}
}"""

DOCS_INPUTS_TENSOR = '{"inputs": [[1, 2], [3, 4], [5, 6]]}'

DOCS_INPUTS_IMAGES = """{
    "inputs": [[[0.1, 0.2], [0.3, 0.4]], [[0.5, 0.6], [0.7, 0.8]]]
}"""

DOCS_PARAMS = """{
    "inputs": ["What is MLflow?"],
    "params": {"temperature": 0.5, "max_tokens": 100}
}"""

DOCS_CSV = "a,b,c\n1,2,3\n4,5,6\n"

# pandas.DataFrame.to_csv() keeps the index as an unnamed first column
PANDAS_TO_CSV = ",sepal_length,species\n0,5.1,setosa\n1,4.9,versicolor\n"


def parse(body: str | bytes, content_type: str | None = JSON, **kwargs) -> InferenceRequest:
    raw = body.encode() if isinstance(body, str) else body
    return parse_invocations(raw, content_type, model=kwargs.pop("model", "iris"), **kwargs)


def columns(request: InferenceRequest) -> dict[str, list]:
    return {t.name: t.data.tolist() for t in request.inputs}


# ------------------------------------------------------------------ MLflow's payloads


@pytest.mark.parametrize("body", [DOCS_DATAFRAME_SPLIT, DOCS_DATAFRAME_SPLIT_WITH_INDEX])
def test_dataframe_split(body):
    request = parse(body)
    assert request.model == "iris" and request.version is None and request.parameters == {}
    assert columns(request) == {"a": [1, 4], "b": [2, 5], "c": [3, 6]}
    assert all(t.data.dtype == np.int64 and t.shape == (2,) for t in request.inputs)
    assert request.rows == 2


def test_dataframe_records():
    request = parse(DOCS_DATAFRAME_RECORDS)
    assert columns(request) == {"a": [1, 4], "b": [2, 5], "c": [3, 6]}


def test_instances_records_with_array_cells():
    request = parse(DOCS_INSTANCES)
    shapes = {t.name: (t.shape, t.data.dtype) for t in request.inputs}
    assert shapes == {
        "a": ((3,), np.dtype(object)),
        "b": ((3,), np.dtype(np.int64)),
        "c": ((3, 3), np.dtype(np.int64)),
    }
    assert columns(request)["a"] == ["s1", "s2", "s3"]


def test_inputs_columns():
    request = parse(DOCS_INPUTS_COLUMNS)
    assert columns(request) == {
        "a": ["s1", "s2", "s3"],
        "b": [1, 2, 3],
        "c": [[1, 2, 3], [4, 5, 6], [7, 8, 9]],
    }


def test_inputs_tensor_with_the_docs_trailing_semicolon_content_type():
    request = parse(DOCS_INPUTS_TENSOR, "application/json;")
    [tensor] = request.inputs
    assert tensor.name == "input-0"
    np.testing.assert_array_equal(tensor.data, np.array([[1, 2], [3, 4], [5, 6]]))
    assert tensor.data.dtype == np.int64


def test_inputs_tensor_like_nesting_keeps_its_shape():
    [tensor] = parse(DOCS_INPUTS_IMAGES).inputs
    assert tensor.shape == (2, 2, 2) and tensor.data.dtype == np.float64


def test_instances_rows():
    [tensor] = parse('{"instances": [[1.5, 2], [3, 4]]}').inputs
    assert tensor.data.dtype == np.float64 and tensor.shape == (2, 2)


def test_list_of_scalars_is_one_feature_column():
    [tensor] = parse('{"inputs": [1, 2, 3]}').inputs
    assert tensor.shape == (3, 1)


def test_params_become_request_parameters():
    request = parse(DOCS_PARAMS)
    assert request.parameters == {"temperature": 0.5, "max_tokens": 100}
    assert request.inputs[0].data.tolist() == [["What is MLflow?"]]


def test_null_params_mean_no_params():
    assert parse('{"inputs": [[1]], "params": null}').parameters == {}


def test_csv_header_names_the_columns():
    request = parse(DOCS_CSV, "text/csv")
    assert columns(request) == {"a": [1, 4], "b": [2, 5], "c": [3, 6]}
    assert all(t.data.dtype == np.int64 for t in request.inputs)


def test_csv_from_pandas_to_csv_keeps_the_unnamed_index_like_mlflow():
    request = parse(PANDAS_TO_CSV, "text/csv; charset=utf-8")
    assert [t.name for t in request.inputs] == ["Unnamed: 0", "sepal_length", "species"]
    assert request.inputs[1].data.dtype == np.float64
    assert request.inputs[2].data.dtype == object
    assert request.inputs[2].data.tolist() == ["setosa", "versicolor"]


def test_csv_dtypes_and_missing_values():
    request = parse("n,s,b\n1,x,True\n,,False\n", "text/csv")
    n, s, b = request.inputs
    assert n.data.dtype == np.float64 and np.isnan(n.data[1])
    assert s.data.dtype == object and s.data[0] == "x"
    assert b.data.dtype == np.bool_


# --------------------------------------------------------------------- content types


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        JSON,
        "application/json; charset=utf-8",
        "Application/JSON; Charset=UTF-8",
        'application/json; charset="utf-8"',
        "application/json;",
    ],
)
def test_json_content_types(content_type):
    assert parse(DOCS_DATAFRAME_RECORDS, content_type).rows == 2


def test_legacy_pandas_split_format_accepts_a_bare_frame():
    body = '{"columns": ["x", "y"], "index": [0, 1], "data": [[1, 2], [3, 4]]}'
    request = parse(body, "application/json; format=pandas-split")
    assert columns(request) == {"x": [1, 3], "y": [2, 4]}


def test_legacy_pandas_records_format_accepts_a_bare_list():
    body = '[{"x": 1, "y": 2}, {"x": 3, "y": 4}]'
    request = parse(body, "application/json; format=pandas-records; charset=utf-8")
    assert columns(request) == {"x": [1, 3], "y": [2, 4]}


def test_legacy_format_still_accepts_wrapped_bodies():
    request = parse(DOCS_DATAFRAME_SPLIT, "application/json; format=pandas-records")
    assert columns(request)["a"] == [1, 4]


def test_legacy_format_errors_name_the_format():
    with pytest.raises(InvalidInputError, match=r"format=pandas-records.*record 1 is missing key"):
        parse('[{"x": 1}, {"y": 2}]', "application/json; format=pandas-records")
    with pytest.raises(InvalidInputError, match=r"format=pandas-split.*missing 'data'"):
        parse('{"columns": ["x"]}', "application/json; format=pandas-split")


@pytest.mark.parametrize(
    ("content_type", "needle"),
    [
        ("text/plain", "unsupported Content-Type 'text/plain'"),
        ("application/x-www-form-urlencoded", "unsupported Content-Type"),
        ("application/octet-stream", "unsupported Content-Type"),
        ("application/json; charset=latin-1", "only accepts UTF-8"),
        ("application/json; format=pandas-columns", "unsupported format 'pandas-columns'"),
        ("text/csv; format=pandas-split", "unsupported format 'pandas-split' for text/csv"),
        ("application/json; foo=bar", "unrecognized Content-Type parameter(s) 'foo'"),
        ("application/json; garbage", "malformed Content-Type parameter 'garbage'"),
    ],
)
def test_other_content_types_are_415_listing_accepted_types(content_type, needle):
    with pytest.raises(UnsupportedMediaTypeError) as info:
        parse(DOCS_DATAFRAME_RECORDS, content_type)
    assert info.value.http_status == 415
    assert needle in str(info.value)
    if "UTF-8" not in needle:
        assert "application/json" in str(info.value) and "text/csv" in str(info.value)


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("{}", "exactly one of the keys dataframe_split, dataframe_records, instances, inputs"),
        ('{"data": [[1]]}', "got none of them"),
        ('{"instances": [[1]], "inputs": [[1]]}', "got instances, inputs"),
        ('{"inputs": [[1]], "extra": 1}', "unknown key 'extra'"),
        ('[{"a": 1}]', 'got an array (MLflow 2 wraps data, e.g. {"dataframe_records"'),
        ('"text"', "got a string"),
        ('{"inputs": [[1]], "params": [1]}', "'params' must be a JSON object, got an array"),
        ('{"inputs": 5}', "inputs must be an array (rows, or records) or an object of columns"),
        ('{"instances": {"a": [1]}}', "instances must be an array of rows or of objects"),
        ('{"dataframe_split": [[1, 2]]}', "dataframe_split must be an object"),
        ('{"dataframe_records": {"a": 1}}', "dataframe_records must be an array of objects"),
        ('{"dataframe_records": []}', "dataframe_records: no rows"),
        ('{"instances": []}', "instances: no rows"),
        ('{"inputs": {}}', "inputs: no columns"),
        ('{"inputs": {"a": [1, 2], "b": [3]}}', "column 'b' has 1 value but column 'a' has 2"),
        ('{"inputs": [[1, 2], [3]]}', "inputs: row 1 has 1 value, expected 2 values"),
        ('{"dataframe_records": [{"a": 1}, {"b": 1}]}', "record 1 is missing key 'a'"),
        ('{"instances": [{"a": 1}, [1]]}', "element 1 is an array but element 0 is an object"),
        ('{"inputs": [[1]], "inputs": [[2]]}', "duplicate key 'inputs'"),
        ('{"inputs": [[1]', "invalid JSON"),
        ("", "the request body is empty"),
    ],
)
def test_malformed_json_is_400(body, needle):
    with pytest.raises(InvalidInputError) as info:
        parse(body)
    assert info.value.http_status == 400
    assert needle in str(info.value)


@pytest.mark.parametrize(
    "body",
    [
        '{"inputs": [[1], [2], [3]]}',
        '{"instances": [{"a": 1}, {"a": 2}, {"a": 3}]}',
        '{"inputs": {"a": [1, 2, 3]}}',
        '{"dataframe_records": [{"a": 1}, {"a": 2}, {"a": 3}]}',
        '{"dataframe_split": {"columns": ["a"], "data": [[1], [2], [3]]}}',
    ],
)
def test_rows_over_max_rows_are_413(body):
    parse(body, max_rows=3)
    with pytest.raises(PayloadTooLargeError, match="3 rows exceed the limit of 2"):
        parse(body, max_rows=2)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"", "the body is empty"),
        (b"a,b\n", "text/csv: no rows"),
        (b"a,b\n1,2\n3,4,5,6\n", "malformed CSV: Error tokenizing data"),
        (b'"a,b\n1,2', "malformed CSV"),
        # pandas would make the first field an index and shift every column by one
        (b"a,b\n1,2,3\n4,5,6\n", "Expected 2 fields in line 2, saw 3"),
        (b"a,b\n1,2,\n", "Expected 2 fields in line 2, saw 3"),
        (b"a,b\n\xff\xfe,1\n", "not valid UTF-8"),
        (b"a\n99999999999999999999\n", "outside the 64-bit range"),
    ],
)
def test_malformed_csv_is_400(body, needle):
    with pytest.raises(InvalidInputError) as info:
        parse(body, "text/csv")
    assert info.value.http_status == 400
    assert needle in str(info.value)


def test_csv_over_max_rows_is_413():
    body = "a\n" + "1\n" * 5
    assert parse(body, "text/csv", max_rows=5).rows == 5
    with pytest.raises(PayloadTooLargeError, match="text/csv: 6 rows exceed the limit of 5"):
        parse(body + "1\n", "text/csv", max_rows=5)


@pytest.mark.parametrize("model", ["", "../etc", "a b", "x" * 200, "-lead"])
def test_invalid_model_names_are_400(model):
    with pytest.raises(InvalidNameError) as info:
        parse(DOCS_INPUTS_TENSOR, model=model)
    assert info.value.http_status == 400


# ------------------------------------------------------------------------- rendering


def response(*outputs: Tensor) -> InferenceResponse:
    return InferenceResponse(model="iris", version=3, outputs=list(outputs))


def test_render_predictions_one_output():
    body = mlflow.render_predictions(response(Tensor("y", np.array([0, 2, 1]))))
    assert orjson.loads(body) == {"predictions": [0, 2, 1]}


def test_render_predictions_several_outputs_as_records():
    body = mlflow.render_predictions(
        response(
            Tensor("label", np.array(["a", "b"], dtype=object)),
            Tensor("score", np.array([0.5, 0.25])),
        )
    )
    assert orjson.loads(body) == {
        "predictions": [{"label": "a", "score": 0.5}, {"label": "b", "score": 0.25}]
    }


def test_render_error_is_an_object_with_one_message():
    assert orjson.loads(mlflow.render_error("no rows")) == {"error": "no rows"}


def test_ping_and_version_bodies_match_mlflow():
    assert mlflow.ping_body() == b"\n"
    assert mlflow.version_body("0.1.0") == b"0.1.0"


# ----------------------------------------------------------------------------- fuzz

_keys = st.sampled_from([*mlflow.INPUT_KEYS, "params", "columns", "data", "index", "x"])
wrapped = st.dictionaries(_keys, payload_values, min_size=1, max_size=2)
content_types = st.sampled_from(
    [
        None,
        JSON,
        "text/csv",
        "application/json; format=pandas-split",
        "application/json; format=pandas-records",
        "application/json; charset=latin-1",
        "text/plain",
        "application/json; x=1",
    ]
) | st.text(max_size=30)


def _check(body: bytes, content_type: str | None) -> None:
    try:
        request = parse_invocations(body, content_type, model="m", max_rows=50)
    except (InvalidInputError, UnsupportedMediaTypeError) as exc:  # 400, 413, 415
        assert exc.http_status in (400, 413, 415)
        assert orjson.loads(mlflow.render_error(str(exc)))["error"]
        return
    assert isinstance(request, InferenceRequest) and request.inputs
    assert all(isinstance(t.data, np.ndarray) and t.data.ndim >= 1 for t in request.inputs)
    assert len({t.shape[0] for t in request.inputs}) == 1
    assert isinstance(request.parameters, dict)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200), content_types)
def test_fuzz_arbitrary_bytes_only_raise_protocol_errors(body, content_type):
    _check(body, content_type)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.builds(
            dict,
            st.tuples(st.sampled_from(mlflow.INPUT_KEYS), payload_values).map(lambda kv: [kv]),
        ),
        near_split.map(lambda v: {"dataframe_split": v}),
        near_records.map(lambda v: {"dataframe_records": v, "params": {"k": 1}}),
        wrapped,
        payload_values | near_split,
    ),
    st.sampled_from([None, JSON, "application/json; format=pandas-split"]) | content_types,
)
def test_fuzz_arbitrary_json_only_raise_protocol_errors(value, content_type):
    _check(json.dumps(value).encode(), content_type)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.text(max_size=5) | st.integers(-5, 5), min_size=1, max_size=4),
        min_size=1,
        max_size=5,
    )
)
def test_fuzz_csv_text_only_raises_protocol_errors(cells):
    body = "\n".join(",".join(str(c) for c in row) for row in cells).encode()
    _check(body, "text/csv")


@settings(max_examples=60, deadline=None)
@given(rectangular_rows(), st.sampled_from(["instances", "inputs"]))
def test_rows_parse_to_numpy_asarray(rows, key):
    [tensor] = parse(orjson.dumps({key: rows})).inputs
    expected = np.asarray(rows)
    assert tensor.data.dtype == expected.dtype
    np.testing.assert_array_equal(tensor.data, expected)
