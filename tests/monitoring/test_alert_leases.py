"""Several alert evaluators on one registry (SQLite and PostgreSQL): per-endpoint leases
let one evaluate and act, another takes over when the lease expires; the counter
snapshots windows are differenced against live in the registry, so a new evaluator
goes on with the old one's windows."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelport.client import Registry
from modelport.monitoring.alerts import Alerter, lease_name
from modelport.monitoring.rules import parse_rules
from modelport.registry.traffic import VersionStats

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def report(registry: Registry, requests: int, errors: int = 0, endpoint: str = "iris",
           ) -> None:
    """One server's cumulative counters for version 1 of ``endpoint``."""
    stats = VersionStats(state="ready")
    for i in range(requests):
        stats.record(0.003, ok=i >= errors)
    stats.record_outputs(np.arange(requests % 7 + 1))
    registry.records.report_traffic("server-1", endpoint, {1: stats.to_dict()})


def rules(**by_endpoint: list[dict[str, Any]]) -> list[Any]:
    return parse_rules({"endpoints": by_endpoint})


BUSY = {"name": "busy", "expr": "requests > 5 over 10m"}


# -- the snapshot store --------------------------------------------------------------------


def test_counters_at_is_newest_at_or_before_else_oldest(registry: Registry) -> None:
    store = registry.alerts
    assert store.counters_at("iris", T0) is None
    for minutes, requests in ((0, 10), (5, 20), (10, 30)):
        store.record_counters("iris", T0 + timedelta(minutes=minutes), {"requests": requests})
    store.record_counters("other", T0 + timedelta(minutes=7), {"requests": 99})
    assert store.counters_at("iris", T0 + timedelta(minutes=7)) == (
        T0 + timedelta(minutes=5), {"requests": 20})
    assert store.counters_at("iris", T0 + timedelta(minutes=10))[1] == {"requests": 30}
    assert store.counters_at("iris", T0 - timedelta(hours=1)) == (T0, {"requests": 10})
    # Another offset is the same instant: 13:07+01:00 is 12:07 UTC.
    plus_one = timezone(timedelta(hours=1))
    at = datetime(2026, 12, 1, 13, 7, tzinfo=plus_one)
    assert store.counters_at("iris", at)[1] == {"requests": 20}


def test_snapshots_older_than_two_days_are_pruned(registry: Registry) -> None:
    store = registry.alerts
    store.record_counters("iris", T0, {"requests": 1})
    store.record_counters("other", T0, {"requests": 1})
    store.record_counters("iris", T0 + timedelta(days=1), {"requests": 2})
    assert store.counters_at("iris", T0) == (T0, {"requests": 1})
    store.record_counters("iris", T0 + timedelta(days=2, seconds=1), {"requests": 3})
    # The oldest of iris is now a day old; other's snapshots are its own business.
    assert store.counters_at("iris", T0) == (T0 + timedelta(days=1), {"requests": 2})
    assert store.counters_at("other", T0) == (T0, {"requests": 1})


def test_a_new_alerter_differences_against_the_old_ones_snapshots(registry: Registry,
                                                                   tmp_path: Path) -> None:
    first = Alerter(registry, tmp_path, rules(iris=[BUSY]))
    report(registry, 100)
    out = first.tick(T0)[0]
    assert out.value.value == 100 and "since the servers started" in out.value.note
    report(registry, 103)
    assert first.tick(T0 + timedelta(minutes=1))[0].value.value == 3
    # A restart: a new process, a new Alerter, nothing in memory.
    second = Alerter(registry, tmp_path, rules(iris=[BUSY]))
    report(registry, 104)
    out = second.tick(T0 + timedelta(minutes=2))[0]
    assert out.value.value == 4 and out.breached is False  # 104 - the 100 seen at T0
    assert out.value.note == "over the last 2m only"
    report(registry, 120)
    out = second.tick(T0 + timedelta(minutes=11, seconds=30))[0]
    assert out.value.value == 17 and out.value.note == ""  # 120 - the 103 at T0+1m
    assert out.change == "firing"
    snapshot = registry.alerts.counters_at("iris", T0)
    assert snapshot is not None and snapshot[1]["outputs"] == {}  # not kept: never read
    assert VersionStats.from_dict(snapshot[1]).requests == 100


