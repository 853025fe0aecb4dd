"""Dataset content in and out: CSV or Parquet files, frames, and the bytes stored.

A file is hashed as a stream first (so re-registering a file already stored costs one
pass over the disk and no memory), then read once; the frame is parsed from those very
bytes, so what is profiled is exactly what is stored, even if the file changes
meanwhile. Frames are stored as Parquet.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.errors import InvalidInputError

if TYPE_CHECKING:  # pandas is imported when data is read, not with the CLI
    import pandas as pd

FORMATS = {".csv": "csv", ".parquet": "parquet"}
MAX_FILE_BYTES = 4 << 30  # the artifact store takes whole objects: refuse what cannot fit
_CHUNK = 1 << 20


def file_format(path: Path) -> str:
    """``csv`` or ``parquet`` from the file's suffix (InvalidInputError otherwise)."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InvalidInputError(
            f"unsupported dataset file type {path.suffix or '(none)'} for {path.name}; "
            f"use {' or '.join(FORMATS)}")
    return fmt


def _check_file(path: Path) -> int:
    if not path.is_file():
        raise InvalidInputError(f"dataset file not found: {path}")
    size = path.stat().st_size
    if size == 0:
        raise InvalidInputError(f"dataset file {path.name} is empty")
    if size > MAX_FILE_BYTES:
        raise InvalidInputError(f"dataset file {path.name} is larger than "
                                f"{MAX_FILE_BYTES >> 30} GiB")
    return size


def file_digest(path: Path) -> str:
    """``sha256:<hex>`` of the file, read in 1 MiB chunks."""
    _check_file(path)
    h = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                h.update(chunk)
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path.name}: {exc}") from exc
    return "sha256:" + h.hexdigest()


def read_file(path: Path) -> bytes:
    """The file's bytes (checked: exists, not empty, within the size cap)."""
    _check_file(path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path.name}: {exc}") from exc


def parse(data: bytes, fmt: str, what: str) -> pd.DataFrame:
    """The frame held by ``data`` (a CSV or Parquet file's bytes); a file that does not
    parse, or holds no columns or no rows, is an InvalidInputError naming ``what``."""
    import pandas as pd

    try:
        if fmt == "csv":
            # pandas' default parser reads back the exact floats written (round trip), so
            # a file and the frame it was written from have one fingerprint.
            frame = pd.read_csv(io.BytesIO(data))
        elif fmt == "parquet":
            frame = pd.read_parquet(io.BytesIO(data))
        else:
            raise InvalidInputError(f"unknown dataset format {fmt!r}")
    except InvalidInputError:
        raise
    except pd.errors.EmptyDataError:
        raise InvalidInputError(f"{what} holds no data") from None
    except Exception as exc:  # pandas' and pyarrow's parser errors have no common base
        raise InvalidInputError(f"cannot read {what} as {fmt.upper()}: {exc}") from exc
    return check_frame(frame, what)


def check_frame(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    """``frame`` if it has named, distinct columns and at least one row."""
    if frame.shape[1] == 0:
        raise InvalidInputError(f"{what} has no columns")
    if len(frame) == 0:
        raise InvalidInputError(f"{what} has no rows")
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InvalidInputError(f"{what}: column {dup!r} appears twice")
    if names != list(frame.columns):
        frame = frame.set_axis(names, axis=1)
    return frame


def as_frame(data: Any, what: str) -> pd.DataFrame:
    """A DataFrame of ``data`` (DataFrame, Series, dict of columns, 1-D/2-D array);
    unnamed array columns are ``f0``, ``f1``, ... as the profiles name them."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return check_frame(data, what)
    from modelport.monitoring.columns import as_columns

    columns = as_columns(data, what)
    return check_frame(pd.DataFrame({k: v.to_numpy() for k, v in columns.items()}), what)


def frame_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as Parquet bytes (no index)."""
    buf = io.BytesIO()
    try:
        frame.to_parquet(buf, index=False)
    except Exception as exc:  # pyarrow refuses some object columns (mixed types)
        raise InvalidInputError(f"the data cannot be stored as Parquet: {exc}") from exc
    return buf.getvalue()


def schema_of(frame: pd.DataFrame) -> list[dict[str, str]]:
    """``[{"name", "dtype"}]`` per column, in order."""
    return [{"name": str(c), "dtype": str(t)} for c, t in zip(frame.columns, frame.dtypes,
                                                              strict=True)]


def display_name(path: str | os.PathLike[str]) -> str:
    """The file name kept as a version's ``source`` (never the full local path)."""
    return Path(path).name[:255]


__all__ = ["FORMATS", "MAX_FILE_BYTES", "as_frame", "check_frame", "display_name",
           "file_digest", "file_format", "frame_bytes", "parse", "read_file", "schema_of"]
