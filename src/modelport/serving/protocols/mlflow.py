"""MLflow scoring protocol (``POST /invocations``, ``GET /ping``, ``GET /version``).

Accepted bodies, as MLflow 2's scoring server takes them:

- ``application/json`` with exactly one of ``dataframe_split`` (pandas split orient, with
  optional ``index``), ``dataframe_records`` (list of records), ``instances`` (rows, or
  records) or ``inputs`` (rows, or an object of columns), plus an optional ``params``
  object passed to the model as request parameters.
- ``application/json; format=pandas-split`` / ``format=pandas-records``, as MLflow 1.x
  clients send: the body may then also be the bare DataFrame (split object or list of
  records) instead of being wrapped in one of the keys above.
- ``text/csv`` with a header row naming the columns.
- No ``Content-Type`` at all is read as JSON.

Anything else is a 415 listing the accepted types. Payload conventions (rows → one
``input-0`` tensor, records/columns → one tensor per column) live in :mod:`.payloads`.
"""

from __future__ import annotations

import io
from typing import Any

from modelport.errors import InvalidInputError, UnsupportedMediaTypeError
from modelport.serving.protocols.jsonbody import check_keys, expect_object, json_type, load_json
from modelport.serving.protocols.payloads import (
    DEFAULT_MAX_ROWS,
    check_rows,
    columns_to_tensors,
    dump_predictions,
    records_to_tensors,
    render_error,
    rows_or_records,
    split_to_tensors,
    to_array,
)
from modelport.serving.types import InferenceRequest, InferenceResponse, Tensor
from modelport.uri import validate_name

CONTENT_TYPE_JSON = "application/json"
CONTENT_TYPE_CSV = "text/csv"
ACCEPTED_CONTENT_TYPES = (CONTENT_TYPE_JSON, CONTENT_TYPE_CSV)
INPUT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
PARAMS_KEY = "params"
LEGACY_FORMATS = ("pandas-split", "pandas-records")

_ACCEPTED_TEXT = (
    "accepted: application/json (optionally with charset=utf-8 and "
    "format=pandas-split or format=pandas-records) and text/csv"
)
_KEYS_TEXT = ", ".join(INPUT_KEYS)


def _content_type(content_type: str | None) -> tuple[str, str | None]:
    """(media type, legacy format or None) from a Content-Type header, or a 415."""
    if content_type is None or not content_type.strip():
        return CONTENT_TYPE_JSON, None
    media, *raw_params = content_type.split(";")
    media = media.strip().lower()
    if media not in ACCEPTED_CONTENT_TYPES:
        raise UnsupportedMediaTypeError(
            f"unsupported Content-Type {media[:80]!r}; {_ACCEPTED_TEXT}"
        )
    params: dict[str, str] = {}
    for raw in raw_params:
        if not raw.strip():
            continue  # "application/json;" as MLflow's own docs send it
        key, sep, value = raw.partition("=")
        key, value = key.strip().lower(), value.strip().strip('"').strip()
        if not sep or not key:
            raise UnsupportedMediaTypeError(
                f"malformed Content-Type parameter {raw.strip()[:80]!r}; {_ACCEPTED_TEXT}"
            )
        params[key] = value
    charset = params.pop("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaTypeError(
            f"unsupported charset {charset[:40]!r}: the scoring server only accepts UTF-8"
        )
    legacy = params.pop("format", None)
    if params:
        names = ", ".join(repr(k[:40]) for k in sorted(params))
        raise UnsupportedMediaTypeError(
            f"unrecognized Content-Type parameter(s) {names}; {_ACCEPTED_TEXT}"
        )
    if legacy is not None:
        legacy = legacy.lower()
        if media != CONTENT_TYPE_JSON or legacy not in LEGACY_FORMATS:
            raise UnsupportedMediaTypeError(
                f"unsupported format {legacy[:40]!r} for {media}; {_ACCEPTED_TEXT}"
            )
    return media, legacy


