"""Reading the store: windows, versions, and files that cannot be read."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelport.errors import InvalidInputError
from modelport.monitoring.layout import partition
from modelport.monitoring.query import read_labels, read_predictions
from tests.monitoring.conftest import write_predictions

T0 = datetime(2026, 11, 1, 23, 30, tzinfo=UTC)  # before "now", after midnight soon


def test_window_version_and_day_partitions(tmp_path: Path) -> None:
    write_predictions(tmp_path, [("a", T0, 1, 0), ("b", T0 + timedelta(minutes=40), 2, 1),
                                 ("c", T0 + timedelta(hours=2), 1, 1)])
    assert len(list(tmp_path.glob("predictions/endpoint=iris/date=*"))) == 2  # midnight
    got = read_predictions(tmp_path, "iris", T0, T0 + timedelta(hours=2))
    assert got.column("request_id").to_pylist() == ["a", "b"]  # until is exclusive
    assert read_predictions(tmp_path, "iris", version=1).column("request_id").to_pylist() \
        == ["a", "c"]
    assert read_predictions(tmp_path, "iris", T0 + timedelta(days=5)).num_rows == 0
    assert read_predictions(tmp_path, "nothing-here").num_rows == 0
    frame = read_predictions(tmp_path, "iris").to_pandas()
    assert list(frame["request_id"]) == ["a", "b", "c"]


def test_truncated_and_garbage_files_are_skipped_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_predictions(tmp_path, [("a", T0, 1, 0), ("b", T0, 1, 1)])
    good = next(tmp_path.rglob("*.parquet"))
    data = good.read_bytes()
    (good.parent / "t-x-truncated.parquet").write_bytes(data[: len(data) // 2])
    (good.parent / "t-x-garbage.parquet").write_bytes(b"PAR1" + b"\0" * 100 + b"PAR1")
    (good.parent / ".t-x-inflight.parquet.tmp").write_bytes(data[:10])  # a writer at work
    with caplog.at_level(logging.WARNING, logger="modelport.monitoring"):
        got = read_predictions(tmp_path, "iris")
    assert got.column("request_id").to_pylist() == ["a", "b"]
    skipped = [r.getMessage() for r in caplog.records]
    assert len(skipped) == 2 and all("skipping unreadable" in m for m in skipped)
    assert any("truncated" in m for m in skipped) and any("garbage" in m for m in skipped)


def test_only_corrupt_files_give_an_empty_table(tmp_path: Path) -> None:
    folder = partition(tmp_path, "predictions", "iris", T0.date())
    folder.mkdir(parents=True)
    (folder / "w-x-000001.parquet").write_bytes(b"not parquet at all")
    assert read_predictions(tmp_path, "iris").num_rows == 0
    assert read_labels(tmp_path, "iris").num_rows == 0


def test_bad_queries_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="starts"):
        read_predictions(tmp_path, "iris", T0, T0 - timedelta(seconds=1))
    with pytest.raises(InvalidInputError, match="endpoint name"):
        read_predictions(tmp_path, "../etc")


def test_damaged_data_behind_an_intact_footer_is_skipped_too(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import pyarrow.parquet as pq

    write_predictions(tmp_path, [(f"r{i}", T0, 1, i) for i in range(200)])
    damaged = next(tmp_path.rglob("*.parquet"))
    raw = bytearray(damaged.read_bytes())
    raw[200:1200] = bytes(b ^ 0xFF for b in raw[200:1200])
    damaged.write_bytes(bytes(raw))
    pq.read_metadata(damaged)  # the footer still reads: only DuckDB finds the damage
    write_predictions(tmp_path, [("ok", T0, 1, 0)], tag="y")
    with caplog.at_level(logging.WARNING, logger="modelport.monitoring"):
        got = read_predictions(tmp_path, "iris")
    assert got.column("request_id").to_pylist() == ["ok"]
    assert "t-x-000000" in caplog.records[0].getMessage()
