"""Open Inference Protocol REST: parsing, rendering, Triton's binary extension, and
that no malformed body can raise anything but a 400/413 ``ModelportError``."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from modelport.errors import (
    InvalidInputError,
    InvalidNameError,
    ModelportError,
    PayloadTooLargeError,
)
from modelport.serving.datatypes import OIP_TO_NUMPY, oip_datatype
from modelport.serving.protocols import oip
from modelport.serving.types import InferenceRequest, InferenceResponse, Tensor

tc = pytest.importorskip("tritonclient.http")

NUMERIC = [k for k in OIP_TO_NUMPY if k != "BYTES"]


# --------------------------------------------------------------------------- helpers


def _input(arr: np.ndarray, name: str = "x", datatype: str | None = None) -> dict[str, Any]:
    """A JSON ``$request_input`` for ``arr`` (flat row-major data)."""
    dt = datatype or oip_datatype(arr.dtype)
    return {"name": name, "shape": list(arr.shape), "datatype": dt,
            "data": arr.reshape(-1).tolist()}


def _json_body(*inputs: dict[str, Any], **top: Any) -> bytes:
    return json.dumps({**top, "inputs": list(inputs)}).encode()


def _bytes_elements(values: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(v)) + v for v in values)


def _binary_body(arrays: dict[str, np.ndarray], **top: Any) -> tuple[bytes, int]:
    """A binary-extension body built by hand: JSON header, then each tensor's bytes."""
    inputs, chunks = [], []
    for name, arr in arrays.items():
        if arr.dtype == object:
            raw = _bytes_elements([bytes(v) for v in arr.reshape(-1)])
            dt = "BYTES"
        else:
            raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
            dt = oip_datatype(arr.dtype)
        inputs.append({"name": name, "shape": list(arr.shape), "datatype": dt,
                       "parameters": {"binary_data_size": len(raw)}})
        chunks.append(raw)
    header = json.dumps({**top, "inputs": inputs}).encode()
    return header + b"".join(chunks), len(header)


def parse(body: bytes, header_length: int | None = None, **kw: Any) -> InferenceRequest:
    kw.setdefault("model", "iris")
    kw.setdefault("version", None)
    return oip.parse_infer(body, header_length=header_length, **kw)


def _bad(body: bytes, fragment: str, header_length: int | None = None,
         error: type[ModelportError] = InvalidInputError, **kw: Any) -> None:
    with pytest.raises(error) as info:
        parse(body, header_length, **kw)
    assert fragment in str(info.value), str(info.value)


SAMPLES: dict[str, list[Any]] = {
    "BOOL": [True, False, True, True],
    "UINT8": [0, 1, 254, 255],
    "UINT16": [0, 1, 65534, 65535],
    "UINT32": [0, 7, 2**32 - 2, 2**32 - 1],
    "UINT64": [0, 7, 2**63, 2**64 - 1],
    "INT8": [-128, -1, 0, 127],
    "INT16": [-(2**15), -1, 0, 2**15 - 1],
    "INT32": [-(2**31), -1, 0, 2**31 - 1],
    "INT64": [-(2**63), -1, 0, 2**63 - 1],
    "FP16": [0.5, -1.25, 65504.0, 1e-3],
    "FP32": [0.1, -1.5, 3.4e38, 1e-30],
    "FP64": [0.1, -1.5, 1.7e308, 5e-324],
    "BYTES": ["a", "", "héllo ☃", "x" * 50],
}


# --------------------------------------------------------------------------- JSON


@pytest.mark.parametrize("datatype", list(SAMPLES))
def test_json_round_trip_each_datatype(datatype: str) -> None:
    values = SAMPLES[datatype]
    body = _json_body({"name": "x", "shape": [2, 2], "datatype": datatype, "data": values},
                      id="r1", parameters={"p": 1})
    req = parse(body, version=3)
    (t,) = req.inputs
    assert (req.model, req.version, req.id, req.parameters) == ("iris", 3, "r1", {"p": 1})
    assert t.name == "x" and t.datatype == datatype and t.shape == (2, 2)
    assert t.data.dtype == OIP_TO_NUMPY[datatype]
    expected = np.array(values, dtype=OIP_TO_NUMPY[datatype]).reshape(2, 2)
    np.testing.assert_array_equal(t.data, expected)
    if datatype == "BYTES":
        assert all(type(v) is str for v in t.data.reshape(-1))
    assert t.data.flags.writeable


