"""Shared payload conventions: rows, records, columns, split frames, JSON, rendering."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelport.errors import (
    InvalidInputError,
    ModelExecutionError,
    PayloadTooLargeError,
)
from modelport.serving.protocols import payloads
from modelport.serving.protocols.jsonbody import load_json
from modelport.serving.protocols.payloads import (
    columns_to_tensors,
    predictions_to_jsonable,
    records_to_tensors,
    render_error,
    rows_or_records,
    rows_to_tensor,
    split_to_tensors,
    to_array,
)
from modelport.serving.types import Tensor

PROTOCOLS = Path(payloads.__file__).parent


# ------------------------------------------------------------------------ load_json


def test_load_json_parses_objects_and_arrays():
    assert load_json(b'{"a": [1, 2.5, "x", true, null]}') == {"a": [1, 2.5, "x", True, None]}
    assert load_json(b"[1]") == [1]
    assert load_json(bytearray(b'{"a": 1}')) == {"a": 1}


def test_load_json_tolerates_a_utf8_bom():
    assert load_json(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
        (b'{"outer": {"k": 1, "k": 1}}', "duplicate key 'k'"),
        (b'{"a": 1', "invalid JSON"),
        (b"", "empty"),
        (b"   \n", "empty"),
        (b'{"a": "\xff"}', "not valid UTF-8 (byte 7)"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid JSON"),
        (b"1" * 5000, "invalid JSON"),  # over Python's integer-digit limit
        (b"{'a': 1}", "invalid JSON"),
    ],
)
def test_load_json_rejects_malformed_bodies_with_400(body, needle):
    with pytest.raises(InvalidInputError) as info:
        load_json(body)
    assert type(info.value) is InvalidInputError
    assert needle in str(info.value)


# -------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize(
    ("rows", "dtype"),
    [
        ([[1, 2], [3, 4]], np.int64),
        ([[1, 2.5], [3, 4]], np.float64),
        ([[1, None], [3, 4]], np.float64),
        ([[True, False]], np.bool_),
        ([["a", 1]], object),
        ([[True, 1]], object),
        ([[None, None]], np.float64),
    ],
)
def test_row_dtypes_follow_the_convention(rows, dtype):
    tensor = rows_to_tensor(rows)
    assert tensor.name == "input-0"
    assert tensor.data.dtype == np.dtype(dtype)
    assert tensor.shape == (len(rows), len(rows[0]))


def test_null_among_numbers_is_nan():
    data = rows_to_tensor([[1, None]]).data
    assert data[0, 0] == 1.0 and math.isnan(data[0, 1])


def test_strings_are_object_arrays_holding_python_values():
    data = rows_to_tensor([["a", None], ["b", 2]]).data
    assert data.dtype == object
    assert data.tolist() == [["a", None], ["b", 2]]


# ---------------------------------------------------------------------------- rows


def test_list_of_scalars_is_one_feature():
    tensor = rows_to_tensor([1.0, 2.0, 3.0])
    assert tensor.shape == (3, 1)
    np.testing.assert_array_equal(tensor.data, [[1.0], [2.0], [3.0]])


def test_rectangular_nesting_keeps_extra_dimensions():
    tensor = rows_to_tensor([[[1, 2], [3, 4]], [[5, 6], [7, 8]]])
    assert tensor.shape == (2, 2, 2)
    assert tensor.data.dtype == np.int64


@pytest.mark.parametrize(
    ("rows", "needle"),
    [
        ([[1, 2], [3]], "row 1 has 1 value, expected 2 values like row 0"),
        ([[1, 2], [3, 4], [5, 6, 7]], "row 2 has 3 values"),
        ([1, [2]], "row 1 has 1 value, expected a single value like row 0"),
        ([[1], 2], "row 1 has a single value"),
        ([[1, 2], [[3], 4]], "row 1 has nested arrays of different lengths"),
        ([[[1, 2]], [[3]]], "row 1 has shape [1, 1], expected shape [1, 2]"),
        ([[], []], "row 0 has an empty array"),
        ([[1], []], "row 1 has an empty array"),
    ],
)
def test_ragged_rows_name_the_row(rows, needle):
    with pytest.raises(InvalidInputError) as info:
        rows_to_tensor(rows, where="instances")
    assert str(info.value).startswith("instances: ")
    assert needle in str(info.value)


def test_empty_rows_are_400_no_rows():
    with pytest.raises(InvalidInputError, match="no rows"):
        rows_to_tensor([])


def test_rows_over_the_limit_are_413():
    rows_to_tensor([[1]] * 5, max_rows=5)
    with pytest.raises(PayloadTooLargeError, match="6 rows exceed the limit of 5"):
        rows_to_tensor([[1]] * 6, max_rows=5)


def test_default_row_limit_is_100_000():
    assert payloads.DEFAULT_MAX_ROWS == 100_000
    with pytest.raises(PayloadTooLargeError):
        rows_to_tensor([0] * 100_001)


@pytest.mark.parametrize(
    ("rows", "needle"),
    [
        ({"a": 1}, "must be an array of rows, got an object"),
        ("x", "must be an array of rows, got a string"),
        ([[1, {"a": 1}]], "row 0 holds an object"),
        ([[1], [2], [{"b": 1}]], "row 2 holds an object"),
        ([[1, 2**64]], "row 0 holds the integer 18446744073709551616, outside the 64-bit"),
        ([[0.5], [10**400]], "row 1 holds the integer 10000000"),
        ([[-(2**63) - 1]], "outside the 64-bit range"),
    ],
)
def test_bad_row_values_are_400(rows, needle):
    with pytest.raises(InvalidInputError) as info:
        rows_to_tensor(rows)
    assert needle in str(info.value)


def test_int64_bounds_are_accepted():
    data = rows_to_tensor([[2**63 - 1, -(2**63)]]).data
    assert data.dtype == np.int64
    assert data.tolist() == [[2**63 - 1, -(2**63)]]


def test_max_ndim_limits_nesting():
    rows_to_tensor([[1, 2]], max_ndim=2)
    with pytest.raises(InvalidInputError, match="row 0 nests arrays more than 1 level deep"):
        rows_to_tensor([[[1], [2]]], max_ndim=2)
    with pytest.raises(InvalidInputError, match="row 1 nests arrays more than 1 level deep"):
        rows_to_tensor([[1], [[2]]], max_ndim=2)
    with pytest.raises(InvalidInputError, match="nests arrays more than 31 levels"):
        rows_to_tensor([[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]])


def test_to_array_labels_errors():
    with pytest.raises(InvalidInputError, match=r"^col: record 1 has 2 values"):
        to_array([[1], [1, 2]], "col", label="record")


# ------------------------------------------------------------------------- records


def test_records_become_one_tensor_per_column():
    tensors = records_to_tensors([{"a": 1, "b": "x"}, {"b": "y", "a": 2.5}])
    assert [t.name for t in tensors] == ["a", "b"]
    assert tensors[0].data.dtype == np.float64 and tensors[0].shape == (2,)
    np.testing.assert_array_equal(tensors[0].data, [1.0, 2.5])
    assert tensors[1].data.dtype == object and tensors[1].data.tolist() == ["x", "y"]


def test_records_with_array_cells_keep_the_cell_shape():
    tensors = records_to_tensors([{"a": [1, 2, 3]}, {"a": [4, 5, 6]}])
    assert tensors[0].shape == (2, 3)


@pytest.mark.parametrize(
    ("records", "needle"),
    [
        ([{"a": 1, "b": 2}, {"a": 3}], "record 1 is missing key 'b'"),
        ([{"a": 1}, {"a": 1}, {"b": 3}], "record 2 is missing key 'a'"),
        ([{"a": 1}, {"a": 2, "c": 3}], "record 1 has key 'c' that record 0 does not have"),
        ([{"a": 1}, [1]], "record 1 is an array, expected an object"),
        ([5], "record 0 is a number, expected an object"),
        ([{}], "record 0 has no keys"),
        ([], "no rows"),
        ({"a": [1]}, "must be an array of objects"),
        ([{"a": [1, 2]}, {"a": [1]}], "column 'a': record 1 has 1 value"),
        ([{"a": {"x": 1}}], "column 'a': record 0 holds an object"),
    ],
)
def test_bad_records_are_400(records, needle):
    with pytest.raises(InvalidInputError) as info:
        records_to_tensors(records, where="dataframe_records")
    assert needle in str(info.value)


def test_records_over_the_limit_are_413():
    with pytest.raises(PayloadTooLargeError):
        records_to_tensors([{"a": 1}] * 3, max_rows=2)


def test_records_max_ndim_1_refuses_array_cells():
    with pytest.raises(InvalidInputError, match="column 'a': record 0 holds an array"):
        records_to_tensors([{"a": [1]}], max_ndim=1)


# ------------------------------------------------------------------------- columns


def test_columns_become_one_tensor_each():
    tensors = columns_to_tensors({"a": ["s1", "s2"], "b": [1, 2], "c": [[1, 2], [3, 4]]})
    assert [(t.name, t.shape) for t in tensors] == [("a", (2,)), ("b", (2,)), ("c", (2, 2))]


@pytest.mark.parametrize(
    ("columns", "needle"),
    [
        ({"a": [1, 2], "b": [1]}, "column 'b' has 1 value but column 'a' has 2"),
        ({"a": 1}, "column 'a' must be an array with one value per row, got a number"),
        ({}, "no columns"),
        ({"a": [], "b": []}, "no rows"),
        ([1, 2], "must be an object mapping column names to arrays"),
    ],
)
def test_bad_columns_are_400(columns, needle):
    with pytest.raises(InvalidInputError) as info:
        columns_to_tensors(columns)
    assert needle in str(info.value)


def test_columns_over_the_limit_are_413():
    with pytest.raises(PayloadTooLargeError):
        columns_to_tensors({"a": [1, 2, 3]}, max_rows=2)


# --------------------------------------------------------------------------- split


def test_split_frames_become_one_tensor_per_column():
    tensors = split_to_tensors(
        {"columns": ["a", "b"], "index": [7, 8], "data": [[1, "x"], [2, "y"]]}
    )
    assert [t.name for t in tensors] == ["a", "b"]
    assert tensors[0].data.tolist() == [1, 2] and tensors[0].data.dtype == np.int64
    assert tensors[1].data.tolist() == ["x", "y"]


def test_split_integer_column_names_become_strings():
    tensors = split_to_tensors({"columns": [0, 1], "data": [[1.0, 2.0]]})
    assert [t.name for t in tensors] == ["0", "1"]


@pytest.mark.parametrize(
    ("split", "needle"),
    [
        ([[1, 2]], "must be an object"),
        ({"data": [[1]]}, "missing 'columns'"),
        ({"columns": ["a"]}, "missing 'data'"),
        ({"columns": ["a"], "data": [[1]], "extra": 1}, "unknown key 'extra'"),
        ({"columns": "a", "data": [[1]]}, "'columns' must be an array of names"),
        ({"columns": [], "data": [[1]]}, "no columns"),
        ({"columns": ["a", "a"], "data": [[1, 2]]}, "duplicate column name 'a'"),
        ({"columns": ["a", None], "data": [[1, 2]]}, "column name 1 is null"),
        ({"columns": [True], "data": [[1]]}, "column name 0 is a boolean"),
        ({"columns": ["a"], "data": {"a": 1}}, "'data' must be an array of rows"),
        ({"columns": ["a"], "data": []}, "no rows"),
        ({"columns": ["a", "b"], "data": [[1, 2], [3]]}, "row 1 has 1 value but there are 2"),
        ({"columns": ["a"], "data": [[1], 2]}, "row 1 is a number, expected an array"),
        ({"columns": ["a"], "data": [[1]], "index": [0, 1]}, "'index' must be an array with"),
        ({"columns": ["a"], "data": [[1]], "index": 0}, "got a number"),
    ],
)
def test_bad_split_frames_are_400(split, needle):
    with pytest.raises(InvalidInputError) as info:
        split_to_tensors(split)
    assert needle in str(info.value)


def test_split_over_the_limit_is_413():
    with pytest.raises(PayloadTooLargeError):
        split_to_tensors({"columns": ["a"], "data": [[1]] * 3}, max_rows=2)


# ------------------------------------------------------------------ rows or records


def test_rows_or_records_dispatches_on_objects():
    assert [t.name for t in rows_or_records([[1, 2]], where="instances")] == ["input-0"]
    assert [t.name for t in rows_or_records([{"x": 1}], where="instances")] == ["x"]


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ([{"a": 1}, [1]], "element 1 is an array but element 0 is an object"),
        ([[1], {"a": 1}], "element 1 is an object but element 0 is an array"),
        ({"a": 1}, "must be an array of rows or of objects"),
        ([], "no rows"),
    ],
)
def test_rows_or_records_errors(values, needle):
    with pytest.raises(InvalidInputError) as info:
        rows_or_records(values, where="instances")
    assert needle in str(info.value)


# ------------------------------------------------------------------------ rendering


def test_one_output_renders_as_a_list():
    assert predictions_to_jsonable([Tensor("y", np.array([1, 0, 1]))]) == [1, 0, 1]
    assert predictions_to_jsonable([Tensor("p", np.array([[0.1, 0.9]]))]) == [[0.1, 0.9]]


def test_scalar_output_renders_as_a_one_element_list():
    assert predictions_to_jsonable([Tensor("y", np.array(2.5))]) == [2.5]


def test_bytes_and_numpy_scalars_in_object_outputs_become_json_values():
    data = np.array([b"cat", "dog", np.int64(3), np.float32(0.5)], dtype=object)
    assert predictions_to_jsonable([Tensor("y", data)]) == ["cat", "dog", 3, 0.5]
    assert predictions_to_jsonable([Tensor("y", np.array([b"a", b"b"]))]) == ["a", "b"]


def test_several_outputs_render_one_object_per_row():
    outputs = [
        Tensor("label", np.array([1, 0])),
        Tensor("proba", np.array([[0.2, 0.8], [0.9, 0.1]])),
    ]
    assert predictions_to_jsonable(outputs) == [
        {"label": 1, "proba": [0.2, 0.8]},
        {"label": 0, "proba": [0.9, 0.1]},
    ]


def test_several_outputs_of_different_lengths_render_by_name():
    outputs = [Tensor("a", np.array([1, 2])), Tensor("b", np.array([3]))]
    assert predictions_to_jsonable(outputs) == {"a": [1, 2], "b": [3]}


def test_no_outputs_render_an_empty_list():
    assert predictions_to_jsonable([]) == []


def test_dump_predictions_writes_nan_as_null():
    body = payloads.dump_predictions([Tensor("y", np.array([1.0, np.nan, np.inf]))])
    assert orjson.loads(body) == {"predictions": [1.0, None, None]}


def test_dump_predictions_refuses_values_without_json_form():
    with pytest.raises(ModelExecutionError, match="cannot be rendered as JSON"):
        payloads.dump_predictions([Tensor("y", np.array([object()], dtype=object))])


def test_render_error_is_one_object_without_traceback():
    assert orjson.loads(render_error("no rows")) == {"error": "no rows"}
    assert orjson.loads(render_error("bad \ud800 key")) == {"error": "bad \\ud800 key"}


# -------------------------------------------------------------------- house rules


FORBIDDEN = ("modelport.flavors", "modelport.registry", "modelport.artifacts", "starlette")


@pytest.mark.parametrize("module", ["payloads.py", "jsonbody.py", "mlflow.py", "kserve_v1.py",
                                    "simple.py"])
def test_protocol_modules_only_translate(module):
    tree = ast.parse((PROTOCOLS / module).read_text())
    top_level: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            top_level += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            top_level.append(node.module or "")
    everywhere = [
        name
        for node in ast.walk(tree)
        for name in (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    ]
    assert not [m for m in everywhere if m.startswith(FORBIDDEN)]
    assert "pandas" not in top_level  # pandas only lazily, inside the CSV parser
    if module != "mlflow.py":
        assert not [m for m in everywhere if m.startswith("pandas")]


# ----------------------------------------------------------------------- properties


_finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
_ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@st.composite
def rectangular_rows(draw):
    n_rows = draw(st.integers(1, 20))
    n_cols = draw(st.integers(1, 6))
    element = draw(st.sampled_from([_finite, _ints, st.one_of(_finite, _ints)]))
    return [[draw(element) for _ in range(n_cols)] for _ in range(n_rows)]


@settings(max_examples=60, deadline=None)
@given(rectangular_rows())
def test_rows_tensor_equals_numpy_asarray(rows):
    tensor = rows_to_tensor(rows)
    expected = np.asarray(rows)
    assert tensor.data.dtype == expected.dtype
    np.testing.assert_array_equal(tensor.data, expected)


@settings(max_examples=60, deadline=None)
@given(rectangular_rows())
def test_rows_survive_a_json_round_trip(rows):
    tensor = rows_to_tensor(load_json(orjson.dumps(rows)))
    np.testing.assert_array_equal(tensor.data, np.asarray(rows))


def test_large_integers_among_floats_become_floats():
    data = rows_to_tensor([[0.5], [2**64]]).data
    assert data.dtype == np.float64 and data[1, 0] == float(2**64)


# ----------------------------------------------------- fuzzing strategies (shared)

# Arbitrary JSON documents, and "near-valid" payloads (rows, records, columns with mostly
# well-formed cells) so that fuzzing reaches the array-building code, not only the
# first type check. The protocol test modules import these.
_weird = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
_cells = st.integers(-3, 3) | st.floats(-2, 2) | _weird
json_values = st.recursive(
    _weird,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=25,
)
_small_keys = st.sampled_from(["a", "b", "c"])
_cell_or_array = _cells | st.lists(_cells, min_size=1, max_size=2)
near_rows = st.one_of(
    st.integers(1, 3).flatmap(  # same width: mostly valid
        lambda w: st.lists(st.lists(_cells, min_size=w, max_size=w), min_size=1, max_size=4)
    ),
    st.lists(st.lists(_cell_or_array, min_size=1, max_size=3), min_size=1, max_size=4),
    st.lists(_cells, min_size=1, max_size=4),
)
near_records = st.one_of(
    st.lists(st.fixed_dictionaries({"a": _cells, "b": _cells}), min_size=1, max_size=4),
    st.lists(
        st.dictionaries(_small_keys, _cell_or_array, min_size=1, max_size=3),
        min_size=1,
        max_size=4,
    ),
)
near_columns = st.dictionaries(
    _small_keys, st.lists(_cell_or_array, min_size=1, max_size=3), min_size=1, max_size=3
)
near_split = st.fixed_dictionaries(
    {"columns": st.lists(_small_keys, min_size=1, max_size=3, unique=True), "data": near_rows}
)
payload_values = json_values | near_rows | near_records | near_columns


@settings(max_examples=60, deadline=None)
@given(payload_values | near_split)
def test_fuzz_payload_functions_only_raise_400_or_413(value):
    for parse in (
        lambda v: [rows_to_tensor(v, max_rows=50)],
        lambda v: records_to_tensors(v, max_rows=50),
        lambda v: columns_to_tensors(v, max_rows=50),
        lambda v: split_to_tensors(v, max_rows=50),
        lambda v: rows_or_records(v, where="instances", max_rows=50),
    ):
        try:
            tensors = parse(value)
        except InvalidInputError as exc:
            assert exc.http_status in (400, 413)
            continue
        assert tensors and len({t.shape[0] for t in tensors}) == 1


def test_lone_surrogates_are_400_not_a_later_encoding_crash():
    with pytest.raises(InvalidInputError, match="key '\\\\ud800' is not valid Unicode"):
        load_json(b'{"\\ud800": 1}')
    rows = load_json(b'[["ok", "caf\\u00e9"], ["x", "\\udc00"]]')
    with pytest.raises(InvalidInputError, match="row 1 holds a string that is not valid Unicode"):
        rows_to_tensor(rows)


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": "x:y", "a": 1}',  # a colon in a string must not hide the lost key
        b'{"a": 1, "a": "\\u003a"}',  # nor a colon spelt as an escape
        b'{"a" : 1 , "a" : 2}',  # whitespace around the separator
        b'[{"k": [1, {"z": 0, "z": 0}]}]',  # deep inside arrays
    ],
)
def test_duplicate_keys_are_found_whatever_the_strings_hold(body):
    with pytest.raises(InvalidInputError, match="duplicate key"):
        load_json(body)


def test_fast_parser_agrees_with_the_exact_one():
    assert load_json(b'{"t": "12:30", "u": "a\\u003ab"}') == {"t": "12:30", "u": "a:b"}
    big = load_json(b"[123456789012345678901234567890, -9223372036854775809]")
    assert big == [123456789012345678901234567890, -9223372036854775809]
    assert all(type(v) is int for v in big)  # orjson alone would give floats
    assert load_json(b"[9223372036854775807, 1.5]") == [9223372036854775807, 1.5]
