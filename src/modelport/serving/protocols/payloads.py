"""JSON payload conventions shared by the MLflow, KServe V1 and ``/predict`` protocols.

Written once so that the three protocols agree on what a payload means:

- **Rows** (a list of lists, or a list of single values for one feature) become ONE tensor
  named ``input-0`` of shape ``[rows, features]`` (deeper, rectangular nesting such as
  images keeps its extra dimensions: ``[rows, h, w]``).
- **Records** (a list of objects), **split** frames (``{"columns": [...], "data": [[...]]}``)
  and **columns** (``{"col": [values...]}``) become ONE tensor PER COLUMN, named after the
  column, of shape ``[rows]`` (or ``[rows, ...]`` when each cell is itself an array).
- Element types: only integers → ``int64``; any float or null among numbers → ``float64``
  (null becomes NaN, as pandas does); only booleans → ``bool``; any string, or booleans
  mixed with other types → an ``object`` array holding the JSON values as they are.
- No rows → 400; more than ``max_rows`` rows → 413; ragged rows, records with different
  keys or columns of different lengths → 400 naming the row, record, key or column.

Everything here raises only :class:`InvalidInputError` (400) or its subclass
:class:`PayloadTooLargeError` (413); rendering raises :class:`ModelExecutionError` for an
output value that has no JSON form.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from modelport.errors import InvalidInputError, ModelExecutionError, PayloadTooLargeError
from modelport.serving.protocols.jsonbody import check_keys, is_unicode, json_type, shown
from modelport.serving.types import Tensor

DEFAULT_MAX_ROWS = 100_000
ROWS_INPUT_NAME = "input-0"
MAX_NDIM = 32  # numpy's historical limit; far beyond any real model input

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_SCALAR_TYPES = frozenset({bool, int, float, str, type(None)})
_NUMBER_TYPES = frozenset({int, float, type(None)})
_FLOAT_TRIGGERS = frozenset({float, type(None)})


# ------------------------------------------------------------------------- limits


def check_rows(n_rows: int, where: str, max_rows: int) -> None:
    """400 when there are no rows, 413 when there are more than ``max_rows``."""
    if n_rows == 0:
        raise InvalidInputError(f"{where}: no rows")
    if n_rows > max_rows:
        raise PayloadTooLargeError(
            f"{where}: {n_rows} rows exceed the limit of {max_rows} rows per request"
        )


# ------------------------------------------------------------------ array building


class _TooDeep(Exception):
    """Internal: a nested list exceeds the allowed number of dimensions."""


def _shape_of(value: Any, budget: int) -> tuple[int, ...] | None:
    """The rectangular shape of a nested list (``()`` for a scalar), or None if ragged.

    ``budget`` is how many more list levels are allowed; one more raises ``_TooDeep``.
    """
    if not isinstance(value, list):
        return ()
    if budget <= 0:
        raise _TooDeep
    if not value:
        return (0,)
    first = _shape_of(value[0], budget - 1)
    if first is None:
        return None
    for item in value[1:]:
        if _shape_of(item, budget - 1) != first:
            return None
    return (len(value), *first)


def _count(n: int) -> str:
    return f"{n} value{'s' if n != 1 else ''}"


def _shape_text(shape: tuple[int, ...] | None) -> str:
    if shape is None:
        return "nested arrays of different lengths"
    if 0 in shape:
        return "an empty array"
    if shape == ():
        return "a single value"
    if len(shape) == 1:
        return _count(shape[0])
    return f"shape {list(shape)}"


def _too_deep(where: str, label: str, index: int, max_ndim: int, values: str) -> InvalidInputError:
    if max_ndim <= 1:
        return InvalidInputError(
            f"{where}: {label} {index} holds an array; values must be {values}"
        )
    levels = max_ndim - 1
    return InvalidInputError(
        f"{where}: {label} {index} nests arrays more than {levels} level{'s' if levels > 1 else ''}"
        f" deep; values must be {values}"
    )


def _ragged(
    items: list[Any], where: str, label: str, max_ndim: int, values: str
) -> InvalidInputError:
    """Find the first item whose structure differs from item 0 and describe it (slow path)."""
    index = 0
    try:
        reference = _shape_of(items[0], max_ndim - 1)
        for index, item in enumerate(items):
            shape = reference if index == 0 else _shape_of(item, max_ndim - 1)
            if shape is None or 0 in shape:
                return InvalidInputError(f"{where}: {label} {index} has {_shape_text(shape)}")
            if shape != reference:
                return InvalidInputError(
                    f"{where}: {label} {index} has {_shape_text(shape)}, expected "
                    f"{_shape_text(reference)} like {label} 0"
                )
    except _TooDeep:
        return _too_deep(where, label, index, max_ndim, values)
    return InvalidInputError(f"{where}: {label}s are nested arrays of different lengths")


def to_array(
    items: list[Any],
    where: str,
    *,
    label: str = "row",
    max_ndim: int = MAX_NDIM,
    values: str = "numbers, strings, booleans or null",
) -> np.ndarray[Any, Any]:
    """A rectangular numpy array of shape ``[len(items), ...]`` from nested JSON lists.

    ``items`` must be a non-empty list; every item must have the same nesting. The dtype
    follows the module's conventions. Errors name the offending ``label`` (row) by index.
    """
    shape = [len(items)]
    level: list[Any] = items
    while True:
        first = level[0]
        if isinstance(first, list):
            width = len(first)
            if width == 0 or not all(isinstance(v, list) and len(v) == width for v in level):
                raise _ragged(items, where, label, max_ndim, values)
            if len(shape) >= max_ndim:
                raise _ragged(items, where, label, max_ndim, values)
            shape.append(width)
            level = list(itertools.chain.from_iterable(level))
        else:
            if any(isinstance(v, list) for v in level):
                raise _ragged(items, where, label, max_ndim, values)
            break
    return _leaves_to_array(level, tuple(shape), where, label, values)


def _leaves_to_array(
    leaves: list[Any], shape: tuple[int, ...], where: str, label: str, values: str
) -> np.ndarray[Any, Any]:
    types = set(map(type, leaves))
    per_row = math.prod(shape[1:])

    def row_of(predicate: Callable[[Any], bool]) -> tuple[int, Any]:
        flat = next(i for i, v in enumerate(leaves) if predicate(v))
        return flat // per_row, leaves[flat]

    if not types <= _SCALAR_TYPES:
        row, bad = row_of(lambda v: type(v) not in _SCALAR_TYPES)
        raise InvalidInputError(
            f"{where}: {label} {row} holds {json_type(bad)}; values must be {values}"
        )
    if types == {bool}:
        return np.array(leaves, dtype=np.bool_).reshape(shape)
    if types <= _NUMBER_TYPES:
        dtype = np.float64 if types & _FLOAT_TRIGGERS else np.int64
        try:
            return np.array(leaves, dtype=dtype).reshape(shape)
        except OverflowError:
            row, big = row_of(lambda v: type(v) is int and not _INT64_MIN <= v <= _INT64_MAX)
            digits = str(big)
            shown = digits if len(digits) <= 30 else digits[:27] + "..."
            raise InvalidInputError(
                f"{where}: {label} {row} holds the integer {shown}, outside the 64-bit range"
            ) from None
    if str in types:
        bad_text = [i for i, v in enumerate(leaves) if type(v) is str and not is_unicode(v)]
        if bad_text:
            raise InvalidInputError(
                f"{where}: {label} {bad_text[0] // per_row} holds a string that is not valid "
                "Unicode (a lone surrogate escape)"
            )
    array = np.empty(len(leaves), dtype=object)
    array[:] = leaves
    return array.reshape(shape)


# -------------------------------------------------------------- payload → tensors


def rows_to_tensor(
    rows: Any,
    *,
    where: str = "rows",
    max_rows: int = DEFAULT_MAX_ROWS,
    max_ndim: int = MAX_NDIM,
    name: str = ROWS_INPUT_NAME,
) -> Tensor:
    """ONE tensor ``[rows, features, ...]`` from a list of rows.

    A list of single values is one feature: ``[1, 2, 3]`` → shape ``[3, 1]``.
    """
    if not isinstance(rows, list):
        raise InvalidInputError(f"{where} must be an array of rows, got {json_type(rows)}")
    check_rows(len(rows), where, max_rows)
    array = to_array(rows, where, max_ndim=max_ndim)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    return Tensor(name, array)


def columns_to_tensors(
    columns: Any,
    *,
    where: str = "columns",
    max_rows: int = DEFAULT_MAX_ROWS,
    max_ndim: int = MAX_NDIM,
) -> list[Tensor]:
    """One tensor per column from ``{"col": [value per row, ...], ...}``."""
    if not isinstance(columns, dict):
        raise InvalidInputError(
            f"{where} must be an object mapping column names to arrays, got {json_type(columns)}"
        )
    if not columns:
        raise InvalidInputError(f"{where}: no columns")
    first_name: str | None = None
    n_rows = 0
    for col, values in columns.items():
        if not isinstance(values, list):
            raise InvalidInputError(
                f"{where}: column {shown(col)} must be an array with one value per row, "
                f"got {json_type(values)}"
            )
        if first_name is None:
            first_name, n_rows = col, len(values)
        elif len(values) != n_rows:
            raise InvalidInputError(
                f"{where}: column {shown(col)} has {_count(len(values))} but column "
                f"{shown(first_name)} has {n_rows}; every column needs one value per row"
            )
    check_rows(n_rows, where, max_rows)
    return [
        Tensor(
            str(col),
            to_array(values, f"{where}: column {shown(col)}", max_ndim=max_ndim),
        )
        for col, values in columns.items()
    ]


def records_to_tensors(
    records: Any,
    *,
    where: str = "records",
    max_rows: int = DEFAULT_MAX_ROWS,
    max_ndim: int = MAX_NDIM,
) -> list[Tensor]:
    """One tensor per column from ``[{"col": value, ...}, ...]``; every record has the same keys."""
    if not isinstance(records, list):
        raise InvalidInputError(
            f"{where} must be an array of objects (records), got {json_type(records)}"
        )
    check_rows(len(records), where, max_rows)
    first = records[0]
    if not isinstance(first, dict):
        raise InvalidInputError(f"{where}: record 0 is {json_type(first)}, expected an object")
    keys = list(first)
    if not keys:
        raise InvalidInputError(f"{where}: record 0 has no keys")
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidInputError(
                f"{where}: record {index} is {json_type(record)}, expected an object"
            )
        if len(record) != len(keys) or record.keys() != first.keys():
            missing = [k for k in keys if k not in record]
            if missing:
                raise InvalidInputError(
                    f"{where}: record {index} is missing key {shown(missing[0])} "
                    "(record 0 has it); every record needs the same keys"
                )
            extra = next(k for k in record if k not in first)
            raise InvalidInputError(
                f"{where}: record {index} has key {shown(extra)} that record 0 does not "
                "have; every record needs the same keys"
            )
    return [
        Tensor(
            key,
            to_array(
                [record[key] for record in records],
                f"{where}: column {shown(key)}",
                label="record",
                max_ndim=max_ndim,
            ),
        )
        for key in keys
    ]


_SPLIT_KEYS = ("columns", "data", "index")


def split_to_tensors(
    split: Any,
    *,
    where: str = "dataframe_split",
    max_rows: int = DEFAULT_MAX_ROWS,
) -> list[Tensor]:
    """One tensor per column from pandas' split orient ``{"columns", "data"[, "index"]}``.

    ``index`` is checked (one label per row) and dropped. Integer column names, as pandas
    writes for frames built from plain arrays, become their decimal strings.
    """
    if not isinstance(split, dict):
        raise InvalidInputError(
            f'{where} must be an object {{"columns": [...], "data": [[...], ...]}}, '
            f"got {json_type(split)}"
        )
    check_keys(split, _SPLIT_KEYS, where)
    for required in ("columns", "data"):
        if required not in split:
            raise InvalidInputError(f"{where} is missing {required!r}")
    columns, data = split["columns"], split["data"]
    if not isinstance(columns, list):
        raise InvalidInputError(
            f"{where}: 'columns' must be an array of names, got {json_type(columns)}"
        )
    if not columns:
        raise InvalidInputError(f"{where}: no columns")
    names: list[str] = []
    for position, col in enumerate(columns):
        if isinstance(col, bool) or not isinstance(col, str | int):
            raise InvalidInputError(
                f"{where}: column name {position} is {json_type(col)}, expected a string"
            )
        label = str(col)
        if label in names:
            raise InvalidInputError(f"{where}: duplicate column name {shown(label)}")
        names.append(label)
    if not isinstance(data, list):
        raise InvalidInputError(f"{where}: 'data' must be an array of rows, got {json_type(data)}")
    check_rows(len(data), where, max_rows)
    for index, row in enumerate(data):
        if not isinstance(row, list):
            raise InvalidInputError(
                f"{where}: row {index} is {json_type(row)}, expected an array of "
                f"{len(names)} values"
            )
        if len(row) != len(names):
            raise InvalidInputError(
                f"{where}: row {index} has {_count(len(row))} but there are {len(names)} columns"
            )
    if "index" in split:
        index_labels = split["index"]
        if not isinstance(index_labels, list) or len(index_labels) != len(data):
            got = (
                f"{len(index_labels)} labels"
                if isinstance(index_labels, list)
                else json_type(index_labels)
            )
            raise InvalidInputError(
                f"{where}: 'index' must be an array with one label per row ({len(data)}), got {got}"
            )
    return [
        Tensor(name, to_array([row[j] for row in data], f"{where}: column {shown(name)}"))
        for j, name in enumerate(names)
    ]


def rows_or_records(
    values: Any,
    *,
    where: str,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_ndim: int = MAX_NDIM,
) -> list[Tensor]:
    """TF-Serving's ``instances``: a list of objects is records, anything else is rows."""
    if not isinstance(values, list):
        raise InvalidInputError(
            f"{where} must be an array of rows or of objects, got {json_type(values)}"
        )
    check_rows(len(values), where, max_rows)
    objects = [isinstance(v, dict) for v in values]
    if all(objects):
        return records_to_tensors(values, where=where, max_rows=max_rows, max_ndim=max_ndim)
    if any(objects):
        index = objects.index(not objects[0])
        raise InvalidInputError(
            f"{where}: element {index} is {json_type(values[index])} but element 0 is "
            f"{json_type(values[0])}; send either rows (arrays) or records (objects)"
        )
    return [rows_to_tensor(values, where=where, max_rows=max_rows, max_ndim=max_ndim)]