def test_nested_and_flat_data_are_equal() -> None:
    flat = parse(_json_body({"name": "x", "shape": [2, 3], "datatype": "FP64",
                             "data": [1, 2, 3, 4, 5, 6]}))
    nested = parse(_json_body({"name": "x", "shape": [2, 3], "datatype": "FP64",
                               "data": [[1, 2, 3], [4, 5, 6]]}))
    np.testing.assert_array_equal(flat.inputs[0].data, nested.inputs[0].data)
    assert nested.inputs[0].data.shape == (2, 3)
    deep = parse(_json_body({"name": "s", "shape": [2, 1, 2], "datatype": "BYTES",
                             "data": [[["a", "b"]], [["c", "d"]]]}))
    assert deep.inputs[0].data.tolist() == [[["a", "b"]], [["c", "d"]]]


def test_empty_and_scalar_shapes() -> None:
    empty = parse(_json_body({"name": "x", "shape": [0, 4], "datatype": "FP32", "data": []}))
    assert empty.inputs[0].data.shape == (0, 4)
    nested_empty = parse(_json_body({"name": "x", "shape": [2, 0], "datatype": "INT8",
                                     "data": [[], []]}))
    assert nested_empty.inputs[0].data.shape == (2, 0)
    scalar = parse(_json_body({"name": "x", "shape": [], "datatype": "INT32", "data": [7]}))
    assert scalar.inputs[0].data.shape == () and scalar.rows == 1


def test_nan_and_infinity_become_floats() -> None:
    body = (b'{"inputs":[{"name":"x","shape":[3],"datatype":"FP64",'
            b'"data":[NaN,Infinity,-Infinity]}]}')
    data = parse(body).inputs[0].data
    assert np.isnan(data[0]) and data[1] == np.inf and data[2] == -np.inf


def test_integers_accepted_for_floats() -> None:
    assert parse(_json_body({"name": "x", "shape": [2], "datatype": "FP32",
                             "data": [1, 2.5]})).inputs[0].data.tolist() == [1.0, 2.5]


def test_several_inputs_outputs_and_unknown_top_level_fields() -> None:
    body = _json_body(_input(np.arange(3.0), "a"), _input(np.array([[1], [2], [3]]), "b"),
                      model_name="iris", outputs=[{"name": "label"}, {"name": "proba"}])
    req = parse(body)
    assert [t.name for t in req.inputs] == ["a", "b"] and req.rows == 3
    assert req.outputs == ["label", "proba"] and req.binary_outputs is False


@pytest.mark.parametrize(
    ("top", "outputs", "binary"),
    [
        ({}, None, False),
        ({"parameters": {"binary_data_output": True}}, None, True),
        ({}, [{"name": "y", "parameters": {"binary_data": True}}], True),
        ({"parameters": {"binary_data_output": True}},
         [{"name": "y", "parameters": {"binary_data": False}}], False),
        ({"parameters": {"binary_data_output": True}}, [{"name": "y"}], True),
        ({}, [], False),
    ],
)
def test_binary_output_flags(top: dict[str, Any], outputs: list[Any] | None,
                             binary: bool) -> None:
    extra = {**top, **({"outputs": outputs} if outputs is not None else {})}
    req = parse(_json_body(_input(np.ones(2)), **extra))
    assert req.binary_outputs is binary
    assert req.outputs == ([o["name"] for o in outputs] if outputs else None)


# --------------------------------------------------------------------------- binary


