"""Deployments, their history and rollouts, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from modelport.client import Registry
from modelport.config import Settings
from modelport.errors import (
    ConflictError,
    DeploymentNotFoundError,
    InvalidInputError,
    InvalidNameError,
    ModelNotFoundError,
    RolloutNotFoundError,
    VersionNotFoundError,
)
from modelport.registry.entities import Mode, RolloutStatus


@pytest.fixture
def two_versions(registry: Registry) -> Registry:
    rng = np.random.default_rng(0)
    X = rng.random((40, 3))
    y = (X[:, 0] > 0.5).astype(int)
    for c in (1.0, 0.1):
        registry.log_model(LogisticRegression(C=c).fit(X, y), "iris", input_example=X[:2])
    registry.set_alias("iris", "champion", 1)
    return registry


def _start(reg: Registry, **kw: object) -> tuple:
    args: dict[str, object] = dict(model_name="iris", candidate=2, strategy="canary",
                                   steps=[5, 50, 100], actor="alice", mode=Mode.CANARY,
                                   stable=1, step_seconds=10.0)
    args.update(kw)
    return reg.deployments.start_rollout("iris", **args)  # type: ignore[arg-type]


def test_create_get_list_and_conflict(two_versions: Registry) -> None:
    d = two_versions.deployments
    dep = d.create("iris", "iris", 1, "alice", alias="champion", reason="first")
    assert (dep.stable, dep.candidate, dep.mode, dep.weight, dep.generation) == (1, None, None,
                                                                               0.0, 1)
    assert d.get("iris") == dep and d.list() == [dep] and d.many(["iris", "x"]) == {"iris": dep}
    with pytest.raises(ConflictError, match="already exists"):
        d.create("iris", "iris", 1, "alice")
    with pytest.raises(DeploymentNotFoundError):
        d.get("nope")
    assert d.find("nope") is None
    with pytest.raises(InvalidNameError):
        d.get("../etc")
    with pytest.raises(VersionNotFoundError):
        d.create("other", "iris", 99, "alice")
    assert [e.kind for e in d.events("iris")] == ["created"]


def test_update_bumps_generation_records_event_and_moves_alias(two_versions: Registry) -> None:
    d = two_versions.deployments
    d.create("iris", "iris", 1, "alice", alias="champion")
    dep = d.update("iris", "bob", "manual", reason="why not", metrics={"x": 1.0}, stable=2,
                   previous=1)
    assert (dep.stable, dep.previous, dep.generation, dep.updated_by) == (2, 1, 2, "bob")
    assert two_versions.get("iris@champion").version == 2
    moves = two_versions.history("iris", "champion")
    assert moves[-1].actor == "bob" and "manual" in moves[-1].reason
    last = d.events("iris")[-1]
    assert (last.kind, last.actor, last.reason, last.metrics) == ("manual", "bob", "why not",
                                                                  {"x": 1.0})
    assert last.state["stable"] == 2 and last.state["generation"] == 2
    assert [e.kind for e in d.events("iris", limit=1)] == ["manual"]


def test_update_refuses_bad_fields_without_writing(two_versions: Registry) -> None:
    d = two_versions.deployments
    d.create("iris", "iris", 1, "alice")
    with pytest.raises(InvalidInputError, match="unknown deployment fields"):
        d.update("iris", "bob", "x", colour="red")
    with pytest.raises(InvalidInputError, match="weight"):
        d.update("iris", "bob", "x", weight=101)
    with pytest.raises(VersionNotFoundError):
        d.update("iris", "bob", "x", candidate=7)
    assert d.get("iris").generation == 1 and len(d.events("iris")) == 1


def test_start_rollout_creates_deployment_and_refuses_a_second(two_versions: Registry) -> None:
    rollout, dep = _start(two_versions)
    assert rollout.status is RolloutStatus.RUNNING and rollout.weight == 5.0
    assert (dep.stable, dep.candidate, dep.mode, dep.weight, dep.alias) == (1, 2, Mode.CANARY,
                                                                          0.0, "champion")
    with pytest.raises(ConflictError, match="active rollout"):
        _start(two_versions)
    assert two_versions.deployments.active_rollout("iris") == rollout
    assert [e.kind for e in two_versions.deployments.events("iris")] == ["created",
                                                                         "rollout_started"]


def test_start_rollout_bad_input_leaves_nothing(two_versions: Registry) -> None:
    d = two_versions.deployments
    with pytest.raises(VersionNotFoundError):
        _start(two_versions, candidate=9)
    assert d.find("iris") is None
    _start(two_versions)
    rollout = d.active_rollout("iris")
    assert rollout is not None
    d.transition(rollout.id, "ctl", "promoted", rollout_changes={"status": "promoted"},
                 deployment_changes={"stable": 2, "candidate": None, "mode": None})
    with pytest.raises(ConflictError, match="already the stable"):
        _start(two_versions, candidate=2)
    with pytest.raises(ModelNotFoundError):
        two_versions.deployments.start_rollout(
            "iris", model_name="other", candidate=1, strategy="canary", steps=[100],
            actor="a", mode=Mode.CANARY)
    X = np.random.default_rng(1).random((20, 3))
    two_versions.log_model(LogisticRegression().fit(X, X[:, 0] > 0.5), "other")
    with pytest.raises(InvalidInputError, match="serves model"):
        two_versions.deployments.start_rollout(
            "iris", model_name="other", candidate=1, strategy="canary", steps=[100],
            actor="a", mode=Mode.CANARY)


def test_transition_is_atomic_and_guards_the_step(two_versions: Registry) -> None:
    d = two_versions.deployments
    rollout, _ = _start(two_versions)
    moved, dep = d.transition(rollout.id, "ctl", "step", expect_step=0,
                              rollout_changes={"step_index": 1}, deployment_changes={"weight": 50})
    assert moved.step_index == 1 and dep.weight == 50.0
    with pytest.raises(ConflictError, match="moved to step 1"):
        d.transition(rollout.id, "ctl", "step", expect_step=0,
                     rollout_changes={"step_index": 1})
    with pytest.raises(InvalidInputError):
        d.transition(rollout.id, "ctl", "x", rollout_changes={"nope": 1})
    done, dep = d.transition(rollout.id, "ctl", "rolled_back", reason="errors 12%",
                             metrics={"error_rate": 0.12},
                             rollout_changes={"status": RolloutStatus.ROLLED_BACK},
                             deployment_changes={"candidate": None, "mode": None, "weight": 0})
    assert done.status is RolloutStatus.ROLLED_BACK and dep.candidate is None
    assert two_versions.get("iris@champion").version == 1  # stable never changed
    with pytest.raises(ConflictError, match="already rolled_back"):
        d.transition(rollout.id, "ctl", "x")
    with pytest.raises(RolloutNotFoundError):
        d.rollout(999)
    last = d.events("iris")[-1]
    assert last.rollout_id == rollout.id and last.metrics == {"error_rate": 0.12}
    # A finished rollout frees the endpoint for the next one.
    again, _ = _start(two_versions)
    assert again.id != rollout.id
    assert [r.id for r in d.rollouts("iris")] == [again.id, rollout.id]
    assert [r.id for r in d.rollouts(active_only=True)] == [again.id]


def _race(url: str, home: str, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    reg = Registry(settings=Settings.load(home, database_url=url))
    try:
        _start(reg)
        queue.put("started")
    except ConflictError:
        queue.put("conflict")
    finally:
        reg.close()


def test_concurrent_rollout_starts_one_wins(two_versions: Registry, home: Path) -> None:
    url = two_versions.settings.database_url
    two_versions.deployments.create("iris", "iris", 1, "alice")
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(url, str(home), queue)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    results = sorted(queue.get(timeout=10) for _ in procs)
    assert results == ["conflict", "conflict", "conflict", "started"]
