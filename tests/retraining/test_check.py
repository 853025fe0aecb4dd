"""Start-up checks of retraining pipelines: a retrained model is always gated, then
rolled out gradually on the alert's endpoint; anything else refuses to start."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from modelport.errors import ConfigurationError
from modelport.monitoring.rules import Rule, parse_rule
from modelport.retraining.check import check_rule, check_rules

GOOD = """\
name: retrain
steps:
  - train: python train.py
  - register: {name: iris, file: model.skops}
  - gate: {data: eval.csv, target: label}
  - rollout: {endpoint: iris, strategy: canary, steps: [20, 100], wait: true}
"""


def rule(tmp_path: Path, pipeline: str | None, name: str = "retrain") -> Rule:
    if pipeline is not None:
        (tmp_path / "modelport.yaml").write_text(textwrap.dedent(pipeline))
    return parse_rule("iris", {"name": "acc", "expr": "accuracy < 0.8",
                               "on_alert": f"run pipeline {name}"}, base=tmp_path)


def test_a_gated_gradual_pipeline_is_accepted(tmp_path: Path) -> None:
    source = check_rule(rule(tmp_path, GOOD))
    assert source.pipeline.name == "retrain"
    for strategy in ("shadow", "bluegreen"):
        check_rule(rule(tmp_path, GOOD.replace("canary", strategy)))
    assert list(check_rules([rule(tmp_path, None),
                             parse_rule("iris", {"name": "x", "expr": "mse > 1"})])) == [
        ("iris", "acc")]


@pytest.mark.parametrize(("pipeline", "name", "message"), [
    (None, "retrain", "no pipeline file .*modelport.yaml"),
    ("name: retrain\nsteps: []\n", "retrain", r"modelport.yaml:\d+:\d+: steps"),
    (GOOD, "other", "is the pipeline 'retrain', not 'other'"),
    (GOOD.replace("  - gate: {data: eval.csv, target: label}\n", ""), "retrain",
     "has no gate step; a retrained model must pass a gate"),
    (GOOD.replace("  - rollout: {endpoint: iris, strategy: canary, steps: [20, 100], "
                  "wait: true}\n", ""), "retrain", "has no rollout step"),
    ("name: retrain\nsteps:\n  - rollout: {endpoint: iris, candidate: iris/2}\n"
     "  - gate: {candidate: iris/2, data: e.csv, target: y}\n", "retrain",
     r"step 1 \(rollout\) rolls out before the gate step"),
    (GOOD.replace("[20, 100]", "[100]"), "retrain", "a canary that starts at 100%"),
    (GOOD.replace("endpoint: iris", "endpoint: fraud"), "retrain",
     "rolls out to 'fraud', but the alert retrains 'iris'"),
])
def test_pipelines_that_could_skip_a_safeguard_are_refused(tmp_path: Path,
                                                           pipeline: str | None, name: str,
                                                           message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as err:
        check_rule(rule(tmp_path, pipeline, name))
    assert str(err.value).startswith(f"alert iris/acc: on_alert 'run pipeline {name}': ")
