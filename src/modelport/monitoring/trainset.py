"""A training set from production: the logged rows of a window that got labels.

The same join realized metrics score (``realized.final_labels``: the last label per
request row received in the window, joined by request id and row with the
predictions logged in the window), keeping each row's inputs instead of its
prediction. Shadow copies are left out (they repeat a stable row); a row logged twice
counts once. The file has one column per feature (as ``logged_inputs`` names them) and
the label in column ``label``, oldest row first, written as Parquet atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from modelport.errors import InvalidInputError
from modelport.monitoring.evaluate import logged_inputs
from modelport.monitoring.layout import LABELS, PREDICTIONS, as_utc, write_atomic
from modelport.monitoring.query import connect, run, scan
from modelport.monitoring.realized import final_labels

TARGET = "label"


@dataclass(frozen=True)
class TrainingSet:
    """What ``export_training_set`` wrote."""

    path: Path
    rows: int
    features: list[str]
    since: datetime
    until: datetime


def labelled_rows(root: str | Path, endpoint: str, window: timedelta,
                  now: datetime | None = None) -> Any:
    """The rows ``endpoint`` logged in ``[now - window, now)`` that have a label, as a
    DataFrame of the features and ``label`` (empty when none has)."""
    import pandas as pd

    if window <= timedelta(0):
        raise InvalidInputError("the window must be positive")
    until = as_utc(now) if now is not None else datetime.now(UTC)
    since = until - window
    con = connect()
    params = {"since": since, "until": until}
    final = final_labels(con, scan(root, LABELS, endpoint, since, until), params)
    preds = scan(root, PREDICTIONS, endpoint, since, until)
    if final is None or not preds.files:
        return pd.DataFrame({TARGET: []})
    con.register("final_labels", final)

    def sql(src: str) -> str:
        return ("WITH p AS (SELECT request_id, row, ts, inputs FROM "  # noqa: S608
                f"{src} WHERE ts >= $since AND ts < $until AND variant <> 'shadow' "
                "QUALIFY row_number() OVER (PARTITION BY request_id, row ORDER BY ts) = 1) "
                "SELECT p.inputs, l.label FROM final_labels l JOIN p "
                "ON p.request_id = l.request_id AND p.row = l.row "
                "ORDER BY p.ts, p.request_id, p.row")
    try:
        table = run(con, preds, sql, params)
    except Exception as exc:  # duckdb's BinderException: no inputs were ever logged
        if "inputs" not in str(exc):
            raise
        raise InvalidInputError(f"the prediction log of {endpoint!r} holds no inputs to "
                                "train on") from None
    if table is None or table.num_rows == 0:
        return pd.DataFrame({TARGET: []})
    features = logged_inputs(table)
    if TARGET in features.columns:
        raise InvalidInputError(f"{endpoint!r} has a feature named {TARGET!r}, the column "
                                "the labels go in")
    labels = [orjson.loads(v) for v in table.column("label").to_pylist()]
    return features.assign(**{TARGET: labels})


def export_training_set(root: str | Path, endpoint: str, window: timedelta, path: Path,
                        now: datetime | None = None) -> TrainingSet:
    """Write ``labelled_rows`` to ``path`` (Parquet; nothing is written for no rows)."""
    import pyarrow as pa

    until = as_utc(now) if now is not None else datetime.now(UTC)
    frame = labelled_rows(root, endpoint, window, until)
    features = [str(c) for c in frame.columns if c != TARGET]
    if len(frame):
        try:
            table = pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidInputError(f"the labels of {endpoint!r} cannot form one column "
                                    f"(mixed types?): {exc}") from None
        write_atomic(table, path)
    return TrainingSet(path, len(frame), features, until - window, until)


__all__ = ["TARGET", "TrainingSet", "export_training_set", "labelled_rows"]
