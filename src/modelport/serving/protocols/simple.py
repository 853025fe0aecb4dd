"""The simplest protocol: ``POST /predict`` with ``{"features": ...}``.

- ``{"features": [[1.0, 2.0], [3.0, 4.0]]}``: rows → one ``input-0`` tensor ``[rows, n]``.
- ``{"features": [1.0, 2.0]}``: a single flat row → ``[1, n]`` (unlike the shared rows
  convention, where a flat list is one value per row: here it is one row's features).
- ``{"features": [{"a": 1.0, "b": 2.0}, ...]}``: records → one tensor per column.

Values are scalars (numbers, strings, booleans, null): rows are at most two levels deep
and record values are not arrays. Answers ``{"predictions": [...]}``.
"""

from __future__ import annotations

from modelport.errors import InvalidInputError
from modelport.serving.protocols import fast
from modelport.serving.protocols.jsonbody import check_keys, expect_object, json_type, load_json
from modelport.serving.protocols.payloads import (
    DEFAULT_MAX_ROWS,
    ROWS_INPUT_NAME,
    dump_predictions,
    records_to_tensors,
    render_error,
    rows_to_tensor,
)
from modelport.serving.types import InferenceRequest, InferenceResponse
from modelport.uri import validate_name

FEATURES_KEY = "features"
_EXAMPLE = '{"features": [[1.0, 2.0], [3.0, 4.0]]}'


def parse_predict(body: bytes, *, model: str, max_rows: int = DEFAULT_MAX_ROWS) -> InferenceRequest:
    """A ``/predict`` body → one request for ``model``; 400 or 413 on malformed input."""
    validate_name(model)
    if type(body) is bytes:
        quick = fast.predict_rows(body, model, max_rows, ROWS_INPUT_NAME)
        if quick is not None:
            return quick
    obj = expect_object(load_json(body), "the request body")
    if FEATURES_KEY not in obj:
        raise InvalidInputError(f'the JSON body needs a "features" key, e.g. {_EXAMPLE}')
    check_keys(obj, (FEATURES_KEY,), "the JSON body")
    features = obj[FEATURES_KEY]
    if not isinstance(features, list):
        raise InvalidInputError(
            f"features must be an array of rows, of records or one flat row, "
            f"got {json_type(features)}"
        )
    if features and all(isinstance(v, dict) for v in features):
        inputs = records_to_tensors(features, where=FEATURES_KEY, max_rows=max_rows, max_ndim=1)
        return InferenceRequest(model=model, inputs=inputs)
    dicts = [i for i, v in enumerate(features) if isinstance(v, dict)]
    if dicts:
        raise InvalidInputError(
            f"features: element {dicts[0]} is an object but others are not; send either "
            "rows (arrays) or records (objects)"
        )
    if features and not any(isinstance(v, list) for v in features):
        features = [features]  # one flat row
    tensor = rows_to_tensor(features, where=FEATURES_KEY, max_rows=max_rows, max_ndim=2)
    return InferenceRequest(model=model, inputs=[tensor])


def render_predict(response: InferenceResponse) -> bytes:
    """``{"predictions": [...]}`` (one output: its values; several: one object per row)."""
    return dump_predictions(response.outputs)


__all__ = ["parse_predict", "render_error", "render_predict"]
