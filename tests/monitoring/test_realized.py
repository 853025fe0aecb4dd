"""Realized metrics: labels joined to logged predictions, scored per version."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelport.errors import InvalidInputError
from modelport.monitoring.labels import record_labels
from modelport.monitoring.realized import parse_window, realized_metrics
from tests.monitoring.conftest import write_predictions

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
IN = NOW - timedelta(minutes=30)  # inside the default 1h window


def label(root: Path, items: list[tuple[str, object]], at: datetime) -> None:
    record_labels(root, "iris", [{"id": i, "label": v} for i, v in items], now=at.timestamp())


def by_version(result):
    return {v.version: v for v in result.versions}


def test_classification_per_version_with_unknown_duplicates_and_earlier(tmp_path: Path
                                                                        ) -> None:
    truth = {f"r{i}": i % 3 for i in range(10)}
    write_predictions(tmp_path, [(rid, IN, 1, y) for rid, y in truth.items()])
    # Version 2 ran as a shadow on the same requests and gets the last four wrong.
    write_predictions(tmp_path, [(rid, IN, 2, y if i < 6 else (y + 1) % 3)
                                 for i, (rid, y) in enumerate(truth.items())],
                      variant="shadow", tag="s")
    write_predictions(tmp_path, [("old", NOW - timedelta(hours=5), 1, 0)], tag="o")
    label(tmp_path, [("r0", 2), ("r1", 1)], IN + timedelta(minutes=1))  # r0 wrong at first
    label(tmp_path, [(rid, y) for rid, y in truth.items()] + [("nope", 1), ("old", 0)],
          IN + timedelta(minutes=2))
    result = realized_metrics(tmp_path, "iris", now=NOW)
    v1, v2 = by_version(result)[1], by_version(result)[2]
    assert (v1.predictions, v1.labelled, v1.duplicates, v1.invalid) == (10, 10, 2, 0)
    assert v1.task == "classification" and v1.variants == ["stable"]
    assert v1.metrics == {"accuracy": 1.0, "f1": 1.0, "precision": 1.0, "recall": 1.0}
    assert v2.variants == ["shadow"] and v2.metrics["accuracy"] == pytest.approx(0.6)
    assert 0 < v2.metrics["f1"] < 1
    assert (result.labels, result.duplicates, result.unknown, result.earlier) == (14, 2, 1, 1)
    assert result.unknown_examples == ["nope"]
    data = result.to_dict()
    assert data["since"] == "2026-11-20T11:00:00+00:00" and data["versions"][0]["version"] == 1


def test_regression_metrics_on_known_numbers(tmp_path: Path) -> None:
    preds = {"a": 1.5, "b": 2.5, "c": 4.0}
    write_predictions(tmp_path, [(rid, IN, 3, p) for rid, p in preds.items()])
    label(tmp_path, [("a", 1.0), ("b", 3), ("c", 4.0)], IN + timedelta(seconds=5))
    v = realized_metrics(tmp_path, "iris", now=NOW).versions[0]
    assert v.task == "regression" and v.labelled == 3
    assert v.metrics["mse"] == pytest.approx((0.25 + 0.25 + 0) / 3)
    assert v.metrics["rmse"] == pytest.approx(math.sqrt((0.25 + 0.25) / 3))
    assert v.metrics["mae"] == pytest.approx(1 / 3)


def test_labels_of_the_wrong_type_are_counted_as_invalid(tmp_path: Path) -> None:
    write_predictions(tmp_path, [("a", IN, 1, 1.5), ("b", IN, 1, 2.5), ("c", IN, 1, 0.5)])
    label(tmp_path, [("a", "high"), ("b", True), ("c", 0.5)], IN + timedelta(seconds=5))
    v = realized_metrics(tmp_path, "iris", now=NOW).versions[0]
    assert (v.labelled, v.invalid) == (1, 2)
    assert "2 labels cannot be compared with predictions of type float" in v.notes[0]
    assert "'high' for request a" in v.notes[0]
    text = tmp_path / "text"
    write_predictions(text, [("t1", IN, 2, "setosa"), ("t2", IN, 2, "virginica")])
    record_labels(text, "iris", [{"id": "t1", "label": "setosa"}, {"id": "t2", "label": 3}],
                  now=IN.timestamp())
    v = realized_metrics(text, "iris", now=NOW).versions[0]
    assert (v.labelled, v.invalid, v.metrics["accuracy"]) == (1, 1, 1.0)
    assert "3 for request t2" in v.notes[0]


def test_empty_windows_and_versions_without_labels(tmp_path: Path) -> None:
    empty = realized_metrics(tmp_path, "iris", now=NOW)
    assert empty.versions == [] and empty.labels == 0 and empty.unknown == 0
    write_predictions(tmp_path, [("a", IN, 1, 0)])
    v = realized_metrics(tmp_path, "iris", now=NOW).versions[0]
    assert (v.predictions, v.labelled, v.metrics) == (1, 0, {})
    assert "no labels yet" in v.notes[0]
    label(tmp_path, [("zzz", 1)], IN)
    assert realized_metrics(tmp_path, "iris", now=NOW).unknown == 1


def test_labelled_only_skips_the_prediction_scan_until_labels_arrive(tmp_path: Path) -> None:
    # The server's gauge update asks labelled_only: with no labels in the window it must
    # not read the predictions at all (a corrupt file shows whether it was opened).
    write_predictions(tmp_path, [("a", IN, 1, 0), ("b", IN, 1, 1)])
    day = next((tmp_path / "predictions" / "endpoint=iris").iterdir())
    (day / "t-corrupt-000000.parquet").write_bytes(b"not parquet")
    full = realized_metrics(tmp_path, "iris", now=NOW)
    assert full.versions[0].predictions == 2 and len(full.skipped_files) == 1
    quick = realized_metrics(tmp_path, "iris", now=NOW, labelled_only=True)
    assert (quick.versions, quick.labels, quick.skipped_files) == ([], 0, [])
    label(tmp_path, [("a", 0), ("b", 0)], IN)
    scored = realized_metrics(tmp_path, "iris", now=NOW, labelled_only=True)
    assert by_version(scored) == by_version(realized_metrics(tmp_path, "iris", now=NOW))
    assert scored.versions[0].labelled == 2


def test_windows_parse_and_refuse_nonsense() -> None:
    assert parse_window("1h") == timedelta(hours=1)
    assert parse_window("30m") == timedelta(minutes=30)
    assert parse_window("7d") == timedelta(days=7)
    assert parse_window("90") == timedelta(seconds=90)
    for bad in ("", "h", "-1h", "0m", "1w", "nanh"):
        with pytest.raises(InvalidInputError, match="invalid window"):
            parse_window(bad)
    with pytest.raises(InvalidInputError, match="positive"):
        realized_metrics(Path("/nonexistent"), "iris", window=timedelta(0))
