"""Operations people run, on SQLite and PostgreSQL: refusals leave nothing behind."""

from __future__ import annotations

import pytest

from modelport.client import Registry
from modelport.errors import (
    ConflictError,
    DeploymentNotFoundError,
    GateFailedError,
    InvalidInputError,
    RolloutNotFoundError,
    VersionNotFoundError,
)
from modelport.registry.entities import RolloutStatus
from modelport.rollout import service
from modelport.rollout.analysis import Thresholds
from modelport.rollout.controller import Controller
from modelport.rollout.strategies import plan
from tests.rollout.conftest import Servers, start

SPEC = service.AnalysisSpec(Thresholds())
PLAN = plan("canary", steps="50,100", step_requests=10)


def test_refusals(reg: Registry) -> None:
    with pytest.raises(VersionNotFoundError):
        service.start(reg, "iris", "iris/7", PLAN, SPEC)
    with pytest.raises(GateFailedError, match="no gate result"):
        service.start(reg, "iris", "iris/2", PLAN, SPEC, require_gate=True)
    with pytest.raises(InvalidInputError, match="not a valid HTTP header"):
        service.start(reg, "iris", "iris/2", PLAN, SPEC, sticky="x user")
    with pytest.raises(InvalidInputError, match="--prometheus-url is only for"):
        service.start(reg, "iris", "iris/2", PLAN,
                      service.AnalysisSpec(Thresholds(), prometheus_url="http://p:9090"))
    assert reg.deployments.find("iris") is None
    reg.log_model(_tiny(), "fresh")
    with pytest.raises(InvalidInputError, match="no stable version to compare with"):
        service.start(reg, "fresh", "fresh/1", PLAN, SPEC)
    with pytest.raises(DeploymentNotFoundError):
        service.abort(reg, "nope")
    reg.deployments.create("iris", "iris", 1, "tester")
    with pytest.raises(RolloutNotFoundError, match="no active rollout"):
        service.abort(reg, "iris")


def _tiny() -> object:
    from sklearn.dummy import DummyClassifier

    return DummyClassifier().fit([[0.0], [1.0]], [0, 1])


def test_gate_passed_is_accepted(reg: Registry) -> None:
    reg.records.record_gate("iris", 2, passed=True, against=1, report={}, actor="ci")
    rollout, dep = service.start(reg, "iris", "iris/2", PLAN, SPEC, require_gate=True)
    assert rollout.require_gate and dep.candidate == 2


def test_rollback_needs_a_previous_version(reg: Registry) -> None:
    start(reg)
    with pytest.raises(ConflictError, match="no previous version"):
        service.rollback(reg, "iris")
    assert reg.deployments.active_rollout("iris") is not None  # untouched


def test_status_shows_the_live_window(reg: Registry, servers: Servers,
                                      controller: Controller) -> None:
    start(reg)
    [item] = service.status(reg)
    assert item.assessment is None and "waiting" in item.note
    for sid in ("s1", "s2"):
        servers.state(sid, 2, "ready")
    controller.tick()
    servers.serve("s1", 1, 50)
    servers.serve("s1", 2, 12)
    [item] = service.status(reg, "iris")
    assert item.assessment is not None
    assert item.assessment.measurements.candidate["requests"] == 12
    assert item.assessment.verdict.outcome == "wait"
    assert item.to_dict()["assessment"]["verdict"]["outcome"] == "wait"
    service.promote(reg, "iris", actor="alice")
    [item] = service.status(reg, "iris")
    assert item.rollout.status is RolloutStatus.PROMOTED and item.assessment is None
    assert service.status(reg) == []
