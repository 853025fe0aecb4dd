"""The monitoring report: real sources in, JSON-ready data and escaped, self-contained HTML."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from modelport.client import Registry
from modelport.monitoring.labels import record_labels
from modelport.monitoring.predlog import PredictionLog
from modelport.monitoring.report import build, to_html
from modelport.registry.traffic import VersionStats
from tests.monitoring.conftest import T
from tests.monitoring.test_alert_sources import SCHEMA


def test_report_of_a_drifted_endpoint(registry: Registry, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=1000), "b": rng.random(1000)})
    model = LogisticRegression().fit(X, (X["a"] > 0).astype(int))
    registry.log_model(model, "risk", training_data=X)
    registry.deployments.create("risk", "risk", 1, "tester")
    stats = VersionStats(state="ready")
    for i in range(50):
        stats.record(0.004, ok=i % 10 != 0)
    registry.records.report_traffic("s1", "risk", {1: stats.to_dict()})
    root = tmp_path / "monitoring"
    rows = X.head(200).assign(a=lambda f: f["a"] + 3).to_numpy()
    with PredictionLog(root, worker_id="w1") as log:
        for i, row in enumerate(rows):
            log.offer("risk", f"r{i}", 1, "stable", [T("input-0", row.reshape(1, 2))],
                      [T("output-0", np.array([1]))], 1.0, schema=SCHEMA)
    record_labels(root, "risk", [{"id": f"r{i}", "label": i % 2} for i in range(200)])
    data = build(registry, root, "risk", timedelta(hours=1),
                 datetime.now(UTC) + timedelta(seconds=1))
    json.dumps(data)  # JSON-ready
    [traffic] = data["traffic"]
    assert (traffic["requests"], traffic["errors"]) == (50, 5)
    [scored] = data["realized"]["versions"]
    assert scored["metrics"]["accuracy"] == 0.5
    features = {f["feature"]: f for f in data["drift"]["features"]}
    assert features["a"]["drifted"] is True and features["b"]["drifted"] is False
    page = to_html(data)
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")
    assert "<td>a</td>" in page and "0.5" in page


def test_html_escapes_every_value() -> None:
    evil = "<script>alert(1)</script>"
    data = {"endpoint": "risk", "since": evil, "until": "x", "traffic": [],
            "realized": {"versions": [{"version": 1, "predictions": 1, "labelled": 1,
                                       "metrics": {evil: 1.0}}]},
            "drift": {"status": "ok", "note": "", "features": [
                {"feature": evil, "kind": "numeric", "status": "ok", "test": "ks",
                 "statistic": 0.1, "p_value": None, "psi": 0.2, "drifted": False}]},
            "alerts": [{"rule": "r", "state": "firing", "severity": "warning",
                        "value": 1.0, "threshold": 0.5, "started_at": evil,
                        "resolved_at": None, "message": evil}]}
    page = to_html(copy.deepcopy(data))
    assert evil not in page and "&lt;script&gt;" in page