# --------------------------------------------------------------- tensors → JSON


def _plain(value: Any) -> Any:
    """Object-array elements made JSON-ready: bytes → str, numpy scalars → Python."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, np.ndarray):
        return _array_jsonable(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _array_jsonable(data: np.ndarray[Any, Any]) -> Any:
    if data.dtype.kind in "Mm":  # datetimes and durations: ISO strings
        return data.astype(str).tolist()
    if data.dtype.kind in "OSV":
        return _plain(data.tolist())
    return data.tolist()


def predictions_to_jsonable(outputs: list[Tensor]) -> list[Any] | dict[str, Any]:
    """What goes under ``"predictions"``.

    One output → its values as a (nested) list. Several outputs with the same number of
    rows → one object per row, ``{output_name: value}`` (pandas' records orient, as MLflow
    renders a DataFrame). Several outputs whose row counts differ → ``{name: values}``.
    """
    columns = [
        (t.name, _array_jsonable(t.data.reshape(1) if t.data.ndim == 0 else t.data))
        for t in outputs
    ]
    if not columns:
        return []
    if len(columns) == 1:
        return list(columns[0][1])
    lengths = {len(values) for _, values in columns}
    if len(lengths) != 1:
        return dict(columns)
    return [{name: values[row] for name, values in columns} for row in range(lengths.pop())]


def _json_default(value: Any) -> Any:
    plain = _plain(value)
    if plain is value:
        raise TypeError(f"a value of type {type(value).__name__} has no JSON form")
    return plain


def dump_json(value: Any) -> bytes:
    """orjson with numpy fallbacks; NaN and infinities become null."""
    try:
        return orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError as exc:
        raise ModelExecutionError(f"the model's output cannot be rendered as JSON: {exc}") from None


def dump_predictions(outputs: list[Tensor]) -> bytes:
    """``{"predictions": ...}`` as JSON bytes."""
    return dump_json({"predictions": predictions_to_jsonable(outputs)})


def render_error(message: str) -> bytes:
    """``{"error": message}``: one message, never a traceback."""
    text = str(message).encode("utf-8", "backslashreplace").decode("utf-8")
    return orjson.dumps({"error": text})


__all__ = [
    "DEFAULT_MAX_ROWS",
    "MAX_NDIM",
    "ROWS_INPUT_NAME",
    "check_rows",
    "columns_to_tensors",
    "dump_json",
    "dump_predictions",
    "predictions_to_jsonable",
    "records_to_tensors",
    "render_error",
    "rows_or_records",
    "rows_to_tensor",
    "split_to_tensors",
    "to_array",
]
