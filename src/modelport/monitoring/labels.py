"""Delayed labels: ground truth for logged predictions, joined later by request id.

A label names the request (``id``, the same id the prediction was logged under), the
row within it (``row``, default 0) and the true value (``label``: a number, string or
boolean). Labels are appended, never updated: when one request row gets several
labels, the last received wins (and the extra ones are counted as duplicates).

Where they come from: ``POST /v2/models/{name}/feedback`` (the body is parsed by
``parse_feedback``), ``modelport feedback MODEL FILE`` (``read_label_file``), or
``record_labels`` from Python. Files are stored like predictions, under
``<root>/labels/endpoint=<name>/date=<day received>/``, with columns ``request_id``,
``row``, ``label`` (the value as JSON text, so its type survives), ``received_at``
and ``seq`` (the order within its batch).
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from modelport.errors import InvalidInputError, OverloadedError, PayloadTooLargeError
from modelport.monitoring.layout import LABELS, day_of, partition, write_atomic
from modelport.monitoring.writer import BackgroundWriter, WriterConfig
from modelport.uri import validate_name

#: Labels one feedback request may carry (bigger sets: a file and the CLI).
MAX_FEEDBACK_ITEMS = 10_000
MAX_ID_CHARS = 256
MAX_LABEL_CHARS = 1024
_KEYS = frozenset({"id", "label", "row"})

LabelValue = bool | int | float | str


@dataclass(frozen=True)
class Label:
    """The true value of one row of one logged request."""

    id: str
    label: LabelValue
    row: int = 0


def _value(raw: Any, where: str) -> LabelValue:
    if hasattr(raw, "item") and not isinstance(raw, str | bytes):
        raw = raw.item()  # numpy scalars from pandas/pyarrow readers
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        raise InvalidInputError(f"{where}: label is missing")
    if isinstance(raw, bool | int | str):
        if isinstance(raw, str) and not raw:
            raise InvalidInputError(f"{where}: label is an empty string")
        if isinstance(raw, str) and len(raw) > MAX_LABEL_CHARS:
            raise InvalidInputError(f"{where}: label is longer than {MAX_LABEL_CHARS} "
                                    "characters")
        return raw
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise InvalidInputError(f"{where}: label must be finite, got {raw}")
        return raw
    raise InvalidInputError(f"{where}: label must be a number, string or boolean, got "
                            f"{_kind(raw)}")


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return "null" if value is None else type(value).__name__


def to_label(item: Any, where: str, *, strict_keys: bool = True) -> Label:
    """One label from a mapping with ``id``, ``label`` and optionally ``row``."""
    if not isinstance(item, Mapping):
        raise InvalidInputError(f'{where}: expected an object with "id" and "label", got '
                                f"{_kind(item)}")
    if strict_keys:
        extra = sorted(str(k) for k in item if k not in _KEYS)
        if extra:
            raise InvalidInputError(f"{where}: unknown field {extra[0]!r} (a label has id, "
                                    "label and optionally row)")
    if "id" not in item:
        raise InvalidInputError(f'{where}: "id" is missing')
    rid = item["id"]
    if not isinstance(rid, str) or not rid:
        raise InvalidInputError(f'{where}: "id" must be a non-empty string, got '
                                f"{_kind(rid) if not isinstance(rid, str) else 'an empty one'}")
    if len(rid) > MAX_ID_CHARS:
        raise InvalidInputError(f'{where}: "id" is longer than {MAX_ID_CHARS} characters')
    if "label" not in item:
        raise InvalidInputError(f'{where}: "label" is missing')
    row = item.get("row", 0)
    if hasattr(row, "item"):
        row = row.item()
    if isinstance(row, float) and row.is_integer():
        row = int(row)  # CSV readers turn a column with gaps into floats
    if isinstance(row, bool) or not isinstance(row, int) or row < 0 or row > 2**31 - 1:
        raise InvalidInputError(f'{where}: "row" must be a whole number >= 0, got {row!r}')
    return Label(rid, _value(item["label"], where), row)


def parse_feedback(body: bytes, *, max_items: int = MAX_FEEDBACK_ITEMS) -> list[Label]:
    """The labels of a ``POST .../feedback`` body: one ``{"id", "label"}`` object or a
    list of them. Raises InvalidInputError (PayloadTooLargeError over ``max_items``)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"the feedback body is not valid JSON: {exc}") from None
    if isinstance(payload, Mapping):
        return [to_label(payload, "feedback")]
    if not isinstance(payload, list):
        raise InvalidInputError('feedback must be an object {"id": ..., "label": ...} or a '
                                f"list of them, got {_kind(payload)}")
    if not payload:
        raise InvalidInputError("the feedback list is empty")
    if len(payload) > max_items:
        raise PayloadTooLargeError(f"the feedback has {len(payload):,} labels; at most "
                                   f"{max_items:,} per request")
    return [to_label(item, f"item {i}") for i, item in enumerate(payload)]


