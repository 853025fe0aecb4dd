"""The controller against a real registry (SQLite and PostgreSQL), with the servers'
counters written through ``records.report_traffic`` as real servers write them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from modelport.client import Registry
from modelport.registry.entities import Mode, RolloutStatus
from modelport.rollout import service
from modelport.rollout.analysis import Measurements, Window
from modelport.rollout.controller import LEASE, Controller
from tests.rollout.conftest import Servers, start


def kinds(reg: Registry) -> list[str]:
    """The kinds of the endpoint's events, oldest first."""
    return [e.kind for e in reg.deployments.events("iris")]


def warm(servers: Servers, controller: Controller, version: int = 2) -> None:
    """Both servers report the candidate ready; the controller starts step 1."""
    for sid in ("s1", "s2"):
        servers.state(sid, version, "ready")
    moves = controller.tick()
    assert [m.kind for m in moves] == ["step_started"], moves


def test_good_canary_walks_every_step_to_promoted(reg: Registry, servers: Servers,
                                                   controller: Controller) -> None:
    rid = start(reg)
    servers.state("s1", 2, "loading")
    assert controller.tick() == []  # s2 has not even started loading: no traffic yet
    assert reg.deployments.get("iris").weight == 0
    warm(servers, controller)
    for weight in (5, 25, 50, 100):
        dep = reg.deployments.get("iris")
        assert (dep.candidate, dep.mode, dep.weight) == (2, Mode.CANARY, weight)
        servers.serve("s1", 1, 40)
        servers.serve("s1", 2, 10)
        assert controller.tick() == []  # 10 of 30 candidate requests: step held
        servers.serve("s2", 2, 20)
        assert len(controller.tick()) == 1
    r = reg.deployments.rollout(rid)
    dep = reg.deployments.get("iris")
    assert r.status is RolloutStatus.PROMOTED
    assert (dep.stable, dep.previous, dep.candidate, dep.mode, dep.weight) == (2, 1, None,
                                                                               None, 0)
    assert reg.get("iris@champion").version == 2
    assert kinds(reg) == ["created", "rollout_started"] + ["step_started"] * 4 + ["promoted"]
    last = reg.deployments.events("iris")[-1]
    assert last.actor == "controller@test:1"
    assert last.metrics["verdict"]["outcome"] == "pass"
    assert last.metrics["measurements"]["candidate"]["requests"] == 30


@pytest.mark.parametrize("bad", ["errors", "latency", "shift"])
def test_bad_canary_is_rolled_back_in_the_tick_its_data_arrives(
        reg: Registry, servers: Servers, controller: Controller, bad: str) -> None:
    rid = start(reg, max_p99_ms=50.0)
    warm(servers, controller)
    servers.serve("s1", 1, 200, label="c:1")
    servers.serve("s1", 1, 200, label="c:2")
    servers.serve("s2", 2, 10)
    assert controller.tick() == []
    if bad == "errors":
        servers.serve("s2", 2, 20, errors=6)
    elif bad == "latency":
        servers.serve("s2", 2, 20, ms=400.0)
    else:
        servers.serve("s2", 2, 20, label="c:0")
    [move] = controller.tick()
    assert move.kind == "rolled_back"
    want = {"errors": "error rate", "latency": "p99", "shift": "shift"}[bad]
    assert want in move.reason
    r = reg.deployments.rollout(rid)
    dep = reg.deployments.get("iris")
    assert r.status is RolloutStatus.ROLLED_BACK and want in r.reason
    assert (dep.stable, dep.candidate, dep.mode, dep.weight) == (1, None, None, 0)
    assert reg.get("iris@champion").version == 1
    event = reg.deployments.events("iris")[-1]
    assert event.kind == "rolled_back"
    assert event.metrics["verdict"]["outcome"] == "fail"
    assert any(c["passed"] is False for c in event.metrics["verdict"]["checks"])


def test_heavy_errors_fail_fast_before_the_minimum_sample(
        reg: Registry, servers: Servers, controller: Controller) -> None:
    start(reg, min_requests=1000)
    warm(servers, controller)
    servers.serve("s1", 2, 6, errors=5)
    [move] = controller.tick()
    assert move.kind == "rolled_back" and "5 errors in 6 requests" in move.reason


