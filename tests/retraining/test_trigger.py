"""The retrainer with a real registry, real monitoring files and real ``modelport
pipeline run`` processes: skips (no labelled rows, cool-down, already running), a
failing run recorded with its reason, and a run cancelled when the server stops."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from modelport.client import Registry
from modelport.config import Settings
from modelport.monitoring.labels import record_labels
from modelport.monitoring.rules import Rule, parse_rule
from modelport.registry.alerts import Alert
from modelport.retraining.trigger import Retrainer, retrain_lease
from tests.monitoring.conftest import write_predictions

WAIT = 60.0


@pytest.fixture
def reg(home: Path) -> Iterator[Registry]:
    r = Registry(settings=Settings.load(home))
    yield r
    r.close()


def pipeline(folder: Path, name: str, script: str) -> Path:
    """A pipeline whose train step runs ``script``, then a gate and a rollout."""
    (folder / f"{name}.py").write_text(textwrap.dedent(script))
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: retrain
        steps:
          - train: [{json.dumps(sys.executable)}, {name}.py]
          - gate: {{candidate: iris/1, data: eval.csv, target: label}}
          - rollout: {{endpoint: iris, candidate: iris/1}}
        """))
    return path


def rule(name: str, file: Path, cooldown: str) -> Rule:
    return parse_rule("iris", {"name": name, "expr": "accuracy < 0.8", "cooldown": cooldown,
                               "on_alert": "run pipeline retrain",
                               "pipeline_file": str(file)})


def alert(reg: Registry, name: str) -> Alert:
    return reg.alerts.open("iris", name, state="firing", severity="warning",
                           expr="accuracy < 0.8", value=0.5, threshold=0.8,
                           message="accuracy = 0.5", now=datetime.now(UTC))


def wait_until(check, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"{what}: not within {WAIT}s")


FAILING = """\
    import json, os, sys
    keys = [k for k in os.environ if k.startswith("MODELPORT_RETRAIN_")] + ["MODELPORT_USER"]
    folder = os.environ["MODELPORT_RETRAIN_DIR"]
    with open(os.path.join(folder, "env.json"), "w") as fh:
        json.dump({k: os.environ[k] for k in keys}, fh)
    print("no model today", file=sys.stderr)
    sys.exit(3)
"""


def test_skips_a_failing_run_and_the_cool_down(reg: Registry, tmp_path: Path) -> None:
    root = tmp_path / "mon"
    retrainer = Retrainer(reg, root)
    acc = rule("acc", pipeline(tmp_path, "failing", FAILING), "1h")
    assert retrainer.fire(acc, alert(reg, "acc")) == "retrain started: pipeline retrain"
    assert retrainer.wait(WAIT)
    [skip] = reg.retrains.history("iris")
    assert (skip.status, skip.rule) == ("skipped", "acc")
    assert skip.reason == "no labelled rows in the last 1h to train on"
    assert reg.records.lease_holder(retrain_lease("iris")) is None

    now = datetime.now(UTC) - timedelta(minutes=1)
    write_predictions(root, [(f"r{i}", now, 1, i % 2) for i in range(3)])
    record_labels(root, "iris", [{"id": f"r{i}", "label": i % 2} for i in range(3)])
    assert retrainer.fire(acc, alert(reg, "acc2")) == "retrain started: pipeline retrain"
    assert retrainer.wait(WAIT)
    failed = reg.retrains.history("iris")[0]
    assert failed.status == "failed", failed
    assert failed.details["rows"] == 3 and failed.details["exit_code"] == 11
    assert failed.details["failed_step"] == "train"
    assert failed.reason == ("pipeline retrain failed with exit code 11: step 'train' "
                             "failed: exited with 3: no model today")
    env = json.loads((Path(failed.details["data"]).parent / "env.json").read_text())
    assert env["MODELPORT_RETRAIN_ENDPOINT"] == "iris" and env["MODELPORT_RETRAIN_MODEL"] == \
        "iris"
    assert (env["MODELPORT_RETRAIN_ALERT"], env["MODELPORT_RETRAIN_TRIGGER"]) == (
        "acc", str(failed.id))
    assert (env["MODELPORT_RETRAIN_TARGET"], env["MODELPORT_RETRAIN_ROWS"]) == ("label", "3")
    assert env["MODELPORT_USER"] == "modelport-retrain"
    data = pd.read_parquet(env["MODELPORT_RETRAIN_DATA"])
    assert data["label"].tolist() == [0, 1, 0] and len(data.columns) == 5
    run = reg.records.pipeline_run(failed.details["run_id"])
    assert (run.status, run.actor) == ("failed", "modelport-retrain")

    # The same endpoint within the cool-down: skipped, and said so.
    said = retrainer.fire(acc, alert(reg, "acc3"))
    assert said.startswith("retrain skipped: cool-down until ")
    cooled = reg.retrains.history("iris")[0]
    assert cooled.status == "skipped" and cooled.reason.startswith(
        f"cool-down: trigger #{failed.id} at ")


SLOW = """\
    import time
    time.sleep(120)
"""


def test_one_run_at_a_time_and_a_stop_cancels_it(reg: Registry, tmp_path: Path) -> None:
    root = tmp_path / "mon"
    now = datetime.now(UTC) - timedelta(minutes=1)
    write_predictions(root, [("a", now, 1, 0)])
    record_labels(root, "iris", [{"id": "a", "label": 1}])
    retrainer = Retrainer(reg, root)
    slow = rule("slow", pipeline(tmp_path, "slow", SLOW), "0s")
    assert retrainer.fire(slow, alert(reg, "slow")).startswith("retrain started")

    def running() -> bool:
        found = reg.retrains.history("iris")
        if not found or "run_id" not in found[0].details:
            return False
        try:
            steps = reg.records.pipeline_run(found[0].details["run_id"]).steps
        except Exception:
            return False
        return steps[0]["status"] == "running"
    wait_until(running, "the slow pipeline runs its train step")
    other = rule("other", tmp_path / "slow.yaml", "0s")
    assert retrainer.fire(other, alert(reg, "other")) == "retrain skipped: already running"
    busy = reg.retrains.history("iris")[0]
    assert busy.status == "skipped" and busy.rule == "other"
    assert busy.reason.startswith("a retraining run of iris is already running (retrain@")
    retrainer.stop()
    ended = reg.retrains.history("iris")[1]
    assert ended.status == "failed" and ended.details["exit_code"] == 130, ended
    assert ended.reason.startswith("pipeline retrain cancelled (the server stopped)")
    assert reg.records.pipeline_run(ended.details["run_id"]).status == "cancelled"
    assert reg.records.lease_holder(retrain_lease("iris")) is None
    assert retrainer.fire(slow, alert(reg, "late")) == "retrain skipped: the server is stopping"