def read_label_file(path: str | Path) -> list[Label]:
    """Labels from a CSV, Parquet, JSON (list of objects) or JSON-lines file with ``id``
    and ``label`` columns (and optionally ``row``); other columns are ignored."""
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"labels file not found: {p}")
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return _json_lines(p)
    if suffix == ".json":
        try:
            payload = orjson.loads(p.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise InvalidInputError(f"cannot read {p.name}: {exc}") from None
        if not isinstance(payload, list):
            raise InvalidInputError(f"{p.name}: expected a list of objects with id and label")
        return [to_label(item, f"{p.name} item {i}", strict_keys=False)
                for i, item in enumerate(payload)]
    frame = _frame(p, suffix)
    missing = [c for c in ("id", "label") if c not in frame.columns]
    if missing:
        raise InvalidInputError(f"{p.name} has no {' or '.join(missing)} column (columns: "
                                f"{', '.join(map(str, frame.columns))})")
    keep = [c for c in ("id", "label", "row") if c in frame.columns]
    return [to_label(dict(zip(keep, values, strict=True)), f"{p.name} row {i + 1}",
                     strict_keys=False)
            for i, values in enumerate(frame[keep].itertuples(index=False, name=None))]


def _frame(p: Path, suffix: str) -> Any:
    from modelport.datafiles import read_table

    if suffix != ".csv":
        return read_table(p)  # Parquet (and a precise error for anything else)
    import pandas as pd

    try:  # ids stay text: "0042" must not become 42
        return pd.read_csv(p, dtype={"id": str})
    except Exception as exc:  # pandas parser errors have no common base
        raise InvalidInputError(f"cannot read {p.name}: {exc}") from exc


def _json_lines(p: Path) -> list[Label]:
    labels = []
    for n, line in enumerate(p.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise InvalidInputError(f"{p.name} line {n} is not valid JSON: {exc}") from None
        labels.append(to_label(item, f"{p.name} line {n}", strict_keys=False))
    return labels


def label_table(labels: Iterable[Label], received_at: float) -> Any:
    """Labels as the stored Arrow table."""
    import pyarrow as pa

    items = list(labels)
    return pa.table({
        "request_id": pa.array([x.id for x in items], pa.string()),
        "row": pa.array([x.row for x in items], pa.int32()),
        "label": pa.array([orjson.dumps(x.label).decode() for x in items], pa.string()),
        "received_at": pa.array([int(received_at * 1e6)] * len(items),
                                pa.timestamp("us", tz="UTC")),
        "seq": pa.array(range(len(items)), pa.int64()),
    })


def record_labels(root: str | Path, endpoint: str, labels: Iterable[Label | Mapping[str, Any]],
                  *, writer_id: str = "feedback", now: float | None = None) -> int:
    """Validate then append ``labels`` as one Parquet file (all or nothing); return how
    many were stored. Mappings are checked like a feedback body."""
    validate_name(endpoint, "endpoint name")
    items = [x if isinstance(x, Label) else to_label(x, f"label {i}")
             for i, x in enumerate(labels)]
    if not items:
        raise InvalidInputError("no labels to record")
    at = time.time() if now is None else now
    name = f"{writer_id}-{secrets.token_hex(6)}-000001.parquet"
    write_atomic(label_table(items, at), partition(Path(root), LABELS, endpoint, day_of(at))
                 / name)
    return len(items)


def _label_tables(batch: list[tuple[str, float, list[Label], int]]
                  ) -> list[tuple[str, Any, Any, int]]:
    by_key: dict[tuple[str, Any], list[tuple[float, list[Label]]]] = {}
    for endpoint, at, labels, _ in batch:
        by_key.setdefault((endpoint, day_of(at)), []).append((at, labels))
    out = []
    for (endpoint, day), parts in by_key.items():
        import pyarrow as pa

        table = pa.concat_tables([label_table(labels, at) for at, labels in parts])
        out.append((endpoint, day, table, table.num_rows))
    return out


LABEL_COUNTERS = ("written", "dropped", "failed")


class LabelLog:
    """Buffered label writer for a server: ``offer`` never blocks; a full buffer is an
    OverloadedError (503, the client retries) rather than a lost label."""

    def __init__(self, root: str | Path, *, worker_id: str = "feedback",
                 max_queue_rows: int = 100_000, flush_seconds: float = 1.0) -> None:
        # Per endpoint, in labels: written / failed by the writer thread, dropped (refused,
        # buffer full) by the offering one; each key has one writer thread.
        self._counts: dict[str, dict[str, int]] = {}
        self._writer = BackgroundWriter(
            root, LABELS, worker_id, _label_tables,
            WriterConfig(max_queue_rows, max_queue_rows, flush_seconds),
            on_written=self._count)

    def _counter(self, endpoint: str) -> dict[str, int]:
        found = self._counts.get(endpoint)
        if found is None:
            found = self._counts.setdefault(endpoint, dict.fromkeys(LABEL_COUNTERS, 0))
        return found

    def _count(self, endpoint: str, rows: int, ok: bool) -> None:
        self._counter(endpoint)["written" if ok else "failed"] += rows

    @property
    def written(self) -> int:
        """Labels written, over every endpoint."""
        return sum(c["written"] for c in list(self._counts.values()))

    @property
    def failed(self) -> int:
        """Labels that failed to be written (disk errors), over every endpoint."""
        return sum(c["failed"] for c in list(self._counts.values()))

    def stats(self) -> dict[str, dict[str, int]]:
        """Per endpoint, in labels: ``written``, ``dropped`` (buffer full: answered 503)
        and ``failed`` (write error)."""
        return {name: dict(c) for name, c in list(self._counts.items())}

    def offer(self, endpoint: str, labels: list[Label]) -> None:
        """Buffer ``labels`` (already parsed) of ``endpoint`` for the writer thread."""
        if not self._writer.put((endpoint, time.time(), labels, len(labels)), len(labels)):
            self._counter(endpoint)["dropped"] += len(labels)
            raise OverloadedError("the label buffer is full; retry later", retry_after=1.0)

    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything offered so far."""
        return self._writer.flush(timeout)

    def close(self, timeout: float = 30.0) -> bool:
        """Write what is buffered and stop the writer thread."""
        return self._writer.close(timeout)


__all__ = ["LABEL_COUNTERS", "MAX_FEEDBACK_ITEMS", "Label", "LabelLog", "label_table",
           "parse_feedback", "read_label_file", "record_labels", "to_label"]
