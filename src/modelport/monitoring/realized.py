"""Realized metrics: logged predictions scored against the labels that came back.

For the predictions made in a window ``[now - window, now)``, the labels received in
that window are de-duplicated (last received wins per request row), joined by request
id and row (DuckDB), checked for type and scored per version with scikit-learn:
accuracy, f1, precision and recall (macro over the labels seen) for classification;
mse, rmse, mae, r2 and mape for regression. The task follows the gates' rule
(``gates.metrics.detect_task`` on the labels), except that predictions with fractional
values always mean regression.

Counted, never raised: ``unknown`` labels (no prediction with that id was logged in
the window or the ``lookback`` before it: wrong id, or a request that was sampled
out), ``duplicates`` (extra labels for one request row), ``invalid`` labels (a type the
version's predictions cannot be compared with, e.g. text for a regressor), and labels
of predictions made before the window (``earlier``).

Predictions are compared with the type DuckDB unifies the ``prediction`` column to
across the files read: when one endpoint's versions predict text and numbers in the
same window, every version is compared as text.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from modelport.errors import InvalidInputError
from modelport.gates.metrics import Task, detect_task, regression_metrics
from modelport.monitoring.layout import LABELS, PREDICTIONS, as_utc
from modelport.monitoring.query import Scan, connect, run, scan

MAX_EXAMPLES = 5


@dataclass
class VersionMetrics:
    """One version's realized metrics in the window."""

    version: int
    variants: list[str]
    predictions: int  # logged rows in the window
    labelled: int  # of those, with a valid label
    duplicates: int  # extra labels for labelled rows (last one wins)
    invalid: int  # labels of the wrong type for this version's predictions
    task: str | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class RealizedMetrics:
    """Every version's realized metrics for one endpoint and window, and the counts."""

    endpoint: str
    since: datetime
    until: datetime
    versions: list[VersionMetrics]
    labels: int  # labels received in the window (every copy)
    unknown: int  # labels whose request id matches no logged prediction
    duplicates: int  # labels received beyond the first per request row
    earlier: int  # labels of predictions made before the window
    unknown_examples: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO 8601)."""
        data = asdict(self)
        data["since"], data["until"] = self.since.isoformat(), self.until.isoformat()
        return data


def realized_metrics(root: str | Path, endpoint: str, window: timedelta = timedelta(hours=1),
                     now: datetime | None = None, lookback: timedelta = timedelta(days=7),
                     *, labelled_only: bool = False) -> RealizedMetrics:
    """Score the predictions of ``endpoint`` made in ``[now - window, now)`` against their
    labels; ``lookback``: how far before the window a label's prediction is looked for.

    ``labelled_only``: a window without labels answers at once, with no versions. The
    per-version prediction counts need a scan of every prediction in the window (0.1-0.3
    s of CPU per 500,000 rows), which a server's periodic gauge update, scoring nothing
    without labels, would otherwise pay every minute on its serving core.
    """
    if window <= timedelta(0) or lookback < timedelta(0):
        raise InvalidInputError("the window must be positive and the lookback not negative")
    until = as_utc(now) if now is not None else datetime.now(UTC)
    since = until - window
    labels = scan(root, LABELS, endpoint, since, until)
    result = RealizedMetrics(endpoint, since, until, [], 0, 0, 0, 0)
    con = connect()
    params = {"since": since, "until": until, "early": since - lookback}
    final = final_labels(con, labels, params)
    if final is None and labelled_only:
        result.skipped_files = [str(p) for p, _ in labels.skipped]
        return result
    preds = scan(root, PREDICTIONS, endpoint, since - lookback, until)
    if final is not None:
        con.register("final_labels", final)
        result.labels = int(sum(final.column("copies").to_pylist()))
        result.duplicates = result.labels - final.num_rows
    joined = _join(con, preds, params) if final is not None else None
    versions = _predictions_per_version(con, preds, params)
    by_version: dict[int, list[dict[str, Any]]] = {}
    if joined is not None:
        rows = joined.to_pylist()
        for r in rows:
            if r["version"] is None:
                result.unknown += 1
                if len(result.unknown_examples) < MAX_EXAMPLES:
                    result.unknown_examples.append(r["request_id"])
            elif r["ts"] >= since:
                by_version.setdefault(r["version"], []).append(r)
        result.earlier = len({(r["request_id"], r["row"]) for r in rows
                              if r["version"] is not None and r["ts"] < since})
    for version, (count, variants) in sorted(versions.items()):
        result.versions.append(_score(version, variants, count, by_version.get(version, [])))
    result.skipped_files = [str(p) for p, _ in preds.skipped + labels.skipped]
    return result


def final_labels(con: Any, labels: Scan, params: dict[str, Any]) -> Any:
    """The last label per (request_id, row) received in the window, with its copy count."""
    sql = ("SELECT request_id, row, arg_max(label, (received_at, seq)) AS label, "
           "count(*) AS copies FROM {src} WHERE received_at >= $since AND received_at < "
           "$until GROUP BY request_id, row")
    table = run(con, labels, lambda src: sql.format(src=src),
                {"since": params["since"], "until": params["until"]})
    return table if table is not None and table.num_rows else None


def _join(con: Any, preds: Scan, params: dict[str, Any]) -> Any:
    """Every final label with the predictions of its request row (NULLs: unknown)."""
    def sql(src: str) -> str:
        return ("WITH p AS (SELECT request_id, row, version, variant, ts, prediction "  # noqa: S608
                f"FROM {src} WHERE ts >= $early AND ts < $until) "
                "SELECT l.request_id, l.row, l.label, l.copies, p.version, p.variant, "
                "p.ts, p.prediction FROM final_labels l LEFT JOIN p "
                "ON p.request_id = l.request_id AND p.row = l.row")
    if not preds.files:
        return con.sql("SELECT request_id, row, label, copies, NULL::BIGINT AS version, "
                       "NULL AS variant, NULL::TIMESTAMPTZ AS ts, NULL AS prediction "
                       "FROM final_labels").to_arrow_table()
    try:
        return run(con, preds, sql, params)
    except Exception as exc:  # e.g. no scalar "prediction" column was ever logged
        if "prediction" not in str(exc):
            raise
        return None


def _predictions_per_version(con: Any, preds: Scan, params: dict[str, Any]
                             ) -> dict[int, tuple[int, list[str]]]:
    table = run(con, preds, lambda src: "SELECT version, count(*) AS n, "  # noqa: S608
                f"list(DISTINCT variant ORDER BY variant) AS variants FROM {src} "
                "WHERE ts >= $since AND ts < $until GROUP BY version",
                {"since": params["since"], "until": params["until"]})
    if table is None:
        return {}
    return {int(r["version"]): (int(r["n"]), list(r["variants"])) for r in table.to_pylist()}


def _score(version: int, variants: list[str], count: int, rows: list[dict[str, Any]]
           ) -> VersionMetrics:
    out = VersionMetrics(version, variants, count, 0,
                         sum(int(r["copies"]) - 1 for r in rows), 0)
    preds = [r["prediction"] for r in rows]
    values = [orjson.loads(r["label"]) for r in rows]
    if not rows:
        out.notes.append("no labels yet for this version's predictions in the window")
        return out
    if all(p is None for p in preds):
        out.notes.append("the logged predictions are not one scalar per row: not scored")
        return out
    kind = _kind(preds)
    keep: list[int] = []
    bad: list[str] = []
    for i, (p, v) in enumerate(zip(preds, values, strict=True)):
        value = _coerce(v, kind)
        if p is None or value is None:
            if len(bad) < MAX_EXAMPLES:
                bad.append(f"{v!r} for request {rows[i]['request_id']}")
            out.invalid += p is not None
            continue
        values[i] = value
        keep.append(i)
    if bad and out.invalid:
        out.notes.append(f"{out.invalid} labels cannot be compared with predictions of "
                         f"type {kind}: " + ", ".join(bad))
    out.labelled = len(keep)
    if not keep:
        return out
    y = np.asarray([values[i] for i in keep], dtype=object)
    pred = np.asarray([preds[i] for i in keep], dtype=object)
    task = _task(y, pred, kind)
    out.task = task.value
    out.metrics = _classification(y, pred) if task is Task.CLASSIFICATION \
        else _regression(y, pred, out.notes, f"version {version}")
    return out


def _kind(preds: list[Any]) -> str:
    sample = next(p for p in preds if p is not None)
    if isinstance(sample, bool):
        return "bool"
    if isinstance(sample, int):
        return "int"
    if isinstance(sample, float):
        return "float"
    return "text"


def _coerce(value: Any, kind: str) -> Any:
    """The label as comparable with predictions of ``kind``, or None (invalid)."""
    if kind == "text":
        return value if isinstance(value, str) else None
    if isinstance(value, str):
        return None
    if kind == "float":
        return None if isinstance(value, bool) else float(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    return bool(value) if kind == "bool" and value in (0, 1) else (
        value if kind == "int" else None)


def _task(y: np.ndarray, pred: np.ndarray, kind: str) -> Task:
    import pandas as pd

    if kind == "float" and any(not float(p).is_integer() for p in pred):
        return Task.REGRESSION
    if kind == "float":
        return detect_task(pd.Series(y.astype(float)).astype("int64")) \
            if all(float(v).is_integer() for v in y) else Task.REGRESSION
    return Task.CLASSIFICATION


def _classification(y: np.ndarray, pred: np.ndarray) -> dict[str, float | None]:
    from sklearn import metrics as skm

    y, pred = y.tolist(), pred.tolist()
    kw: dict[str, Any] = {"average": "macro", "zero_division": 0}
    return {"accuracy": float(skm.accuracy_score(y, pred)),
            "f1": float(skm.f1_score(y, pred, **kw)),
            "precision": float(skm.precision_score(y, pred, **kw)),
            "recall": float(skm.recall_score(y, pred, **kw))}


def _regression(y: np.ndarray, pred: np.ndarray, notes: list[str], who: str
                ) -> dict[str, float | None]:
    yf, pf = y.astype(float), pred.astype(float)
    scores = regression_metrics(yf, pf, notes, who)
    rmse = scores["rmse"]
    return {"mse": None if rmse is None else rmse * rmse, **scores}


def parse_window(text: str) -> timedelta:
    """``90s``, ``15m``, ``1h``, ``7d`` (or a plain number of seconds) as a timedelta."""
    raw = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    scale = units.get(raw[-1:])
    number = raw[:-1] if scale is not None else raw
    try:
        value = float(number) * (scale or 1)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise InvalidInputError(f"invalid window {text!r}: use a positive number with s, m, "
                                "h or d, e.g. 1h or 30m")
    return timedelta(seconds=value)


__all__ = ["RealizedMetrics", "VersionMetrics", "final_labels", "parse_window",
           "realized_metrics"]
