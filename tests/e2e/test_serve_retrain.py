"""End to end: a real ``modelport serve`` whose accuracy alert fires on labelled traffic
retrains the endpoint through a real pipeline (train on the exported rows, register,
gate against the champion, canary rollout), never straight to production; a second
firing within the cool-down is skipped; a failing train command leaves the endpoint as
it was and the alert firing. Every decision is in the audit log."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.e2e.conftest import Cli
from tests.e2e.server import ServerProcess
from tests.e2e.test_server_lifecycle import registry, wait_for

pytestmark = pytest.mark.e2e

FEATURES = ["a", "b", "c", "d"]
TRAIN = """\
    import os, sys
    import pandas as pd
    import skops.io
    from sklearn.linear_model import LogisticRegression

    data = pd.read_parquet(os.environ["MODELPORT_RETRAIN_DATA"])
    target = os.environ["MODELPORT_RETRAIN_TARGET"]
    X, y = data.drop(columns=[target]), data[target]
    if os.environ.get("FAIL_TRAINING"):
        sys.exit("cannot fit: the labels look wrong")
    skops.io.dump(LogisticRegression().fit(X, y), "model.skops")
    X.head(5).to_parquet("example.parquet")
    data.to_parquet("eval.parquet")
    print(f"trained on {len(data)} rows")
"""


def project(tmp_path: Path, fail: bool) -> Path:
    """serve.yaml, its retraining pipeline (modelport.yaml beside it) and train.py."""
    (tmp_path / "train.py").write_text(textwrap.dedent(TRAIN))
    (tmp_path / "modelport.yaml").write_text(textwrap.dedent(f"""\
        name: retrain
        env: {{FAIL_TRAINING: "{'1' if fail else ''}"}}
        steps:
          - train: [{json.dumps(sys.executable)}, train.py]
          - register: {{name: m, file: model.skops, input_example: example.parquet}}
          - gate: {{data: eval.parquet, target: label, rules: ["accuracy >= champion"]}}
          - rollout: {{endpoint: m, strategy: canary, steps: [10, 100], step_duration: 10m}}
        """))
    config = tmp_path / "serve.yaml"
    config.write_text(textwrap.dedent("""\
        models:
          - uri: models:/m@champion
            alerts:
              - {name: accuracy-low, expr: accuracy < 0.5 over 10m,
                 on_alert: run pipeline retrain, cooldown: 1h}
              - {name: busy, expr: requests > 30 over 10m, on_alert: run pipeline retrain}
        alerting: {interval: 1}
        """))
    return config


def register_m(home: Path) -> np.ndarray:
    """Model m v1 (a table signature a..d), champion; returns rows to query."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(200, 4)), columns=FEATURES)
    y = (X["a"] + X["b"] > 0).astype(int)
    with registry(home) as reg:
        reg.log_model(LogisticRegression().fit(X, y), "m", input_example=X.head(5))
        reg.set_alias("m", "champion", 1)
    return X.to_numpy()


def wrong_labels(url: str, rows: np.ndarray, requests: int) -> None:
    """``requests`` requests of 5 rows, each labelled the opposite of v1's answer."""
    labels: list[dict[str, Any]] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for r in range(requests):
            batch = rows[5 * r:5 * r + 5].tolist()
            answer = client.post("/predict", json={"features": batch})
            assert answer.status_code == 200, answer.text
            labels += [{"id": answer.headers["x-request-id"], "row": i, "label": 1 - p}
                       for i, p in enumerate(answer.json()["predictions"])]
        fed = client.post("/v2/models/m/feedback", json=labels)
        assert fed.status_code == 200, fed.text


def retrains(cli: Cli, home: Path) -> list[dict[str, Any]]:
    """``monitor retrains m --json``, as the CLI prints it."""
    result = cli.run(home, "monitor", "retrains", "m", "--json")
    assert result.returncode == 0, result
    return result.json()  # type: ignore[no-any-return]


def ended(home: Path, count: int = 1) -> bool:
    """Whether ``count`` retrainings are recorded and none is running (polled in-process:
    a CLI run per poll would load the machine the pipeline runs on)."""
    with registry(home) as reg:
        found = reg.retrains.history("m")
    return len(found) >= count and all(e.status != "running" for e in found)