def test_binary_by_hand_mixed_with_json() -> None:
    u32 = struct.pack("<4I", 1, 2, 3, 4)
    flags = bytes([1, 0, 1])
    strings = _bytes_elements([b"ab", b"", b"\xff\x00"])
    header = json.dumps({"inputs": [
        {"name": "a", "shape": [3, 1], "datatype": "BYTES",
         "parameters": {"binary_data_size": len(strings)}},
        {"name": "j", "shape": [3], "datatype": "INT64", "data": [7, 8, 9]},
        {"name": "b", "shape": [3, 1], "datatype": "BOOL",
         "parameters": {"binary_data_size": 3}},
        {"name": "u", "shape": [3, 1], "datatype": "UINT32", "data": [[1], [2], [3]]},
    ], "outputs": [{"name": "o", "parameters": {"binary_data": True}}]}).encode()
    # "j" and "u" are JSON, so only "a" then "b" carry bytes, in input order.
    req = parse(header + strings + flags, len(header))
    a, j, b, u = req.inputs
    assert a.data.reshape(-1).tolist() == [b"ab", b"", b"\xff\x00"]
    assert j.data.tolist() == [7, 8, 9]
    assert b.data.dtype == np.bool_ and b.data.reshape(-1).tolist() == [True, False, True]
    assert u.data.reshape(-1).tolist() == [1, 2, 3]
    assert req.binary_outputs and req.outputs == ["o"]
    header2 = json.dumps({"inputs": [{"name": "u", "shape": [2, 2], "datatype": "UINT32",
                                      "parameters": {"binary_data_size": 16}}]}).encode()
    got = parse(header2 + u32, len(header2)).inputs[0].data
    assert got.dtype == np.uint32 and got.tolist() == [[1, 2], [3, 4]] and got.flags.writeable


@pytest.mark.parametrize("datatype", NUMERIC)
def test_binary_by_hand_each_datatype(datatype: str) -> None:
    arr = np.array(SAMPLES[datatype], dtype=OIP_TO_NUMPY[datatype]).reshape(4, 1)
    body, n = _binary_body({"x": arr})
    got = parse(body, n).inputs[0].data
    assert got.dtype == arr.dtype
    np.testing.assert_array_equal(got, arr)


def _triton_array(datatype: str) -> np.ndarray:
    if datatype == "BYTES":
        return np.array([b"a", b"", "héllo".encode(), b"\x00\xff"], dtype=object).reshape(2, 2)
    return np.array(SAMPLES[datatype], dtype=OIP_TO_NUMPY[datatype]).reshape(2, 2)


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("datatype", list(SAMPLES))
def test_tritonclient_request_body(datatype: str, binary: bool) -> None:
    arr = _triton_array(datatype)
    if datatype == "BYTES" and not binary:
        arr = np.array(["a", "", "héllo", "☃"], dtype=object).reshape(2, 2)
    inp = tc.InferInput("x", list(arr.shape), datatype)
    inp.set_data_from_numpy(arr, binary_data=binary)
    other = tc.InferInput("n", [2], "INT64")
    other.set_data_from_numpy(np.array([5, 6], dtype=np.int64), binary_data=binary)
    outputs = [tc.InferRequestedOutput("y", binary_data=True)]
    body, json_size = tc.InferenceServerClient.generate_request_body(
        [inp, other], outputs=outputs, request_id="abc")
    assert (json_size is None) is (not binary)
    req = parse(body, json_size)
    x, n = req.inputs
    assert x.datatype == datatype and x.data.shape == arr.shape
    if datatype == "BYTES":
        assert x.data.tolist() == arr.tolist()
    else:
        assert x.data.dtype == arr.dtype
        np.testing.assert_array_equal(x.data, arr)
    assert n.data.tolist() == [5, 6]
    assert req.id == "abc" and req.outputs == ["y"] and req.binary_outputs


def test_tritonclient_without_outputs_asks_for_binary() -> None:
    inp = tc.InferInput("x", [1, 3], "FP32")
    inp.set_data_from_numpy(np.ones((1, 3), np.float32))
    body, json_size = tc.InferenceServerClient.generate_request_body([inp])
    req = parse(body, json_size)
    assert req.outputs is None and req.binary_outputs


# --------------------------------------------------------------------------- rendering


