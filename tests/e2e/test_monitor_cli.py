"""The real CLI: feedback from files, monitor metrics --json, monitor cleanup."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from modelport.monitoring.predlog import PredictionLog
from tests.monitoring.conftest import T

pytestmark = pytest.mark.e2e


def _log(root: Path, n: int = 6) -> None:
    with PredictionLog(root, worker_id="w1") as log:
        for i in range(n):
            log.offer("iris", f"req-{i}", 1, "stable", [T("input-0", np.full((1, 4), i, float))],
                      [T("output-0", np.array([i % 2]))], 1.0)


def test_feedback_then_metrics_json(cli, tmp_path: Path) -> None:
    home = tmp_path / "home"
    root = home / "monitoring"  # the default store under MODELPORT_HOME
    _log(root)
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\n" + "".join(f"req-{i},{i % 2}\n" for i in range(4))
                      + "req-0,0\nghost,1\nreq-5,0\n")
    fed = cli.run(home, "feedback", "iris", labels, "--json")
    assert fed.returncode == 0, fed
    assert fed.json() == {"endpoint": "iris", "recorded": 7}
    result = cli.run(home, "monitor", "metrics", "iris", "--window", "1h", "--json")
    assert result.returncode == 0, result
    data = result.json()
    assert (data["labels"], data["unknown"], data["duplicates"]) == (7, 1, 1)
    (version,) = data["versions"]
    assert (version["version"], version["predictions"], version["labelled"]) == (1, 6, 5)
    assert version["metrics"]["accuracy"] == pytest.approx(4 / 5)
    table = cli.run(home, "monitor", "metrics", "iris")
    assert table.returncode == 0 and "accuracy" in table.stdout and "ghost" in table.stderr


def test_feedback_errors_exit_2_and_write_nothing(cli, tmp_path: Path) -> None:
    home = tmp_path / "home"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "label": 1}\n{"id": "b", "label": [1]}\n')
    result = cli.run(home, "feedback", "iris", bad)
    assert result.returncode == 2, result
    assert "bad.jsonl line 2: label must be a number, string or boolean, got a list" \
        in result.stderr
    assert not (home / "monitoring").exists()
    assert cli.run(home, "feedback", "bad name!", bad).returncode == 2
    window = cli.run(home, "monitor", "metrics", "iris", "--window", "soon")
    assert window.returncode == 2 and "invalid window" in window.stderr


def test_cleanup_removes_old_days(cli, tmp_path: Path) -> None:
    home = tmp_path / "home"
    root = tmp_path / "store"
    _log(root)
    old = (datetime.now(UTC) - timedelta(days=40)).date().isoformat()
    stale = root / "predictions" / "endpoint=iris" / f"date={old}"
    stale.mkdir(parents=True)
    (stale / "w-x-000001.parquet").write_bytes(b"x")
    result = cli.run(home, "monitor", "cleanup", "--days", "30", "--root", root, "--json")
    assert result.returncode == 0, result
    assert result.json() == {"removed": [str(stale)]}
    assert not stale.exists() and list(root.rglob("*.parquet"))
    negative = cli.run(home, "monitor", "cleanup", "--days", "-1", "--root", root)
    assert negative.returncode == 2 and "retention" in negative.stderr
    env = cli.run(home, "monitor", "metrics", "iris", "--json",
                  env={"MODELPORT_MONITORING": str(root)})
    assert env.returncode == 0 and env.json()["versions"][0]["predictions"] == 6
    assert json.loads(env.stdout)["endpoint"] == "iris"
