"""Any bytes into any wire parser: a request, or a ModelportError with a 4xx status.

Never a builtin exception (which the server would turn into a 500) and never a hang:
hypothesis feeds raw bytes, arbitrary JSON documents and near-valid documents (a valid
request with one field replaced by anything) to each protocol module.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelport.errors import ModelportError
from modelport.serving.protocols import kserve_v1, mlflow, oip, simple
from modelport.serving.types import InferenceRequest

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
MAX_ROWS = 1000

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=6)
    | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=40,
)


def _dumps(value: Any) -> bytes:
    # The stdlib writes what hostile clients send and orjson refuses to write: NaN,
    # Infinity and integers beyond 64 bits.
    return json.dumps(value).encode()


def _judge(call: Any) -> None:
    try:
        out = call()
    except ModelportError as exc:
        assert 400 <= exc.http_status < 500, (exc.http_status, exc.message)
        assert exc.message
        return
    assert isinstance(out, InferenceRequest)


def _parsers(body: bytes) -> list[Any]:
    return [
        lambda: oip.parse_infer(body, model="m", version=None, header_length=None,
                                max_elements=100_000),
        lambda: mlflow.parse_invocations(body, "application/json", model="m",
                                         max_rows=MAX_ROWS),
        lambda: mlflow.parse_invocations(body, "text/csv", model="m", max_rows=MAX_ROWS),
        lambda: mlflow.parse_invocations(body, "application/x-evil", model="m"),
        lambda: kserve_v1.parse_predict(body, model="m", max_rows=MAX_ROWS),
        lambda: simple.parse_predict(body, model="m", max_rows=MAX_ROWS),
    ]


@FUZZ
@given(st.binary(max_size=2048))
def test_any_bytes(body: bytes) -> None:
    for call in _parsers(body):
        _judge(call)


@FUZZ
@given(json_values)
def test_any_json_document(doc: Any) -> None:
    for call in _parsers(_dumps(doc)):
        _judge(call)


VALID = {
    "oip": {"inputs": [{"name": "input-0", "shape": [2, 2], "datatype": "FP32",
                        "data": [1, 2, 3, 4]}], "outputs": [{"name": "output-0"}]},
    "mlflow": {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}},
    "v1": {"instances": [[1, 2], [3, 4]]},
    "simple": {"features": [[1, 2], [3, 4]]},
}


def _replace(doc: Any, path: list[int], value: Any) -> Any:
    """``doc`` with the node reached by ``path`` (indices into its children) replaced."""
    if not path or not isinstance(doc, dict | list) or not doc:
        return value
    keys = list(doc) if isinstance(doc, dict) else list(range(len(doc)))
    key = keys[path[0] % len(keys)]
    copy = dict(doc) if isinstance(doc, dict) else list(doc)
    copy[key] = _replace(doc[key], path[1:], value)  # type: ignore[index]
    return copy


@FUZZ
@given(st.sampled_from(sorted(VALID)), st.lists(st.integers(0, 5), max_size=5), json_values)
def test_near_valid_documents(kind: str, path: list[int], value: Any) -> None:
    body = _dumps(_replace(VALID[kind], path, value))
    for call in _parsers(body):
        _judge(call)


@FUZZ
@given(st.binary(max_size=512), st.integers(min_value=-5, max_value=600))
def test_binary_extension_any_header_length(body: bytes, header_length: int) -> None:
    header = _dumps({"inputs": [{"name": "x", "shape": [2], "datatype": "FP32",
                                 "parameters": {"binary_data_size": 8}}]})
    for raw in (body, header + body):
        _judge(lambda raw=raw: oip.parse_infer(raw, model="m", version=None,
                                               header_length=header_length))


def test_the_valid_documents_are_valid() -> None:
    """The seeds the near-valid test mutates parse, so mutations start from a request."""
    assert oip.parse_infer(_dumps(VALID["oip"]), model="m", version=None, header_length=None)
    assert mlflow.parse_invocations(_dumps(VALID["mlflow"]), "application/json", model="m")
    assert kserve_v1.parse_predict(_dumps(VALID["v1"]), model="m")
    assert simple.parse_predict(_dumps(VALID["simple"]), model="m")
