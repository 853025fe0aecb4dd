"""References are substituted as text (never evaluated); each step kind's command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from modelport.errors import InvalidInputError
from modelport.pipelines.loader import load_pipeline
from modelport.pipelines.refs import references, resolve, substitute
from modelport.pipelines.steps import RunInfo, plan, read_metrics, register_outputs

VALUES = {"register": {"uri": "models:/iris/3", "version": "3", "name": "iris"},
          "pipeline": {"run_id": "r-1", "name": "p", "git_commit": ""}}


def test_substitution_is_text_only() -> None:
    assert substitute("${register.uri} v${ register.version }", VALUES) == "models:/iris/3 v3"
    assert substitute("$${register.uri} costs $5", VALUES) == "${register.uri} costs $5"
    assert substitute("commit=${pipeline.git_commit}.", VALUES) == "commit=."
    assert references("a ${x.y} $${not.this} ${p-2.uri}") == [("x", "y"), ("p-2", "uri")]
    nested = {"a": ["${register.uri}", 3, {"b": "${pipeline.run_id}"}], "c": None}
    assert resolve(nested, VALUES) == {"a": ["models:/iris/3", 3, {"b": "r-1"}], "c": None}


@pytest.mark.parametrize(("text", "message"), [
    ("${__import__('os').system('x')}", "is not a reference"),
    ("${register}", "is not a reference"),
    ("${register.uri", "unclosed"),
])
def test_anything_but_a_plain_reference_is_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        references(text)


def test_a_value_that_does_not_exist_yet_is_an_error() -> None:
    with pytest.raises(InvalidInputError, match=r"\$\{gate.uri\} has no value"):
        substitute("${gate.uri}", VALUES)


def _info(folder: Path) -> RunInfo:
    return RunInfo(python="/py", folder=folder, pipeline="p", run_id="RUN", git_commit="abc")


def test_modelport_steps_build_the_documented_command_lines(
        write_pipeline: Callable[[str], Path], project: Path) -> None:
    (project / "metrics.json").write_text(json.dumps({"accuracy": 0.97, "f1": 1}))
    steps = load_pipeline(write_pipeline("""\
        name: p
        steps:
          - register: {name: iris, file: model.skops, metrics_file: metrics.json,
                       metrics: {auc: 0.5, accuracy: 0.1}, params: {C: 1.0},
                       tags: {team: ml}, input_example: ex.csv, trusted: true,
                       training_data: train.parquet, eval_data: "datasets:/iris-eval/2",
                       description: "first try"}
          - gate: {data: eval.csv, target: species, against: champion, max_latency_ms: 5,
                   rules: ["accuracy >= 0.9", "f1 >= champion - 0.01"], junit: gate.xml}
          - rollout: {endpoint: iris, strategy: bluegreen, steps: [50, 100],
                      step_duration: 1m, require_gate: true}
          - rollout: {endpoint: iris2, candidate: "models:/iris@champion", strategy: shadow}
            name: shadow
    """)).pipeline.steps
    register, gate, rollout, shadow = (plan(s, _info(project)) for s in steps)
    assert register.modelport and register.keep_stdout
    assert register.argv == [
        "/py", "-m", "modelport", "models", "register", "iris", "model.skops", "--json",
        "--trusted", "--input-example", "ex.csv", "--training-data", "train.parquet",
        "--eval-data", "datasets:/iris-eval/2",
        "--metric", "auc=0.5", "--metric", "accuracy=0.97", "--metric", "f1=1.0",
        "--param", "C=1.0",
        "--tag", "pipeline=p", "--tag", "pipeline_run=RUN", "--tag", "git_commit=abc",
        "--tag", "team=ml", "--description", "first try"]
    assert gate.modelport and not gate.keep_stdout
    assert gate.argv == [
        "/py", "-m", "modelport", "gate", "${register.uri}", "--data", "eval.csv",
        "--target", "species", "--against", "champion", "--rule", "accuracy >= 0.9",
        "--rule", "f1 >= champion - 0.01", "--max-latency-ms", "5", "--junit", "gate.xml"]
    assert rollout.argv == [
        "/py", "-m", "modelport", "rollout", "start", "iris", "--candidate", "${register.uri}",
        "--strategy", "bluegreen", "--steps", "50,100", "--step-duration", "60s",
        "--require-gate"]
    assert shadow.argv == ["/py", "-m", "modelport", "rollout", "start", "iris2",
                           "--candidate", "models:/iris@champion", "--strategy", "shadow"]


def test_a_rollout_step_passes_its_analysis_thresholds(
        write_pipeline: Callable[[str], Path], project: Path) -> None:
    [rollout] = load_pipeline(write_pipeline("""\
        name: p
        steps:
          - rollout: {endpoint: iris, candidate: iris/2, min_requests: 50, max_shift: 0.6}
    """)).pipeline.steps
    assert plan(rollout, _info(project)).argv[-4:] == ["--min-requests", "50",
                                                      "--max-shift", "0.6"]
    with pytest.raises(InvalidInputError, match="max_shift"):
        load_pipeline(write_pipeline("""\
            name: p
            steps:
              - rollout: {endpoint: iris, candidate: iris/2, max_shift: 2}
        """))


@pytest.mark.parametrize(("content", "message"), [
    (None, "metrics file not found"),
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "must hold a JSON object"),
    ('{"acc": "high"}', "'acc' is not a finite number"),
    ('{"acc": true}', "'acc' is not a finite number"),
    ('{"acc": NaN}', "'acc' is not a finite number"),
])
def test_bad_metrics_files(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "metrics.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InvalidInputError, match=message):
        read_metrics(path)


def test_register_output_must_be_the_json_of_a_version() -> None:
    assert register_outputs('{"uri": "models:/a/1", "name": "a", "version": 1}') == {
        "uri": "models:/a/1", "name": "a", "version": "1"}
    with pytest.raises(InvalidInputError, match="printed no version"):
        register_outputs("registered a/1")