def test_an_alert_retrains_through_gate_and_canary(cli: Cli, tmp_path: Path) -> None:
    home = tmp_path / "home"
    rows = register_m(home)
    with ServerProcess(home, ["--config", str(project(tmp_path, fail=False))]) as server:
        wrong_labels(server.url, rows, 10)
        wait_for(lambda: ended(home), 120, "the accuracy alert triggers a retraining that "
                 "ends", server, interval=0.5)
        [done] = retrains(cli, home)
        assert done["status"] == "succeeded", (done, server.log())
        assert (done["rule"], done["pipeline"]) == ("accuracy-low", "retrain")
        assert done["details"]["rows"] == 50 and done["details"]["version_uri"] == \
            "models:/m/2"
        assert done["reason"].startswith("pipeline retrain succeeded (run ")
        assert done["reason"].endswith(f"models:/m/2 rolled out by canary rollout "
                                       f"#{done['details']['rollout_id']} (running)")
        with registry(home) as reg:
            # Gated, then a canary at 10%: stable is still v1.
            dep = reg.deployments.get("m")
            assert (dep.stable, dep.candidate, dep.weight) == (1, 2, 10)
            rollout = reg.deployments.rollout(done["details"]["rollout_id"])
            assert (rollout.strategy, rollout.created_by) == ("canary", "modelport-retrain")
            [gate] = reg.records.gate_results("m", 2)
            assert gate.passed and gate.against == 1
            v2 = reg.get("m/2")
            assert v2.created_by == "modelport-retrain"
            assert v2.tags["pipeline_run"] == done["details"]["run_id"]
            assert reg.records.pipeline_run(done["details"]["run_id"]).status == "succeeded"
            alert = reg.alerts.open_alert("m", "accuracy-low")
            assert alert is not None and alert.action == "retrain started: pipeline retrain"

        # Another rule fires within the cool-down: skipped, and recorded as such.
        wrong_labels(server.url, rows[50:], 25)
        wait_for(lambda: ended(home, 2), 60, "the busy alert fires", server, interval=0.5)
        skipped = retrains(cli, home)[0]
        assert (skipped["status"], skipped["rule"]) == ("skipped", "busy")
        assert skipped["reason"].startswith(f"cool-down: trigger #{done['id']} at ")
    actions = [r["action"] for r in cli.run(home, "audit", "list", "--action", "retrain",
                                            "--json").json()]
    assert actions == ["retrain.trigger", "retrain.succeed", "retrain.skip"]
    table = cli.run(home, "monitor", "retrains", env={"COLUMNS": "200"})
    assert "succeeded" in table.stdout and "skipped" in table.stdout, table


def test_a_failing_retraining_leaves_the_endpoint_alone(cli: Cli, tmp_path: Path) -> None:
    home = tmp_path / "home"
    rows = register_m(home)
    with ServerProcess(home, ["--config", str(project(tmp_path, fail=True))]) as server:
        wrong_labels(server.url, rows, 6)
        wait_for(lambda: ended(home), 120, "the retraining ends", server, interval=0.5)
        [failed] = retrains(cli, home)
        assert failed["status"] == "failed", failed
        assert failed["details"]["exit_code"] == 11
        assert failed["details"]["failed_step"] == "train"
        assert failed["reason"] == ("pipeline retrain failed with exit code 11: step 'train' "
                                    "failed: exited with 1: cannot fit: the labels look "
                                    "wrong")
        with registry(home) as reg:
            assert reg.deployments.find("m") is None  # no rollout, no new version
            assert [v.version for v in reg.store.list_versions("m")] == [1]
            alert = reg.alerts.open_alert("m", "accuracy-low")
            assert alert is not None and alert.state == "firing"
        with httpx.Client(base_url=server.url, timeout=30) as client:
            answer = client.post("/predict", json={"features": rows[:1].tolist()})
            assert answer.headers["x-model-version"] == "1"
    log = Path(failed["details"]["log"]).read_text()
    assert "cannot fit: the labels look wrong" in log


def test_serve_refuses_a_retraining_pipeline_without_a_canary(cli: Cli, tmp_path: Path
                                                              ) -> None:
    config = project(tmp_path, fail=False)
    pipeline = tmp_path / "modelport.yaml"
    pipeline.write_text(pipeline.read_text().replace(
        "  - rollout: {endpoint: m, strategy: canary, steps: [10, 100], step_duration: 10m}\n",
        ""))
    result = cli.run(tmp_path / "home", "serve", "--config", config)
    assert result.returncode == 7, result
    assert (f"alert m/accuracy-low: on_alert 'run pipeline retrain': {pipeline} has no "
            "rollout step") in result.stderr
    assert "Traceback" not in result.stderr
