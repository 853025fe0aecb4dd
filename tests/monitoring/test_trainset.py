"""A training set from production: logged inputs of the window joined with their labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from modelport.errors import InvalidInputError
from modelport.monitoring.labels import record_labels
from modelport.monitoring.trainset import TARGET, export_training_set, labelled_rows
from tests.monitoring.conftest import write_predictions

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
IN = NOW - timedelta(minutes=30)
HOUR = timedelta(hours=1)


def label(root: Path, items: list[tuple[str, object]], at: datetime = IN) -> None:
    record_labels(root, "iris", [{"id": i, "label": v} for i, v in items], now=at.timestamp())


def test_labelled_rows_of_the_window_with_their_inputs(tmp_path: Path) -> None:
    write_predictions(tmp_path, [(f"r{i}", IN + timedelta(seconds=i), 1 + i % 2, 0)
                                 for i in range(6)], tag="a")
    # Shadow copies repeat stable rows; an old prediction is outside the window.
    write_predictions(tmp_path, [("r0", IN, 3, 1), ("r1", IN, 3, 1)], variant="shadow",
                      tag="s")
    write_predictions(tmp_path, [("old", NOW - 2 * HOUR, 1, 0)], tag="o")
    label(tmp_path, [("r0", 1), ("r1", 0), ("r3", 2), ("old", 1), ("nobody", 1)])
    label(tmp_path, [("r0", 2)], IN + timedelta(minutes=1))  # the last label wins
    frame = labelled_rows(tmp_path, "iris", HOUR, NOW)
    assert list(frame[TARGET]) == [2, 0, 2]
    assert [c for c in frame.columns if c != TARGET] == ["f0", "f1", "f2", "f3"]
    assert frame["f0"].tolist() == [0.0, 0.0, 0.0]  # conftest's rows(1) start at 0


def test_export_writes_parquet_and_nothing_without_labels(tmp_path: Path) -> None:
    root = tmp_path / "mon"
    write_predictions(root, [("a", IN, 1, "x"), ("b", IN, 1, "y")])
    out = tmp_path / "out" / "data.parquet"
    empty = export_training_set(root, "iris", HOUR, out, NOW)
    assert (empty.rows, out.exists()) == (0, False)
    record_labels(root, "iris", [{"id": "a", "label": "setosa"}, {"id": "b", "label": "x"}],
                  now=IN.timestamp())
    done = export_training_set(root, "iris", HOUR, out, NOW)
    assert (done.rows, done.features, done.since, done.until) == (2, ["f0", "f1", "f2", "f3"],
                                                                   NOW - HOUR, NOW)
    back = pd.read_parquet(out)
    assert back[TARGET].tolist() == ["setosa", "x"] and len(back.columns) == 5
    assert not list(out.parent.glob(".*"))  # no temporary file left behind


def test_nothing_logged_and_a_bad_window(tmp_path: Path) -> None:
    assert len(labelled_rows(tmp_path, "iris", HOUR, NOW)) == 0
    with pytest.raises(InvalidInputError, match="window must be positive"):
        labelled_rows(tmp_path, "iris", timedelta(0), NOW)