def test_shadow_with_low_agreement_is_rolled_back(reg: Registry, servers: Servers,
                                                   controller: Controller) -> None:
    start(reg, "shadow", min_agreement=0.95)
    warm(servers, controller)
    dep = reg.deployments.get("iris")
    assert (dep.mode, dep.weight) == (Mode.SHADOW, 0)
    servers.serve("s1", 1, 100)
    servers.serve("s1", 2, 100, compared=100, agreed=80)
    [move] = controller.tick()
    assert move.kind == "rolled_back" and "agreement with stable 80.0%" in move.reason


def test_shadow_that_agrees_is_promoted(reg: Registry, servers: Servers,
                                        controller: Controller) -> None:
    start(reg, "shadow")
    warm(servers, controller)
    servers.serve("s1", 2, 40, compared=40, agreed=40)
    [move] = controller.tick()
    assert move.kind == "promoted"
    assert reg.get("iris@champion").version == 2


def test_bluegreen_checks_in_shadow_then_switches_whole(reg: Registry, servers: Servers,
                                                        controller: Controller) -> None:
    start(reg, "bluegreen")
    warm(servers, controller)
    assert reg.deployments.get("iris").mode is Mode.SHADOW
    servers.serve("s1", 1, 50)
    servers.serve("s1", 2, 40, compared=40, agreed=39)
    [move] = controller.tick()
    dep = reg.deployments.get("iris")
    assert move.kind == "step_started" and (dep.mode, dep.weight) == (Mode.BLUEGREEN, 100)
    # At 100% stable answers nothing: the candidate is compared with stable's history.
    servers.serve("s1", 2, 40)
    [move] = controller.tick()
    assert move.kind == "promoted"


def test_bluegreen_switches_back_at_once_when_green_fails(
        reg: Registry, servers: Servers, controller: Controller) -> None:
    start(reg, "bluegreen")
    warm(servers, controller)
    servers.serve("s1", 1, 50)
    servers.serve("s1", 2, 40, compared=40, agreed=40)
    controller.tick()
    servers.serve("s1", 2, 40, errors=10)
    [move] = controller.tick()
    dep = reg.deployments.get("iris")
    assert move.kind == "rolled_back" and (dep.candidate, dep.weight) == (None, 0)


def test_candidate_that_fails_to_load_fails_the_rollout(
        reg: Registry, servers: Servers, controller: Controller) -> None:
    rid = start(reg)
    servers.state("s1", 2, "ready")
    servers.state("s2", 2, "failed", "ValueError: bad artifact")
    [move] = controller.tick()
    assert move.kind == "failed" and "s2: ValueError: bad artifact" in move.reason
    r = reg.deployments.rollout(rid)
    dep = reg.deployments.get("iris")
    assert r.status is RolloutStatus.FAILED
    assert (dep.stable, dep.candidate, dep.weight) == (1, None, 0)
    assert "step_started" not in kinds(reg)  # it never got traffic


def test_candidate_never_ready_times_out(reg: Registry, servers: Servers,
                                         controller: Controller) -> None:
    rid = start(reg, ready_timeout=30.0)
    servers.state("s1", 2, "loading")
    assert controller.tick() == []
    [move] = controller.tick(now=datetime.now(UTC) + timedelta(seconds=31))
    assert move.kind == "failed" and "not ready after 30s" in move.reason
    assert reg.deployments.rollout(rid).status is RolloutStatus.FAILED


def test_candidate_crashing_mid_rollout_is_rolled_back(
        reg: Registry, servers: Servers, controller: Controller) -> None:
    start(reg)
    warm(servers, controller)
    servers.state("s2", 2, "failed", "worker crashed")
    [move] = controller.tick()
    assert move.kind == "rolled_back" and "s2: worker crashed" in move.reason


