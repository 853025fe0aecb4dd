"""Chart series from the fleet's cumulative counters, sampled and differenced."""

from __future__ import annotations

from modelport.client import Registry
from modelport.dashboard.sampler import TrafficSampler
from modelport.registry.traffic import VersionStats


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _stats(requests: int, errors: int = 0, ms: float = 3.0) -> dict[str, object]:
    s = VersionStats()
    for i in range(requests):
        s.record(ms / 1000.0, ok=i >= errors)
    return s.to_dict()


def test_points_are_fleet_deltas_per_interval(sqlite_registry: Registry) -> None:
    clock = Clock()
    sampler = TrafficSampler(sqlite_registry, lambda: ["iris"], period=2.0, clock=clock)
    records = sqlite_registry.records
    records.report_traffic("a", "iris", {1: _stats(10)})
    records.report_traffic("b", "iris", {1: _stats(5)})
    sampler.sample()
    # 2 s later: server a +20 requests (4 failed), b +10; version 2 appears on a.
    clock.now += 2.0
    records.report_traffic("a", "iris", {1: _stats(30, errors=4), 2: _stats(6, ms=40.0)})
    records.report_traffic("b", "iris", {1: _stats(15)})
    sampler.sample()
    clock.now += 4.0  # nothing new for 4 s
    sampler.sample()
    series = sampler.series("iris")
    assert series["t"] == [1002.0, 1006.0]
    v1, v2 = series["versions"]["1"], series["versions"]["2"]
    assert v1["rps"] == [15.0, 0.0]  # (20 + 10) / 2 s
    assert v1["error_rate"][0] == round(100 * 4 / 30, 3)
    assert v1["error_rate"][1] is None  # an idle interval has no rate
    assert v1["p99_ms"][0] == 3  # 3 ms: the (2, 3] bucket's upper bound
    assert v2["rps"] == [3.0, 0.0]
    assert v2["p99_ms"][0] == 50


def test_old_points_are_forgotten_and_unknown_endpoints_are_empty(
        sqlite_registry: Registry) -> None:
    clock = Clock()
    sampler = TrafficSampler(sqlite_registry, lambda: ["iris"], keep=10.0, clock=clock)
    for n in range(8):
        sqlite_registry.records.report_traffic("a", "iris", {1: _stats(n)})
        sampler.sample()
        clock.now += 4.0
    series = sampler.series("iris")
    assert len(series["t"]) == 2  # samples within 10 s: three, so two intervals
    assert series["versions"]["1"]["rps"] == [0.25, 0.25]
    assert sampler.series("nope") == {"t": [], "versions": {}}