# -- leases --------------------------------------------------------------------------------


def test_two_alerters_only_one_evaluates_the_other_takes_over(registry: Registry,
                                                             tmp_path: Path) -> None:
    acted: list[str] = []
    actions = {"abort_rollout": lambda ep, why: acted.append(why) or "aborted"}
    a = Alerter(registry, tmp_path, rules(iris=[{**BUSY, "action": "abort_rollout"}]),
                actions=actions, holder="alerter@a:1", lease_ttl=0.5)
    b = Alerter(registry, tmp_path, rules(iris=[{**BUSY, "action": "abort_rollout"}]),
                actions=actions, holder="alerter@b:2", lease_ttl=0.5)
    report(registry, 3)
    assert [o.change for o in a.poll(T0)] == [""] and a.held == {"iris"}
    assert b.poll(T0) == [] and b.held == set()
    report(registry, 10)
    assert b.poll(T0 + timedelta(minutes=1)) == []
    [out] = a.poll(T0 + timedelta(minutes=1))
    assert out.change == "firing" and out.value.value == 7  # a's window: 10 - 3
    assert len(acted) == 1
    assert registry.records.lease_holder(lease_name("iris"))[0] == "alerter@a:1"
    # ``a`` dies without releasing; ``b`` stays idle until the lease expires.
    deadline = time.monotonic() + 10
    while not b.poll(T0 + timedelta(minutes=2)):
        assert time.monotonic() < deadline, "the dead alerter's lease never expired"
        time.sleep(0.1)
    assert b.held == {"iris"}
    assert registry.records.lease_holder(lease_name("iris"))[0] == "alerter@b:2"
    assert a.poll(T0 + timedelta(minutes=2)) == [] and a.held == set()  # back: stays out
    assert len(acted) == 1  # b found the alert a opened: firing already, no second action
    assert [x.state for x in registry.alerts.list("iris")] == ["firing"]
    b.release()
    assert registry.records.lease_holder(lease_name("iris")) is None
    assert a.poll(T0 + timedelta(minutes=3)) and a.held == {"iris"}  # at once, no expiry
    a.release()


def test_leases_are_per_endpoint(registry: Registry, tmp_path: Path) -> None:
    both = Alerter(registry, tmp_path, rules(iris=[BUSY], fraud=[BUSY]), holder="x@1:1")
    fraud_only = Alerter(registry, tmp_path, rules(fraud=[BUSY]), holder="y@2:2")
    assert {o.rule.endpoint for o in fraud_only.poll(T0)} == {"fraud"}
    # ``both`` holds iris (nobody else evaluates it) but not fraud.
    assert {o.rule.endpoint for o in both.poll(T0)} == {"iris"}
    assert both.held == {"iris"} and fraud_only.held == {"fraud"}
    long_name = "e" * 128
    assert len(lease_name(long_name)) <= 128 and lease_name(long_name) != lease_name("e")
    lone = Alerter(registry, tmp_path, rules(**{long_name: [BUSY]}), holder="z@3:3")
    assert lone.lead() == {long_name}
    for alerter in (both, fraud_only, lone):
        alerter.release()


def test_run_evaluates_while_leading_and_releases_on_stop(registry: Registry,
                                                          tmp_path: Path) -> None:
    alerter = Alerter(registry, tmp_path, rules(iris=[{**BUSY, "expr": "requests > 5"}]),
                      interval=1, holder="alerter@run:1")
    report(registry, 50)
    stop = threading.Event()
    thread = threading.Thread(target=alerter.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while registry.alerts.open_alert("iris", "busy") is None:
            assert time.monotonic() < deadline, "run never evaluated the rule"
            time.sleep(0.05)
        assert registry.records.lease_holder(lease_name("iris"))[0] == "alerter@run:1"
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert registry.records.lease_holder(lease_name("iris")) is None


def test_bad_interval_or_ttl_is_refused(registry: Registry, tmp_path: Path) -> None:
    from modelport.errors import InvalidInputError

    for kwargs in ({"interval": 0}, {"lease_ttl": -1}, {"interval": float("nan")}):
        with pytest.raises(InvalidInputError, match="must be positive"):
            Alerter(registry, tmp_path, [], **kwargs)
