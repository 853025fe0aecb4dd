"""Model signatures: inferred from an input example, enforced before every predict.

A signature is plain JSON so it lives in the registry and the manifest alike::

    {"inputs":  {"type": "dataframe", "columns": [{"name": "x1", "dtype": "float64"}, ...]},
     "outputs": {"type": "tensor", "dtype": "int64", "shape": [-1]}}

Enforcement says precisely what is wrong (which column, expected vs got) and only
performs casts that lose nothing (int to float, float32 to float64).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.errors import SignatureError

Schema = dict[str, Any]


def _dtype_name(dtype: Any) -> str:
    if str(dtype) in ("string", "str", "category"):  # pandas extension dtypes
        return "string"
    try:
        dt = np.dtype(dtype)
    except TypeError:
        return "object"
    if dt.kind in ("U", "S"):
        return "string"
    return "object" if dt.kind == "O" else str(dt)


def _is_frame(obj: Any) -> bool:
    return type(obj).__name__ == "DataFrame" and hasattr(obj, "columns")


def infer_schema(example: Any) -> Schema:
    """The schema of a pandas DataFrame, Series, numpy array or list example."""
    if _is_frame(example):
        columns = []
        for name, dtype in example.dtypes.items():
            spec: dict[str, Any] = {"name": str(name), "dtype": _dtype_name(dtype)}
            if spec["dtype"].startswith("float"):
                spec["allow_nan"] = bool(example[name].isna().any())
            columns.append(spec)
        return {"type": "dataframe", "columns": columns}
    if type(example).__name__ == "Series":
        example = example.to_numpy()
    arr = np.asarray(example)
    if arr.ndim == 0:
        raise SignatureError("an input example must have at least one row")
    schema: Schema = {"type": "tensor", "dtype": _dtype_name(arr.dtype),
                      "shape": [-1, *arr.shape[1:]]}
    if arr.dtype.kind == "f":
        # Non-finite values are refused at predict time unless the example had some: most
        # models fail on NaN, and a clear 400 beats a model crash.
        schema["allow_nan"] = bool(not np.isfinite(arr).all())
    return schema


def infer_signature(input_example: Any, output_example: Any | None = None) -> dict[str, Any]:
    """A signature from an input example and, optionally, the model's output on it."""
    sig: dict[str, Any] = {"inputs": infer_schema(input_example)}
    if output_example is not None:
        if isinstance(output_example, dict):
            sig["outputs"] = {k: infer_schema(v) for k, v in output_example.items()}
        else:
            sig["outputs"] = infer_schema(output_example)
    return sig


def castable(got: np.dtype[Any], expected: str) -> bool:
    if expected in ("object", "string"):
        return got.kind in ("O", "U", "S")
    exp = np.dtype(expected)
    if got.kind == "O":
        return False
    if got == exp:
        return True
    if got.kind == "b" and exp.kind in ("i", "u", "f"):
        return True
    # Integers into floats are accepted even where precision could in theory shrink
    # (int64 -> float32): JSON clients send whole numbers for float features all the time.
    if got.kind in ("i", "u") and exp.kind == "f":
        return True
    return bool(np.can_cast(got, exp, casting="safe"))


def enforce(schema: Schema | None, data: Any) -> Any:
    """Check ``data`` against an input schema and return it in the schema's layout."""
    if schema is None:
        return data
    if schema.get("type") == "dataframe":
        return _enforce_frame(schema, data)
    return _enforce_tensor(schema, data)


def check_finite(values: np.ndarray[Any, Any], spec: dict[str, Any], what: str) -> None:
    """Refuse NaN/Infinity in a float input unless the spec allows them."""
    if values.dtype.kind == "f" and not spec.get("allow_nan", False):
        finite = np.isfinite(values)
        if not finite.all():
            row = int(np.argwhere(~finite)[0][0])
            raise SignatureError(
                f"{what} contains NaN or infinity (first at row {row}), "
                "which this model's signature does not allow"
            )