def _response(**arrays: Any) -> InferenceResponse:
    return InferenceResponse(model="iris", version=3, id="r1",
                             outputs=[Tensor(k, np.asarray(v)) for k, v in arrays.items()])


def _request(outputs: list[str] | None = None, binary: bool = False) -> InferenceRequest:
    return InferenceRequest(model="iris", inputs=[], outputs=outputs, binary_outputs=binary)


OUTPUTS: dict[str, Any] = {
    "label": np.array([0, 2, 1], dtype=np.int64),
    "proba": np.array([[0.1, 0.9], [0.5, 0.5], [1e-9, 1.0]], dtype=np.float32),
    "flag": np.array([True, False, True]),
    "half": np.array([1.5, -2.0, 0.0], dtype=np.float16),
    "name": np.array(["setosa", "virginica", "versicolor"], dtype=object),
    "ustr": np.array(["a", "bb", "ccc"]),
    "raw": np.array([b"\x00", b"", "é".encode()], dtype=object),
    "big": np.array([1.0, 2.0, 3.0], dtype=">f8"),
    "u64": np.array([0, 2**64 - 1, 5], dtype=np.uint64),
}


def test_render_json() -> None:
    body, headers = oip.render_infer(_response(**OUTPUTS), _request())
    assert headers == {"Content-Type": "application/json"}
    doc = json.loads(body)
    assert (doc["model_name"], doc["model_version"], doc["id"]) == ("iris", "3", "r1")
    by = {o["name"]: o for o in doc["outputs"]}
    assert by["label"] == {"name": "label", "datatype": "INT64", "shape": [3], "data": [0, 2, 1]}
    assert by["proba"]["datatype"] == "FP32" and by["proba"]["shape"] == [3, 2]
    assert by["flag"]["data"] == [True, False, True] and by["flag"]["datatype"] == "BOOL"
    assert by["half"]["datatype"] == "FP16" and by["half"]["data"] == [1.5, -2.0, 0.0]
    assert by["name"]["datatype"] == "BYTES" and by["name"]["data"][0] == "setosa"
    assert by["ustr"]["data"] == ["a", "bb", "ccc"]
    assert by["raw"]["data"] == ["\x00", "", "é"]
    assert by["big"]["datatype"] == "FP64" and by["big"]["data"] == [1.0, 2.0, 3.0]
    assert by["u64"]["data"] == [0, 2**64 - 1, 5]
    result = tc.InferenceServerClient.parse_response_body(body)
    np.testing.assert_allclose(result.as_numpy("proba"), OUTPUTS["proba"])


def test_render_binary_decoded_by_tritonclient() -> None:
    body, headers = oip.render_infer(_response(**OUTPUTS), _request(binary=True))
    assert headers["Content-Type"] == "application/octet-stream"
    n = int(headers[oip.HEADER_LENGTH])
    header = json.loads(body[:n])
    assert all("data" not in o and o["parameters"]["binary_data_size"] >= 0
               for o in header["outputs"])
    result = tc.InferenceServerClient.parse_response_body(body, header_length=n)
    for name, arr in OUTPUTS.items():
        got = result.as_numpy(name)
        if arr.dtype.kind in "OU":
            want = [v if isinstance(v, bytes) else v.encode() for v in arr.tolist()]
            assert got.tolist() == want, name
        else:
            assert got.dtype == arr.dtype.newbyteorder("="), name
            np.testing.assert_array_equal(got, arr)


def test_render_selected_outputs_and_errors() -> None:
    body, _ = oip.render_infer(_response(**OUTPUTS), _request(["proba", "label"]))
    assert [o["name"] for o in json.loads(body)["outputs"]] == ["proba", "label"]
    with pytest.raises(InvalidInputError, match="unknown output 'nope'"):
        oip.render_infer(_response(**OUTPUTS), _request(["nope"]))


def test_render_nan_is_null_in_json_and_exact_in_binary() -> None:
    resp = _response(y=np.array([np.nan, np.inf, 1.0]))
    assert json.loads(oip.render_infer(resp, _request())[0])["outputs"][0]["data"] == [
        None, None, 1.0]
    body, headers = oip.render_infer(resp, _request(binary=True))
    got = tc.InferenceServerClient.parse_response_body(
        body, header_length=int(headers[oip.HEADER_LENGTH])).as_numpy("y")
    assert np.isnan(got[0]) and got[1] == np.inf


