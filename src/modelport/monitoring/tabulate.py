"""Logged predictions as Arrow tables: one row per request row, features as a struct.

Columns of a prediction file (``endpoint`` and ``date`` come from the partition path)::

    request_id  string       the request's id (OIP "id" or the server's x-request-id)
    row         int32        the row's index within its request
    version     int64        the version that answered (or ran, for shadow copies)
    variant     string       stable | candidate | shadow
    ts          timestamp    when the answer was logged (UTC, microseconds)
    latency_ms  double       the request's latency as the server measured it
    prediction  (any)        the first output's value for this row, when it is a scalar
    inputs      struct       one field per feature, named after the signature's columns
    outputs     struct       one field per output tensor (a list for vector outputs)

Feature names: a table signature's column names; one tensor per column keeps its
name; an unnamed 2-D tensor (a numpy-array model) gives ``f0``, ``f1``, ...; higher
dimensions are flattened into one list field named after the tensor. In DuckDB a
feature is ``inputs.petal_length`` (quote names with dots or dashes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Protocol

import numpy as np

from modelport.monitoring.layout import day_of

#: (endpoint, ts, request_id, version, variant, inputs, outputs, latency_ms, features,
#: rows); inputs and outputs are (name, array) pairs, features the table signature's
#: column names (None for a tensor signature).
Record = tuple[str, float, str, int, str, Sequence[tuple[str, Any]], Sequence[tuple[str, Any]],
               float, Sequence[str] | None, int]


class NamedArray(Protocol):
    """What a request's inputs and outputs look like (serving's ``Tensor`` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def data(self) -> np.ndarray[Any, Any]: ...


def feature_names(schema: Mapping[str, Any] | None) -> list[str] | None:
    """The column names of a table signature (None for tensor signatures)."""
    if schema is not None and schema.get("type") == "dataframe":
        return [str(c["name"]) for c in schema.get("columns", [])]
    return None


