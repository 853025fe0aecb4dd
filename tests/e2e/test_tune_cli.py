"""End to end: ``modelport tune`` and ``modelport tune report`` as real processes; a study
resumed after its process is killed; two processes tuning one study on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from modelport.registry.store import SqlRegistryStore
from modelport.tuning import storage as st
from modelport.tuning.register import TRIAL_TAG
from tests.e2e.conftest import Cli
from tests.tuning.assets import SRC, command_yaml, write_project

pytestmark = pytest.mark.e2e


def expect(result: Any, code: int) -> Any:
    assert result.returncode == code, f"expected exit {code}\n{result}"
    return result


def error_line(result: Any) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, f"expected exactly one error line\n{result}"
    assert "Traceback" not in result.stderr, f"unexpected traceback\n{result}"
    return lines[0]


@pytest.fixture
def env() -> dict[str, str]:
    """PATH with this interpreter's bin first, so the trials' ``python`` is this one, and
    the modelport under test importable from the project folder the CLI runs in."""
    return {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": SRC}


def study_of(url: str) -> optuna.Study:
    return optuna.load_study(study_name="clf", storage=st.open_storage(url))


def test_tune_registers_the_best_and_report_shows_and_plots_it(
        cli: Cli, tmp_path: Path, env: dict[str, str]) -> None:
    project, home = tmp_path / "project", tmp_path / "home"
    write_project(project, command_yaml(trials=4, seed=5))
    ok = expect(cli.run(home, "tune", "--json", cwd=project, env={**env, "FAIL_ABOVE": "1"}), 0)
    out = ok.json()
    assert out["uri"] == "models:/clf/1" and out["registered_now"] and out["ran"] == 4
    assert out["states"]["complete"] >= 1 and out["states"].get("fail", 0) >= 1
    assert "✗ trial" in ok.stderr and "exited with 1: diverged" in ok.stderr
    assert "registered models:/clf/1" in ok.stderr
    report = expect(cli.run(home, "tune", "report", "--html", tmp_path / "h.html", "--png",
                            tmp_path / "h.png", cwd=project, env=env), 0)
    assert "parameter importances (fANOVA)" in report.stdout
    assert f"best trial: {out['best']['number']} accuracy=" in report.stdout
    assert "registered: models:/clf/1" in report.stdout
    assert (tmp_path / "h.html").stat().st_size > 10_000
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"
    data = expect(cli.run(home, "tune", "report", "clf", "--json", env=env), 0).json()
    assert len(data["trials"]) == 4 and data["best"]["number"] == out["best"]["number"]
    missing = expect(cli.run(home, "tune", "report", "nope", env=env), 3)
    assert error_line(missing) == "error: no study 'nope' on this registry (studies: clf)"


def test_bad_input_gets_one_precise_error_line(cli: Cli, tmp_path: Path,
                                               env: dict[str, str]) -> None:
    project, home = tmp_path / "project", tmp_path / "home"
    write_project(project, command_yaml().replace("low: 0.001, high: 10", "low: 10, high: 1"))
    bad = expect(cli.run(home, "tune", cwd=project, env=env), 2)
    assert error_line(bad) == ("error: modelport.yaml:11:5: tune.space.C: "
                               "low (10) must be below high (1)")
    write_project(project, command_yaml(trials=2))
    failed = expect(cli.run(home, "tune", cwd=project, env={**env, "FAIL_ABOVE": "0"}), 11)
    assert error_line(failed).startswith("error: no trial of study 'clf' completed (2 trials)")
    assert expect(cli.run(home, "models", "list", "--json", env=env), 0).json() == []
    timeout = expect(cli.run(home, "tune", "--timeout", "soon", cwd=project, env=env), 2)
    assert "--timeout: 'soon' is not a duration" in error_line(timeout)


def test_a_killed_study_resumes_where_it_stopped(cli: Cli, tmp_path: Path,
                                                 env: dict[str, str]) -> None:
    project, home = tmp_path / "project", tmp_path / "home"
    write_project(project, command_yaml(trials=8))
    url = f"sqlite:///{home / 'registry.db'}"
    slow = {**env, "TRIAL_SLEEP": "0.4"}
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "modelport", "tune"], cwd=project,
                                env={**os.environ, **slow, "MODELPORT_HOME": str(home)},
                                stdout=log, stderr=log, start_new_session=True)
        try:
            complete = _wait_for_complete(url, 3, proc)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert complete >= 3
    done = len(study_of(url).get_trials(states=(TrialState.COMPLETE,)))
    again = expect(cli.run(home, "tune", "--json", cwd=project, env=slow), 0).json()
    study = study_of(url)
    assert st.counted(study.trials) == 8 and again["ran"] == 8 - done
    assert [t.number for t in study.trials] == list(range(len(study.trials)))
    failed = [t.number for t in study.trials if t.state == TrialState.FAIL]
    assert failed == again["interrupted"] and len(failed) <= 1  # the trial the kill cut
    assert all(st.interrupted(t) for t in study.trials if t.number in failed)
    assert again["uri"] == "models:/clf/1"


def test_sigterm_stops_the_running_trial_and_keeps_the_study(
        cli: Cli, tmp_path: Path, env: dict[str, str]) -> None:
    project, home = tmp_path / "project", tmp_path / "home"
    write_project(project, command_yaml(trials=3))
    url = f"sqlite:///{home / 'registry.db'}"
    proc = subprocess.Popen([sys.executable, "-m", "modelport", "tune"], cwd=project,
                            env={**os.environ, **env, "TRIAL_SLEEP": "30",
                                 "MODELPORT_HOME": str(home)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _wait_for(url, TrialState.RUNNING, 1, proc)
        os.kill(proc.pid, signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        Cli.stop(proc)
    assert proc.returncode == 130, stderr
    assert "error: cancelled: study 'clf' keeps its trials; run the same command again to " \
           "resume it" in stderr and "Traceback" not in stderr
    (trial,) = study_of(url).trials
    assert trial.state == TrialState.FAIL and st.interrupted(trial)
    again = expect(cli.run(home, "tune", "--json", cwd=project, env=env), 0).json()
    assert again["ran"] == 3 and again["states"] == {"complete": 3, "fail": 1}


def _wait_for_complete(url: str, count: int, proc: subprocess.Popen[Any]) -> int:
    return _wait_for(url, TrialState.COMPLETE, count, proc)


def _wait_for(url: str, state: TrialState, count: int, proc: subprocess.Popen[Any]) -> int:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, "modelport tune ended before it was stopped"
        if (Path(url.removeprefix("sqlite:///")).parent / "registry-optuna.db").exists():
            try:
                trials = study_of(url).get_trials(states=(state,))
            except KeyError:  # the study is not created yet
                trials = []
            if len(trials) >= count:
                return len(trials)
        time.sleep(0.2)
    pytest.fail(f"fewer than {count} trials {state.name} in 90 s")


@pytest.mark.postgres
def test_two_processes_tune_one_study_on_postgresql(cli: Cli, tmp_path: Path, pg_url: str,
                                                    env: dict[str, str]) -> None:
    project, home = tmp_path / "project", tmp_path / "home"
    write_project(project, command_yaml(trials=8))
    run_env = {**env, "MODELPORT_DATABASE_URL": pg_url, "TRIAL_SLEEP": "0.5"}
    logs = [open(tmp_path / f"worker{i}.log", "w") for i in (1, 2)]  # noqa: SIM115
    procs = [subprocess.Popen([sys.executable, "-m", "modelport", "tune", "--seed", str(seed)],
                              cwd=project, env={**os.environ, **run_env,
                                                "MODELPORT_HOME": str(home)},
                              stdout=log, stderr=log, start_new_session=True)
             for seed, log in zip((1, 2), logs, strict=True)]
    try:
        codes = [p.wait(timeout=120) for p in procs]
    finally:
        for p in procs:
            Cli.stop(p)  # type: ignore[arg-type]
        for log in logs:
            log.close()
    assert codes == [0, 0], [(tmp_path / f"worker{i}.log").read_text() for i in (1, 2)]
    study = study_of(pg_url)
    trials = study.trials
    assert 8 <= len(trials) <= 9 and all(t.state.is_finished() for t in trials)
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    assert len({t.user_attrs[st.PID] for t in trials}) == 2  # both processes ran trials
    store = SqlRegistryStore.from_url(pg_url)
    try:
        versions = store.list_versions("clf")
    finally:
        store.close()
    registered = [v.tags[TRIAL_TAG] for v in versions]
    assert str(study.best_trial.number) in registered
    assert len(registered) == len(set(registered))  # no trial registered twice