def _as_frame(columns: list[dict[str, Any]], data: Any) -> Any:
    import pandas as pd

    if _is_frame(data):
        return data
    if isinstance(data, dict):
        try:
            return pd.DataFrame(data)
        except ValueError as exc:
            raise SignatureError(f"cannot build a table from the input columns: {exc}") from exc
    arr = np.asarray(data, dtype=object) if isinstance(data, list) else np.asarray(data)
    if arr.ndim == 1 and len(columns) == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise SignatureError(
            f"expected a table of {len(columns)} columns, got an array of shape {list(arr.shape)}"
        )
    if arr.shape[1] != len(columns):
        raise SignatureError(
            f"expected {len(columns)} columns ({', '.join(c['name'] for c in columns)}), "
            f"got {arr.shape[1]}"
        )
    frame = pd.DataFrame(arr, columns=[c["name"] for c in columns])
    if arr.dtype == object:
        frame = frame.infer_objects()
    return frame


def _enforce_frame(schema: Schema, data: Any) -> Any:
    columns: list[dict[str, Any]] = schema["columns"]
    frame = _as_frame(columns, data)
    present = {str(c) for c in frame.columns}
    missing = [c["name"] for c in columns if c["name"] not in present]
    if missing:
        raise SignatureError(
            f"missing column{'s' if len(missing) > 1 else ''} "
            + ", ".join(repr(m) for m in missing)
            + f" (the model expects {', '.join(c['name'] for c in columns)})"
        )
    if frame.shape[0] == 0:
        raise SignatureError("the input has no rows")
    frame = frame[[c["name"] for c in columns]] if list(frame.columns) != [
        c["name"] for c in columns
    ] else frame
    casts: dict[str, str] = {}
    for col in columns:
        got = frame[col["name"]].dtype
        expected = col["dtype"]
        got_np = got if isinstance(got, np.dtype) else np.dtype("O")
        if not castable(got_np, expected):
            raise SignatureError(
                f"column {col['name']!r}: expected {expected}, got {_dtype_name(got_np)}"
            )
        if expected not in ("object", "string") and got_np != np.dtype(expected):
            casts[col["name"]] = expected
    frame = frame.astype(casts) if casts else frame
    for col in columns:
        if col["dtype"].startswith("float"):
            check_finite(frame[col["name"]].to_numpy(), col, f"column {col['name']!r}")
    return frame


def _enforce_tensor(schema: Schema, data: Any) -> np.ndarray[Any, Any]:
    if _is_frame(data):
        data = data.to_numpy()
    try:
        arr = np.asarray(data)
    except ValueError as exc:  # ragged nested lists
        raise SignatureError(f"input is not a rectangular array: {exc}") from exc
    shape = schema.get("shape") or [-1]
    if arr.ndim == len(shape) - 1 and arr.ndim >= 1:
        arr = arr.reshape(1, *arr.shape)  # a single row without its batch dimension
    if arr.ndim != len(shape):
        raise SignatureError(
            f"expected an array of shape {shape}, got shape {list(arr.shape)}"
        )
    for i, (want, got) in enumerate(zip(shape, arr.shape, strict=True)):
        if want != -1 and want != got:
            raise SignatureError(
                f"dimension {i}: expected {want}, got {got} (expected shape {shape}, "
                f"got {list(arr.shape)})"
            )
    if arr.shape[0] == 0:
        raise SignatureError("the input has no rows")
    return cast_values(arr, schema)


def cast_values(
    values: np.ndarray[Any, Any], spec: dict[str, Any], what: str | None = None
) -> np.ndarray[Any, Any]:
    """``values`` cast losslessly to ``spec["dtype"]`` and checked for NaN/Infinity.

    ``what`` names the column in messages; without it the values are the whole input.
    """
    expected = spec["dtype"]
    if not castable(values.dtype, expected):
        got = _dtype_name(values.dtype)
        raise SignatureError(f"{what}: expected {expected}, got {got}" if what
                             else f"expected dtype {expected}, got {got}")
    if expected not in ("object", "string") and values.dtype != np.dtype(expected):
        values = values.astype(expected)
    check_finite(values, spec, what or "the input")
    return values
