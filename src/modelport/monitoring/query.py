"""Reading the monitoring store with DuckDB, skipping files that cannot be read.

A file is skipped (with a warning, and listed in ``Scan.skipped``) when its Parquet
footer cannot be read (truncated, not Parquet) or when DuckDB fails on its data;
the query then runs over the remaining files. Nothing here raises for a bad file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelport.errors import InvalidInputError
from modelport.monitoring.layout import LABELS, PREDICTIONS, as_utc, list_files
from modelport.uri import validate_name

log = logging.getLogger("modelport.monitoring")
_HIVE = "hive_partitioning=true, union_by_name=true, " \
        "hive_types={'endpoint': VARCHAR, 'date': DATE}"


@dataclass
class Scan:
    """The readable files of one endpoint and window, and the ones skipped (why)."""

    files: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def source(self) -> str:
        """The ``read_parquet`` table expression over the files (parameter ``$files``)."""
        return f"read_parquet($files, {_HIVE})"

    def skip(self, path: Path, why: str) -> None:
        """Leave ``path`` out of every further query, with a warning."""
        log.warning("skipping unreadable monitoring file %s: %s", path, why)
        self.files = [f for f in self.files if f != path]
        self.skipped.append((path, why))


def connect() -> Any:
    """A fresh in-memory DuckDB connection that speaks UTC."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def scan(root: str | Path, kind: str, endpoint: str, since: datetime | None = None,
         until: datetime | None = None) -> Scan:
    """The files of ``endpoint`` for [since, until], footers checked."""
    import pyarrow.parquet as pq

    validate_name(endpoint, "endpoint name")
    found = Scan(list_files(Path(root), kind, endpoint, since, until))
    for path in list(found.files):
        try:
            pq.read_metadata(path)
        except Exception as exc:  # ArrowInvalid, OSError: no common base
            found.skip(path, str(exc))
    return found


def run(con: Any, found: Scan, sql: Callable[[str], str], params: dict[str, Any]) -> Any:
    """``sql(source)`` as an Arrow table; a file DuckDB chokes on is skipped and the
    query retried (None when no readable file is left)."""
    import duckdb

    while found.files:
        query = sql(found.source())
        # DuckDB refuses parameters a query does not use: pass only the ones it names.
        used = {k: v for k, v in params.items() if f"${k}" in query}
        try:
            return con.sql(query, params={**used, "files": [str(f) for f in found.files]}
                           ).to_arrow_table()
        except duckdb.Error as exc:
            bad = _culprit(con, found)
            if bad is None:
                raise
            found.skip(bad, str(exc).splitlines()[0])
    return None


def _culprit(con: Any, found: Scan) -> Path | None:
    import duckdb

    for path in found.files:
        try:
            con.sql(f"SELECT * FROM read_parquet($f, {_HIVE})",  # noqa: S608 constant
                    params={"f": [str(path)]}
                    ).to_arrow_table()
        except duckdb.Error:
            return path
    return None


def window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """[since, until) in UTC; ``until`` defaults to now, ``since`` to the epoch."""
    end = as_utc(until) if until is not None else datetime.now(UTC)
    start = as_utc(since) if since is not None else datetime(1970, 1, 1, tzinfo=UTC)
    if start > end:
        raise InvalidInputError(f"the window starts ({start:%Y-%m-%d %H:%M:%S}) after it "
                                f"ends ({end:%Y-%m-%d %H:%M:%S})")
    return start, end


def read_predictions(root: str | Path, endpoint: str, since: datetime | None = None,
                     until: datetime | None = None, version: int | None = None) -> Any:
    """Logged predictions of ``endpoint`` with ``since <= ts < until`` as a pyarrow Table
    (``.to_pandas()`` for a DataFrame), in time order; empty when nothing is logged."""
    import pyarrow as pa

    start, end = window(since, until)
    found = scan(root, PREDICTIONS, endpoint, start, end)
    where = "ts >= $since AND ts < $until" + (" AND version = $version"
                                              if version is not None else "")
    params: dict[str, Any] = {"since": start, "until": end}
    if version is not None:
        params["version"] = int(version)
    # Only constant SQL is formatted in; every value is a query parameter.
    table = run(connect(), found, lambda src: f"SELECT * FROM {src} WHERE {where} "  # noqa: S608
                "ORDER BY ts, request_id, row", params)
    return table if table is not None else pa.table(
        {"request_id": pa.array([], pa.string()), "row": pa.array([], pa.int32()),
         "version": pa.array([], pa.int64()), "variant": pa.array([], pa.string()),
         "ts": pa.array([], pa.timestamp("us", tz="UTC")),
         "latency_ms": pa.array([], pa.float64())})


def read_labels(root: str | Path, endpoint: str, since: datetime | None = None,
                until: datetime | None = None) -> Any:
    """Labels of ``endpoint`` received in [since, until), every copy (duplicates too),
    oldest first; ``label`` holds each value as JSON text."""
    import pyarrow as pa

    start, end = window(since, until)
    found = scan(root, LABELS, endpoint, start, end)
    table = run(connect(), found, lambda src: f"SELECT * FROM {src} WHERE "  # noqa: S608
                "received_at >= $since AND received_at < $until ORDER BY received_at, seq",
                {"since": start, "until": end})
    return table if table is not None else pa.table(
        {"request_id": pa.array([], pa.string()), "row": pa.array([], pa.int32()),
         "label": pa.array([], pa.string()),
         "received_at": pa.array([], pa.timestamp("us", tz="UTC")),
         "seq": pa.array([], pa.int64())})


__all__ = ["Scan", "connect", "read_labels", "read_predictions", "run", "scan", "window"]
