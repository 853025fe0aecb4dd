"""Where the monitoring store keeps its Parquet files, and how they are written and pruned.

Hive-style partitions, so DuckDB and pyarrow datasets read ``endpoint`` and ``date`` as
columns and skip whole days a query does not need::

    <root>/predictions/endpoint=iris/date=2026-12-01/<worker>-<run>-<seq>.parquet
    <root>/labels/endpoint=iris/date=2026-12-01/<writer>-<run>-<seq>.parquet

Every file is written to a hidden temporary name in its partition and renamed into
place, so a reader sees a whole file or none; ``<run>`` is random per writer object, so
a restarted worker with the same id never overwrites its earlier files. Days are UTC.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.errors import InvalidInputError

if TYPE_CHECKING:
    from modelport.config import Settings

log = logging.getLogger("modelport.monitoring")

PREDICTIONS = "predictions"
LABELS = "labels"
KINDS = (PREDICTIONS, LABELS)
_WORKER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._]{0,63}")
_DATE_RE = re.compile(r"date=(\d{4}-\d{2}-\d{2})")
#: Temporary files older than this are leftovers of a crashed writer.
STALE_TMP_SECONDS = 3600.0


def default_root(settings: Settings) -> Path:
    """``$MODELPORT_MONITORING``, else ``monitoring_root`` in config.toml, else
    ``<home>/monitoring``."""
    raw = os.environ.get("MODELPORT_MONITORING") or settings.extra.get("monitoring_root")
    return Path(str(raw)).expanduser() if raw else settings.home / "monitoring"


def validate_worker_id(worker_id: str) -> str:
    """A worker id goes into file names: 1-64 of A-Z a-z 0-9 . _ (no '-', the separator)."""
    if not isinstance(worker_id, str) or not _WORKER_RE.fullmatch(worker_id):
        raise InvalidInputError(
            f"invalid worker id {str(worker_id)[:80]!r}: use 1-64 characters from "
            "A-Z a-z 0-9 . _, starting with a letter or digit")
    return worker_id


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC (a naive datetime is taken to be UTC already)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def day_of(epoch_seconds: float) -> date:
    """The UTC day of a Unix timestamp."""
    return datetime.fromtimestamp(epoch_seconds, UTC).date()


def partition(root: Path, kind: str, endpoint: str, day: date) -> Path:
    """The folder of one endpoint's files of one day."""
    return Path(root) / kind / f"endpoint={endpoint}" / f"date={day.isoformat()}"


def write_atomic(table: Any, path: Path) -> None:
    """Write a pyarrow table as Parquet at ``path``: temporary file, fsync, rename."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as fh:
            pq.write_table(table, fh, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _days(root: Path, kind: str, endpoint: str) -> Iterator[tuple[date, Path]]:
    base = Path(root) / kind / f"endpoint={endpoint}"
    if not base.is_dir():
        return
    for entry in sorted(base.iterdir()):
        m = _DATE_RE.fullmatch(entry.name)
        if m and entry.is_dir():
            try:
                yield date.fromisoformat(m.group(1)), entry
            except ValueError:  # date=2026-13-40: not ours, leave it alone
                continue


def list_files(root: Path, kind: str, endpoint: str, since: datetime | None = None,
               until: datetime | None = None) -> list[Path]:
    """The Parquet files of ``endpoint`` whose day can hold rows in [since, until]."""
    first = as_utc(since).date() if since is not None else None
    last = as_utc(until).date() if until is not None else None
    files: list[Path] = []
    for day, folder in _days(root, kind, endpoint):
        if (first is None or day >= first) and (last is None or day <= last):
            files.extend(sorted(p for p in folder.glob("*.parquet") if p.is_file()))
    return files


def endpoints(root: Path, kind: str = PREDICTIONS) -> list[str]:
    """Endpoints that have files of ``kind``."""
    base = Path(root) / kind
    if not base.is_dir():
        return []
    return sorted(p.name.removeprefix("endpoint=") for p in base.iterdir()
                  if p.is_dir() and p.name.startswith("endpoint="))


def cleanup(root: Path, older_than_days: int, now: datetime | None = None) -> list[Path]:
    """Remove day partitions (predictions and labels) older than ``older_than_days`` whole
    days before today (UTC), and temporary files of crashed writers; return what went."""
    if isinstance(older_than_days, bool) or not isinstance(older_than_days, int) \
            or older_than_days < 0:
        raise InvalidInputError(
            f"retention must be a whole number of days >= 0, got {older_than_days!r}")
    cutoff = as_utc(now or datetime.now(UTC)).date() - timedelta(days=older_than_days)
    removed: list[Path] = []
    for kind in KINDS:
        for endpoint in endpoints(root, kind):
            for day, folder in _days(root, kind, endpoint):
                if day < cutoff:
                    shutil.rmtree(folder)
                    removed.append(folder)
                else:
                    removed.extend(_stale_tmp(folder))
            base = Path(root) / kind / f"endpoint={endpoint}"
            if base.is_dir() and not any(base.iterdir()):
                base.rmdir()
    if removed:
        log.info("monitoring cleanup removed %d partitions or files under %s",
                 len(removed), root)
    return removed


def _stale_tmp(folder: Path) -> list[Path]:
    old = time.time() - STALE_TMP_SECONDS
    gone = []
    for tmp in folder.glob(".*.tmp"):
        try:
            if tmp.stat().st_mtime < old:
                tmp.unlink()
                gone.append(tmp)
        except FileNotFoundError:  # another cleanup got there first
            continue
    return gone


__all__ = [
    "KINDS", "LABELS", "PREDICTIONS", "as_utc", "cleanup", "day_of", "default_root",
    "endpoints", "list_files", "partition", "validate_worker_id", "write_atomic",
]
