"""Real studies on a small scikit-learn model: the best trial registered with its tags,
failing trials recorded while the study goes on, pruning, resuming, bad metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from modelport.client import Registry
from modelport.errors import InvalidInputError, TrialsFailedError
from modelport.pipelines.loader import load_pipeline
from modelport.tuning import storage as st
from modelport.tuning.register import STUDY_TAG, TRIAL_TAG, VALUE_TAG
from modelport.tuning.runner import TuneOptions, Tuner
from tests.tuning.assets import SRC, command_yaml, function_yaml, write_project
from tests.tuning.conftest import TuneFn


def states(outcome: object) -> list[str]:
    return [t.state.name for t in outcome.trials]  # type: ignore[attr-defined]


def test_a_function_study_registers_its_best_trial_with_params_metrics_and_tags(
        tune: TuneFn, module_name: str, sqlite_registry: Registry) -> None:
    outcome = tune(function_yaml(module_name, trials=6), module_name)
    assert states(outcome) == ["COMPLETE"] * 6 and outcome.ran == 6
    best = outcome.best
    assert best is not None and best.value == max(t.value for t in outcome.trials)
    version = outcome.version
    assert version is not None and outcome.registered_now and version.uri == "models:/clf/1"
    assert version.tags[STUDY_TAG] == "clf" and version.tags[TRIAL_TAG] == str(best.number)
    assert float(version.tags[VALUE_TAG]) == best.value and version.tags["pipeline"] == "clf"
    assert version.params == best.params and version.metrics == {"accuracy": best.value}
    loaded = sqlite_registry.load_model("clf/1")
    assert pytest.approx(best.params["C"]) == loaded.native.C


def test_a_seeded_study_is_reproducible(tune: TuneFn, module_name: str, tmp_path: Path,
                                        project: Path) -> None:
    first = tune(function_yaml(module_name, trials=4), module_name)
    with Registry(home=tmp_path / "other-home") as other:
        second = Tuner(load_pipeline(project / "modelport.yaml"), other).run()
    assert [t.params for t in second.trials] == [t.params for t in first.trials]


def test_failing_commands_are_recorded_and_the_study_goes_on(
        tune: TuneFn, project: Path, sqlite_registry: Registry,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIL_ABOVE", "1.0")  # seed 5 draws C above 1 for trials 1 and 2
    outcome = tune(command_yaml(trials=4, seed=5, script="train.py"))  # trains for real
    failed = [t for t in outcome.trials if t.state == TrialState.FAIL]
    complete = [t for t in outcome.trials if t.state == TrialState.COMPLETE]
    assert failed and complete and len(outcome.trials) == 4
    assert all(t.params["C"] > 1.0 for t in failed)
    assert failed[0].user_attrs[st.ERROR] == ("exited with 1: diverged: C is too large for "
                                              "this data")
    assert outcome.version is not None and outcome.version.flavor == "sklearn"
    assert outcome.version.metrics["accuracy"] == outcome.best.value  # type: ignore[union-attr]
    # Only the best trial's folder is kept once the study is done.
    work = sqlite_registry.settings.home / "tuning" / "clf"
    assert sorted(p.name for p in work.iterdir()) == [str(outcome.best.number)]  # type: ignore[union-attr]


def test_when_every_trial_fails_nothing_is_registered(
        tune: TuneFn, sqlite_registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIL_ABOVE", "0")
    with pytest.raises(TrialsFailedError) as exc:
        tune(command_yaml(trials=3))
    assert exc.value.exit_code == 11
    assert str(exc.value) == ("no trial of study 'clf' completed (3 trials) (last error: "
                              "exited with 1: diverged: C is too large for this data); "
                              "nothing registered")
    assert sqlite_registry.list() == []


def test_a_metric_the_command_does_not_report_stops_the_study(
        tune: TuneFn, sqlite_registry: Registry) -> None:
    text = command_yaml(trials=5).replace("metric: accuracy", "metric: acc")
    with pytest.raises(InvalidInputError) as exc:
        tune(text)
    assert "tune.objective.metric is 'acc' but trial 0 reported no such metric (it " \
           "reported: C, accuracy)" in str(exc.value)
    study = optuna.load_study(study_name="clf", storage=st.open_storage(
        sqlite_registry.settings.database_url))
    assert [t.state for t in study.trials] == [TrialState.FAIL]
    assert sqlite_registry.list() == []


def test_a_stale_model_file_fails_the_trial(tune: TuneFn, project: Path) -> None:
    # The command writes into its trial folder, but the block names a fixed file: the
    # first trial copies nothing there, so it has no model; a file left from earlier
    # is refused rather than registered as this trial's.
    (project / "old.skops").write_bytes(b"stale")
    text = command_yaml(trials=2).replace("${trial.dir}/model.skops", "old.skops")
    with pytest.raises(TrialsFailedError) as exc:
        tune(text)
    assert "was not rewritten by this trial" in str(exc.value)


def test_function_trials_are_pruned_by_the_median_pruner(tune: TuneFn, module_name: str) -> None:
    text = function_yaml(module_name, trials=10, extra="  pruner: {type: median, "
                         "startup_trials: 2}\n").replace("low: 0.001", "low: 0.0001")
    outcome = tune(text, module_name, REPORTS=4)
    pruned = [t for t in outcome.trials if t.state == TrialState.PRUNED]
    # The slow learners are stopped at their first report; others later, if below median.
    slow = [t for t in outcome.trials[2:] if t.params["C"] < 0.05]
    assert slow and all(t in pruned and t.user_attrs[st.PRUNED_AT] == 0 for t in slow)
    assert all(len(t.intermediate_values) == t.user_attrs[st.PRUNED_AT] + 1 for t in pruned)
    assert outcome.best is not None and outcome.best.state == TrialState.COMPLETE


def test_command_trials_are_pruned_from_their_report_lines(
        tune: TuneFn, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every trial reports the same rising curve scaled by its accuracy; after two full
    # trials the median pruner stops those below the median at the first step.
    monkeypatch.setenv("REPORTS", "3")
    text = command_yaml(trials=6, extra="  pruner: {type: median, startup_trials: 2}\n")
    outcome = tune(text)
    pruned = [t for t in outcome.trials if t.state == TrialState.PRUNED]
    assert pruned, [(t.state, t.value) for t in outcome.trials]
    assert all(t.user_attrs[st.PRUNED_AT] < 2 for t in pruned)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_a_trial_left_running_by_a_dead_process_is_failed_and_not_counted(
        tune: TuneFn, project: Path, module_name: str, sqlite_registry: Registry) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    storage = st.open_storage(sqlite_registry.settings.database_url)
    study = optuna.create_study(study_name="clf", storage=storage, direction="maximize")
    ghost = study.ask()
    for key, value in {**st.this_process(), st.PID: int(dead.stdout)}.items():
        ghost.set_user_attr(key, value)
    outcome = tune(function_yaml(module_name, trials=3), module_name)
    assert outcome.interrupted == [0]
    assert states(outcome) == ["FAIL", "COMPLETE", "COMPLETE", "COMPLETE"]
    assert outcome.trials[0].user_attrs[st.INTERRUPTED] is True
    assert outcome.ran == 3


def test_rerunning_a_full_study_runs_nothing_and_finds_the_registered_version(
        tune: TuneFn, project: Path, module_name: str, sqlite_registry: Registry) -> None:
    first = tune(function_yaml(module_name, trials=3), module_name)
    again = Tuner(load_pipeline(project / "modelport.yaml"), sqlite_registry).run()
    assert again.ran == 0 and len(again.trials) == 3
    assert again.version == first.version and not again.registered_now
    more = Tuner(load_pipeline(project / "modelport.yaml"), sqlite_registry,
                 TuneOptions(trials=5)).run()
    assert more.ran == 2 and len(more.trials) == 5
    # The resumed sampler continues the seed's sequence instead of replaying it.
    params = [tuple(t.params.items()) for t in more.trials]
    assert len(set(params)) == 5


def test_a_function_best_trial_whose_process_ended_is_refit(
        project: Path, module_name: str, sqlite_registry: Registry) -> None:
    path = write_project(project, function_yaml(module_name, trials=3), module_name)
    # Another process runs the trials and ends without registering: its models are gone.
    subprocess.run([sys.executable, "-m", "modelport", "tune", "--no-register"], cwd=project,
                   env={**os.environ, "PYTHONPATH": SRC}, check=True, capture_output=True,
                   timeout=120)
    again = Tuner(load_pipeline(path), sqlite_registry).run()
    assert again.ran == 0 and again.best is not None
    assert again.version is not None and again.note.startswith("refit")
    assert again.version.tags["modelport.tune.refit"] == "true"
    assert again.version.metrics["accuracy"] == again.best.value


def test_resume_needs_an_existing_study_and_a_matching_objective(
        tune: TuneFn, project: Path, module_name: str, sqlite_registry: Registry) -> None:
    from modelport.errors import NotFoundError

    path = write_project(project, function_yaml(module_name, trials=2), module_name)
    with pytest.raises(NotFoundError, match="no study 'clf' to resume"):
        Tuner(load_pipeline(path), sqlite_registry, TuneOptions(resume=True)).run()
    Tuner(load_pipeline(path), sqlite_registry).run()
    path.write_text(path.read_text().replace("maximize", "minimize"))
    with pytest.raises(InvalidInputError, match="does not minimize one objective"):
        Tuner(load_pipeline(path), sqlite_registry).run()


def test_the_timeout_stops_starting_trials(tune: TuneFn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAL_SLEEP", "0.3")
    outcome = tune(command_yaml(trials=50), options=TuneOptions(timeout=0.5))
    assert 1 <= outcome.ran < 50 and outcome.version is not None


ECHO = """\
import json, os, shutil, sys
out = os.environ["MODELPORT_TRIAL_DIR"]
shutil.copy("base.skops", os.path.join(out, "model.skops"))
args = sys.argv[1:]
print("modelport:metric accuracy=0.5 nargs=%d" % len(args))
json.dump({"argv": args, "C": os.environ["MODELPORT_PARAM_C"],
           "params": json.loads(os.environ["MODELPORT_PARAMS"]),
           "trial": os.environ["MODELPORT_TRIAL"], "study": os.environ["MODELPORT_STUDY"]},
          open(os.path.join(out, "seen.json"), "w"))
"""


def test_parameters_reach_the_command_as_env_references_and_arguments(
        tune: TuneFn, project: Path, sqlite_registry: Registry) -> None:
    (project / "echo.py").write_text(ECHO)
    text = command_yaml(trials=1).replace(
        "command: python quick.py", "command: python echo.py --c ${params.C} ${trial.number}\n"
        "  args: true").replace("  metrics_file: ${trial.dir}/metrics.json\n", "")
    outcome = tune(text, options=TuneOptions(keep_files=True))
    (trial,) = outcome.trials
    seen = json.loads((sqlite_registry.settings.home / "tuning" / "clf" / "0" / "seen.json")
                      .read_text())
    c, intercept = trial.params["C"], trial.params["fit_intercept"]
    assert seen["argv"] == ["--c", str(c), "0", f"--C={c}",
                            f"--fit_intercept={str(intercept).lower()}"]
    assert seen["C"] == str(c) and seen["params"] == trial.params
    assert (seen["trial"], seen["study"]) == ("0", "clf")
    assert trial.user_attrs[st.METRICS] == {"accuracy": 0.5, "nargs": 5.0}
