"""Traffic counters: recording, windows (differences), quantiles and output shift."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from modelport.registry.traffic import VersionStats, fleet_total, output_distance, shift_p_value

latencies = st.lists(st.tuples(st.floats(0, 20, allow_nan=False), st.booleans()), max_size=50)


def _stats(events: list[tuple[float, bool]]) -> VersionStats:
    s = VersionStats()
    for seconds, ok in events:
        s.record(seconds, ok)
    return s


@given(latencies, latencies)
def test_a_window_is_the_difference_of_totals(first: list, second: list) -> None:
    before = _stats(first)
    after = _stats(first + second)
    window = after - before
    assert window.requests == len(second)
    assert window.errors == sum(1 for _, ok in second if not ok)
    assert sum(window.latency) == len(second)
    assert (before + window).to_dict()["latency"] == after.latency


@given(latencies)
def test_round_trip_through_json_form(events: list) -> None:
    s = _stats(events)
    s.record_outputs(np.array([0, 1, 1]))
    s.record_shadow(3, 2)
    back = VersionStats.from_dict(s.to_dict())
    assert back.to_dict() == s.to_dict()


def test_quantiles_error_rate_and_agreement() -> None:
    s = _stats([(0.001, True)] * 98 + [(0.4, False)] * 2)
    assert s.error_rate == 0.02
    assert s.latency_quantile(0.5) == 1
    assert s.latency_quantile(0.99) == 500
    assert VersionStats().latency_quantile(0.99) is None and VersionStats().agreement is None
    s.record_shadow(10, 9)
    assert s.agreement == 0.9


def test_outputs_count_labels_and_bin_numbers() -> None:
    s = VersionStats()
    s.record_outputs(np.array(["a", "b", "a"], dtype=object))
    s.record_outputs(np.array([[0.0, 1.0], [1.0, 0.0]]))  # first column: labels 0 and 1
    s.record_outputs(np.array([0.51, 0.52, 123.4]))
    assert s.outputs["c:a"] == 2 and s.outputs["c:0"] == 1 and s.outputs["c:1"] == 1
    assert sum(v for k, v in s.outputs.items() if k.startswith("b:")) == 3


def test_outputs_are_capped() -> None:
    s = VersionStats()
    s.record_outputs(np.arange(1000, dtype=np.int64))
    assert len(s.outputs) == 257 and s.outputs["other"] == 1000 - 256


def test_output_distance() -> None:
    assert output_distance({"c:1": 10}, {"c:1": 3}) == 0.0
    assert output_distance({"c:1": 10}, {"c:0": 3}) == 1.0
    mid = output_distance({"c:1": 5, "c:0": 5}, {"c:1": 9, "c:0": 1})
    assert mid is not None and 0 < mid < 1
    assert output_distance({}, {"c:1": 1}) is None


def test_fleet_total_and_tolerant_reading() -> None:
    total = fleet_total([_stats([(0.01, True)]).to_dict(), {"requests": 2, "latency": [1]}])
    assert total.requests == 3 and sum(total.latency) == 1


def test_shift_p_value_separates_chance_from_change() -> None:
    stable = {"c:0": 200, "c:1": 200, "c:2": 200}
    chance = shift_p_value({"c:0": 8, "c:1": 6, "c:2": 7}, stable)
    change = shift_p_value({"c:0": 21}, stable)
    assert chance is not None and chance > 0.5
    assert change is not None and change < 1e-6
    # Rare keys are pooled so the test stays valid; one category or no data: no answer.
    assert shift_p_value({"c:0": 5, "c:9": 1}, {"c:0": 50, "c:8": 1}) is not None
    assert shift_p_value({"c:0": 5}, {"c:0": 9}) is None
    assert shift_p_value({}, stable) is None
