"""End to end: ``modelport rollout ...``, ``rollback`` and ``controller`` as real
processes against a temporary home; servers' counters are written into the registry
the way servers write them (``records.report_traffic``)."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelport.client import Registry
from modelport.config import Settings
from modelport.registry.traffic import VersionStats
from modelport.rollout.controller import LEASE
from tests.e2e.conftest import Cli, Result
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e


def expect(result: Result, code: int, words: str = "") -> Result:
    """Assert exit code (and words in the one error line), showing the run otherwise."""
    assert result.returncode == code, f"expected exit {code}\n{result}"
    if words:
        assert words in result.stderr and "Traceback" not in result.stderr, str(result)
    return result


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A home with iris v1 (champion), v2, v3, and model 'other' v1."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    h = tmp_path / "home"
    x, y = load_iris(return_X_y=True)
    with Registry(settings=Settings.load(h)) as reg:
        for i in range(3):
            reg.log_model(LogisticRegression(max_iter=200 + i).fit(x, y), "iris",
                          input_example=x[:3])
        reg.log_model(LogisticRegression(max_iter=500).fit(x, y), "other")
        reg.set_alias("iris", "champion", 1)
    yield h


def open_registry(home: Path) -> Registry:
    """The test's own connection to the home's registry."""
    return Registry(settings=Settings.load(home))


def report(reg: Registry, server: str, counters: dict[int, VersionStats]) -> None:
    """What a server does every 0.25 s."""
    reg.records.report_traffic(server, "iris", {v: s.to_dict() for v, s in counters.items()})


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll ``check`` until truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout}s")


def test_start_refuses_bad_input(cli: Cli, home: Path) -> None:
    with open_registry(home) as reg:
        reg.records.record_gate("iris", 3, passed=False, against=1, report={}, actor="ci")
    base = ["rollout", "start", "iris", "--step-duration", "1m"]
    runs = cli.many(home, [
        [*base, "--candidate", "iris/9"],
        [*base, "--candidate", "nosuch/1"],
        [*base, "--candidate", "iris/2", "--steps", "5,25,50"],
        [*base, "--candidate", "iris/2", "--steps", "5,50,25,100"],
        [*base, "--candidate", "iris/2", "--steps", "5,x,100"],
        ["rollout", "start", "iris", "--candidate", "iris/2", "--step-duration", "abc"],
        [*base, "--candidate", "iris/2", "--strategy", "linear"],
        [*base, "--candidate", "iris/2", "--require-gate"],
        [*base, "--candidate", "iris/3", "--require-gate"],
        [*base, "--candidate", "iris/1"],
        [*base, "--candidate", "iris/2", "--max-error-rate", "2"],
        [*base, "--candidate", "iris/2", "--analysis", "prometheus"],
        ["rollback", "iris"],
        ["rollout", "promote", "iris"],
        ["rollout", "history", "iris"],
    ])
    expect(runs[0], 3, "version 9")
    expect(runs[1], 3, "nosuch")
    expect(runs[2], 2, "--steps must end at 100")
    expect(runs[3], 2, "--steps must increase strictly: 25 follows 50")
    expect(runs[4], 2, "--steps: 'x' is not a number")
    expect(runs[5], 2, "--step-duration: 'abc' is not a duration")
    expect(runs[6], 2, "unknown strategy 'linear'")
    expect(runs[7], 10, "iris/2 has no gate result")
    expect(runs[8], 10, "iris/3 failed its latest gate")
    expect(runs[9], 4, "already the stable version")
    expect(runs[10], 2, "--max-error-rate must be within 0-1")
    expect(runs[11], 2, "--analysis prometheus needs --prometheus-url")
    for r in runs[12:]:
        expect(r, 3, "no deployment named 'iris'")
    with open_registry(home) as reg:
        assert reg.deployments.find("iris") is None  # nothing half-written


def test_rollout_lifecycle_by_hand(cli: Cli, home: Path) -> None:
    started = expect(cli.run(home, "rollout", "start", "iris", "--candidate", "iris/2",
                             "--steps", "10,50,100", "--step-duration", "30s",
                             "--max-p99-ms", "250", "--sticky-header", "x-user", "--json"), 0)
    doc = started.json()
    assert doc["rollout"]["steps"] == [10, 50, 100]
    assert doc["rollout"]["analysis"]["max_p99_ms"] == 250
    assert doc["deployment"]["candidate"] == 2 and doc["deployment"]["weight"] == 0
    second, other, status, paused = cli.many(home, [
        ["rollout", "start", "iris", "--candidate", "iris/3", "--step-requests", "5"],
        ["rollout", "start", "iris", "--candidate", "other/1", "--step-requests", "5"],
        ["rollout", "status", "--json"],
        ["rollout", "pause", "iris"],
    ])
    expect(second, 4, "already has an active rollout")
    expect(other, 2, "endpoint 'iris' serves model 'iris'")
    [item] = expect(status, 0).json()
    assert item["rollout"]["candidate"] == 2 and "waiting for every server" in item["note"]
    expect(paused, 0)
    expect(cli.run(home, "rollout", "pause", "iris"), 4, "already paused")
    assert expect(cli.run(home, "rollout", "status", "iris"), 0).stdout.count("paused")
    expect(cli.run(home, "rollout", "resume", "iris"), 0)
    promoted = expect(cli.run(home, "rollout", "promote", "iris", "--json"), 0).json()
    assert promoted["rollout"]["status"] == "promoted"
    assert (promoted["deployment"]["stable"], promoted["deployment"]["previous"]) == (2, 1)
    expect(cli.run(home, "rollout", "promote", "iris"), 3, "no active rollout")
    back = expect(cli.run(home, "rollback", "iris", "--reason", "pager", "--json"), 0).json()
    assert (back["stable"], back["previous"]) == (1, 2)
    expect(cli.run(home, "rollout", "start", "iris", "--candidate", "iris/3",
                   "--strategy", "shadow", "--step-requests", "50"), 0)
    aborted = expect(cli.run(home, "rollout", "abort", "iris", "--json"), 0).json()
    assert aborted["rollout"]["status"] == "aborted"
    assert aborted["deployment"]["candidate"] is None
    with open_registry(home) as reg:
        assert reg.get("iris@champion").version == 1
    events = expect(cli.run(home, "rollout", "history", "iris", "--json"), 0).json()
    assert [e["kind"] for e in events] == ["created", "rollout_started", "paused", "resumed",
                                          "promoted", "rollback", "rollout_started",
                                          "aborted"]
    assert {e["actor"] for e in events} == {"tester"}
    assert events[5]["reason"] == "pager"
    table = expect(cli.run(home, "rollout", "history", "iris", env={"COLUMNS": "250"}),
                   0).stdout
    assert "rollback" in table and "pager" in table
    expect(cli.run(home, "rollout", "status", "nosuch"), 3, "no deployment named 'nosuch'")


def test_rollback_aborts_an_active_rollout(cli: Cli, home: Path) -> None:
    with open_registry(home) as reg:
        reg.deployments.create("iris", "iris", 2, "tester")
        reg.deployments.update("iris", "tester", "deployed", previous=1)
    expect(cli.run(home, "rollout", "start", "iris", "--candidate", "iris/3",
                   "--step-requests", "10"), 0)
    expect(cli.run(home, "rollback", "iris"), 0)
    with open_registry(home) as reg:
        dep = reg.deployments.get("iris")
        assert (dep.stable, dep.previous, dep.candidate) == (1, 2, None)
        assert reg.deployments.rollouts("iris")[0].status.value == "aborted"
        assert reg.get("iris@champion").version == 1


def counters(requests: int, errors: int = 0) -> VersionStats:
    """Ready counters with ``requests`` answered, ``errors`` of them failed."""
    s = VersionStats(state="ready")
    for i in range(requests):
        s.record(0.002, ok=i >= errors)
    s.outputs = {"c:1": requests - errors}
    return s


class Feeder:
    """A server's reporting loop: re-reports its current counters every 0.25 s, so the
    controller sees it live."""

    def __init__(self, reg: Registry, server: str = "s1") -> None:
        self.reg, self.server = reg, server
        self.counters: dict[int, VersionStats] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop.is_set():
            report(self.reg, self.server, dict(self.counters))
            self.stop.wait(0.25)

    def __enter__(self) -> Feeder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


@pytest.mark.parametrize("good", [True, False])
def test_controller_process_walks_a_rollout(cli: Cli, home: Path, good: bool) -> None:
    expect(cli.run(home, "rollout", "start", "iris", "--candidate", "iris/2", "--steps",
                   "50,100", "--step-requests", "20"), 0)
    proc = cli.start(home, "controller", "--interval", "0.05")
    try:
        with open_registry(home) as reg, Feeder(reg) as feed:
            feed.counters = {1: counters(0), 2: counters(0)}
            wait_for("step 1", lambda: reg.deployments.rollouts("iris")[0].step_started_at)
            assert reg.deployments.get("iris").weight == 50
            feed.counters = {1: counters(100), 2: counters(25, 0 if good else 25)}
            if good:
                wait_for("step 2", lambda: reg.deployments.rollouts("iris")[0].step_index)
                assert reg.deployments.get("iris").weight == 100
                feed.counters = {1: counters(100), 2: counters(50)}
            want = "promoted" if good else "rolled_back"
            r = wait_for(want, lambda: (x := reg.deployments.rollouts("iris")[0])
                         .status.value == want and x)
            assert reg.records.lease_holder(LEASE) is not None
            last = reg.deployments.events("iris")[-1]
            assert last.actor.startswith("controller@") and last.kind == want
            assert reg.get("iris@champion").version == (2 if good else 1)
            if not good:
                assert "error rate" in r.reason
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        with open_registry(home) as reg:
            assert reg.records.lease_holder(LEASE) is None  # released on a clean stop
    finally:
        cli.stop(proc)
    status = expect(cli.run(home, "rollout", "status", "iris", "--watch"), 0)
    assert ("promoted" if good else "rolled_back") in status.stdout  # ended: watch exits


def test_serve_runs_the_controller_unless_told_not_to(home: Path) -> None:
    with ServerProcess(home, ["iris@champion", "--no-controller"]):
        time.sleep(0.5)
        with open_registry(home) as reg:
            assert reg.records.lease_holder(LEASE) is None
    with ServerProcess(home, ["iris@champion"]) as server:
        with open_registry(home) as reg:
            holder = wait_for("the embedded controller's lease",
                              lambda: reg.records.lease_holder(LEASE))
            assert holder[0].startswith("controller@")
        assert server.terminate() == 0
    with open_registry(home) as reg:
        assert reg.records.lease_holder(LEASE) is None


def test_controller_stops_on_sigint(cli: Cli, home: Path) -> None:
    proc = cli.start(home, "controller", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with open_registry(home) as reg:
            wait_for("the lease", lambda: reg.records.lease_holder(LEASE))
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "stopped" in err
    finally:
        cli.stop(proc)