def test_step_duration_holds_each_step(reg: Registry, servers: Servers,
                                       controller: Controller) -> None:
    rid = start(reg, duration="60s", requests=None)
    warm(servers, controller)
    started = reg.deployments.rollout(rid).step_started_at
    assert started is not None
    servers.serve("s1", 1, 100)
    servers.serve("s1", 2, 100)
    assert controller.tick(now=started + timedelta(seconds=59)) == []
    [move] = controller.tick(now=started + timedelta(seconds=61))
    assert move.kind == "step_started" and reg.deployments.get("iris").weight == 25


def test_restarted_controller_resumes_the_same_window(reg: Registry, servers: Servers,
                                                      ) -> None:
    rid = start(reg)
    first = Controller(reg, holder="controller@a:1", lease_ttl=0.5)
    warm(servers, first)
    servers.serve("s1", 2, 20)
    assert first.tick() == []
    before = reg.deployments.rollout(rid)
    # ``first`` dies without releasing its lease; ``second`` waits for it to expire.
    second = Controller(reg, holder="controller@b:2", lease_ttl=0.5)
    assert second.tick() == [] and not second.leader
    deadline = time.monotonic() + 10
    while not second.tick() and not second.leader:
        assert time.monotonic() < deadline, "the dead controller's lease never expired"
        time.sleep(0.1)
    after = reg.deployments.rollout(rid)
    assert (after.step_index, after.step_started_at, after.baseline) == (
        before.step_index, before.step_started_at, before.baseline)
    servers.serve("s2", 2, 10)  # 20 seen by the first + 10 now = the 30 the step needs
    [move] = second.tick()
    assert move.kind == "step_started"
    assert reg.deployments.events("iris")[-1].actor == "controller@b:2"
    assert first.tick() == [] and not first.leader  # back from the dead: it stays out
    second.release()


def test_two_controllers_only_one_acts(reg: Registry, servers: Servers) -> None:
    start(reg, requests=10)
    a = Controller(reg, holder="controller@a:1")
    b = Controller(reg, holder="controller@b:2")
    for sid in ("s1", "s2"):
        servers.state(sid, 2, "ready")
    for _ in range(5):
        servers.serve("s1", 2, 10)
        b.tick()
        a.tick()
    actors = {e.actor for e in reg.deployments.events("iris") if e.kind != "rollout_started"
              and e.kind != "created"}
    assert actors == {"controller@b:2"} and not a.leader
    b.release()
    assert reg.records.lease_holder(LEASE) is None
    a.tick()
    assert a.leader


def test_pause_holds_the_step_but_failure_still_rolls_back(
        reg: Registry, servers: Servers, controller: Controller) -> None:
    rid = start(reg)
    warm(servers, controller)
    service.pause(reg, "iris", actor="alice")
    servers.serve("s1", 1, 100)
    servers.serve("s1", 2, 100)
    assert controller.tick() == []
    r = reg.deployments.rollout(rid)
    assert (r.status, r.step_index, reg.deployments.get("iris").weight) == (
        RolloutStatus.PAUSED, 0, 5)
    service.resume(reg, "iris", actor="alice")
    assert controller.tick() == []  # the window restarted at resume: 0 of 30 requests
    servers.serve("s1", 2, 30, errors=30)
    [move] = controller.tick()
    assert move.kind == "rolled_back"


class AccuracyProvider:
    """What a monitoring stage would add once labels arrive: accuracy per version."""

    name = "labels"

    def __init__(self, candidate: float, stable: float) -> None:
        self.values = (candidate, stable)

    def snapshot(self, rollout: object, reports: object = None) -> dict[str, object]:
        return {"labelled_rows": 0}

    def measure(self, rollout: object, window: Window) -> Measurements:
        assert window.baseline == {"labelled_rows": 0}
        return Measurements({"accuracy": self.values[0]}, {"accuracy": self.values[1]})


def test_an_extra_provider_metric_can_roll_back(reg: Registry, servers: Servers) -> None:
    start(reg, metrics={"accuracy": {"min": 0.9, "max_decrease": 0.02}})
    c = Controller(reg, holder="controller@t:1", extra_providers=[AccuracyProvider(0.85, 0.97)])
    warm(servers, c)
    [move] = c.tick()
    assert move.kind == "rolled_back"
    assert "candidate accuracy 0.85 below 0.9" in move.reason
    assert "accuracy decrease against stable 0.12" in move.reason
    c.release()
