"""modelport.yaml: what loads, and the precise, located message for what does not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from modelport.errors import InvalidInputError
from modelport.pipelines.loader import load_pipeline
from modelport.pipelines.spec import parse_duration
from modelport.registry.entities import Mode

FULL = """\
name: iris
env: {SEED: 42, FAST: true}
steps:
  - train: python train.py --seed 42
    timeout: 10m
  - run: [python, evaluate.py, --folds, 5]
    name: evaluate
  - run: "python report.py | tee report.txt"
    name: report
    shell: true
  - register: {name: iris, file: model.skops, metrics_file: metrics.json, tags: {team: ml}}
  - gate: {data: eval.csv, target: species, rules: ["accuracy >= 0.9"], max_latency_ms: 5}
  - rollout: {endpoint: iris, steps: [5, 25, 50, 100], step_duration: 30s, wait: true}
    env: {NOTE: "${register.uri} at ${pipeline.git_commit}"}
"""


def test_a_full_pipeline_loads_with_defaults_filled_in(
        write_pipeline: Callable[[str], Path]) -> None:
    source = load_pipeline(write_pipeline(FULL))
    p = source.pipeline
    assert p.name == "iris"
    assert p.env == {"SEED": "42", "FAST": "true"}
    assert [s.label for s in p.steps] == ["train", "evaluate", "report", "register", "gate",
                                         "rollout"]
    assert [s.kind for s in p.steps] == ["train", "run", "run", "register", "gate", "rollout"]
    train, evaluate, report, register, gate, rollout = p.steps
    assert train.argv() == ["python", "train.py", "--seed", "42"]
    assert train.timeout == 600
    assert evaluate.argv() == ["python", "evaluate.py", "--folds", "5"]
    assert report.argv() == ["/bin/sh", "-c", "python report.py | tee report.txt"]
    assert register.spec.tags == {"team": "ml"}
    # gate and rollout default to the version the register step made
    assert gate.spec.candidate == "${register.uri}"
    assert rollout.spec.candidate == "${register.uri}"
    assert rollout.spec.strategy is Mode.CANARY
    assert rollout.spec.step_duration == 30
    assert source.folder == write_pipeline(FULL).parent.resolve()


def test_the_default_candidate_is_the_last_register_step_before(
        write_pipeline: Callable[[str], Path]) -> None:
    p = load_pipeline(write_pipeline("""\
        name: two
        steps:
          - register: {name: a, file: a.skops}
            name: first
          - gate: {data: e.csv, target: y}
          - register: {name: b, file: b.skops}
            name: second
          - rollout: {endpoint: b}
          - gate: {data: e.csv, target: y, candidate: "models:/a@champion"}
            name: explicit
    """)).pipeline
    assert p.steps[1].spec.candidate == "${first.uri}"
    assert p.steps[3].spec.candidate == "${second.uri}"
    assert p.steps[4].spec.candidate == "models:/a@champion"


@pytest.mark.parametrize(("text", "expected"), [
    ("name: x\nsteps:\n  - train: a\n    colour: red\n",
     "modelport.yaml:4:5: steps[0].colour: unknown key 'colour' (allowed: train, run, "
     "register, gate, rollout, name, env, timeout, shell)"),
    ("name: x\nsteps:\n  - register: {name: x, fil: m.skops}\n",
     "modelport.yaml:3:5: steps[0].register: missing required key 'file'"),
    ("name: x\nsteps:\n  - train: a\n  - {}\n",
     "modelport.yaml:4:5: steps[1]: a step needs exactly one of train, run, register, gate, "
     "rollout (found none)"),
    ("name: x\nsteps:\n  - train: a\n    run: b\n",
     "steps[0]: a step needs exactly one of train, run, register, gate, rollout "
     "(found train, run)"),
    ("name: x\nsteps:\n  - train: [python, 1, {a: b}]\n",
     "modelport.yaml:3:12: steps[0].train: every item of a command list must be a string"),
    ("name: x\nsteps:\n  - train: '  '\n", "steps[0].train: the command is empty"),
    ("name: x\nsteps:\n  - train: [a, b]\n    shell: true\n",
     "steps[0]: shell: true needs the command as one string"),
    ("name: x\nsteps:\n  - register: {name: x, file: f}\n    shell: true\n",
     "steps[0]: shell: applies to train and run steps only"),
    ("name: x\nsteps:\n  - train: a\n    timeout: soon\n",
     "modelport.yaml:4:14: steps[0].timeout: 'soon' is not a duration"),
    ("name: x\nsteps:\n  - train: a\n    timeout: -5\n",
     "steps[0].timeout: a duration must be positive"),
    ("name: x\nsteps:\n  - rollout: {endpoint: e, candidate: c, strategy: canry}\n",
     "steps[0].rollout.strategy: Input should be 'shadow', 'canary' or 'bluegreen'"),
    ("name: x\nsteps:\n  - rollout: {endpoint: e, candidate: c, steps: [5, 50]}\n",
     "steps[0].rollout.steps: steps must end at 100"),
    ("name: x\nsteps:\n  - rollout: {endpoint: e, candidate: c, steps: [50, 5, 100]}\n",
     "steps[0].rollout.steps: steps must increase"),
    ("name: x\nsteps:\n  - rollout: {endpoint: 'bad name', candidate: c}\n",
     "steps[0].rollout.endpoint: invalid endpoint name 'bad name'"),
    ("name: x\nsteps:\n  - gate: {data: d, target: t, candidate: c, max_latency_ms: 0}\n",
     "steps[0].gate.max_latency_ms: Input should be greater than 0"),
    ("name: x\nsteps:\n  - register: {name: ../etc, file: f}\n",
     "steps[0].register.name: invalid model name '../etc'"),
    ("name: x\nsteps:\n  - train: a\n    name: pipeline\n",
     "the step name 'pipeline' is reserved"),
    ("name: x\nsteps:\n  - train: a\n    name: has.dot\n", "invalid step name 'has.dot'"),
    ("name: x\nsteps:\n  - train: a\n    env: {A: [1]}\n",
     "steps[0].env: 'A' needs a plain value"),
    ("name: 'no spaces'\nsteps:\n  - train: a\n",
     "modelport.yaml:1:7: name: invalid pipeline name 'no spaces'"),
    ("name: x\nsteps: []\n", "modelport.yaml:2:8: steps: List should have at least 1 item"),
    ("steps:\n  - train: a\n", "modelport.yaml:1:1: missing required key 'name'"),
    ("name: x\nsteps:\n  - train: a\n  - train: b\n",
     "modelport.yaml:4:5: steps[1]: two steps are named 'train': give one a `name:`"),
    ("name: x\nsteps:\n  - train: echo ${train.uri}\n",
     "steps[0].train: ${train.uri}: no step named 'train' runs before this one"),
    ("name: x\nsteps:\n  - train: a\n  - run: echo ${train.uri}\n",
     "steps[1].run: ${train.uri}: 'train' has no output 'uri' (it has no outputs)"),
    ("name: x\nsteps:\n  - register: {name: m, file: f}\n  - run: echo ${register.digest}\n",
     "'register' has no output 'digest' (it has uri, name, version)"),
    ("name: x\nsteps:\n  - run: echo ${pipeline.user}\n",
     "'pipeline' has no output 'user' (it has name, run_id, git_commit)"),
    ("name: x\nsteps:\n  - run: echo ${oops\n", "unclosed ${ in 'echo ${oops'"),
    ("name: x\nsteps:\n  - run: echo ${1 + 1}\n", "${1 + 1} is not a reference"),
    ("name: x\nsteps:\n  - gate: {data: d, target: t}\n",
     "modelport.yaml:3:5: steps[0].gate: no candidate: give `candidate:` or put a register "
     "step before this one"),
    ("name: x\nsteps:\n  - train: a\n  - train: b\n", "steps[1]: two steps"),
    ("name: x\nname: y\nsteps:\n  - train: a\n", "modelport.yaml:2:1: duplicate key 'name'"),
    ("name: x\nsteps:\n  - train: a\n   bad: [\n", "modelport.yaml:4:"),
    ("", "is empty: a pipeline needs `name:` and `steps:`"),
    ("- train: a\n", "a pipeline is a mapping with `name:` and `steps:`"),
])
def test_invalid_pipelines_say_where_and_what(write_pipeline: Callable[[str], Path],
                                              text: str, expected: str) -> None:
    path = write_pipeline(text)
    with pytest.raises(InvalidInputError) as info:
        load_pipeline(path)
    message = str(info.value).replace(str(path), "modelport.yaml")
    assert expected in message


def test_every_problem_is_listed_at_once(write_pipeline: Callable[[str], Path]) -> None:
    path = write_pipeline("name: x\nsteps:\n  - train: a\n    colour: red\n"
                          "  - register: {file: f}\n")
    with pytest.raises(InvalidInputError) as info:
        load_pipeline(path)
    lines = str(info.value).splitlines()
    assert lines[0] == f"{path} is not a valid pipeline (2 problems):"
    assert lines[1].startswith(f"{path}:4:5: steps[0].colour")
    assert lines[2].startswith(f"{path}:5:5: steps[1].register: missing required key 'name'")


def test_files_that_are_not_pipelines(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"no pipeline file .*modelport init"):
        load_pipeline(tmp_path / "modelport.yaml")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(InvalidInputError, match="not UTF-8"):
        load_pipeline(binary)
    big = tmp_path / "big.yaml"
    big.write_text("#" * (1 << 20 + 1))
    with pytest.raises(InvalidInputError, match="larger than 1 MiB"):
        load_pipeline(big)


@pytest.mark.parametrize(("value", "seconds"), [
    (90, 90.0), (1.5, 1.5), ("90", 90.0), ("250ms", 0.25), ("30s", 30.0), ("5m", 300.0),
    ("1.5h", 5400.0), (" 2 m ", 120.0),
])
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", [0, -1, "0s", "5 days", "s", True, None, [1]])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)