def test_render_error_and_metadata() -> None:
    assert orjson.loads(oip.render_error('bad "x"')) == {"error": 'bad "x"'}
    assert json.loads(oip.render_error("lone \ud800")) == {"error": "lone ?"}
    assert oip.server_metadata("1.2") == {
        "name": "modelport", "version": "1.2",
        "extensions": ["binary_tensor_data", "model_repository"]}
    ins = oip.tensor_metadata_from_schema(
        {"type": "dataframe", "columns": [{"name": "a", "dtype": "float64"},
                                          {"name": "s", "dtype": "string"},
                                          {"name": "o", "dtype": "object"},
                                          {"name": "b", "dtype": "bool"}]}, "input")
    assert ins == [{"name": "a", "datatype": "FP64", "shape": [-1, 1]},
                   {"name": "s", "datatype": "BYTES", "shape": [-1, 1]},
                   {"name": "o", "datatype": "BYTES", "shape": [-1, 1]},
                   {"name": "b", "datatype": "BOOL", "shape": [-1, 1]}]
    outs = oip.tensor_metadata_from_schema(
        {"type": "tensor", "dtype": "float32", "shape": [-1, 4]}, "output")
    assert outs == [{"name": "output", "datatype": "FP32", "shape": [-1, 4]}]
    named = oip.tensor_metadata_from_schema(
        {"label": {"type": "tensor", "dtype": "int64", "shape": [-1]},
         "proba": {"type": "tensor", "dtype": "float64", "shape": [-1, 3]}}, "output")
    assert [m["name"] for m in named] == ["label", "proba"]
    assert oip.tensor_metadata_from_schema(None, "x") == []
    meta = oip.model_metadata("iris", ["1", "3"], "sklearn", ins, outs)
    assert meta == {"name": "iris", "versions": ["1", "3"], "platform": "sklearn",
                    "inputs": ins, "outputs": outs}


# --------------------------------------------------------------------------- errors

X = {"name": "x", "shape": [2], "datatype": "FP32", "data": [1, 2]}


