"""Tabular data in and out of files (CSV, JSON, Parquet) and training-data fingerprints."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from modelport.errors import InvalidInputError

SUPPORTED = (".csv", ".json", ".parquet")


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise InvalidInputError(
            f"unsupported file type {suffix or '(none)'} for {path.name}; "
            f"use one of {', '.join(SUPPORTED)}"
        )
    return suffix


def read_table(path: str | Path) -> Any:
    """Read a whole CSV, JSON (records, split or columns) or Parquet file as a DataFrame."""
    import pandas as pd

    p = Path(path)
    suffix = _suffix(p)
    if not p.is_file():
        raise InvalidInputError(f"input file not found: {p}")
    try:
        if suffix == ".csv":
            return pd.read_csv(p)
        if suffix == ".parquet":
            return pd.read_parquet(p)
        return json_to_frame(orjson.loads(p.read_bytes()))
    except InvalidInputError:
        raise
    except (ValueError, OSError, orjson.JSONDecodeError) as exc:
        raise InvalidInputError(f"cannot read {p.name}: {exc}") from exc
    except Exception as exc:  # pyarrow/pandas parser errors have no common base
        raise InvalidInputError(f"cannot read {p.name}: {exc}") from exc


def iter_table(path: str | Path, chunk_rows: int) -> Iterator[Any]:
    """Yield a file in DataFrame chunks of at most ``chunk_rows`` rows (bounded memory)."""
    import pandas as pd

    p = Path(path)
    suffix = _suffix(p)
    if not p.is_file():
        raise InvalidInputError(f"input file not found: {p}")
    try:
        if suffix == ".csv":
            yield from pd.read_csv(p, chunksize=chunk_rows)
        elif suffix == ".parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(p).iter_batches(batch_size=chunk_rows):
                yield batch.to_pandas()
        else:
            frame = read_table(p)
            for start in range(0, len(frame), chunk_rows):
                yield frame.iloc[start : start + chunk_rows]
    except InvalidInputError:
        raise
    except Exception as exc:  # parser errors from pandas/pyarrow
        raise InvalidInputError(f"cannot read {p.name}: {exc}") from exc


def count_rows(path: str | Path) -> int | None:
    """Row count when it is cheap to know (Parquet metadata, CSV line count), else None.

    Only a progress hint: an unreadable file gives None here and a precise error later,
    when it is actually read.
    """
    p = Path(path)
    try:
        if p.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(p).metadata.num_rows)
        if p.suffix.lower() == ".csv":
            with p.open("rb") as fh:
                lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
                return max(lines - 1, 0)
    except Exception:  # OSError, pyarrow's ArrowInvalid: no common base
        return None
    return None


def json_to_frame(payload: Any) -> Any:
    """A DataFrame from JSON records, ``{"columns", "data"}`` (split) or columns."""
    import pandas as pd

    if isinstance(payload, list):
        if payload and all(isinstance(r, dict) for r in payload):
            return pd.DataFrame.from_records(payload)
        return pd.DataFrame(payload)
    if isinstance(payload, dict):
        if "columns" in payload and "data" in payload:
            return pd.DataFrame(payload["data"], columns=payload["columns"])
        return pd.DataFrame(payload)
    raise InvalidInputError("JSON input must be a list of records or an object of columns")


def write_table(frame: Any, path: str | Path) -> None:
    """Write a DataFrame as CSV, JSON records or Parquet, atomically."""
    import os

    p = Path(path)
    suffix = _suffix(p)
    tmp = p.with_name(f".{p.name}.tmp")
    if suffix == ".csv":
        frame.to_csv(tmp, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    else:
        records = frame.to_dict(orient="records")
        tmp.write_bytes(orjson.dumps(records, option=orjson.OPT_SERIALIZE_NUMPY))
    os.replace(tmp, p)


def fingerprint(data: Any) -> dict[str, Any]:
    """A content fingerprint of training data: sha256 over schema and values, plus shape."""
    import numpy as np

    h = hashlib.sha256()
    if type(data).__name__ == "DataFrame":
        import pandas as pd

        columns = [str(c) for c in data.columns]
        h.update(orjson.dumps([columns, [str(t) for t in data.dtypes]]))
        h.update(pd.util.hash_pandas_object(data, index=False).to_numpy().tobytes())
        return {"fingerprint": "sha256:" + h.hexdigest(), "rows": len(data),
                "columns": columns, "kind": "dataframe"}
    arr = np.ascontiguousarray(np.asarray(data))
    if arr.dtype == object:
        raise InvalidInputError("training_data must be a DataFrame or a numeric array")
    h.update(orjson.dumps([str(arr.dtype), list(arr.shape)]))
    h.update(arr.tobytes())
    return {"fingerprint": "sha256:" + h.hexdigest(), "rows": int(arr.shape[0]) if arr.ndim else 1,
            "shape": list(arr.shape), "kind": "array"}


def example_to_json(example: Any, max_rows: int = 5) -> bytes:
    """A few rows of an input example as JSON (``{"columns", "data"}`` or ``{"data"}``)."""
    import numpy as np

    if type(example).__name__ == "DataFrame":
        head = example.head(max_rows)
        return orjson.dumps(
            {"columns": [str(c) for c in head.columns], "data": head.to_numpy().tolist()},
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
    arr = np.asarray(example)[:max_rows]
    return orjson.dumps({"data": arr.tolist()}, option=orjson.OPT_SERIALIZE_NUMPY)


def example_from_json(raw: bytes) -> Any:
    """The inverse of :func:`example_to_json`."""
    import numpy as np

    payload = orjson.loads(raw)
    if "columns" in payload:
        import pandas as pd

        return pd.DataFrame(payload["data"], columns=payload["columns"])
    return np.asarray(payload["data"])