def parse_invocations(
    body: bytes,
    content_type: str | None,
    *,
    model: str,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> InferenceRequest:
    """An ``/invocations`` body → one request for ``model``.

    Raises InvalidInputError (400), PayloadTooLargeError (413) or
    UnsupportedMediaTypeError (415), each with a precise message.
    """
    validate_name(model)
    media, legacy = _content_type(content_type)
    if media == CONTENT_TYPE_CSV:
        return InferenceRequest(model=model, inputs=_parse_csv(body, max_rows))
    inputs, parameters = _parse_json(load_json(body), legacy, max_rows)
    return InferenceRequest(model=model, inputs=inputs, parameters=parameters)


def _parse_json(
    value: Any, legacy: str | None, max_rows: int
) -> tuple[list[Tensor], dict[str, Any]]:
    wrapped = isinstance(value, dict) and any(key in value for key in INPUT_KEYS)
    if legacy == "pandas-split" and not wrapped:
        where = "the body (format=pandas-split)"
        return split_to_tensors(value, where=where, max_rows=max_rows), {}
    if legacy == "pandas-records" and not wrapped:
        where = "the body (format=pandas-records)"
        return records_to_tensors(value, where=where, max_rows=max_rows), {}
    if not isinstance(value, dict):
        raise InvalidInputError(
            f"the JSON body must be an object with exactly one of the keys {_KEYS_TEXT}, "
            f'got {json_type(value)} (MLflow 2 wraps data, e.g. {{"dataframe_records": [...]}})'
        )
    present = [key for key in INPUT_KEYS if key in value]
    if len(present) != 1:
        got = ", ".join(present) if present else "none of them"
        raise InvalidInputError(
            f"the JSON body must have exactly one of the keys {_KEYS_TEXT}; got {got}"
        )
    check_keys(value, (*INPUT_KEYS, PARAMS_KEY), "the JSON body")
    params = value.get(PARAMS_KEY)
    if params is None:
        params = {}
    params = expect_object(params, "'params'")
    key = present[0]
    data = value[key]
    if key == "dataframe_split":
        inputs = split_to_tensors(data, where=key, max_rows=max_rows)
    elif key == "dataframe_records":
        inputs = records_to_tensors(data, where=key, max_rows=max_rows)
    elif key == "inputs" and isinstance(data, dict):
        inputs = columns_to_tensors(data, where=key, max_rows=max_rows)
    elif key == "inputs" and not isinstance(data, list):
        raise InvalidInputError(
            f"inputs must be an array (rows, or records) or an object of columns, "
            f"got {json_type(data)}"
        )
    else:
        inputs = rows_or_records(data, where=key, max_rows=max_rows)
    return inputs, dict(params)


_NATIVE_DTYPES = frozenset({"int64", "float64", "bool"})


def _parse_csv(body: bytes, max_rows: int) -> list[Tensor]:
    """One tensor per CSV column (header row = names), dtypes as pandas infers them."""
    import pandas as pd  # only here: CSV is the one format pandas parses for us

    raw = bytes(body)
    try:
        # pandas silently turns the first field into the index when the first data row has
        # one field more than the header, shifting every column; read the header and first
        # row without header semantics first, so that such a row is a tokenizing error.
        pd.read_csv(io.BytesIO(raw), header=None, nrows=2, dtype=str, encoding="utf-8")
        frame = pd.read_csv(io.BytesIO(raw), encoding="utf-8", nrows=max_rows + 1)
    except pd.errors.EmptyDataError:
        raise InvalidInputError(
            "text/csv: the body is empty; expected a header row of column names and data rows"
        ) from None
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"text/csv: the body is not valid UTF-8 (byte {exc.start})"
        ) from None
    except Exception as exc:  # pandas' parser raises many types on malformed input
        detail = " ".join(str(exc).split())[:200]
        raise InvalidInputError(f"text/csv: malformed CSV: {detail}") from None
    check_rows(len(frame), "text/csv", max_rows)
    tensors = []
    for name in frame.columns:
        column = frame[name]
        label = str(name)
        if str(column.dtype) in _NATIVE_DTYPES:
            data = column.to_numpy(copy=True)
        else:  # strings (with NaN for empty cells), very large integers, ...
            data = to_array(column.tolist(), f"text/csv: column {label[:80]!r}")
        tensors.append(Tensor(label, data))
    return tensors


def render_predictions(response: InferenceResponse) -> bytes:
    """``{"predictions": ...}`` (one output: its values; several: one object per row)."""
    return dump_predictions(response.outputs)


def ping_body() -> bytes:
    """What MLflow's ``/ping`` and ``/health`` answer: a newline."""
    return b"\n"


def version_body(version: str) -> bytes:
    """What MLflow's ``/version`` answers: the bare version string (not JSON-quoted)."""
    return str(version).encode("utf-8")


__all__ = [
    "ACCEPTED_CONTENT_TYPES",
    "INPUT_KEYS",
    "parse_invocations",
    "ping_body",
    "render_error",
    "render_predictions",
    "version_body",
]