def _with(**fields: Any) -> bytes:
    return _json_body({**X, **fields})


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "the request body is empty"),
        (b'{"inputs": [', "invalid JSON"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b"[1, 2]", "must be a JSON object, got list"),
        (b'"x"', "must be a JSON object, got str"),
        (b"[" * 100_000, "nested too deeply"),
        (b'{"inputs": [], "inputs": []}', "duplicate key 'inputs'"),
        (b'{"inputs": [{"name": "x", "name": "y"}]}', "duplicate key 'name'"),
        (b"{}", "missing required field 'inputs'"),
        (b'{"inputs": {}}', "'inputs' must be an array"),
        (b'{"inputs": []}', "at least one input"),
        (b'{"inputs": [3]}', "inputs[0] must be an object"),
        (b'{"id": 3, "inputs": []}', "'id' must be a string"),
        (b'{"id": "\\ud800", "inputs": []}', "not valid Unicode"),
        (b'{"parameters": [], "inputs": []}', "'parameters' must be an object"),
        (_json_body({"shape": [1], "datatype": "FP32", "data": [1]}),
         "missing required field 'name'"),
        (_with(name=""), "'name' is empty"),
        (_with(name=5), "'name' must be a string"),
        (_with(datatype="FP8"), "input 'x': unknown datatype 'FP8'"),
        (_with(datatype=None), "'datatype' must be a string"),
        (_with(shape=None), "'shape' must be an array"),
        (_with(shape=[-1]), "must hold non-negative integers"),
        (_with(shape=[2.0]), "must hold non-negative integers"),
        (_with(shape=[True, 2]), "must hold non-negative integers"),
        (_with(shape=["2"]), "must hold non-negative integers"),
        (_with(shape=[2**64]), "must hold non-negative integers"),
        (_with(shape=[1] * 33), "at most 32"),
        (_with(data=[1, 2, 3]), "needs 2 elements, 'data' has 3"),
        (_with(shape=[2, 2], data=[[1, 2], [3]]), "data[1] has 1 elements"),
        (_with(shape=[2, 2], data=[[1, 2, 3, 4]]), "has 1 elements but shape [2, 2] says 2"),
        (_with(shape=[2], data=[[1], [2]]), "nested deeper than shape"),
        (_with(shape=[2, 1], data=[[1], 2]), "data[1] has a scalar"),
        (_with(data=5), "'data' must be an array"),
        (_with(data=[1, [2]]), "FP32 data must be numbers, got list"),
        (_with(data=[1, "2"]), "FP32 data must be numbers, got str"),
        (_with(data=[1, None]), "got NoneType"),
        (_with(data=[True, 1.0]), "FP32 data must be numbers, got bool"),
        (_with(datatype="INT32", data=[1, True]), "INT32 data must be integers, got bool"),
        (_with(datatype="INT32", data=[1, 2.5]), "must be integers, got float"),
        (_with(datatype="BOOL", data=[1, 0]), "BOOL data must be booleans, got int"),
        (_with(datatype="BYTES", data=["a", 1]), "BYTES data must be strings, got int"),
        (_with(datatype="UINT8", data=[1, 300]), "value 300 is out of range for UINT8"),
        (_with(datatype="UINT8", data=[-1, 3]), "value -1 is out of range for UINT8"),
        (_with(datatype="INT8", data=[1, 128]), "out of range for INT8"),
        (_with(datatype="INT64", data=[1, 2**63]), "out of range for INT64"),
        (_with(datatype="UINT64", data=[1, 2**64]), "out of range for UINT64"),
        (_with(datatype="FP16", data=[1, 70000]), "value 70000 is out of range for FP16"),
        (_with(datatype="FP32", data=[1, 1e39]), "out of range for FP32"),
        (_with(datatype="FP64", data=[1, 10**400]), "out of range for FP64"),
        (_with(data=None), "'data' must be an array"),
        (_json_body({k: v for k, v in X.items() if k != "data"}), "missing 'data'"),
        (_json_body(X, X), "duplicate input name 'x'"),
        (_json_body(X, {**X, "name": "y", "shape": [3], "data": [1, 2, 3]}),
         "different first (batch) dimensions"),
        (_with(parameters=[]), "'parameters' must be an object"),
        (_with(parameters={"binary_data_size": 8}), "has both 'data' and binary_data_size"),
        (_json_body({**{k: v for k, v in X.items() if k != "data"},
                     "parameters": {"binary_data_size": 8}}), "no Inference-Header-Content-Length"),
        (_with(parameters={"shared_memory_region": "r"}), "shared-memory extension"),
        (_json_body(X, outputs=[{"name": "y", "parameters": {"classification": 3}}]),
         "classification extension"),
        (_json_body(X, outputs=[{"name": "y"}, {"name": "y"}]), "duplicate output name 'y'"),
        (_json_body(X, outputs=[{"name": "y", "parameters": {"binary_data": 1}}]),
         "'binary_data' must be a boolean"),
        (_json_body(X, outputs="y"), "'outputs' must be an array"),
        (_json_body(X, outputs=["y"]), "outputs[0] must be an object"),
        (_json_body(X, parameters={"binary_data_output": "yes"}),
         "'binary_data_output' must be a boolean"),
        (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "INT64", "data": [1'
         + b"1" * 5000 + b"]}]}", "invalid JSON"),
    ],
)
def test_malformed_json_requests(body: bytes, fragment: str) -> None:
    _bad(body, fragment)


def test_huge_shape_with_tiny_data_fails_fast_with_413() -> None:
    body = _with(shape=[10**6, 10**6, 10**6], data=[1])
    _bad(body, "the request limit is 50000000", error=PayloadTooLargeError)
    _bad(_with(shape=[11], data=[1] * 11), "limit is 10", error=PayloadTooLargeError,
         max_elements=10)
    # the limit is on the whole request, not each input
    two = _json_body(_input(np.ones(6), "a"), _input(np.ones(6), "b"))
    _bad(two, "limit is 10", error=PayloadTooLargeError, max_elements=10)
    assert issubclass(PayloadTooLargeError, InvalidInputError)


