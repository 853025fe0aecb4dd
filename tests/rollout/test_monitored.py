"""The monitoring provider with the controller on a real registry: a candidate whose
realized accuracy (prediction log + labels) is low is rolled back."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelport.client import Registry
from modelport.monitoring.labels import record_labels
from modelport.monitoring.predlog import PredictionLog
from modelport.rollout.controller import Controller
from modelport.rollout.monitored import MonitoringProvider
from tests.monitoring.conftest import T
from tests.rollout.conftest import Servers, start
from tests.rollout.test_controller import warm


def _traffic(root: Path, n: int = 40) -> None:
    """Stable (v1) answers right, the candidate (v2) answers wrong; labels for all."""
    with PredictionLog(root, worker_id="w1") as log:
        for i in range(n):
            version, variant = (2, "candidate") if i % 2 else (1, "stable")
            answer = 0 if version == 1 else 1
            log.offer("iris", f"q{i}", version, variant, [T("input-0", np.ones((1, 4)))],
                      [T("output-0", np.array([answer]))], 1.0)
    record_labels(root, "iris", [{"id": f"q{i}", "label": 0} for i in range(n)])


def test_low_candidate_accuracy_rolls_back(reg: Registry, servers: Servers,
                                           tmp_path: Path) -> None:
    root = tmp_path / "monitoring"
    start(reg, metrics={"accuracy": {"min": 0.9, "max_decrease": 0.05}})
    c = Controller(reg, holder="controller@t:1",
                   extra_providers=[MonitoringProvider(reg, root)])
    warm(servers, c)
    _traffic(root)
    [move] = c.tick()
    assert move.kind == "rolled_back", move
    assert "candidate accuracy 0 below 0.9" in move.reason
    assert "accuracy decrease against stable 1" in move.reason
    c.release()


def test_without_labels_the_checks_wait(reg: Registry, servers: Servers,
                                        tmp_path: Path) -> None:
    start(reg, metrics={"accuracy": {"min": 0.9}})
    provider = MonitoringProvider(reg, tmp_path / "empty")
    c = Controller(reg, holder="controller@t:1", extra_providers=[provider])
    warm(servers, c)
    assert [m.kind for m in c.tick()] == []  # nothing to judge yet: no move
    rollout = reg.deployments.active_rollout("iris")
    assert rollout is not None and rollout.status.value == "running"
    c.release()
