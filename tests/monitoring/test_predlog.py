"""The prediction log writer: partitions, ordering, sampling, bounded buffer, files."""

from __future__ import annotations

import gc
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from modelport.errors import InvalidInputError
from modelport.monitoring.layout import cleanup, list_files
from modelport.monitoring.predlog import PredictionLog, Variant, is_sampled
from modelport.monitoring.query import read_predictions
from tests.monitoring.conftest import IRIS_SCHEMA, WAIT, T, labels_out, rows


def test_rows_land_in_day_partitions_per_endpoint_with_worker_in_file_name(tmp_path: Path
                                                                          ) -> None:
    with PredictionLog(tmp_path, worker_id="w1") as log:
        assert log.offer("iris", "a", 1, Variant.STABLE, rows(2), labels_out([0, 1]), 1.5,
                         IRIS_SCHEMA)
        assert log.offer("wine", "b", 3, "candidate", rows(1), labels_out([2.5]), 2.0)
    day = datetime.now(UTC).date().isoformat()
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet"))
    assert [f.rsplit("/", 1)[0] for f in files] == [
        f"predictions/endpoint=iris/date={day}", f"predictions/endpoint=wine/date={day}"]
    assert all(f.rsplit("/", 1)[1].startswith("w1-") for f in files)
    assert not list(tmp_path.rglob("*.tmp"))  # written atomically: no leftovers
    iris = read_predictions(tmp_path, "iris").to_pylist()
    assert [(r["request_id"], r["row"], r["version"], r["variant"], r["prediction"])
            for r in iris] == [("a", 0, 1, "stable", 0), ("a", 1, 1, "stable", 1)]
    assert iris[1]["inputs"] == {"sepal_length": 4.0, "sepal_width": 5.0,
                                 "petal_length": 6.0, "petal_width": 7.0}
    assert iris[0]["latency_ms"] == 1.5 and iris[0]["endpoint"] == "iris"
    wine = read_predictions(tmp_path, "wine").to_pylist()
    # No table signature: an unnamed 2-D tensor's features are f0, f1, ...
    assert wine[0]["inputs"] == {"f0": 0.0, "f1": 1.0, "f2": 2.0, "f3": 3.0}
    assert log.stats() == {"iris": {"written": 2, "dropped": 0, "sampled_out": 0, "failed": 0},
                           "wine": {"written": 1, "dropped": 0, "sampled_out": 0, "failed": 0}}


def test_order_of_offers_is_kept_and_columns_tensors_keep_their_names(tmp_path: Path) -> None:
    with PredictionLog(tmp_path, worker_id="w1", flush_rows=7) as log:
        for i in range(50):
            log.offer("iris", f"r{i:03d}", 1, "stable",
                      [T("petal_length", np.array([float(i)])), T("color", np.array(["red"]))],
                      [T("label", np.array(["setosa"])), T("proba", np.array([[0.2, 0.8]]))],
                      0.1)
    table = read_predictions(tmp_path, "iris").to_pylist()
    assert [r["request_id"] for r in table] == [f"r{i:03d}" for i in range(50)]
    assert table[3]["inputs"] == {"petal_length": 3.0, "color": "red"}
    assert table[3]["outputs"] == {"label": "setosa", "proba": [0.2, 0.8]}
    # Within one file, rows are in offer order too.
    first = pq.read_table(sorted(tmp_path.rglob("*.parquet"))[0]).column("request_id")
    assert first.to_pylist() == sorted(first.to_pylist())


def test_sampling_is_deterministic_per_request_id(tmp_path: Path) -> None:
    ids = [f"req-{i}" for i in range(2000)]
    expected = {i for i in ids if zlib.crc32(i.encode()) < 0.25 * 2**32}
    with PredictionLog(tmp_path / "a", worker_id="a", sample_rate=0.25) as a, \
            PredictionLog(tmp_path / "b", worker_id="b",
                          sample_rates={"iris": 0.25}, sample_rate=0.0) as b:
        for rid in ids:
            a.offer("iris", rid, 1, "stable", rows(1), labels_out([0]), 1.0)
            b.offer("iris", rid, 1, "stable", rows(1), labels_out([0]), 1.0)
            b.offer("other", rid, 1, "stable", rows(1), labels_out([0]), 1.0)
    got_a = set(read_predictions(tmp_path / "a", "iris").column("request_id").to_pylist())
    got_b = set(read_predictions(tmp_path / "b", "iris").column("request_id").to_pylist())
    assert got_a == got_b == expected == {i for i in ids if is_sampled(i, 0.25)}
    assert 400 < len(expected) < 600  # about a quarter
    assert a.stats()["iris"]["sampled_out"] == len(ids) - len(expected)
    assert b.stats()["other"] == {"written": 0, "dropped": 0, "sampled_out": 2000, "failed": 0}