def test_zero_sized_shape_with_gigantic_dims() -> None:
    _bad(_with(shape=[0, 2**62, 2**62], data=[]), "not allocatable")


def test_bad_model_name_version_and_body_type() -> None:
    with pytest.raises(InvalidNameError):
        parse(_json_body(X), model="../etc")
    _bad(_json_body(X), "invalid model version", version=0)
    _bad(_json_body(X), "invalid model version", version=True)
    with pytest.raises(InvalidInputError, match="must be bytes"):
        oip.parse_infer("{}", model="iris", version=None, header_length=None)  # type: ignore[arg-type]


def _binary_x(size: int, datatype: str = "FP32", shape: list[int] | None = None) -> bytes:
    return json.dumps({"inputs": [{"name": "x", "shape": shape or [2], "datatype": datatype,
                                   "parameters": {"binary_data_size": size}}]}).encode()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (_binary_x(8) + b"\0" * 4, "overruns the body"),
        (_binary_x(8) + b"\0" * 12, "4 trailing bytes"),
        (_binary_x(12) + b"\0" * 12, "need 8 bytes, binary_data_size is 12"),
        (_binary_x(-1) + b"", "binary_data_size must be an integer >= 0"),
        (_binary_x(True) + b"", "binary_data_size must be an integer >= 0"),
        (_json_body(X) + b"\0" * 3, "3 trailing bytes"),
        (_binary_x(2, "BOOL") + b"\x01\x02", "BOOL bytes must be 0 or 1"),
        (_binary_x(4, "BYTES") + b"\x01\0\0\0", "need at least 8 bytes"),
        (_binary_x(9, "BYTES") + b"\x09\0\0\0abc\0\0",
         "element 0 claims 9 bytes but only 5 remain"),
        (_binary_x(10, "BYTES") + b"\0\0\0\0\x01\0\0\0ab",
         "1 bytes left over after 2 BYTES elements"),
        (_binary_x(10, "BYTES") + b"\x03\0\0\0abc\x01\0\0",
         "ends inside element 1's length"),
        (_binary_x(4, "BYTES", [10**9]) + b"\0" * 4,
         "1000000000 BYTES elements need at least"),
    ],
)
def test_malformed_binary_requests(body: bytes, fragment: str) -> None:
    header_len = body.index(b"}]}") + 3
    _bad(body, fragment, header_len, max_elements=2 * 10**9)


@pytest.mark.parametrize("header_length", [-1, 0, 10**6, True, "12", 2.0])
def test_bad_header_length(header_length: Any) -> None:
    _bad(_json_body(X), "invalid Inference-Header-Content-Length", header_length)


def test_header_length_splits_inside_json() -> None:
    body = _json_body(X)
    _bad(body, "invalid JSON", len(body) - 2)


# --------------------------------------------------------------------------- properties

_DTYPES = st.sampled_from(list(OIP_TO_NUMPY))
_SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4)


@st.composite
def _arrays(draw: st.DrawFn, binary: bool) -> np.ndarray:
    datatype = draw(_DTYPES)
    shape = draw(_SHAPES)
    if datatype == "BYTES":
        elems = st.binary(max_size=8) if binary else st.text(max_size=8)
        return draw(hnp.arrays(object, shape, elements=elems))
    return draw(hnp.arrays(OIP_TO_NUMPY[datatype], shape))


def _assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    if want.dtype == object:
        assert got.tolist() == want.tolist()
    else:
        np.testing.assert_array_equal(got, want)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays=st.lists(_arrays(binary=False), min_size=1, max_size=3), nested=st.booleans())
