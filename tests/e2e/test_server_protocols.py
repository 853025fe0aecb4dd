"""End to end: every wire protocol of a real ``modelport serve`` process, with real clients.

One server per module serves ``iris@champion`` (a table signature, alias on version 1
while version 2 also exists) and ``arr`` (a tensor signature). Tests talk to it with
httpx, ``tritonclient.http`` and, where a client would refuse to misbehave, a raw
socket; every answer is compared with what the in-memory model predicts. Each bad
request is followed by a good one, so a request that wedges or kills the server
fails the test that sent it rather than a later, unrelated one.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import modelport
from modelport.client import Registry
from modelport.config import Settings
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
MIB = 1 << 20
# Three iris rows, one per species, written out as MLflow's docs write payloads.
ROWS = [[5.1, 3.5, 1.4, 0.2], [7.0, 3.2, 4.7, 1.4], [6.3, 3.3, 6.0, 2.5]]
HEX_ID = re.compile(r"[0-9a-f]{32}")


# -- the served models and the server ------------------------------------------------------


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """Register iris (v1 champion, v2) and arr, then serve both from one process."""
    home = tmp_path_factory.mktemp("protocols") / "home"
    settings = Settings.load(home, database_url=f"sqlite:///{home / 'registry.db'}",
                             artifacts=str(home / "artifacts"))
    home.mkdir(parents=True)

    iris = load_iris(as_frame=True)
    X = iris.data.set_axis(COLUMNS, axis=1).astype(np.float64)
    y = iris.target
    v1 = LogisticRegression(max_iter=1000).fit(X, y)
    v2 = DecisionTreeClassifier(max_depth=1, random_state=0).fit(X, y)
    assert (v1.predict(X) != v2.predict(X)).any()

    rng = np.random.default_rng(7)
    A = rng.normal(size=(40, 3))
    lin = LinearRegression().fit(A, A @ np.array([1.5, -2.0, 0.25]) + 3.0)

    reg = Registry(settings=settings)
    try:
        assert reg.log_model(v1, "iris", input_example=X.head(5)).version == 1
        assert reg.log_model(v2, "iris", input_example=X.head(5)).version == 2
        reg.set_alias("iris", "champion", 1, reason="e2e protocols")
        reg.log_model(lin, "arr", input_example=A[:5])
    finally:
        reg.close()

    with ServerProcess(home, ["iris@champion", "arr"]) as server, \
            httpx.Client(base_url=server.url, timeout=20) as client:
        yield SimpleNamespace(server=server, client=client, url=server.url,
                              port=server.port, X=X, v1=v1, v2=v2, A=A, lin=lin)


@pytest.fixture
def client(srv: SimpleNamespace) -> httpx.Client:
    return srv.client


# -- helpers ---------------------------------------------------------------------------------


def oip_tensor(x: pd.DataFrame | np.ndarray[Any, Any], name: str = "input-0",
               **extra: Any) -> dict[str, Any]:
    """An OIP JSON body with one 2-D FP64 input holding ``x``."""
    arr = np.asarray(x, dtype=np.float64)
    return {**extra, "inputs": [{"name": name, "shape": list(arr.shape), "datatype": "FP64",
                                 "data": arr.reshape(-1).tolist()}]}


def rows_frame(rows: list[list[float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


def expect_json(resp: httpx.Response, status: int = 200) -> Any:
    assert resp.status_code == status, f"{resp.status_code} {resp.text[:500]}"
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    return resp.json()


def expect_error(resp: httpx.Response, statuses: tuple[int, ...], needle: str = "") -> str:
    """A 4xx answered with ``{"error": "..."}``: one message, no traceback."""
    assert resp.status_code in statuses, f"{resp.status_code} {resp.text[:500]}"
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    body = resp.json()
    assert isinstance(body, dict), body
    assert set(body) == {"error"}, body
    message = body["error"]
    assert isinstance(message, str), body
    assert message
    assert "Traceback" not in resp.text
    assert needle.lower() in message.lower(), message
    return message


def assert_still_serving(srv: SimpleNamespace) -> None:
    """A good OIP request and a good /invocations request still answer 200, correctly."""
    x = srv.X.iloc[::15]
    body = expect_json(srv.client.post("/v2/models/iris/infer", json=oip_tensor(x)))
    assert body["model_version"] == "1"
    assert body["outputs"][0]["data"] == srv.v1.predict(x).tolist()
    resp = srv.client.post("/invocations", json={"instances": ROWS})
    assert expect_json(resp) == {"predictions": srv.v1.predict(rows_frame(ROWS)).tolist()}


# -- 1. Open Inference Protocol (KServe V2) ------------------------------------------------------


def test_oip_health_and_server_metadata(client: httpx.Client) -> None:
    assert expect_json(client.get("/v2/health/live")) == {"live": True}
    assert expect_json(client.get("/v2/health/ready")) == {"ready": True}
    meta = expect_json(client.get("/v2"))
    assert meta["name"] == "modelport"
    assert meta["version"] == modelport.__version__
    assert "binary_tensor_data" in meta["extensions"]


def test_oip_model_metadata_and_ready(client: httpx.Client) -> None:
    meta = expect_json(client.get("/v2/models/iris"))
    assert meta["name"] == "iris"
    assert meta["versions"][0] == "1"  # the champion first; explicitly used versions after
    assert meta["platform"] == "sklearn"
    assert [i["name"] for i in meta["inputs"]] == COLUMNS
    assert {i["datatype"] for i in meta["inputs"]} == {"FP64"}
    assert all(i["shape"] == [-1, 1] for i in meta["inputs"])
    assert len(meta["outputs"]) == 1

    assert expect_json(client.get("/v2/models/iris/ready")) == {"name": "iris", "ready": True}
    arr = expect_json(client.get("/v2/models/arr"))
    assert arr["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 3]}]
    assert arr["outputs"][0]["name"] == "output-0"
    assert arr["outputs"][0]["datatype"] == "FP64"


def test_oip_infer_one_2d_tensor(srv: SimpleNamespace) -> None:
    x = srv.X.sample(17, random_state=1)
    resp = srv.client.post("/v2/models/iris/infer", json=oip_tensor(x, id="req-42"))
    body = expect_json(resp)
    assert body["model_name"] == "iris"
    assert body["model_version"] == "1"
    assert body["id"] == "req-42"
    assert resp.headers["x-model-version"] == "1"
    [out] = body["outputs"]
    assert out["shape"] == [17]
    assert out["datatype"] == "INT64"
    assert out["data"] == srv.v1.predict(x).tolist()


@pytest.mark.parametrize("shape", ["[n]", "[n,1]"])
def test_oip_infer_one_input_per_column(srv: SimpleNamespace, shape: str) -> None:
    x = srv.X.iloc[::7]
    n = len(x)
    inputs = [{"name": c, "datatype": "FP64", "shape": [n] if shape == "[n]" else [n, 1],
               "data": x[c].tolist()} for c in reversed(COLUMNS)]  # order must not matter
    body = expect_json(srv.client.post("/v2/models/iris/infer", json={"inputs": inputs}))
    assert body["outputs"][0]["data"] == srv.v1.predict(x).tolist()


def test_oip_version_in_url_answers_with_that_version(srv: SimpleNamespace) -> None:
    x = srv.X
    v1, v2 = srv.v1.predict(x).tolist(), srv.v2.predict(x).tolist()
    assert v1 != v2

    resp = srv.client.post("/v2/models/iris/versions/2/infer", json=oip_tensor(x, id="v2"))
    body = expect_json(resp)
    assert body["model_version"] == "2"
    assert body["id"] == "v2"
    assert resp.headers["x-model-version"] == "2"
    assert body["outputs"][0]["data"] == v2

    resp = srv.client.post("/v2/models/iris/infer", json=oip_tensor(x))
    body = expect_json(resp)
    assert body["model_version"] == "1"
    assert resp.headers["x-model-version"] == "1"
    assert body["outputs"][0]["data"] == v1

    resp = srv.client.post("/v2/models/iris/versions/1/infer", json=oip_tensor(x))
    assert expect_json(resp)["outputs"][0]["data"] == v1
    assert expect_json(srv.client.get("/v2/models/iris/versions/2/ready"))["ready"] is True
    assert expect_json(srv.client.get("/v2/models/iris/versions/2"))["versions"][:2] == ["1", "2"]


# -- 2. tritonclient.http ----------------------------------------------------------------------


@pytest.fixture
def triton(srv: SimpleNamespace) -> Iterator[Any]:
    httpclient = pytest.importorskip("tritonclient.http")
    c = httpclient.InferenceServerClient(url=f"127.0.0.1:{srv.port}", network_timeout=20)
    try:
        yield c
    finally:
        c.close()


def test_tritonclient_health_and_metadata(triton: Any) -> None:
    assert triton.is_server_live()
    assert triton.is_server_ready()
    assert triton.is_model_ready("iris")
    meta = triton.get_model_metadata("iris")
    assert meta["name"] == "iris"
    assert [i["name"] for i in meta["inputs"]] == COLUMNS
    assert "binary_tensor_data" in triton.get_server_metadata()["extensions"]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_infer_tensor_model(srv: SimpleNamespace, triton: Any, binary: bool) -> None:
    import tritonclient.http as httpclient

    x = np.random.default_rng(3).normal(size=(9, 3))
    inp = httpclient.InferInput("input-0", list(x.shape), "FP64")
    inp.set_data_from_numpy(x, binary_data=binary)
    out = httpclient.InferRequestedOutput("output-0", binary_data=binary)
    result = triton.infer("arr", [inp], outputs=[out], request_id="triton-1")
    got = result.as_numpy("output-0")
    assert got is not None
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, srv.lin.predict(x), rtol=1e-12)
    response = result.get_response()
    assert response["model_name"] == "arr"
    assert response["id"] == "triton-1"


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_infer_all_outputs_by_default(srv: SimpleNamespace, triton: Any,
                                                   binary: bool) -> None:
    import tritonclient.http as httpclient

    x = srv.A[5:12]
    inp = httpclient.InferInput("input-0", list(x.shape), "FP64")
    inp.set_data_from_numpy(x, binary_data=binary)
    result = triton.infer("arr", [inp])  # no outputs named: every output comes back
    np.testing.assert_allclose(result.as_numpy("output-0"), srv.lin.predict(x), rtol=1e-12)


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_tritonclient_compressed_requests(srv: SimpleNamespace, triton: Any,
                                          algorithm: str) -> None:
    import tritonclient.http as httpclient

    x = srv.A[:4]
    inp = httpclient.InferInput("input-0", list(x.shape), "FP64")
    inp.set_data_from_numpy(x, binary_data=True)
    result = triton.infer("arr", [inp], request_compression_algorithm=algorithm)
    np.testing.assert_allclose(result.as_numpy("output-0"), srv.lin.predict(x), rtol=1e-12)


def test_unsupported_content_encoding_is_415(srv: SimpleNamespace) -> None:
    body = {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP64",
                        "data": [1.0, 2.0, 3.0]}]}
    r = httpx.post(f"{srv.url}/v2/models/arr/infer", content=json.dumps(body),
                   headers={"content-encoding": "br"}, timeout=10)
    assert r.status_code == 415
    assert "Content-Encoding" in r.json()["error"]


def test_tritonclient_sees_errors(triton: Any) -> None:
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    inp = httpclient.InferInput("input-0", [1, 3], "FP64")
    inp.set_data_from_numpy(np.array([[1.0, 2.0, 3.0]]), binary_data=True)
    with pytest.raises(InferenceServerException) as info:
        triton.infer("nope", [inp])
    assert info.value.status() == "404"
    assert "nope" in info.value.message()

    wide = httpclient.InferInput("input-0", [1, 4], "FP64")
    wide.set_data_from_numpy(np.array([[1.0, 2.0, 3.0, 4.0]]), binary_data=True)
    with pytest.raises(InferenceServerException) as info:
        triton.infer("arr", [wide])
    assert info.value.status() == "400"
    assert "shape" in info.value.message()

    with pytest.raises(InferenceServerException) as info:
        triton.get_model_metadata("arr", model_version="9")
    assert info.value.status() == "404"
    assert not triton.is_model_ready("nope")


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_infer_per_column(srv: SimpleNamespace, triton: Any, binary: bool) -> None:
    import tritonclient.http as httpclient

    x = srv.X.iloc[::11]
    inputs = []
    for c in COLUMNS:
        inp = httpclient.InferInput(c, [len(x), 1], "FP64")
        inp.set_data_from_numpy(x[[c]].to_numpy(), binary_data=binary)
        inputs.append(inp)
    result = triton.infer("iris", inputs, model_version="2",
                          outputs=[httpclient.InferRequestedOutput("output-0",
                                                                    binary_data=binary)])
    np.testing.assert_array_equal(result.as_numpy("output-0"), srv.v2.predict(x))
    assert result.get_response()["model_version"] == "2"


# -- 3. MLflow scoring protocol ---------------------------------------------------------------


def test_mlflow_ping_health_version(client: httpx.Client) -> None:
    for path in ("/ping", "/health"):
        resp = client.get(path)
        assert resp.status_code == 200, resp.text
        assert resp.text == "\n"
    resp = client.get("/version")
    assert resp.status_code == 200
    assert resp.text == modelport.__version__


MLFLOW_JSON = {
    "dataframe_split": """{"dataframe_split": {
        "columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
        "data": [[5.1, 3.5, 1.4, 0.2], [7.0, 3.2, 4.7, 1.4], [6.3, 3.3, 6.0, 2.5]]}}""",
    "dataframe_split_index": """{"dataframe_split": {"index": [0, 1, 2],
        "columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
        "data": [[5.1, 3.5, 1.4, 0.2], [7.0, 3.2, 4.7, 1.4], [6.3, 3.3, 6.0, 2.5]]}}""",
    "dataframe_records": """{"dataframe_records": [
        {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
        {"sepal_length": 7.0, "sepal_width": 3.2, "petal_length": 4.7, "petal_width": 1.4},
        {"sepal_length": 6.3, "sepal_width": 3.3, "petal_length": 6.0, "petal_width": 2.5}]}""",
    "instances": """{"instances": [[5.1, 3.5, 1.4, 0.2], [7.0, 3.2, 4.7, 1.4],
        [6.3, 3.3, 6.0, 2.5]]}""",
    "instances_records": """{"instances": [
        {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
        {"sepal_length": 7.0, "sepal_width": 3.2, "petal_length": 4.7, "petal_width": 1.4},
        {"sepal_length": 6.3, "sepal_width": 3.3, "petal_length": 6.0, "petal_width": 2.5}]}""",
    "inputs": """{"inputs": [[5.1, 3.5, 1.4, 0.2], [7.0, 3.2, 4.7, 1.4], [6.3, 3.3, 6.0, 2.5]]}""",
    "inputs_columns": """{"inputs": {"sepal_length": [5.1, 7.0, 6.3],
        "sepal_width": [3.5, 3.2, 3.3], "petal_length": [1.4, 4.7, 6.0],
        "petal_width": [0.2, 1.4, 2.5]}}""",
}


@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8"])
@pytest.mark.parametrize("payload", list(MLFLOW_JSON))
def test_mlflow_invocations_json(srv: SimpleNamespace, payload: str, ctype: str) -> None:
    resp = srv.client.post("/invocations", content=MLFLOW_JSON[payload],
                           headers={"Content-Type": ctype})
    expected = srv.v1.predict(rows_frame(ROWS)).tolist()
    assert len(set(expected)) == 3  # one row per species: a mixed-up row order would show
    assert expect_json(resp) == {"predictions": expected}
    assert resp.headers["x-model-version"] == "1"


def test_mlflow_invocations_csv(srv: SimpleNamespace) -> None:
    x = srv.X.iloc[::10]
    csv = x.to_csv(index=False)
    assert csv.startswith("sepal_length,sepal_width,petal_length,petal_width\n")
    resp = srv.client.post("/invocations", content=csv, headers={"Content-Type": "text/csv"})
    assert expect_json(resp) == {"predictions": srv.v1.predict(x).tolist()}


def test_mlflow_csv_row_wider_than_header_is_refused(srv: SimpleNamespace) -> None:
    csv = ",".join(COLUMNS) + "\n5.1,3.5,1.4,0.2,9\n"
    resp = srv.client.post("/invocations", content=csv, headers={"Content-Type": "text/csv"})
    expect_error(resp, (400,))


def test_mlflow_invocations_no_content_type_is_json(srv: SimpleNamespace) -> None:
    resp = srv.client.post("/invocations", content=MLFLOW_JSON["instances"].encode())
    assert expect_json(resp) == {"predictions": srv.v1.predict(rows_frame(ROWS)).tolist()}


@pytest.mark.parametrize("ctype", ["text/plain", "application/xml",
                                   "application/json; charset=latin-1"])
def test_mlflow_unsupported_content_type(srv: SimpleNamespace, ctype: str) -> None:
    resp = srv.client.post("/invocations", content=MLFLOW_JSON["instances"],
                           headers={"Content-Type": ctype})
    expect_error(resp, (415,))
    assert_still_serving(srv)


# -- 4. KServe V1 ------------------------------------------------------------------------------


def test_kserve_v1_status(client: httpx.Client) -> None:
    assert expect_json(client.get("/v1/models/iris")) == {"name": "iris", "ready": True}
    assert expect_json(client.get("/v1/models/arr")) == {"name": "arr", "ready": True}


@pytest.mark.parametrize("payload", ["instances", "instances_records", "inputs_columns"])
def test_kserve_v1_predict(srv: SimpleNamespace, payload: str) -> None:
    resp = srv.client.post("/v1/models/iris:predict", content=MLFLOW_JSON[payload],
                           headers={"Content-Type": "application/json"})
    assert expect_json(resp) == {"predictions": srv.v1.predict(rows_frame(ROWS)).tolist()}


def test_kserve_v1_predict_tensor_model(srv: SimpleNamespace) -> None:
    x = srv.A[:6]
    resp = srv.client.post("/v1/models/arr:predict", json={"instances": x.tolist()})
    got = expect_json(resp)["predictions"]
    np.testing.assert_allclose(got, srv.lin.predict(x), rtol=1e-12)


# -- 5. /predict --------------------------------------------------------------------------------


def test_simple_predict(srv: SimpleNamespace) -> None:
    x = srv.X.iloc[::9]
    resp = srv.client.post("/predict", json={"features": x.to_numpy().tolist()})
    assert expect_json(resp) == {"predictions": srv.v1.predict(x).tolist()}
    one = srv.client.post("/predict", json={"features": ROWS[2]})
    assert expect_json(one) == {"predictions": srv.v1.predict(rows_frame(ROWS[2:])).tolist()}


# -- 6. bad input: the right 4xx, a JSON error, and the server keeps serving -------------------

GOOD_ROW = '{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}'
INFER = "/v2/models/iris/infer"
JSON_CT = {"Content-Type": "application/json"}

BAD_REQUESTS: dict[str, tuple[str, str, bytes, tuple[int, ...], str]] = {
    # id: (method, path, body, accepted statuses, text the error message must contain)
    "oip-malformed-json": ("POST", INFER, b'{"inputs": [{"name": ', (400,), "invalid JSON"),
    "oip-not-an-object": ("POST", INFER, b"[1, 2, 3]", (400,), "JSON object"),
    "oip-empty-body": ("POST", INFER, b"", (400,), "JSON"),
    "oip-missing-inputs": ("POST", INFER, b'{"id": "x"}', (400,), "missing required field"),
    "oip-datatype-fp65": (
        "POST", INFER,
        b'{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP65",'
        b' "data": [1, 2, 3, 4]}]}', (400,), "FP65"),
    "oip-shape-data-mismatch": (
        "POST", INFER,
        b'{"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64",'
        b' "data": [1, 2, 3, 4, 5, 6, 7]}]}', (400,), "8 elements"),
    "oip-nested-data-mismatch": (
        "POST", INFER,
        b'{"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64",'
        b' "data": [[1, 2, 3, 4], [5, 6, 7]]}]}', (400,), "shape"),
    "oip-wrong-column-count": (
        "POST", INFER,
        b'{"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP64",'
        b' "data": [1, 2, 3]}]}', (400,), "4 columns"),
    "oip-huge-shape-claim": (
        "POST", INFER,
        b'{"inputs": [{"name": "input-0", "shape": [100000000, 4], "datatype": "FP64",'
        b' "data": [1, 2, 3, 4]}]}', (400, 413), "100000000"),
    "oip-negative-shape": (
        "POST", INFER,
        b'{"inputs": [{"name": "input-0", "shape": [-1, 4], "datatype": "FP64",'
        b' "data": [1, 2, 3, 4]}]}', (400,), "shape"),
    "oip-nan": (
        "POST", INFER,
        b'{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64",'
        b' "data": [5.1, NaN, 1.4, 0.2]}]}', (400,), "NaN"),
    "oip-infinity": (
        "POST", INFER,
        b'{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64",'
        b' "data": [5.1, Infinity, 1.4, 0.2]}]}', (400,), "infinity"),
    "oip-string-data-for-fp64": (
        "POST", INFER,
        b'{"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64",'
        b' "data": ["a", "b", "c", "d"]}]}', (400,), "numbers"),
    "oip-missing-column": (
        "POST", INFER,
        b'{"inputs": [{"name": "sepal_length", "shape": [1], "datatype": "FP64",'
        b' "data": [1.0]}, {"name": "sepal_width", "shape": [1], "datatype": "FP64",'
        b' "data": [1.0]}]}', (400,), "petal_length"),
    "oip-unknown-output": (
        "POST", INFER, b'{"inputs": [' + GOOD_ROW.encode() + b'], "outputs": [{"name": "nope"}]}',
        (400,), "nope"),
    "oip-unknown-model": ("POST", "/v2/models/nope/infer", b'{"inputs": [' + GOOD_ROW.encode()
                          + b"]}", (404,), "nope"),
    "oip-unknown-model-metadata": ("GET", "/v2/models/nope", b"", (404,), "nope"),
    "oip-unknown-model-ready": ("GET", "/v2/models/nope/ready", b"", (404,), "nope"),
    "oip-unknown-version": ("POST", "/v2/models/iris/versions/99/infer",
                            b'{"inputs": [' + GOOD_ROW.encode() + b"]}", (404,), "99"),
    "oip-unknown-version-metadata": ("GET", "/v2/models/iris/versions/99", b"", (404,), "99"),
    "oip-version-abc": ("POST", "/v2/models/iris/versions/abc/infer",
                        b'{"inputs": [' + GOOD_ROW.encode() + b"]}", (400,), "version"),
    "oip-version-0": ("POST", "/v2/models/iris/versions/0/infer",
                      b'{"inputs": [' + GOOD_ROW.encode() + b"]}", (400,), "version"),
    "oip-version-huge": ("POST", "/v2/models/iris/versions/99999999999999999999/infer",
                         b'{"inputs": [' + GOOD_ROW.encode() + b"]}", (400,), "version"),
    "path-dotdot-slashes": ("POST", "/v2/models/..%2F..%2Fetc/infer", b"{}", (400, 404), ""),
    "path-dotdot-encoded": ("POST", "/v2/models/%2e%2e/infer", b"{}", (400, 404), ""),
    "path-nul": ("POST", "/v2/models/a%00b/infer", b"{}", (400, 404), ""),
    "path-nul-metadata": ("GET", "/v2/models/a%00b", b"", (400, 404), ""),
    "path-dotdot-v1": ("GET", "/v1/models/%2e%2e", b"", (400, 404), ""),
    "oip-non-utf8": ("POST", INFER, b'\xff\xfe{"inputs": []}', (400,), "UTF-8"),
    "oip-deeply-nested": ("POST", INFER, b"[" * 100_000, (400,), "nested"),
    "oip-deeply-nested-object": ("POST", INFER, b'{"a":' * 100_000, (400,), "nested"),
    "oip-duplicate-key": (
        "POST", INFER,
        b'{"inputs": [' + GOOD_ROW.encode() + b'], "inputs": [' + GOOD_ROW.encode() + b"]}",
        (400,), "duplicate key 'inputs'"),
    "oip-duplicate-input-name": (
        "POST", INFER, b'{"inputs": [' + GOOD_ROW.encode() + b", " + GOOD_ROW.encode() + b"]}",
        (400,), "input-0"),
    "oip-get-on-infer": ("GET", INFER, b"", (405,), "method not allowed"),
    "oip-put-on-infer": ("PUT", INFER, b"{}", (405,), "method not allowed"),
    "unknown-route": ("GET", "/v3/nothing", b"", (404,), "not found"),
    "mlflow-malformed-json": ("POST", "/invocations", b'{"instances": [[1, 2', (400,),
                              "invalid JSON"),
    "mlflow-non-utf8": ("POST", "/invocations", b'{"instances": [[1, 2, 3, 4]]}\xff', (400,),
                        "UTF-8"),
    "mlflow-deeply-nested": ("POST", "/invocations", b"[" * 100_000, (400,), "nested"),
    "mlflow-duplicate-key": ("POST", "/invocations",
                             b'{"instances": [[5.1, 3.5, 1.4, 0.2]], '
                             b'"instances": [[5.1, 3.5, 1.4, 0.2]]}', (400,),
                             "duplicate key 'instances'"),
    "mlflow-nan": ("POST", "/invocations", b'{"instances": [[5.1, NaN, 1.4, 0.2]]}', (400,),
                   "NaN"),
    "mlflow-two-keys": ("POST", "/invocations",
                        b'{"instances": [[5.1, 3.5, 1.4, 0.2]], "inputs": [[1, 2, 3, 4]]}',
                        (400,), "exactly one"),
    "mlflow-ragged-rows": ("POST", "/invocations",
                           b'{"instances": [[5.1, 3.5, 1.4, 0.2], [1, 2]]}', (400,), "row 1"),
    "mlflow-wrong-column": ("POST", "/invocations",
                            b'{"dataframe_records": [{"sepal_length": 5.1, "sepal_width": 3.5,'
                            b' "petal_length": 1.4, "petal_wid": 0.2}]}', (400,), "petal_width"),
    "mlflow-string-value": ("POST", "/invocations",
                            b'{"instances": [[5.1, "x", 1.4, 0.2]]}', (400,), ""),
    "v1-malformed-json": ("POST", "/v1/models/iris:predict", b"{", (400,), "invalid JSON"),
    "v1-unknown-model": ("POST", "/v1/models/nope:predict", b'{"instances": [[1, 2, 3, 4]]}',
                         (404,), "nope"),
    "v1-unknown-model-status": ("GET", "/v1/models/nope", b"", (404,), "nope"),
    "v1-non-utf8": ("POST", "/v1/models/iris:predict", b"\x80\x81", (400,), "UTF-8"),
    "v1-deeply-nested": ("POST", "/v1/models/iris:predict", b"[" * 100_000, (400,), "nested"),
    "predict-malformed-json": ("POST", "/predict", b'{"features": [[1, 2, 3, 4]', (400,),
                               "invalid JSON"),
    "predict-no-features": ("POST", "/predict", b'{"rows": [[1, 2, 3, 4]]}', (400,),
                            "features"),
    "predict-non-utf8": ("POST", "/predict", b'{"features": [[1, 2, 3, 4]]}\xc3', (400,),
                         "UTF-8"),
    "predict-deeply-nested": ("POST", "/predict", b"[" * 100_000, (400,), "nested"),
    "predict-wrong-width": ("POST", "/predict", b'{"features": [[1, 2, 3]]}', (400,), ""),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request(srv: SimpleNamespace, case: str) -> None:
    method, path, body, statuses, needle = BAD_REQUESTS[case]
    headers = JSON_CT if body and method == "POST" else {}
    started = time.perf_counter()
    resp = srv.client.request(method, path, content=body or None, headers=headers)
    elapsed = time.perf_counter() - started
    expect_error(resp, statuses, needle)
    assert elapsed < 5, f"{case} took {elapsed:.1f}s"
    assert HEX_ID.fullmatch(resp.headers["x-request-id"])
    assert_still_serving(srv)


def test_oip_body_without_content_type_is_json(srv: SimpleNamespace) -> None:
    x = srv.X.iloc[:3]
    req = srv.client.build_request("POST", INFER, content=json.dumps(oip_tensor(x)).encode())
    assert "content-type" not in req.headers
    body = expect_json(srv.client.send(req))
    assert body["outputs"][0]["data"] == srv.v1.predict(x).tolist()


def test_body_over_the_cap_with_content_length(srv: SimpleNamespace) -> None:
    resp = srv.client.post(INFER, content=b"x" * (17 * MIB), headers=JSON_CT)
    assert int(resp.request.headers["content-length"]) == 17 * MIB
    expect_error(resp, (413,), "exceeds the limit")
    assert_still_serving(srv)


def test_chunked_body_over_the_cap(srv: SimpleNamespace) -> None:
    chunk = b"x" * MIB
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(17):
            sent += len(chunk)
            yield chunk

    started = time.perf_counter()
    resp = srv.client.post(INFER, content=body(), headers=JSON_CT)
    assert "content-length" not in resp.request.headers
    assert resp.request.headers["transfer-encoding"] == "chunked"
    expect_error(resp, (413,), "exceeds the limit")
    assert time.perf_counter() - started < 10
    assert_still_serving(srv)


def test_chunked_body_under_the_cap_is_served(srv: SimpleNamespace) -> None:
    x = srv.X.iloc[:4]
    payload = json.dumps(oip_tensor(x)).encode()

    def body() -> Iterator[bytes]:
        for i in range(0, len(payload), 16):
            yield payload[i:i + 16]

    resp = srv.client.post(INFER, content=body(), headers=JSON_CT)
    assert expect_json(resp)["outputs"][0]["data"] == srv.v1.predict(x).tolist()


def test_slow_client_does_not_block_others(srv: SimpleNamespace) -> None:
    x = srv.X.iloc[::30]
    expected = srv.v1.predict(x).tolist()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as slow:
        slow.sendall(
            b"POST /v2/models/iris/infer HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n" + b'{"inputs":'
        )

        async def many() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=srv.url, timeout=10) as ac:
                return await asyncio.gather(*(
                    ac.post(INFER, json=oip_tensor(x, id=f"c{i}")) for i in range(20)
                ))

        started = time.perf_counter()
        responses = asyncio.run(many())
        assert time.perf_counter() - started < 10
        for i, resp in enumerate(responses):
            body = expect_json(resp)
            assert body["id"] == f"c{i}"
            assert body["outputs"][0]["data"] == expected
    assert_still_serving(srv)


def test_request_id_is_echoed(srv: SimpleNamespace) -> None:
    x = srv.X.iloc[:2]
    resp = srv.client.post(INFER, json=oip_tensor(x), headers={"X-Request-ID": "abc-123"})
    assert resp.headers["x-request-id"] == "abc-123"
    assert expect_json(resp)["id"] == "abc-123"  # no id in the body: the request id is used

    resp = srv.client.post(INFER, json=oip_tensor(x, id="body-id"),
                           headers={"X-Request-ID": "abc-123"})
    assert resp.headers["x-request-id"] == "abc-123"
    assert expect_json(resp)["id"] == "body-id"

    resp = srv.client.get("/v2/health/live")
    assert HEX_ID.fullmatch(resp.headers["x-request-id"])
    assert resp.headers["x-request-id"] != srv.client.get("/v2/health/live").headers[
        "x-request-id"]


@pytest.mark.parametrize("bad_id", ['"<script>"', "abc 123", "a;b=c", "x" * 129, "é"])
def test_unsafe_request_id_is_replaced(srv: SimpleNamespace, bad_id: str) -> None:
    headers = {"X-Request-ID": bad_id.encode("utf-8")}
    resp = srv.client.post("/invocations", json={"instances": ROWS}, headers=headers)
    assert expect_json(resp) == {"predictions": srv.v1.predict(rows_frame(ROWS)).tolist()}
    rid = resp.headers["x-request-id"]
    assert HEX_ID.fullmatch(rid), rid
    assert rid != bad_id
    assert resp.headers.get_list("x-request-id") == [rid]
    # An error answer gets a fresh id too.
    resp = srv.client.post(INFER, content=b"{", headers={**headers, **JSON_CT})
    expect_error(resp, (400,))
    assert HEX_ID.fullmatch(resp.headers["x-request-id"])


def test_server_log_has_no_traceback_and_no_5xx(srv: SimpleNamespace) -> None:
    # Runs last in this module: every bad request above was a client error, handled as one.
    log = srv.server.log()
    assert "Traceback" not in log, log[-5000:]
    access = [json.loads(line) for line in log.splitlines() if line.startswith('{"ts"')]
    assert access
    server_errors = [a for a in access if a["status"] >= 500
                     and (a["path"], a["status"]) != ("/v2/health/ready", 503)]  # while loading
    assert not server_errors, server_errors
