"""Gate results, pipeline runs, traffic counters and leases, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from modelport.client import Registry
from modelport.errors import InvalidInputError, NotFoundError, VersionNotFoundError
from modelport.registry.entities import PipelineRun
from modelport.registry.traffic import VersionStats, fleet_total


@pytest.fixture
def one_version(registry: Registry) -> Registry:
    X = np.random.default_rng(0).random((30, 2))
    registry.log_model(LogisticRegression().fit(X, X[:, 0] > 0.5), "m", input_example=X[:2])
    return registry


def test_gate_results_are_kept_per_version(one_version: Registry) -> None:
    rec = one_version.records
    assert rec.latest_gate("m", 1) is None
    rec.record_gate("m", 1, passed=False, against=None, report={"checks": []}, actor="ci")
    second = rec.record_gate("m", 1, passed=True, against=None, report={"n": 2}, actor="ci")
    assert rec.latest_gate("m", 1) == second
    assert [g.passed for g in rec.gate_results("m")] == [False, True]
    with pytest.raises(VersionNotFoundError):
        rec.record_gate("m", 5, passed=True, against=None, report={}, actor="ci")


def test_pipeline_runs_insert_then_update(registry: Registry) -> None:
    rec = registry.records
    now = datetime.now(UTC)
    run = PipelineRun("r1", "iris", "running", "abc123", [], now, None, "ci")
    rec.save_pipeline_run(run)
    done = PipelineRun("r1", "iris", "succeeded", "abc123",
                       [{"name": "train", "status": "succeeded", "seconds": 1.5}], now,
                       now + timedelta(seconds=2), "ci")
    rec.save_pipeline_run(done)
    got = rec.pipeline_run("r1")
    assert got.status == "succeeded" and got.steps[0]["name"] == "train"
    assert [r.id for r in rec.pipeline_runs("iris")] == ["r1"]
    with pytest.raises(NotFoundError):
        rec.pipeline_run("nope")


def test_traffic_reports_upsert_per_server_and_sum(registry: Registry) -> None:
    rec = registry.records
    a, b = VersionStats(), VersionStats()
    for _ in range(5):
        a.record(0.002, True)
    b.record(0.2, False)
    rec.report_traffic("s1", "iris", {1: a.to_dict()})
    a.record(0.002, True)
    rec.report_traffic("s1", "iris", {1: a.to_dict(), 2: b.to_dict()})
    rec.report_traffic("s2", "iris", {1: b.to_dict()})
    reports = rec.traffic("iris")
    assert len(reports) == 3
    v1 = fleet_total([r.stats for r in reports if r.version == 1])
    assert (v1.requests, v1.errors) == (7, 1)
    assert rec.traffic("other") == []
    assert rec.prune_traffic(timedelta(hours=1)) == 0
    assert rec.prune_traffic(timedelta(seconds=-1)) == 3


def test_leases_exclude_others_until_expiry(registry: Registry) -> None:
    rec = registry.records
    assert rec.acquire_lease("ctl", "a", 0.5)
    assert not rec.acquire_lease("ctl", "b", 0.5)
    assert rec.acquire_lease("ctl", "a", 0.5)  # renewal
    holder = rec.lease_holder("ctl")
    assert holder is not None and holder[0] == "a"
    time.sleep(0.6)
    assert rec.lease_holder("ctl") is None
    assert rec.acquire_lease("ctl", "b", 5)  # expired: taken over
    rec.release_lease("ctl", "a")  # not a's any more: nothing happens
    assert rec.lease_holder("ctl")[0] == "b"  # type: ignore[index]
    rec.release_lease("ctl", "b")
    assert rec.lease_holder("ctl") is None
    with pytest.raises(InvalidInputError):
        rec.acquire_lease("ctl", "a", 0)
