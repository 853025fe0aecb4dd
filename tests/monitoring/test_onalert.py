"""The ``on_alert`` keys of an alert rule: retraining syntax, defaults, precise errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from modelport.errors import ConfigurationError, InvalidInputError
from modelport.monitoring.onalert import parse_trigger
from modelport.monitoring.rules import load_rules, parse_rule
from modelport.serving.config import load_spec

RULE = {"name": "acc", "expr": "accuracy < 0.8 over 2h"}


@pytest.mark.parametrize("text", ["run pipeline retrain", "  RUN  Pipeline  retrain ",
                                  "run pipeline re-train.v2"])
def test_the_trigger_names_a_pipeline(text: str) -> None:
    assert parse_trigger(text, "r") == text.split()[2]


@pytest.mark.parametrize(("text", "message"), [
    ("", "on_alert must be text: use 'run pipeline NAME'"),
    (3, "on_alert must be text"),
    ("start pipeline retrain", "expected 'run' as word 1, got 'start'"),
    ("run retrain", "expected 'pipeline' as word 2, got 'retrain'"),
    ("run", "expected 'pipeline' after 'run'"),
    ("run pipeline", "expected a pipeline name after 'run pipeline'"),
    ("run pipeline retrain now", "unexpected 'now' after the pipeline name 'retrain'"),
    ("run pipeline -x", "invalid pipeline name"),
])
def test_bad_triggers_say_which_word_is_wrong(text: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(")) as err:
        parse_trigger(text, "iris rule 1 (acc)")
    assert str(err.value).startswith("iris rule 1 (acc): ")


def test_defaults_follow_the_rule(tmp_path: Path) -> None:
    rule = parse_rule("iris", {**RULE, "on_alert": "run pipeline retrain"}, base=tmp_path)
    assert rule.on_alert is not None
    assert rule.on_alert.pipeline == "retrain"
    assert rule.on_alert.pipeline_file == (tmp_path / "modelport.yaml").resolve()
    assert rule.on_alert.cooldown == timedelta(hours=1)
    assert rule.on_alert.window == timedelta(hours=2)  # the rule's own window
    assert parse_rule("iris", RULE).on_alert is None


def test_every_key_given(tmp_path: Path) -> None:
    rule = parse_rule("iris", {**RULE, "on_alert": "run pipeline retrain",
                               "pipeline_file": "ml/pipe.yaml", "cooldown": "10m",
                               "retrain_window": "1d"}, base=tmp_path)
    assert rule.on_alert is not None
    assert rule.on_alert.pipeline_file == (tmp_path / "ml" / "pipe.yaml").resolve()
    assert (rule.on_alert.cooldown, rule.on_alert.window) == (timedelta(minutes=10),
                                                              timedelta(days=1))
    zero = parse_rule("iris", {**RULE, "on_alert": "run pipeline r", "cooldown": "0s"})
    assert zero.on_alert is not None and zero.on_alert.cooldown == timedelta(0)


@pytest.mark.parametrize(("extra", "message"), [
    ({"cooldown": "1h"}, r"rule \(acc\): cooldown only apply with on_alert"),
    ({"pipeline_file": "x.yaml", "retrain_window": "1h"},
     "pipeline_file, retrain_window only apply with on_alert"),
    ({"on_alert": "run pipeline r", "cooldown": "soon"}, "invalid rule \\(acc\\) 'cooldown'"),
    ({"on_alert": "run pipeline r", "cooldown": "100d"}, "longer than 90 days"),
    ({"on_alert": "run pipeline r", "retrain_window": "0s"}, "retrain_window must be positive"),
    ({"on_alert": "run pipeline r", "pipeline_file": ""}, "pipeline_file must be a path"),
    ({"on_alert": "pipeline r"}, "expected 'run' as word 1"),
])
def test_bad_keys(extra: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_rule("iris", {**RULE, **extra})


def test_a_rules_file_takes_pipeline_files_from_its_folder(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "alerts.yaml"
    path.write_text("endpoints:\n  iris:\n    - {name: acc, expr: accuracy < 0.8, "
                    "on_alert: run pipeline retrain}\n")
    [rule] = load_rules(path)
    assert rule.on_alert is not None
    assert rule.on_alert.pipeline_file == (tmp_path / "conf" / "modelport.yaml").resolve()


def test_serve_yaml_takes_pipeline_files_from_its_folder(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    (tmp_path / "conf").mkdir()
    config = tmp_path / "conf" / "serve.yaml"
    config.write_text("models:\n  - uri: models:/iris@champion\n    alerts:\n"
                      "      - {name: acc, expr: accuracy < 0.8, on_alert: run pipeline r}\n"
                      "      - {name: drift, expr: psi(x) > 0.2, on_alert: run pipeline r,\n"
                      "         pipeline_file: ../p.yaml}\n")
    monkeypatch.chdir(tmp_path)  # not where serve.yaml is
    acc, drift = load_spec(config, []).alert_rules()
    assert acc.on_alert and acc.on_alert.pipeline_file == tmp_path / "conf" / "modelport.yaml"
    assert drift.on_alert and drift.on_alert.pipeline_file == tmp_path / "p.yaml"
    config.write_text("models:\n  - uri: models:/iris@champion\n    alerts:\n"
                      "      - {name: acc, expr: accuracy < 0.8, on_alert: run pipe r}\n")
    with pytest.raises(ConfigurationError, match=r"models\[0\]\.alerts\[0\] \(acc\): "
                       "on_alert 'run pipe r': expected 'pipeline' as word 2"):
        load_spec(config, [])
