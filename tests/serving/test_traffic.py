"""Per-version counters, their report to the registry, and shadow comparison."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import numpy as np

from modelport.client import Registry
from modelport.errors import ConfigurationError
from modelport.registry.traffic import VersionStats
from modelport.serving.shadow import agreement
from modelport.serving.traffic import TrafficCounters, new_server_id
from modelport.serving.types import Tensor


def t(values: Any) -> list[Tensor]:
    return [Tensor("output-0", np.asarray(values))]


# -- shadow comparison --------------------------------------------------------------------


def test_agreement_of_labels_row_by_row() -> None:
    assert agreement(t([0, 1, 2, 1]), t([0, 1, 1, 1])) == (4, 3)
    assert agreement(t(["a", "b"]), t(["a", "b"])) == (2, 2)


def test_agreement_of_floats_is_approximate() -> None:
    assert agreement(t([0.5, 1.0]), t([0.5 + 1e-12, 1.1])) == (2, 1)
    assert agreement(t([[0.2, 0.8], [0.6, 0.4]]), t([[0.2, 0.8], [0.4, 0.6]])) == (2, 1)


def test_agreement_when_shapes_or_types_differ() -> None:
    assert agreement(t([0, 1, 2]), t([[0, 1, 2]])) == (3, 0)
    assert agreement(t([0, 1]), t(["0", "1"])) == (2, 0)
    assert agreement(t([0, 1]), []) == (2, 0)
    assert agreement([], t([0])) == (0, 0)


# -- counters -----------------------------------------------------------------------------


def test_counters_record_outputs_off_the_request_path() -> None:
    counters = TrafficCounters(None)
    c = counters.endpoint("iris").version(2)
    for i in range(10):
        c.record(0.001, True, np.array([i % 2, 1]))
    c.record(0.002, False)
    c.record(0.002, True, np.array([0.25, 3.5]))  # floats: binned, not labels
    c.record_shadow(4, 3)
    data = counters.endpoint("iris").snapshot()[2]
    stats = VersionStats.from_dict(data)
    assert (stats.requests, stats.errors) == (12, 1)
    assert stats.outputs["c:1"] == 15 and stats.outputs["c:0"] == 5
    assert sum(v for k, v in stats.outputs.items() if k.startswith("b:")) == 2
    assert (stats.shadow_compared, stats.shadow_agreed) == (4, 3)
    assert data["shadow_dropped"] == 0
    assert counters.endpoint("iris").changes == 13


def test_server_ids_are_unique() -> None:
    ids = {new_server_id() for _ in range(50)}
    assert len(ids) == 50
    host, pid, _ = next(iter(ids)).split(":")
    assert host and pid.isdigit()


def test_flush_reports_changed_endpoints_to_the_registry(registry: Registry) -> None:
    counters = TrafficCounters(registry.records.report_traffic, server_id="s1")

    async def go() -> None:
        counters.endpoint("iris").version(1).record(0.001, True, np.array([1]))
        counters.endpoint("quiet")  # never counted: never reported
        await counters.flush()
        counters.endpoint("iris").version(2).set_state("failed", "boom")
        await counters.flush()

    asyncio.run(go())
    reports = {(r.server_id, r.deployment, r.version): r.stats
               for r in registry.records.traffic("iris")}
    assert set(reports) == {("s1", "iris", 1), ("s1", "iris", 2)}
    assert reports["s1", "iris", 1]["requests"] == 1
    assert reports["s1", "iris", 2]["state"] == "failed"
    assert reports["s1", "iris", 2]["error"] == "boom"
    assert registry.records.traffic("quiet") == []


def test_flush_keeps_counting_while_the_registry_is_down() -> None:
    calls: list[dict[int, dict[str, Any]]] = []
    down = True

    def report(server_id: str, endpoint: str, stats: Mapping[int, dict[str, Any]]) -> None:
        if down:
            raise ConfigurationError("registry database unavailable: connection refused")
        calls.append(dict(stats))

    counters = TrafficCounters(report, server_id="s")

    async def go() -> None:
        nonlocal down
        c = counters.endpoint("iris").version(1)
        c.record(0.001, True)
        await counters.flush()
        c.record(0.001, True)
        down = False
        await counters.flush()
        await counters.flush()  # nothing changed: nothing sent

    asyncio.run(go())
    assert len(calls) == 1 and calls[0][1]["requests"] == 2
