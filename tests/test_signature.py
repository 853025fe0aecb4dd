"""Signatures: inference from examples, enforcement with precise messages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from modelport.errors import SignatureError
from modelport.signature import enforce, infer_schema, infer_signature


def test_frame_schema() -> None:
    df = pd.DataFrame({"a": [1.0], "b": [2], "c": ["x"], "d": [True]})
    assert infer_schema(df) == {"type": "dataframe", "columns": [
        {"name": "a", "dtype": "float64", "allow_nan": False}, {"name": "b", "dtype": "int64"},
        {"name": "c", "dtype": infer_schema(df)["columns"][2]["dtype"]},
        {"name": "d", "dtype": "bool"}]}
    assert infer_schema(df)["columns"][2]["dtype"] in ("object", "string")


def test_tensor_schema_and_signature() -> None:
    X = np.zeros((5, 3, 2), dtype=np.float32)
    sig = infer_signature(X, np.zeros(5, dtype=np.int64))
    assert sig["inputs"] == {"type": "tensor", "dtype": "float32", "shape": [-1, 3, 2],
                             "allow_nan": False}
    assert sig["outputs"] == {"type": "tensor", "dtype": "int64", "shape": [-1]}


def test_frame_enforcement_messages() -> None:
    schema = infer_schema(pd.DataFrame({"x": [1.0], "y": [2.0]}))
    with pytest.raises(SignatureError, match="missing column 'y'"):
        enforce(schema, pd.DataFrame({"x": [1.0]}))
    with pytest.raises(SignatureError, match="missing columns 'x', 'y'"):
        enforce(schema, pd.DataFrame({"z": [1.0]}))
    with pytest.raises(SignatureError, match="column 'x': expected float64, got object"):
        enforce(schema, pd.DataFrame({"x": ["a"], "y": [1.0]}))
    with pytest.raises(SignatureError, match="no rows"):
        enforce(schema, pd.DataFrame({"x": [], "y": []}))
    out = enforce(schema, pd.DataFrame({"y": [1], "x": [2], "extra": ["ignored"]}))
    assert list(out.columns) == ["x", "y"]
    assert out.dtypes.tolist() == [np.float64, np.float64]
    out = enforce(schema, [[1, 2], [3, 4]])
    assert out["y"].tolist() == [2.0, 4.0]
    out = enforce(schema, {"x": [1.5], "y": [2.5]})
    assert out.shape == (1, 2)


def test_float_to_int_is_refused() -> None:
    schema = infer_schema(pd.DataFrame({"n": [1]}))
    with pytest.raises(SignatureError, match="column 'n': expected int64, got float64"):
        enforce(schema, pd.DataFrame({"n": [1.5]}))


def test_tensor_enforcement() -> None:
    schema = infer_schema(np.zeros((2, 4)))
    assert enforce(schema, [[1, 2, 3, 4]]).dtype == np.float64
    assert enforce(schema, [1, 2, 3, 4]).shape == (1, 4)  # one row without batch dimension
    with pytest.raises(SignatureError, match=r"dimension 1: expected 4, got 3"):
        enforce(schema, np.zeros((2, 3)))
    with pytest.raises(SignatureError, match="expected dtype float64, got string"):
        enforce(schema, [["a", "b", "c", "d"]])
    with pytest.raises(SignatureError, match=r"not a rectangular array|shape"):
        enforce(schema, [[1, 2, 3, 4], [1, 2]])
    assert enforce(None, "anything") == "anything"


@given(hnp.arrays(dtype=st.sampled_from([np.int32, np.int64, np.float32, np.float64, np.bool_]),
                  shape=hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=5)))
def test_safe_numeric_inputs_always_pass_a_float64_schema(arr: np.ndarray) -> None:
    schema = {"type": "tensor", "dtype": "float64", "shape": [-1, arr.shape[1]],
              "allow_nan": True}
    out = enforce(schema, arr)
    assert out.dtype == np.float64
    assert out.shape == arr.shape


@given(st.lists(st.lists(st.one_of(st.floats(allow_nan=False), st.integers(-10, 10), st.text(
    max_size=3), st.none()), min_size=0, max_size=4), max_size=4))
def test_enforce_raises_only_signature_errors(rows: list) -> None:
    schema = {"type": "dataframe", "columns": [{"name": "a", "dtype": "float64"},
                                               {"name": "b", "dtype": "float64"}]}
    try:
        out = enforce(schema, rows)
    except SignatureError:
        return
    assert list(out.columns) == ["a", "b"]


def test_nan_and_infinity_are_refused_unless_the_example_had_them() -> None:
    schema = infer_schema(pd.DataFrame({"x": [1.0, 2.0]}))
    msg = r"column 'x' contains NaN or infinity \(first at row 1\)"
    with pytest.raises(SignatureError, match=msg):
        enforce(schema, pd.DataFrame({"x": [1.0, float("nan")]}))
    with pytest.raises(SignatureError, match="NaN or infinity"):
        enforce(infer_schema(np.zeros((1, 2))), [[1.0, float("inf")]])
    tolerant = infer_schema(pd.DataFrame({"x": [1.0, None]}))
    assert tolerant["columns"][0]["allow_nan"] is True
    assert enforce(tolerant, pd.DataFrame({"x": [float("nan")]})).shape == (1, 1)
