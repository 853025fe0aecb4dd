"""A bounded buffer drained by one background thread into Parquet files.

The producer (a server's event loop) only appends to a list under a lock; a daemon
thread takes the whole buffer every ``flush_seconds`` (or as soon as ``flush_rows`` are
waiting), turns it into tables and writes one file per endpoint and day. When the
buffer already holds ``max_queue_rows`` the item is refused (the caller counts a drop)
instead of growing without bound: at most twice that many rows are in memory, the
buffer plus the batch being written. A failing disk never kills the thread: the rows
are counted as ``failed`` and a warning is logged at most every 30 seconds.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from modelport.errors import InvalidInputError
from modelport.monitoring.layout import partition, validate_worker_id, write_atomic

log = logging.getLogger("modelport.monitoring")

#: (endpoint, day, pyarrow table or the exception that prevented it, rows) per file.
Tables = list[tuple[str, date, Any, int]]
Build = Callable[[list[Any]], Tables]


@dataclass(frozen=True)
class WriterConfig:
    """Buffer bound and flush triggers of a background writer."""

    max_queue_rows: int = 100_000
    flush_rows: int = 10_000
    flush_seconds: float = 5.0

    def __post_init__(self) -> None:
        for name in ("max_queue_rows", "flush_rows"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be a whole number >= 1, got {value!r}")
        if not (isinstance(self.flush_seconds, int | float) and 0 < self.flush_seconds <= 3600):
            raise InvalidInputError(
                f"flush_seconds must be in (0, 3600], got {self.flush_seconds!r}")


class BackgroundWriter:
    """Buffer items with ``put``; a thread turns batches into Parquet files under ``root``.

    Items are tuples whose first field is the endpoint and last the row count; ``build``
    turns a batch of them into tables, ``on_written(endpoint, rows, ok)`` counts results.
    """

    def __init__(self, root: str | Path, kind: str, worker_id: str, build: Build,
                 config: WriterConfig, *, before_write: Callable[[int], None] | None = None,
                 on_written: Callable[[str, int, bool], None] | None = None) -> None:
        self.root = Path(root)
        self.kind = kind
        self.worker_id = validate_worker_id(worker_id)
        self.config = config
        self._build = build
        # Tests slow the writer down deterministically through this hook (it gets the
        # batch's row count), never with sleeps.
        self._before_write = before_write
        self._on_written = on_written
        self._run = secrets.token_hex(4)
        self._seq = 0
        self._lock = threading.Lock()
        self._done_cond = threading.Condition(self._lock)
        self._items: list[Any] = []
        self._rows = 0
        self._requested = 0  # flush tickets handed out
        self._done = 0  # flush tickets whose buffer is written
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._last_warning = 0.0

    @property
    def queued_rows(self) -> int:
        """Rows waiting in the buffer (not yet taken by the writer thread)."""
        return self._rows

    @property
    def closed(self) -> bool:
        """True once ``close`` began; ``put`` refuses everything after that."""
        return self._closed

    def put(self, item: Any, rows: int) -> bool:
        """Buffer ``item`` of ``rows`` rows; False (nothing kept) when full or closed."""
        with self._lock:
            if self._closed or self._rows + rows > self.config.max_queue_rows:
                return False
            self._items.append(item)
            self._rows += rows
            wake = self._rows >= self.config.flush_rows
        if self._thread is None:
            self._start()
        if wake and not self._wake.is_set():
            self._wake.set()
        return True

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            # Started on first use, not in __init__: a server forks its workers after
            # building its objects, and threads do not survive a fork.
            self._thread = threading.Thread(target=self._loop, daemon=True,
                                            name=f"modelport-{self.kind}-writer")
            self._thread.start()

    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything buffered so far; False if that took longer than ``timeout``."""
        with self._lock:
            self._requested += 1
            ticket = self._requested
        if self._thread is None:
            self._start()
        self._wake.set()
        with self._done_cond:
            return self._done_cond.wait_for(lambda: self._done >= ticket, timeout)

    def close(self, timeout: float = 30.0) -> bool:
        """Refuse new items, write what is buffered, stop the thread (idempotent)."""
        with self._lock:
            already, self._closed = self._closed, True
        if self._thread is None:
            return True
        ok = self.flush(timeout) if not already else True
        self._wake.set()
        self._thread.join(timeout)
        return ok and not self._thread.is_alive()

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.config.flush_seconds)
            self._wake.clear()
            with self._lock:
                ticket, batch, rows = self._requested, self._items, self._rows
                self._items, self._rows = [], 0
                stop = self._closed
            if batch:
                self._write(batch, rows)
            with self._done_cond:
                self._done = max(self._done, ticket)
                self._done_cond.notify_all()
            if stop and not self._items:
                return

    def _write(self, batch: list[Any], rows: int) -> None:
        try:
            if self._before_write is not None:
                self._before_write(rows)
            tables = self._build(batch)
        except Exception as exc:  # a bug or odd data must not end the thread
            self._warn(f"cannot tabulate {rows} {self.kind} rows", exc)
            self._count_all(batch, False)
            return
        for endpoint, day, table, n in tables:
            if isinstance(table, Exception):
                self._warn(f"cannot tabulate {n} {self.kind} rows of {endpoint}", table)
                self._count(endpoint, n, False)
                continue
            self._seq += 1
            name = f"{self.worker_id}-{self._run}-{self._seq:06d}.parquet"
            try:
                write_atomic(table, partition(self.root, self.kind, endpoint, day) / name)
            except Exception as exc:  # disk full, permissions, pyarrow errors
                self._warn(f"cannot write {n} {self.kind} rows of {endpoint}", exc)
                self._count(endpoint, n, False)
                continue
            self._count(endpoint, n, True)

    def _count_all(self, batch: Sequence[Any], ok: bool) -> None:
        by_endpoint: dict[str, int] = {}
        for item in batch:
            by_endpoint[item[0]] = by_endpoint.get(item[0], 0) + _rows_of(item)
        for endpoint, n in by_endpoint.items():
            self._count(endpoint, n, ok)

    def _count(self, endpoint: str, rows: int, ok: bool) -> None:
        if self._on_written is not None:
            self._on_written(endpoint, rows, ok)

    def _warn(self, what: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_warning >= 30.0:
            self._last_warning = now
            log.warning("%s under %s: %s", what, self.root, exc, exc_info=exc)


def _rows_of(item: Any) -> int:
    # Items are tuples whose first field is the endpoint and last the row count.
    return int(item[-1])


__all__ = ["BackgroundWriter", "Tables", "WriterConfig"]
