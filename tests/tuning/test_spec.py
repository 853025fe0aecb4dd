"""The tune: block of modelport.yaml: what is accepted, and precise errors with their
file:line:column for what is not."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from modelport.errors import InvalidInputError
from modelport.pipelines.loader import load_pipeline

BASE = """\
name: clf
tune:
  model: clf
  command: python train.py --C ${params.C}
  file: ${trial.dir}/model.skops
  objective: {metric: accuracy, direction: maximize}
  space:
"""


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "modelport.yaml"
    path.write_text(textwrap.dedent(text))
    return load_pipeline(path)


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(InvalidInputError) as exc:
        load(tmp_path, text)
    return str(exc.value).replace(str(tmp_path / "modelport.yaml"), "modelport.yaml")


def test_a_file_with_only_a_tune_block_is_a_valid_pipeline(tmp_path: Path) -> None:
    source = load(tmp_path, BASE + "    C: {type: float, low: 0.01, high: 10, log: true}\n"
                  "    n: {type: int, low: 1, high: 9, step: 2}\n"
                  "    kind: {type: categorical, choices: [a, 1, true, null]}\n"
                  "  pruner: median\n  sampler: {type: random, seed: 3}\n  timeout: 10m\n")
    tune = source.pipeline.tune  # type: ignore[attr-defined]
    assert source.pipeline.steps == []  # type: ignore[attr-defined]
    assert tune.space["C"].log and tune.space["n"].step == 2
    assert tune.space["kind"].choices == ["a", 1, True, None]
    assert tune.pruner.type == "median" and tune.sampler.seed == 3 and tune.timeout == 600
    assert tune.command_argv == ["python", "train.py", "--C", "${params.C}"]


def test_existing_pipelines_still_load_and_need_steps_or_tune(tmp_path: Path) -> None:
    assert load(tmp_path, "name: p\nsteps:\n  - train: python t.py\n").pipeline.tune is None  # type: ignore[attr-defined]
    assert error(tmp_path, "name: p\n") == (
        "modelport.yaml:1:1: a pipeline needs `steps:` (a list of at least one step) or a "
        "`tune:` block")


@pytest.mark.parametrize(("space", "expected"), [
    ("    {}\n", "modelport.yaml:7:3: tune.space: the search space is empty"),
    ("    C: {type: float, low: 10, high: 1}\n",
     "modelport.yaml:8:5: tune.space.C: low (10) must be below high (1)"),
    ("    C: {type: float, low: 0, high: 1, log: true}\n",
     "modelport.yaml:8:5: tune.space.C: a log-scaled range needs low > 0"),
    ("    C: {type: float, low: 0.1, high: 1, log: true, step: 0.1}\n",
     "modelport.yaml:8:5: tune.space.C: log and step cannot be combined"),
    ("    n: {type: int, low: 1, high: 5.5}\n",
     "modelport.yaml:8:5: tune.space.n: an int parameter needs a whole number as high"),
    ("    k: {type: categorical}\n",
     "modelport.yaml:8:5: tune.space.k: a categorical parameter needs `choices: [...]`"),
    ("    k: {type: categorical, choices: []}\n",
     "modelport.yaml:8:37: tune.space.k.choices: choices cannot be empty"),
    ("    k: {type: categorical, choices: [a, b], low: 1}\n",
     "modelport.yaml:8:5: tune.space.k: a categorical parameter takes `choices:`, not low"),
    ("    C: {type: float, high: 1}\n",
     "modelport.yaml:8:5: tune.space.C: a float parameter needs `low:` and `high:`"),
    ("    C: {type: real, low: 0, high: 1}\n",
     "modelport.yaml:8:15: tune.space.C.type: Input should be 'int', 'float' or 'categorical'"),
    ("    C: {type: float, low: 0, high: 1, lgo: true}\n",
     "modelport.yaml:8:39: tune.space.C.lgo: unknown key 'lgo' (allowed: type, low, high, log, "
     "step, choices)"),
    ("    bad-name: {type: float, low: 0, high: 1}\n",
     "modelport.yaml:7:3: tune.space: invalid parameter name 'bad-name'"),
])
def test_an_invalid_search_space_is_refused_at_its_line(tmp_path: Path, space: str,
                                                        expected: str) -> None:
    assert error(tmp_path, BASE + space).startswith(expected)


def test_the_trial_kind_and_its_keys_are_checked(tmp_path: Path) -> None:
    space = "  space: {C: {type: float, low: 0.1, high: 1}}\n"
    both = ("name: clf\ntune:\n  model: clf\n  command: python t.py\n  function: m:f\n"
            "  file: m.skops\n  objective: {metric: a, direction: maximize}\n" + space)
    assert error(tmp_path, both).startswith(
        "modelport.yaml:2:1: tune: a tune block needs exactly one of `command:`")
    no_file = ("name: clf\ntune:\n  model: clf\n  command: python t.py\n"
               "  objective: {metric: a, direction: maximize}\n" + space)
    assert "`command:` needs `file:`" in error(tmp_path, no_file)
    function_env = ("name: clf\ntune:\n  model: clf\n  function: m:f\n  env: {A: b}\n"
                    "  objective: {metric: a, direction: maximize}\n" + space)
    assert "`env:` applies to `command:` trials" in error(tmp_path, function_env)
    bad_function = function_env.replace("m:f", "m.f").replace("  env: {A: b}\n", "")
    assert "'m.f' is not module:callable" in error(tmp_path, bad_function)
    no_direction = both.replace("  function: m:f\n", "").replace(", direction: maximize", "")
    assert "tune.objective: missing required key 'direction'" in error(tmp_path, no_direction)


def test_references_name_the_trial_the_study_or_a_parameter(tmp_path: Path) -> None:
    text = BASE + "    C: {type: float, low: 0.1, high: 1}\n"
    assert error(tmp_path, text.replace("${params.C}", "${params.D}")) == (
        "modelport.yaml:4:12: tune.command: ${params.D}: params has no 'D' (it has C)")
    assert error(tmp_path, text.replace("${trial.dir}", "${train.uri}")).startswith(
        "modelport.yaml:5:9: tune.file: ${train.uri}: a tune block can refer to")
    assert load(tmp_path, text.replace("${params.C}", "${trial.number} ${study.name}"))
