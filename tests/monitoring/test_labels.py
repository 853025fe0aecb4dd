"""Delayed labels: the feedback body parser, label files, storage."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelport.errors import InvalidInputError, PayloadTooLargeError
from modelport.monitoring.labels import (
    Label,
    LabelLog,
    parse_feedback,
    read_label_file,
    record_labels,
)
from modelport.monitoring.query import read_labels
from tests.monitoring.conftest import WAIT


def test_one_label_or_a_list() -> None:
    assert parse_feedback(b'{"id": "r1", "label": "setosa"}') == [Label("r1", "setosa")]
    assert parse_feedback(b'[{"id": "r1", "label": 2}, {"id": "r2", "label": 0.5, "row": 3},'
                          b'{"id": "r3", "label": true}]') == [
        Label("r1", 2), Label("r2", 0.5, 3), Label("r3", True)]


@pytest.mark.parametrize(("body", "message"), [
    (b"{", "not valid JSON"),
    (b"[]", "list is empty"),
    (b'"text"', 'must be an object {"id": ..., "label": ...} or a list of them, got str'),
    (b'[{"id": "a", "label": 1}, 5]', "item 1: expected an object"),
    (b'{"label": 1}', '"id" is missing'),
    (b'{"id": 7, "label": 1}', '"id" must be a non-empty string, got int'),
    (b'{"id": "", "label": 1}', '"id" must be a non-empty string, got an empty one'),
    (b'{"id": "a"}', '"label" is missing'),
    (b'{"id": "a", "label": null}', "label is missing"),
    (b'{"id": "a", "label": [1, 2]}', "label must be a number, string or boolean, got a list"),
    (b'{"id": "a", "label": {"x": 1}}', "got an object"),
    (b'{"id": "a", "label": 1, "lable": 2}', "unknown field 'lable'"),
    (b'{"id": "a", "label": 1, "row": -1}', '"row" must be a whole number >= 0'),
    (b'{"id": "a", "label": 1, "row": true}', '"row" must be a whole number'),
])
def test_malformed_bodies_say_precisely_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_feedback(body)
    assert message in str(info.value)


def test_too_many_labels_is_413() -> None:
    body = orjson.dumps([{"id": str(i), "label": 1} for i in range(11)])
    with pytest.raises(PayloadTooLargeError, match="11 labels; at most 10"):
        parse_feedback(body, max_items=10)
    assert PayloadTooLargeError.http_status == 413


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5),
    lambda kids: st.lists(kids, max_size=3)
    | st.dictionaries(st.sampled_from(["id", "label", "row", "x"]), kids, max_size=4),
    max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_gives_labels_or_a_precise_invalid_input_error(payload: object) -> None:
    body = orjson.dumps(payload)
    try:
        got = parse_feedback(body)
    except InvalidInputError as exc:
        assert exc.message and exc.http_status in (400, 413)
        return
    items = payload if isinstance(payload, list) else [payload]
    assert len(got) == len(items)
    for label, item in zip(got, items, strict=True):
        assert isinstance(item, dict)
        assert label.id == item["id"] and label.label == item["label"]
        assert label.row == item.get("row", 0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=20),
     "label": st.integers(-10**9, 10**9) | st.text(min_size=1, max_size=10) | st.booleans()}),
    min_size=1, max_size=20))
def test_valid_bodies_round_trip(items: list[dict[str, object]]) -> None:
    got = parse_feedback(orjson.dumps(items))
    assert [(x.id, x.label) for x in got] == [(i["id"], i["label"]) for i in items]


def test_label_files_in_every_format(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": ["0042", "b"], "label": [1, 0], "extra": ["x", "y"]})
    frame.to_csv(tmp_path / "l.csv", index=False)
    frame.to_parquet(tmp_path / "l.parquet")
    (tmp_path / "l.json").write_text(json.dumps(frame.to_dict(orient="records")))
    (tmp_path / "l.jsonl").write_text("\n".join(json.dumps(r) for r in
                                                frame.to_dict(orient="records")) + "\n\n")
    for name in ("l.csv", "l.parquet", "l.json", "l.jsonl"):
        assert read_label_file(tmp_path / name) == [Label("0042", 1), Label("b", 0)], name


def test_bad_label_files_are_refused_with_the_row(tmp_path: Path) -> None:
    (tmp_path / "gap.csv").write_text("id,label\na,1\nb,\n")
    with pytest.raises(InvalidInputError, match=r"gap.csv row 2: label is missing"):
        read_label_file(tmp_path / "gap.csv")
    (tmp_path / "cols.csv").write_text("request,label\na,1\n")
    with pytest.raises(InvalidInputError, match="has no id column"):
        read_label_file(tmp_path / "cols.csv")
    (tmp_path / "bad.jsonl").write_text('{"id": "a", "label": 1}\n{oops\n')
    with pytest.raises(InvalidInputError, match=r"bad\.jsonl line 2 is not valid JSON"):
        read_label_file(tmp_path / "bad.jsonl")
    with pytest.raises(InvalidInputError, match="not found"):
        read_label_file(tmp_path / "missing.csv")
    (tmp_path / "l.txt").write_text("id,label\n")
    with pytest.raises(InvalidInputError, match="unsupported file type"):
        read_label_file(tmp_path / "l.txt")


def test_record_labels_is_all_or_nothing(tmp_path: Path) -> None:
    assert record_labels(tmp_path, "iris", [{"id": "a", "label": 1}, Label("b", "x", 2)]) == 2
    stored = read_labels(tmp_path, "iris").to_pylist()
    assert [(r["request_id"], r["row"], json.loads(r["label"])) for r in stored] == [
        ("a", 0, 1), ("b", 2, "x")]
    with pytest.raises(InvalidInputError, match="label 1: label is missing"):
        record_labels(tmp_path, "iris", [{"id": "c", "label": 1}, {"id": "d", "label": None}])
    with pytest.raises(InvalidInputError, match="no labels"):
        record_labels(tmp_path, "iris", [])
    assert read_labels(tmp_path, "iris").num_rows == 2


def test_label_log_buffers_for_a_server(tmp_path: Path) -> None:
    log = LabelLog(tmp_path, max_queue_rows=3)
    log.offer("iris", [Label("a", 1), Label("b", 2)])
    assert log.flush(WAIT)
    log.offer("iris", [Label("c", 1)])
    assert log.close(WAIT)
    assert log.written == 3
    assert read_labels(tmp_path, "iris").column("request_id").to_pylist() == ["a", "b", "c"]