def test_full_buffer_drops_and_counts_instead_of_blocking(tmp_path: Path, gate) -> None:
    log = PredictionLog(tmp_path, worker_id="w1", max_queue_rows=10, flush_rows=1,
                        before_write=gate)
    assert log.offer("iris", "first", 1, "stable", rows(1), labels_out([0]), 1.0)
    assert gate.entered.wait(WAIT), "the writer thread never took the first batch"
    # The writer is stuck on the first batch: the buffer takes 10 rows, then drops.
    accepted = [log.offer("iris", f"r{i}", 1, "stable", rows(2), labels_out([0, 1]), 1.0)
                for i in range(8)]
    assert accepted == [True] * 5 + [False] * 3
    assert log.queued_rows == 10
    assert log.stats()["iris"]["dropped"] == 6  # rows of the 3 refused requests
    gate.release.set()
    assert log.close(WAIT)
    assert log.stats()["iris"] == {"written": 11, "dropped": 6, "sampled_out": 0, "failed": 0}
    assert read_predictions(tmp_path, "iris").num_rows == 11


def test_buffered_records_drop_out_of_the_cyclic_gc(tmp_path: Path, gate) -> None:
    # A busy server buffers thousands of records; each full collection walks every one
    # the GC still tracks. Built of exact tuples, strings, numbers and arrays, a record
    # is untracked within its first few collections (before, ~5 tracked objects per
    # buffered request reached the oldest generation), with a table schema too.
    log = PredictionLog(tmp_path, worker_id="w1", flush_rows=1_000_000, before_write=gate)
    for i in range(50):
        assert log.offer("iris", f"r{i}", 1, "stable", rows(1), labels_out([0]), 1.0,
                         IRIS_SCHEMA)
    for _ in range(3):
        gc.collect()
    buffered = list(log._writer._items)
    assert len(buffered) == 50
    assert not any(gc.is_tracked(r) for r in buffered)
    assert buffered[0][8] == tuple(c["name"] for c in IRIS_SCHEMA["columns"])
    gate.release.set()
    assert log.close(WAIT)
    table = read_predictions(tmp_path, "iris")
    assert table.num_rows == 50
    assert table.schema.field("inputs").type.field(2).name == "petal_length"


def test_close_flushes_and_refuses_later_offers(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, worker_id="w1", flush_rows=10**6, flush_seconds=3600)
    for i in range(3):
        log.offer("iris", f"r{i}", 1, "stable", rows(1), labels_out([0]), 1.0)
    assert not list(tmp_path.rglob("*.parquet"))  # nothing is due yet
    assert log.close(WAIT)
    assert read_predictions(tmp_path, "iris").num_rows == 3
    assert not log.offer("iris", "late", 1, "stable", rows(1), labels_out([0]), 1.0)
    assert log.stats()["iris"]["dropped"] == 1
    assert log.close(WAIT)  # idempotent


def test_write_failures_are_counted_and_the_writer_survives(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    log = PredictionLog(blocker, worker_id="w1")
    log.offer("iris", "a", 1, "stable", rows(2), labels_out([0, 1]), 1.0)
    assert log.flush(WAIT)
    log.offer("iris", "b", 1, "stable", rows(1), labels_out([0]), 1.0)
    assert log.close(WAIT)
    assert log.stats()["iris"]["failed"] == 3


def test_layouts_that_do_not_merge_still_get_written(tmp_path: Path) -> None:
    with PredictionLog(tmp_path, worker_id="w1") as log:
        log.offer("iris", "a", 1, "stable", [T("x", np.array([1.0]))], labels_out([0]), 1.0)
        log.offer("iris", "b", 1, "stable", [T("x", np.array(["text"]))], labels_out([0]), 1.0)
        log.offer("iris", "c", 1, "stable", [T("x", np.array([[1.0, 2.0, 3.0]]))],
                  labels_out([0]), 1.0)
    assert log.stats()["iris"]["written"] == 3
    assert read_predictions(tmp_path, "iris").num_rows == 3


def test_bad_settings_are_refused_precisely(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="sample rate"):
        PredictionLog(tmp_path, sample_rate=1.5)
    with pytest.raises(InvalidInputError, match="worker id"):
        PredictionLog(tmp_path, worker_id="a/b")
    with pytest.raises(InvalidInputError, match="max_queue_rows"):
        PredictionLog(tmp_path, max_queue_rows=0)
    log = PredictionLog(tmp_path)
    with pytest.raises(InvalidInputError, match="sample rate"):
        log.set_sample_rate("iris", -0.1)
    log.set_sample_rate("iris", 0.0)
    assert not log.offer("iris", "a", 1, "stable", rows(1), labels_out([0]), 1.0)
    assert log.sample_rate("iris") == 0.0


def test_cleanup_removes_old_days_only(tmp_path: Path) -> None:
    now = datetime(2026, 12, 10, 12, tzinfo=UTC)
    for days_ago in (0, 3, 4, 10):
        day = (now - timedelta(days=days_ago)).date()
        for kind in ("predictions", "labels"):
            folder = tmp_path / kind / "endpoint=iris" / f"date={day.isoformat()}"
            folder.mkdir(parents=True)
            (folder / "w-x-000001.parquet").write_bytes(b"x")
    removed = cleanup(tmp_path, 3, now=now)
    assert len(removed) == 4  # 4 and 10 days ago, predictions and labels
    left = {p.parent.name for p in list_files(tmp_path, "predictions", "iris")}
    assert left == {"date=2026-12-10", "date=2026-12-07"}
    assert cleanup(tmp_path, 0, now=now + timedelta(days=30)) and not (
        tmp_path / "predictions" / "endpoint=iris").exists()
    with pytest.raises(InvalidInputError, match="retention"):
        cleanup(tmp_path, -1)
