"""Alert values from real sources: drift of logged inputs against a registered profile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from modelport.client import Registry
from modelport.monitoring.alerts import Alerter
from modelport.monitoring.predlog import PredictionLog
from modelport.monitoring.rules import parse_rules
from tests.monitoring.conftest import T

SCHEMA = {"type": "dataframe", "columns": [{"name": "a", "dtype": "float64"},
                                           {"name": "b", "dtype": "float64"}]}


def test_psi_and_drift_share_fire_on_a_shifted_feature(registry: Registry,
                                                       tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.random(2000)})
    model = LogisticRegression().fit(X, (X["a"] > 0).astype(int))
    registry.log_model(model, "risk", training_data=X)
    registry.deployments.create("risk", "risk", 1, "tester")
    root = tmp_path / "monitoring"
    window = X.sample(400, random_state=1).assign(a=lambda f: f["a"] + 3).to_numpy()
    with PredictionLog(root, worker_id="w1") as log:
        for i, row in enumerate(window):
            log.offer("risk", f"r{i}", 1, "stable", [T("input-0", row.reshape(1, 2))],
                      [T("output-0", np.array([int(row[0] > 0)]))], 1.0, schema=SCHEMA)
    alerter = Alerter(registry, root, parse_rules({"endpoints": {"risk": [
        {"name": "psi-a", "expr": "psi(a) > 0.2"},
        {"name": "psi-b", "expr": "psi(b) > 0.2"},
        {"name": "share", "expr": "drift_share >= 0.5"},
        {"name": "ghost", "expr": "psi(nope) > 0.2"}]}}))
    a, b, share, ghost = alerter.tick(datetime.now(UTC) + timedelta(seconds=1))
    assert a.change == "firing" and a.value.value is not None and a.value.value > 1
    assert b.breached is False and b.value.value is not None and b.value.value < 0.2
    assert share.change == "firing" and share.value.value == 0.5
    assert ghost.breached is None and "not in the reference profile" in ghost.value.note
