"""Rollout test helpers: a registry holding iris v1 (champion), v2 and v3, and servers'
counters written the way real servers write them (``records.report_traffic``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from modelport.client import Registry
from modelport.registry.traffic import VersionStats
from modelport.rollout import service
from modelport.rollout.analysis import Thresholds
from modelport.rollout.controller import Controller
from modelport.rollout.strategies import plan


@pytest.fixture(scope="session")
def iris_models() -> list[object]:
    """Three small fitted classifiers (fast to register)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    return [LogisticRegression(max_iter=200 + i).fit(x, y) for i in range(3)]


@pytest.fixture
def reg(registry: Registry, iris_models: list[object]) -> Registry:
    """The registry with iris/1 (champion), iris/2 and iris/3."""
    for model in iris_models:
        registry.log_model(model, "iris")
    registry.set_alias("iris", "champion", 1)
    return registry


@dataclass
class Servers:
    """Plays the servers' part: cumulative counters per (server, version), reported."""

    registry: Registry
    deployment: str = "iris"
    stats: dict[tuple[str, int], VersionStats] = field(default_factory=dict)

    def get(self, server: str, version: int) -> VersionStats:
        """The counters of one version on one server (created at zero)."""
        return self.stats.setdefault((server, version), VersionStats(state="ready"))

    def state(self, server: str, version: int, state: str, error: str = "") -> None:
        """Set a version's load state on a server and report."""
        s = self.get(server, version)
        s.state, s.error = state, error
        self.flush(server)

    def serve(self, server: str, version: int, n: int, *, errors: int = 0,
              ms: float = 2.0, label: str = "c:1", agreed: int | None = None,
              compared: int = 0) -> None:
        """``n`` requests answered (``errors`` of them failed), then report."""
        s = self.get(server, version)
        for i in range(n):
            s.record(ms / 1000.0, ok=i >= errors)
        s.outputs[label] = s.outputs.get(label, 0) + n - errors
        if compared:
            s.record_shadow(compared, compared if agreed is None else agreed)
        self.flush(server)

    def flush(self, server: str) -> None:
        """Report every version this server counts (what a server does every 0.25 s)."""
        self.registry.records.report_traffic(server, self.deployment, {
            v: s.to_dict() for (sid, v), s in self.stats.items() if sid == server})


@pytest.fixture
def servers(reg: Registry) -> Servers:
    """Two servers serving iris/1, ready."""
    fleet = Servers(reg)
    for sid in ("s1", "s2"):
        fleet.state(sid, 1, "ready")
    return fleet


@pytest.fixture
def controller(reg: Registry) -> Iterator[Controller]:
    """A controller on the test registry (ticks driven by the test)."""
    c = Controller(reg, holder="controller@test:1")
    yield c
    c.release()


def start(reg: Registry, strategy: str = "canary", *, candidate: str = "iris/2",
          steps: str | None = "5,25,50,100", duration: str | None = None,
          requests: int | None = 30, **limits: object) -> int:
    """Start a rollout on endpoint ``iris``; returns its id."""
    p = plan(strategy, steps=steps if strategy == "canary" else None,
             step_duration=duration, step_requests=requests)
    spec = service.AnalysisSpec(Thresholds(**limits))  # type: ignore[arg-type]
    rollout, _ = service.start(reg, "iris", candidate, p, spec)
    return rollout.id
