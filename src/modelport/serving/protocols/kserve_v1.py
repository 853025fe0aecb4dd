"""KServe V1 / TF-Serving REST protocol (``POST /v1/models/{name}:predict``).

- Row format: ``{"instances": [...]}``, a list of rows (→ one ``input-0`` tensor) or a
  list of objects (→ one tensor per key).
- Columnar format (TF-Serving): ``{"inputs": {"name": [value per row, ...], ...}}`` (→ one
  tensor per name), or ``{"inputs": [...]}`` read like ``instances``.
- ``signature_name`` is accepted and ignored. Any other key is a 400.

Answers ``{"predictions": [...]}``; errors ``{"error": "..."}``.
"""

from __future__ import annotations

from typing import Any

from modelport.errors import InvalidInputError
from modelport.serving.protocols.jsonbody import check_keys, expect_object, json_type, load_json
from modelport.serving.protocols.payloads import (
    DEFAULT_MAX_ROWS,
    columns_to_tensors,
    dump_predictions,
    render_error,
    rows_or_records,
)
from modelport.serving.types import InferenceRequest, InferenceResponse
from modelport.uri import validate_name

INPUT_KEYS = ("instances", "inputs")
ALLOWED_KEYS = (*INPUT_KEYS, "signature_name")


def parse_predict(body: bytes, *, model: str, max_rows: int = DEFAULT_MAX_ROWS) -> InferenceRequest:
    """A ``:predict`` body → one request for ``model``; 400 or 413 on malformed input."""
    validate_name(model)
    obj = expect_object(load_json(body), "the request body")
    present = [key for key in INPUT_KEYS if key in obj]
    if len(present) != 1:
        got = "both" if present else "neither"
        raise InvalidInputError(
            f'the JSON body must have exactly one of "instances" (rows or records) and '
            f'"inputs" (columns); got {got}'
        )
    check_keys(obj, ALLOWED_KEYS, "the JSON body")
    key = present[0]
    data: Any = obj[key]
    if key == "inputs" and isinstance(data, dict):
        inputs = columns_to_tensors(data, where=key, max_rows=max_rows)
    elif key == "inputs" and not isinstance(data, list):
        raise InvalidInputError(
            f"inputs must be an object of named columns or an array of rows, got {json_type(data)}"
        )
    else:
        inputs = rows_or_records(data, where=key, max_rows=max_rows)
    return InferenceRequest(model=model, inputs=inputs)


def render_predict(response: InferenceResponse) -> bytes:
    """``{"predictions": ...}`` (one output: its values; several: one object per row)."""
    return dump_predictions(response.outputs)


def model_status(name: str, ready: bool) -> dict[str, Any]:
    """The body of ``GET /v1/models/{name}``."""
    return {"name": name, "ready": bool(ready)}


__all__ = ["model_status", "parse_predict", "render_error", "render_predict"]
