"""The runner with real subprocess steps against a real registry (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from modelport.client import Registry
from modelport.pipelines.loader import load_pipeline
from modelport.pipelines.runner import PipelineRunner, RunOutcome
from modelport.registry.entities import RolloutStatus
from tests.pipelines.conftest import FakeCli, steps_by_name

Write = Callable[[str], Path]


class Recorder:
    """A reporter that keeps every call (and can act on a line of output)."""

    def __init__(self, on_line: Callable[[str], None] | None = None) -> None:
        self.events: list[tuple[str, int, str]] = []
        self.on_line = on_line

    def step_started(self, index: int, step: object, argv: list[str]) -> None:
        self.events.append(("start", index, " ".join(argv)))

    def step_output(self, index: int, stream: str, line: str) -> None:
        self.events.append((stream, index, line))
        if self.on_line:
            self.on_line(line)

    def step_finished(self, index: int, outcome: object) -> None:
        self.events.append(("end", index, outcome.status.value))  # type: ignore[attr-defined]


def run(path: Path, registry: Registry, **kwargs: object) -> RunOutcome:
    return PipelineRunner(load_pipeline(path), registry, **kwargs).run()  # type: ignore[arg-type]


def test_train_and_register_succeed_and_are_recorded(write_pipeline: Write,
                                                     registry: Registry) -> None:
    path = write_pipeline("""\
        name: demo
        env: {FROM_PIPELINE: p}
        steps:
          - train: python train.py
          - register: {name: demo, file: model.skops, metrics_file: metrics.json}
          - run: [python, -c, "import os; e = os.environ; print(e['FROM_PIPELINE'],
                  e['FROM_STEP'], e['MODELPORT_PIPELINE_RUN'])"]
            name: env
            env: {FROM_STEP: "${register.uri}"}
          - run: echo ${register.name} ${register.version} ${pipeline.run_id} $${literal}
            name: echo
    """)
    recorder = Recorder()
    outcome = run(path, registry, reporter=recorder)
    assert outcome.exit_code == 0, outcome.steps
    run_ = registry.records.pipeline_run(outcome.run.id)
    assert run_ == outcome.run
    assert run_.status == "succeeded" and run_.pipeline == "demo"
    assert run_.git_commit is None  # tmp_path is no git work tree
    assert run_.finished_at is not None and run_.actor == "tester"
    steps = steps_by_name(run_)
    assert [s["status"] for s in run_.steps] == ["succeeded"] * 4
    assert all(s["seconds"] > 0 and s["exit_code"] == 0 for s in run_.steps)
    assert steps["train"]["tail"][-1].startswith("trained ")
    assert steps["register"]["outputs"] == {"uri": "models:/demo/1", "name": "demo",
                                            "version": "1"}
    assert steps["register"]["message"] == "registered models:/demo/1"
    assert steps["env"]["tail"] == [f"p models:/demo/1 {run_.id}"]
    assert steps["echo"]["tail"] == [f"demo 1 {run_.id} ${{literal}}"]
    version = registry.get("demo/1")
    assert version.metrics["accuracy"] > 0.9  # from metrics.json
    assert version.tags["pipeline"] == "demo" and version.tags["pipeline_run"] == run_.id
    kinds = [e[0] for e in recorder.events]
    assert kinds.count("start") == 4 and kinds.count("end") == 4


def test_a_failing_step_stops_the_run_and_is_recorded(write_pipeline: Write,
                                                      registry: Registry) -> None:
    path = write_pipeline("""\
        name: demo
        steps:
          - run: [python, -c, "print('fine')"]
            name: ok
          - run: [python, -c, "import sys; [print('line', i) for i in range(50)]; sys.exit(3)"]
            name: broken
          - run: [python, -c, "open('never', 'w')"]
            name: after
    """)
    outcome = run(path, registry)
    assert outcome.exit_code == 11  # a command step failed
    assert outcome.failed_step is not None and outcome.failed_step.name == "broken"
    recorded = registry.records.pipeline_run(outcome.run.id)
    assert recorded.status == "failed"
    steps = steps_by_name(recorded)
    assert steps["ok"]["status"] == "succeeded"
    assert steps["broken"]["status"] == "failed" and steps["broken"]["exit_code"] == 3
    assert steps["broken"]["message"] == "exited with 3: line 49"
    assert steps["broken"]["tail"] == [f"line {i}" for i in range(30, 50)]  # the last 20
    assert steps["after"]["status"] == "skipped" and steps["after"]["seconds"] is None
    assert not (path.parent / "never").exists()


def test_a_failing_modelport_step_passes_its_exit_code_through(write_pipeline: Write,
                                                               registry: Registry) -> None:
    path = write_pipeline("""\
        name: demo
        steps:
          - register: {name: demo, file: missing.skops}
    """)
    outcome = run(path, registry)
    assert outcome.exit_code == 2  # modelport's exit code for invalid input
    step = steps_by_name(outcome.run)["register"]
    assert step["status"] == "failed" and step["exit_code"] == 2
    assert step["message"].startswith("exited with 2: model file not found")
    assert outcome.run.status == "failed"


def test_a_step_that_cannot_start_fails_clearly(write_pipeline: Write,
                                                registry: Registry) -> None:
    path = write_pipeline("name: demo\nsteps:\n  - train: no-such-program --x\n")
    outcome = run(path, registry)
    assert outcome.exit_code == 11
    assert steps_by_name(outcome.run)["train"]["message"].startswith(
        "cannot start 'no-such-program'")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie of a process we did not start is gone for our purposes
    state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    return state == "Z"


def test_a_step_over_its_timeout_is_stopped_with_what_it_started(
        write_pipeline: Write, registry: Registry) -> None:
    path = write_pipeline("""\
        name: demo
        steps:
          - run: "sleep 60 & echo $! > child.pid; echo started; wait"
            name: slow
            shell: true
            timeout: 1s
          - run: [python, -c, "print('never')"]
            name: after
    """)
    outcome = run(path, registry)
    assert outcome.exit_code == 11
    steps = steps_by_name(registry.records.pipeline_run(outcome.run.id))
    assert steps["slow"]["status"] == "timed_out"
    assert steps["slow"]["message"].startswith("timed out after")
    assert steps["slow"]["tail"] == ["started"]
    assert steps["after"]["status"] == "skipped"
    pid = int((path.parent / "child.pid").read_text())
    assert _gone(pid), "the step's background child outlived the timeout"


def test_cancelling_stops_the_step_and_records_the_run_cancelled(
        write_pipeline: Write, registry: Registry) -> None:
    path = write_pipeline("""\
        name: demo
        steps:
          - run: [python, -c, "import time; print('ready', flush=True); time.sleep(60)"]
            name: slow
          - run: [python, -c, "print('never')"]
            name: after
    """)
    cancel = threading.Event()
    recorder = Recorder(on_line=lambda line: cancel.set() if line == "ready" else None)
    started = time.monotonic()
    outcome = run(path, registry, reporter=recorder, cancel=cancel)
    assert time.monotonic() - started < 30, "cancel did not stop the step"
    assert outcome.exit_code == 130
    recorded = registry.records.pipeline_run(outcome.run.id)
    assert recorded.status == "cancelled"
    assert [s["status"] for s in recorded.steps] == ["cancelled", "skipped"]


def test_the_run_records_the_git_commit(write_pipeline: Write, registry: Registry) -> None:
    path = write_pipeline("name: demo\nsteps:\n  - run: [python, -c, 'print(1)']\n")
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", "."], cwd=path.parent, check=True)
    subprocess.run([*git, "add", "."], cwd=path.parent, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=path.parent, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path.parent, check=True,
                          capture_output=True, text=True).stdout.strip()
    outcome = run(path, registry)
    assert outcome.run.git_commit == head
    assert registry.records.pipeline_run(outcome.run.id).git_commit == head


# -- gate and rollout: command lines and failure handling through a stand-in CLI ----------


def test_a_failed_gate_stops_the_run_with_exit_10(write_pipeline: Write, registry: Registry,
                                                  fake_cli: FakeCli) -> None:
    path = write_pipeline("""\
        name: demo
        steps:
          - train: python train.py
          - register: {name: demo, file: model.skops}
          - gate: {data: eval.csv, target: y, rules: ["accuracy >= 0.99"]}
            env: {FAKE_EXIT: "10"}
          - rollout: {endpoint: demo}
    """)
    outcome = run(path, registry, python=fake_cli.python)
    assert outcome.exit_code == 10
    steps = steps_by_name(outcome.run)
    assert steps["gate"]["status"] == "failed" and steps["gate"]["exit_code"] == 10
    assert steps["gate"]["message"] == "exited with 10: fake failure"
    # stdout and stderr are read side by side: their relative order is not kept
    assert sorted(steps["gate"]["tail"]) == ["error: fake failure", "fake gate output line"]
    assert steps["rollout"]["status"] == "skipped"
    assert fake_cli.calls() == [["gate", "models:/demo/1", "--data", "eval.csv",
                                 "--target", "y", "--rule", "accuracy >= 0.99"]]


def test_rollout_wait_follows_the_rollout_to_promotion_or_rollback(
        write_pipeline: Write, registry: Registry, fake_cli: FakeCli) -> None:
    path = write_pipeline("""\
        name: demo
        steps:
          - train: python train.py
          - register: {name: demo, file: model.skops}
          - gate: {data: eval.csv, target: y}
          - rollout: {endpoint: demo, steps: [50, 100], step_duration: 1s, wait: true}
            timeout: 60s
    """)

    def controller(status: RolloutStatus, reason: str) -> None:
        # what a controller does: end the rollout the pipeline started, some time later
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            active = registry.deployments.active_rollout("demo")
            if active is not None:
                time.sleep(0.3)
                registry.deployments.transition(
                    active.id, "controller", status.value, reason=reason,
                    rollout_changes={"status": status, "reason": reason})
                return
            time.sleep(0.05)

    for status, reason in ((RolloutStatus.PROMOTED, ""),
                           (RolloutStatus.ROLLED_BACK, "error rate 12% > 1%")):
        thread = threading.Thread(target=controller, args=(status, reason))
        thread.start()
        outcome = run(path, registry, python=fake_cli.python, poll_seconds=0.05)
        thread.join(60)
        step = steps_by_name(outcome.run)["rollout"]
        if status is RolloutStatus.PROMOTED:
            assert outcome.exit_code == 0, step
            assert step["status"] == "succeeded"
            assert step["message"].endswith("of demo/1 promoted")
        else:
            assert outcome.exit_code == 11
            assert step["status"] == "failed"
            assert step["message"].endswith("of demo/2 rolled_back: error rate 12% > 1%")
    rollouts = [c for c in fake_cli.calls() if c[0] == "rollout"]
    assert rollouts[0] == ["rollout", "start", "demo", "--candidate", "models:/demo/1",
                           "--strategy", "canary", "--steps", "50,100", "--step-duration",
                           "1s"]


def test_rollout_wait_times_out_when_no_controller_acts(
        write_pipeline: Write, registry: Registry, fake_cli: FakeCli) -> None:
    path = write_pipeline("""\
        name: demo
        steps:
          - train: python train.py
          - register: {name: demo, file: model.skops}
          - rollout: {endpoint: demo, wait: true}
            timeout: 5s
    """)
    outcome = run(path, registry, python=fake_cli.python, poll_seconds=0.05)
    step = steps_by_name(outcome.run)["rollout"]
    assert outcome.exit_code == 11
    assert step["status"] == "timed_out"
    assert "still running when the step timed out (it keeps running)" in step["message"]
    assert registry.deployments.active_rollout("demo") is not None
