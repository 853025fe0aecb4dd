"""End to end: ``modelport pipeline ...`` and ``modelport init --ci ...`` as real processes,
and the CI workflow ``init`` writes, executed command by command in a real git repo."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import Cli, cli_env

pytestmark = pytest.mark.e2e

TRAIN = """\
import json
import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.linear_model import LogisticRegression

rng = np.random.default_rng(0)
X = pd.DataFrame(rng.normal(size=(80, 3)), columns=["f0", "f1", "f2"])
y = (X["f0"] > 0).astype(int)
model = LogisticRegression().fit(X, y)
sio.dump(model, "model.skops")
json.dump({"accuracy": float(model.score(X, y))}, open("metrics.json", "w"))
X.assign(target=y).to_csv("eval.csv", index=False)
print("trained", model.score(X, y))
"""

TRAIN_REGISTER = """\
name: demo
steps:
  - train: python train.py
    timeout: 5m
  - register: {name: demo, file: model.skops, metrics_file: metrics.json}
"""


def expect(result: Any, code: int) -> Any:
    assert result.returncode == code, f"expected exit {code}\n{result}"
    return result


def error_line(result: Any) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, f"expected exactly one error line\n{result}"
    assert "Traceback" not in result.stderr, f"unexpected traceback\n{result}"
    return lines[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "train.py").write_text(TRAIN)
    return folder


@pytest.fixture
def venv_path(monkeypatch: pytest.MonkeyPatch) -> str:
    """PATH with this interpreter's bin first (``python`` and ``modelport``), as in CI."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    monkeypatch.setenv("PATH", path)
    return path


def test_run_then_read_the_run_back(cli: Cli, tmp_path: Path, project: Path,
                                    venv_path: str) -> None:
    home = tmp_path / "home"
    (project / "modelport.yaml").write_text(TRAIN_REGISTER)
    ok = expect(cli.run(home, "pipeline", "run", "--json", cwd=project), 0)
    run = ok.json()
    assert run["status"] == "succeeded" and run["pipeline"] == "demo"
    assert [s["status"] for s in run["steps"]] == ["succeeded", "succeeded"]
    assert run["steps"][1]["outputs"]["uri"] == "models:/demo/1"
    assert "✓ pipeline demo succeeded" in ok.stderr
    assert "▶ train (train) python train.py" in ok.stderr  # not a terminal: streamed
    assert "  trained " in ok.stderr
    runs, show, short, tags = cli.many(home, [
        ("pipeline", "runs", "--json"), ("pipeline", "show", run["id"], "--json"),
        ("pipeline", "show", run["id"][:8]), ("models", "show", "demo/1", "--json")])
    assert [r["id"] for r in expect(runs, 0).json()] == [run["id"]]
    assert expect(show, 0).json() == run
    assert run["id"] in expect(short, 0).stdout and "registered models:/demo/1" in short.stdout
    assert expect(tags, 0).json()["tags"]["pipeline_run"] == run["id"]
    missing = expect(cli.run(home, "pipeline", "show", "0000000-nope"), 3)
    assert error_line(missing) == "error: no pipeline run '0000000-nope'"


def test_a_failing_step_is_reported_and_sets_the_exit_code(
        cli: Cli, tmp_path: Path, project: Path, venv_path: str) -> None:
    home = tmp_path / "home"
    (project / "modelport.yaml").write_text("""\
name: demo
steps:
  - run: [python, -c, "import sys; print('loss went up'); sys.exit(4)"]
    name: broken
  - run: [python, -c, "print('never')"]
    name: after
""")
    failed = expect(cli.run(home, "pipeline", "run", cwd=project), 11)
    assert error_line(failed) == ("error: pipeline 'demo' failed at step 'broken': "
                                  "exited with 4: loss went up")
    assert "step 'broken' (run) failed" in failed.stderr
    assert "exit code  4 (pipeline exits 11)" in failed.stderr
    assert "last 1 lines of output" in failed.stderr
    assert "never" not in failed.stderr
    runs = expect(cli.run(home, "pipeline", "runs", "--json"), 0).json()
    assert runs[0]["status"] == "failed"
    assert [s["status"] for s in runs[0]["steps"]] == ["failed", "skipped"]


def test_an_invalid_pipeline_file_is_refused_before_anything_runs(
        cli: Cli, tmp_path: Path, project: Path) -> None:
    home = tmp_path / "home"
    (project / "modelport.yaml").write_text("name: demo\nsteps:\n  - train: a\n    tmeout: 5\n")
    bad = expect(cli.run(home, "pipeline", "run", cwd=project), 2)
    assert error_line(bad).startswith(
        "error: modelport.yaml:4:5: steps[0].tmeout: unknown key 'tmeout'")
    checked = expect(cli.run(home, "pipeline", "validate", cwd=project), 2)
    assert "unknown key 'tmeout'" in checked.stderr
    assert not (home / "registry.db").exists()  # nothing ran, nothing was recorded
    missing = expect(cli.run(home, "pipeline", "run", "--file", "nope.yaml", cwd=project), 2)
    assert "no pipeline file nope.yaml" in error_line(missing)