def _field(data: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    if data.ndim == 2 and data.shape[1] == 1:
        return data[:, 0]
    if data.ndim > 2:
        return data.reshape(data.shape[0], -1)
    return data


def input_columns(names: Sequence[str], arrays: Sequence[np.ndarray[Any, Any]],
                  features: list[str] | None) -> dict[str, np.ndarray[Any, Any]]:
    """Feature name -> per-row values, from a request's (batch-first) input tensors."""
    if len(arrays) == 1:
        data = arrays[0]
        if features and data.ndim == 2 and data.shape[1] == len(features) > 1:
            return {f: data[:, i] for i, f in enumerate(features)}
        if features and len(features) == 1 and data.ndim <= 2:
            return {features[0]: _field(data)}
        if data.ndim == 2 and data.shape[1] > 1 and not features:
            return {f"f{i}": data[:, i] for i in range(data.shape[1])}
        return {names[0]: _field(data)}
    return {n: _field(a) for n, a in zip(names, arrays, strict=True)}


def to_arrow(values: np.ndarray[Any, Any]) -> Any:
    """A numpy column as an Arrow array (2-D: a fixed-size list per row)."""
    import pyarrow as pa

    if values.ndim == 2:
        return pa.FixedSizeListArray.from_arrays(to_arrow(values.reshape(-1)), values.shape[1])
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python objects: keep their text
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def _struct(columns: Mapping[str, np.ndarray[Any, Any]]) -> Any:
    import pyarrow as pa

    return pa.StructArray.from_arrays([to_arrow(v) for v in columns.values()],
                                      names=list(columns))


def _concat(arrays: list[np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
    """One tensor of every record, stacked along the rows."""
    try:
        return np.concatenate(arrays)
    except ValueError:  # 0-d values (one scalar per request)
        return np.concatenate([np.atleast_1d(a) for a in arrays])


def prediction_tables(records: list[Record]) -> list[tuple[str, date, Any, int]]:
    """One table per endpoint and UTC day (more when requests' layouts cannot merge).

    A group of records that cannot be tabulated gives the exception instead of a table,
    so the writer counts its rows as failed and writes the rest.
    """
    import pyarrow as pa

    # Records whose tensors share names, dtypes and trailing shapes concatenate tensor
    # by tensor: one numpy call per column instead of Python work per row.
    keyed: dict[tuple[Any, ...], list[Record]] = {}
    for rec in records:
        key = (rec[0], int(rec[1] // 86400), rec[8],
               tuple([(name, data.dtype, data.shape[1:]) for name, data in rec[5]]),
               tuple([(name, data.dtype, data.shape[1:]) for name, data in rec[6]]))
        found = keyed.get(key)
        if found is None:
            keyed[key] = [rec]
        else:
            found.append(rec)
    groups: dict[tuple[str, date], list[list[Record]]] = {}
    for key, recs in keyed.items():
        groups.setdefault((key[0], day_of(recs[0][1])), []).append(recs)
    out: list[tuple[str, date, Any, int]] = []
    for (endpoint, day), layouts in groups.items():
        tables = []
        for recs in layouts:
            try:
                tables.append(_group_table(recs))
            except (ValueError, TypeError, pa.ArrowException) as exc:
                # Requests the server answered are consistent; anything else fails alone.
                out.append((endpoint, day, exc, sum(r[9] for r in recs)))
        if not tables:
            continue
        try:
            merged = [pa.concat_tables(tables, promote_options="permissive")]
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # e.g. a feature sent as text and number
            merged = tables
        out.extend((endpoint, day, t, t.num_rows) for t in merged)
    return out


def _group_table(recs: list[Record]) -> Any:
    """Records of one layout: concatenate each tensor once, then build the columns."""
    import pyarrow as pa

    first = recs[0]
    features = list(first[8]) if first[8] is not None else None
    in_names = [name for name, _ in first[5]]
    cat_in = [_concat([r[5][i][1] for r in recs]) for i in range(len(in_names))]
    if len(cat_in) == 1 and features and len(features) > 1 and cat_in[0].ndim == 1:
        # Rows sent without their batch dimension: one row of len(features) values each.
        cat_in[0] = cat_in[0].reshape(-1, len(features))
        counts = np.ones(len(recs), dtype=np.int64)
    else:
        counts = np.array([r[5][0][1].shape[0] if r[5][0][1].ndim else 1 for r in recs]
                          if in_names else [1] * len(recs), dtype=np.int64)
    inputs = input_columns(in_names, cat_in, features)
    n = int(counts.sum())
    outputs = {name: _field(_concat([r[6][i][1] for r in recs]))
               for i, (name, _) in enumerate(first[6])}
    outputs = {k: v for k, v in outputs.items() if v.shape[0] == n}  # ragged: not loggable
    inputs = {k: v for k, v in inputs.items() if v.shape[0] == n}
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    ts = np.repeat(np.array([r[1] for r in recs]) * 1e6, counts).astype(np.int64)
    columns: dict[str, Any] = {
        "request_id": pa.array(np.repeat(np.array([r[2] for r in recs], dtype=object), counts),
                               type=pa.string()),
        "row": pa.array((np.arange(n) - starts).astype(np.int32)),
        "version": pa.array(np.repeat(np.array([r[3] for r in recs], dtype=np.int64), counts)),
        "variant": pa.array(np.repeat(np.array([str(r[4]) for r in recs], dtype=object),
                                      counts), type=pa.string()),
        "ts": pa.array(ts, type=pa.timestamp("us", tz="UTC")),
        "latency_ms": pa.array(np.repeat(np.array([r[7] for r in recs], dtype=np.float64),
                                         counts)),
    }
    if outputs:
        head = next(iter(outputs.values()))
        if head.ndim == 1:
            columns["prediction"] = to_arrow(head)
        columns["outputs"] = _struct(outputs)
    if inputs:
        columns["inputs"] = _struct(inputs)
    return pa.table(columns)


__all__ = ["NamedArray", "Record", "feature_names", "input_columns", "prediction_tables",
           "to_arrow"]