def test_property_json_round_trip(arrays: list[np.ndarray], nested: bool) -> None:
    rows = arrays[0].shape[0]
    arrays = [a for a in arrays if a.shape[0] == rows]
    inputs = []
    for i, arr in enumerate(arrays):
        entry = _input(arr, f"in{i}")
        if nested and arr.size:
            entry["data"] = arr.tolist()
        inputs.append(entry)
    req = parse(json.dumps({"inputs": inputs}).encode())
    for t, arr in zip(req.inputs, arrays, strict=True):
        _assert_same(t.data, arr)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays=st.lists(_arrays(binary=True), min_size=1, max_size=3))
def test_property_binary_round_trip(arrays: list[np.ndarray]) -> None:
    rows = arrays[0].shape[0]
    arrays = [a for a in arrays if a.shape[0] == rows]
    body, n = _binary_body({f"in{i}": a for i, a in enumerate(arrays)})
    req = parse(body, n)
    for t, arr in zip(req.inputs, arrays, strict=True):
        _assert_same(t.data, arr)


@settings(max_examples=100, deadline=None)
@given(arr=_arrays(binary=True), binary=st.booleans())
def test_property_render_then_tritonclient(arr: np.ndarray, binary: bool) -> None:
    body, headers = oip.render_infer(_response(y=arr), _request(binary=binary))
    n = headers.get(oip.HEADER_LENGTH)
    got = tc.InferenceServerClient.parse_response_body(
        body, header_length=int(n) if n else None).as_numpy("y")
    if arr.dtype == object:
        if binary:
            assert got.reshape(-1).tolist() == arr.reshape(-1).tolist()
        return  # JSON cannot carry arbitrary bytes; covered by test_render_json
    assert got.shape == arr.shape
    if binary or arr.dtype.kind != "f":
        np.testing.assert_array_equal(got.astype(arr.dtype), arr)
    else:  # orjson writes NaN and infinities as null
        finite = np.isfinite(arr)
        np.testing.assert_array_equal(got[finite], arr[finite])


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids,
                                                             max_size=4),
    max_leaves=12,
)
_FIELD_VALUES = st.one_of(
    _JSON, st.sampled_from(list(OIP_TO_NUMPY)),
    st.lists(st.integers(-2, 2**65), max_size=4),
    st.fixed_dictionaries({}, optional={"binary_data_size": st.integers(-2, 40),
                                        "binary_data": st.booleans()}),
)


@st.composite
def _mutated_requests(draw: st.DrawFn) -> tuple[bytes, int | None]:
    inputs = []
    for i in range(draw(st.integers(0, 3))):
        item: dict[str, Any] = {"name": f"in{i}", "shape": [2], "datatype": "FP32",
                                "data": [1.0, 2.0]}
        for key in draw(st.lists(st.sampled_from(
                ["name", "shape", "datatype", "data", "parameters"]), max_size=3)):
            if draw(st.booleans()):
                item.pop(key, None)
            else:
                item[key] = draw(_FIELD_VALUES)
        inputs.append(item)
    doc: dict[str, Any] = {"inputs": inputs}
    if draw(st.booleans()):
        doc["outputs"] = draw(_FIELD_VALUES)
    if draw(st.booleans()):
        doc["parameters"] = draw(_FIELD_VALUES)
    header = json.dumps(doc).encode()
    tail = draw(st.binary(max_size=40))
    return header + tail, (len(header) if tail or draw(st.booleans()) else None)


def _only_modelport_errors(body: bytes, header_length: int | None) -> None:
    try:
        req = parse(body, header_length, max_elements=10_000)
    except (InvalidInputError, PayloadTooLargeError) as exc:
        assert isinstance(exc, ModelportError) and exc.http_status in (400, 413)
        assert str(exc)
    else:
        assert isinstance(req, InferenceRequest) and req.inputs


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200), header_length=st.none() | st.integers(-5, 250))
def test_property_arbitrary_bytes_only_raise_modelport_errors(
        body: bytes, header_length: int | None) -> None:
    _only_modelport_errors(body, header_length)


@settings(max_examples=300, deadline=None)
@given(case=_mutated_requests())
def test_property_mutated_requests_only_raise_modelport_errors(
        case: tuple[bytes, int | None]) -> None:
    _only_modelport_errors(*case)