def test_sigterm_stops_the_step_and_records_the_run_cancelled(
        cli: Cli, tmp_path: Path, project: Path, venv_path: str) -> None:
    home = tmp_path / "home"
    (project / "modelport.yaml").write_text("""\
name: demo
steps:
  - run: [python, -c, "import os, time; open('step.pid', 'w').write(str(os.getpid()));
           time.sleep(120)"]
    name: slow
""")
    proc = subprocess.Popen([sys.executable, "-m", "modelport", "pipeline", "run"], cwd=project,
                            env=cli_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (project / "step.pid").exists() or not (project / "step.pid").read_text():
            assert time.monotonic() < deadline, "the step never started"
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        step_pid = int((project / "step.pid").read_text())
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        Cli.stop(proc)  # type: ignore[arg-type]
    assert proc.returncode == 130, err
    assert "cancelled at step 'slow'" in err
    with pytest.raises(ProcessLookupError):
        os.kill(step_pid, 0)
    runs = expect(cli.run(home, "pipeline", "runs", "--json"), 0).json()
    assert runs[0]["status"] == "cancelled"
    assert runs[0]["steps"][0]["status"] == "cancelled"


def test_init_writes_once_and_refuses_to_overwrite(cli: Cli, tmp_path: Path,
                                                   project: Path) -> None:
    home = tmp_path / "home"
    first = expect(cli.run(home, "init", "--ci", "github", cwd=project), 0)
    assert "written modelport.yaml" in first.stderr
    workflow = project / ".github/workflows/modelport.yml"
    pipeline = project / "modelport.yaml"
    assert workflow.is_file() and pipeline.is_file()
    assert oct(workflow.stat().st_mode & 0o777) == "0o644"
    expect(cli.run(home, "pipeline", "validate", cwd=project), 0)  # the starter is valid
    workflow.write_text("# mine\n")
    again = expect(cli.run(home, "init", "--ci", "github", cwd=project), 4)
    assert "already exists: use --force" in error_line(again)
    assert workflow.read_text() == "# mine\n"
    pipeline.write_text(TRAIN_REGISTER)
    gitlab = expect(cli.run(home, "init", "--ci", "gitlab", cwd=project), 0)
    assert "kept modelport.yaml" in gitlab.stderr  # an existing pipeline is left alone
    assert pipeline.read_text() == TRAIN_REGISTER
    assert (project / ".gitlab-ci.yml").is_file()
    expect(cli.run(home, "init", cwd=project), 4)  # nothing to write without --force
    forced = expect(cli.run(home, "init", "--ci", "github", "--force", cwd=project), 0)
    assert "overwritten" in forced.stderr and workflow.read_text() != "# mine\n"
    bad = expect(cli.run(home, "init", "--ci", "jenkins", cwd=project), 2)
    assert "unknown CI system 'jenkins': use github or gitlab" in error_line(bad)


# -- the workflows, executed ---------------------------------------------------------------


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci",
                           *args], cwd=folder, check=True, capture_output=True,
                          text=True).stdout.strip()


def _commands(ci: str, text: str) -> tuple[dict[str, str], list[str]]:
    """The workflow's environment and shell commands, in order (actions are skipped)."""
    data = yaml.safe_load(text)
    if ci == "github":
        trigger = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as True
        assert "push" in trigger
        job = data["jobs"]["pipeline"]
        return job.get("env", {}), [s["run"] for s in job["steps"] if "run" in s]
    job = data["modelport-pipeline"]
    assert any("push" in rule["if"] for rule in job["rules"])
    return job.get("variables", {}), [*job.get("before_script", []), *job["script"]]


def run_workflow(ci: str, project: Path, home: Path, path: str) -> list[str]:
    """Execute a written workflow's commands in ``project``; returns what was run."""
    text = (project / {"github": ".github/workflows/modelport.yml",
                       "gitlab": ".gitlab-ci.yml"}[ci]).read_text()
    env_vars, commands = _commands(ci, text)
    env = cli_env(home, PATH=path)
    # An unset CI secret is an empty string, exactly as the runner provides it.
    env.update({k: re.sub(r"\$\{\{[^}]*\}\}", "", str(v)) for k, v in env_vars.items()})
    ran = []
    for command in commands:
        if command.strip() == "pip install modelport":
            continue  # needs the network; modelport is installed in this interpreter already
        done = subprocess.run(["bash", "-e", "-c", command], cwd=project, env=env,
                              capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, (f"{command!r} -> {done.returncode}\n"
                                      f"{done.stdout}\n{done.stderr}")
        ran.append(command)
    return ran


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_the_ci_workflow_runs_an_existing_pipeline_green(
        cli: Cli, tmp_path: Path, project: Path, venv_path: str, ci: str) -> None:
    home = tmp_path / "home"
    (project / "modelport.yaml").write_text(TRAIN_REGISTER)
    expect(cli.run(home, "init", "--ci", ci, cwd=project), 0)
    _git(project, "init", "-q", ".")
    _git(project, "add", ".")
    _git(project, "commit", "-qm", "first model")
    ran = run_workflow(ci, project, home, venv_path)
    assert ran[-1] == "modelport pipeline run --file modelport.yaml"
    runs = expect(cli.run(home, "pipeline", "runs", "--json"), 0).json()
    assert len(runs) == 1 and runs[0]["status"] == "succeeded"
    assert runs[0]["git_commit"] == _git(project, "rev-parse", "HEAD")
    version = expect(cli.run(home, "models", "show", "demo/1", "--json"), 0).json()
    assert version["tags"]["git_commit"] == runs[0]["git_commit"]


def test_the_starter_pipeline_runs_green_from_the_github_workflow(
        cli: Cli, tmp_path: Path, project: Path, venv_path: str) -> None:
    home = tmp_path / "home"
    expect(cli.run(home, "init", "--ci", "github", cwd=project), 0)  # train, register, gate
    _git(project, "init", "-q", ".")
    _git(project, "add", ".")
    _git(project, "commit", "-qm", "starter")
    run_workflow("github", project, home, venv_path)
    runs = expect(cli.run(home, "pipeline", "runs", "--json"), 0).json()
    assert runs[0]["status"] == "succeeded"
    assert [s["kind"] for s in runs[0]["steps"]] == ["train", "register", "gate"]
    assert (project / "gate-report.xml").is_file()  # the JUnit report the workflow keeps
