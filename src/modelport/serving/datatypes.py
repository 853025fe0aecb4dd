"""Open Inference Protocol datatypes and their numpy equivalents."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.errors import InvalidInputError

OIP_TO_NUMPY: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
NUMPY_TO_OIP: dict[str, str] = {str(v): k for k, v in OIP_TO_NUMPY.items() if k != "BYTES"}


def numpy_dtype(datatype: str) -> np.dtype[Any]:
    """The numpy dtype for an OIP datatype string, or a precise 400 error."""
    try:
        return OIP_TO_NUMPY[datatype]
    except (KeyError, TypeError):
        raise InvalidInputError(
            f"unknown datatype {str(datatype)[:40]!r}; expected one of {', '.join(OIP_TO_NUMPY)}"
        ) from None


def oip_datatype(dtype: np.dtype[Any]) -> str:
    """The OIP datatype for a numpy dtype (strings and objects are BYTES)."""
    if dtype.kind in ("U", "S", "O"):
        return "BYTES"
    return NUMPY_TO_OIP.get(str(dtype), "FP64")
