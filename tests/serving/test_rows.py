"""Requests to rows: one array for uniform tables, columns otherwise, and batches of both."""

from __future__ import annotations

import numpy as np
import pytest

from modelport.errors import SignatureError
from modelport.serving.rows import Rows, TableLayout, concat, model_input, to_rows
from modelport.serving.types import InferenceRequest, Tensor

TABLE = {"type": "dataframe", "columns": [
    {"name": "a", "dtype": "float64", "allow_nan": False},
    {"name": "b", "dtype": "float64", "allow_nan": True}]}


def _req(*tensors: Tensor) -> InferenceRequest:
    return InferenceRequest("m", list(tensors))


def test_a_uniform_table_stays_one_array() -> None:
    rows = to_rows(_req(Tensor("input-0", np.array([[1, 2], [3, 4]]))), TABLE)
    assert rows.names == ("a", "b")
    assert rows.array is not None and rows.array.dtype == np.float64
    frame = model_input(rows)
    assert list(frame.columns) == ["a", "b"]
    assert frame["b"].tolist() == [2.0, 4.0]


def test_nan_is_checked_per_column() -> None:
    ok = to_rows(_req(Tensor("input-0", np.array([[1.0, np.nan]]))), TABLE)
    assert ok.n == 1
    with pytest.raises(SignatureError, match="column 'a' contains NaN"):
        to_rows(_req(Tensor("input-0", np.array([[np.nan, 1.0]]))), TABLE)


def test_batches_of_arrays_and_columns_merge_by_name() -> None:
    as_array = to_rows(_req(Tensor("input-0", np.array([[1.0, 2.0]]))), TABLE)
    as_columns = to_rows(_req(Tensor("b", np.array([20.0, 40.0])), Tensor("a", np.array(
        [10.0, 30.0]))), TABLE)
    batch = concat([as_array, as_columns, as_array])
    assert batch.n == 4
    frame = model_input(batch)
    assert frame["a"].tolist() == [1.0, 10.0, 30.0, 1.0]
    assert frame["b"].tolist() == [2.0, 20.0, 40.0, 2.0]
    both_arrays = concat([as_array, as_array])
    assert both_arrays.array is not None and both_arrays.names == ("a", "b")


def test_slices_keep_names() -> None:
    rows = Rows(3, array=np.arange(6.0).reshape(3, 2), names=("a", "b"))
    part = rows.slice(1, 3)
    assert part.names == ("a", "b")
    assert part.as_columns()["b"].tolist() == [3.0, 5.0]


@pytest.mark.parametrize("n", [1, 3, 40])  # under and over the size where numpy sums
def test_the_layout_fast_path_still_refuses_nan_and_infinity(n: int) -> None:
    finite = {"type": "dataframe", "columns": [
        {"name": "a", "dtype": "float64"}, {"name": "b", "dtype": "float64"}]}
    layout = TableLayout.of(finite)
    assert layout is not None and layout.finite
    for bad in (np.nan, np.inf, -np.inf):
        data = np.ones((n, 2))
        data[n - 1, 1] = bad
        with pytest.raises(SignatureError, match=f"column 'b' contains NaN or infinity "
                                                 rf"\(first at row {n - 1}\)"):
            to_rows(_req(Tensor("input-0", data)), finite, layout)
    big = np.full((n, 2), 1e308)  # every value finite, their sum is not
    rows = to_rows(_req(Tensor("input-0", big)), finite, layout)
    assert rows.n == n and rows.array is not None and np.array_equal(rows.array, big)
