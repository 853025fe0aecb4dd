"""Run a pipeline's steps in order, stop at the first failure, record the run as it goes.

The run is saved in the registry when it starts (every step ``pending``) and again as
each step starts and ends, so ``modelport pipeline show`` tells the truth even about
a run that is still going or whose runner was killed. Every child process gets the
runner's registry (``MODELPORT_HOME``, ``MODELPORT_DATABASE_URL``,
``MODELPORT_ARTIFACTS``), so what the steps register is where the run is recorded.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from modelport.errors import InvalidInputError, ModelportError, PipelineStepError
from modelport.pipelines.gitinfo import git_commit
from modelport.pipelines.loader import PipelineFile
from modelport.pipelines.process import ProcessResult, run_process
from modelport.pipelines.refs import resolve
from modelport.pipelines.spec import Step
from modelport.pipelines.steps import RunInfo, StepPlan, plan, register_outputs
from modelport.pipelines.waiting import RolloutWaiter
from modelport.registry.entities import PipelineRun

if TYPE_CHECKING:
    from modelport.client import Registry

CANCELLED_EXIT = 130
TAIL_RECORDED = 20  # lines of a failed step's output kept in the run record
TAIL_CHARS = 4000


class StepStatus(StrEnum):
    """Where one step is."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


class RunStatus(StrEnum):
    """Where a whole run is."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass
class StepOutcome:
    """One step's result, as recorded in the run."""

    name: str
    kind: str
    status: StepStatus = StepStatus.PENDING
    seconds: float | None = None
    exit_code: int | None = None
    message: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    tail: list[str] = field(default_factory=list)
    started_at: datetime | None = None

    def record(self) -> dict[str, Any]:
        """The JSON-ready dict stored in ``PipelineRun.steps``."""
        tail = self.tail[-TAIL_RECORDED:]
        while tail and sum(len(t) + 1 for t in tail) > TAIL_CHARS:
            tail = tail[1:]
        return {"name": self.name, "kind": self.kind, "status": self.status.value,
                "started_at": self.started_at.isoformat() if self.started_at else None,
                "seconds": None if self.seconds is None else round(self.seconds, 3),
                "exit_code": self.exit_code, "message": self.message,
                "outputs": self.outputs, "tail": tail}


class Reporter(Protocol):
    """What a runner tells its display (the CLI's progress view, a test's recorder)."""

    def step_started(self, index: int, step: Step, argv: list[str]) -> None:
        """Step ``index`` is starting ``argv``."""

    def step_output(self, index: int, stream: str, line: str) -> None:
        """One line of output (``stdout``, ``stderr``, or ``status`` from the runner)."""

    def step_finished(self, index: int, outcome: StepOutcome) -> None:
        """Step ``index`` ended (or was skipped)."""


class NullReporter:
    """Shows nothing."""

    def step_started(self, index: int, step: Step, argv: list[str]) -> None:
        """Nothing."""

    def step_output(self, index: int, stream: str, line: str) -> None:
        """Nothing."""

    def step_finished(self, index: int, outcome: StepOutcome) -> None:
        """Nothing."""


@dataclass
class RunOutcome:
    """A finished run: its record, each step's outcome, and the exit code it means."""

    run: PipelineRun
    steps: list[StepOutcome]
    exit_code: int

    @property
    def failed_step(self) -> StepOutcome | None:
        """The step that stopped the run, if one did."""
        stopped = (StepStatus.FAILED, StepStatus.TIMED_OUT, StepStatus.CANCELLED)
        return next((s for s in self.steps if s.status in stopped), None)


class PipelineRunner:
    """Runs one pipeline file against one registry."""

    def __init__(self, source: PipelineFile, registry: Registry, *,
                 reporter: Reporter | None = None, cancel: threading.Event | None = None,
                 python: str = sys.executable, poll_seconds: float = 0.5,
                 run_id: str | None = None) -> None:
        self.source = source
        self.run_id = run_id  # chosen by the caller (to follow the run), else a new uuid
        self.registry = registry
        self.reporter: Reporter = reporter or NullReporter()
        self.cancel = cancel or threading.Event()
        self.python = python
        self.poll_seconds = poll_seconds

    def run(self) -> RunOutcome:
        """Run every step in order until one fails; returns the recorded outcome."""
        pipeline = self.source.pipeline
        info = RunInfo(python=self.python, folder=self.source.folder, pipeline=pipeline.name,
                       run_id=self.run_id or str(uuid.uuid4()),
                       git_commit=git_commit(self.source.folder))
        outcomes = [StepOutcome(s.label, s.kind) for s in pipeline.steps]
        run = PipelineRun(id=info.run_id, pipeline=pipeline.name, status=RunStatus.RUNNING.value,
                          git_commit=info.git_commit, steps=[o.record() for o in outcomes],
                          started_at=_now(), finished_at=None, actor=self.registry.settings.user)
        records = self.registry.records
        records.save_pipeline_run(run)
        values: dict[str, dict[str, str]] = {"pipeline": {
            "name": pipeline.name, "run_id": info.run_id, "git_commit": info.git_commit or ""}}
        exit_code = 0
        for i, step in enumerate(pipeline.steps):
            outcome = outcomes[i]
            if exit_code or self.cancel.is_set():
                outcome.status = StepStatus.SKIPPED
                self.reporter.step_finished(i, outcome)
                continue
            outcome.status, outcome.started_at = StepStatus.RUNNING, _now()
            run = records.save_pipeline_run(_with(run, outcomes))
            exit_code = self._step(i, step, info, values, outcome)
            values[step.label] = outcome.outputs
            run = records.save_pipeline_run(_with(run, outcomes))
            self.reporter.step_finished(i, outcome)
        status = RunStatus.SUCCEEDED
        if any(o.status == StepStatus.CANCELLED for o in outcomes) or self.cancel.is_set():
            status, exit_code = RunStatus.CANCELLED, CANCELLED_EXIT
        elif exit_code:
            status = RunStatus.FAILED
        run = records.save_pipeline_run(dataclasses.replace(
            _with(run, outcomes), status=status.value, finished_at=_now()))
        return RunOutcome(run, outcomes, exit_code)

    def _step(self, index: int, step: Step, info: RunInfo,
              values: dict[str, dict[str, str]], outcome: StepOutcome) -> int:
        """Run one step, filling ``outcome``; returns 0 or the exit code the run ends with."""
        try:
            resolved = _resolve(step, values)
            child = plan(resolved, info)
        except ModelportError as exc:
            return _fail(outcome, StepStatus.FAILED, exc.exit_code, str(exc))
        self.reporter.step_started(index, resolved, child.argv)
        env = self._env(resolved, info)
        waiter = None
        if resolved.kind == "rollout" and resolved.spec.wait:
            waiter = RolloutWaiter(self.registry, resolved.spec.endpoint, self.cancel,
                                   lambda line: self.reporter.step_output(index, "status", line),
                                   self.poll_seconds)
        try:
            result = run_process(
                child.argv, cwd=info.folder, env=env, timeout=resolved.timeout,
                cancel=self.cancel, keep_stdout=child.keep_stdout,
                on_line=lambda stream, line: self.reporter.step_output(index, stream, line))
        except OSError as exc:
            return _fail(outcome, StepStatus.FAILED, PipelineStepError.exit_code,
                         f"cannot start {child.argv[0]!r}: {exc.strerror or exc}")
        outcome.seconds, outcome.tail = result.seconds, result.tail
        code = self._judge(child, result, outcome)
        if code or waiter is None:
            return code
        remaining = None if resolved.timeout is None else resolved.timeout - result.seconds
        waited, message = waiter.wait(remaining)
        status = StepStatus(waited)
        outcome.seconds = (_now() - outcome.started_at).total_seconds() \
            if outcome.started_at else result.seconds
        if status != StepStatus.SUCCEEDED:
            code = CANCELLED_EXIT if status == StepStatus.CANCELLED else PipelineStepError.exit_code
            return _fail(outcome, status, code, message)
        outcome.message = message
        return 0

    def _judge(self, child: StepPlan, result: ProcessResult, outcome: StepOutcome) -> int:
        """The outcome of the child process itself (before any waiting)."""
        if result.cancelled:
            return _fail(outcome, StepStatus.CANCELLED, CANCELLED_EXIT, "cancelled")
        if result.timed_out:
            return _fail(outcome, StepStatus.TIMED_OUT, PipelineStepError.exit_code,
                         f"timed out after {result.seconds:.1f} s")
        rc = result.returncode
        assert rc is not None
        outcome.exit_code = rc
        if rc != 0:
            died = f"killed by signal {-rc}" if rc < 0 else f"exited with {rc}"
            last = last_words(result.tail)
            code = rc if child.modelport and 0 < rc < 128 else PipelineStepError.exit_code
            return _fail(outcome, StepStatus.FAILED, code,
                         f"{died}" + (f": {last}" if last else ""), keep_rc=True)
        if child.keep_stdout:
            try:
                outcome.outputs = register_outputs(result.stdout)
            except InvalidInputError as exc:
                return _fail(outcome, StepStatus.FAILED, PipelineStepError.exit_code, str(exc))
            outcome.message = f"registered {outcome.outputs['uri']}"
        outcome.status = StepStatus.SUCCEEDED
        return 0

    def _env(self, step: Step, info: RunInfo) -> dict[str, str]:
        settings = self.registry.settings
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.source.pipeline.env, **step.env}
        env.update({  # last: the steps must use the registry the run is recorded in
            "MODELPORT_HOME": str(settings.home), "MODELPORT_DATABASE_URL": settings.database_url,
            "MODELPORT_ARTIFACTS": settings.artifacts, "MODELPORT_PIPELINE": info.pipeline,
            "MODELPORT_PIPELINE_RUN": info.run_id})
        if info.git_commit:
            env["MODELPORT_GIT_COMMIT"] = info.git_commit
        return env


def _resolve(step: Step, values: dict[str, dict[str, str]]) -> Step:
    data = step.model_dump(by_alias=True, exclude_none=True)
    for key in (step.kind, "env"):
        data[key] = resolve(data[key], values)
    try:
        return Step.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInputError(f"after substitution, {where}: "
                                f"{str(first['msg']).removeprefix('Value error, ')}") from None


def last_words(tail: list[str]) -> str:
    """The line that best says why a child failed: modelport's ``error:`` line, else the
    last line with words in it (rich's box drawing stripped)."""
    for line in reversed(tail):
        if line.startswith("error:"):
            return line.removeprefix("error:").strip()[:300]
    for line in reversed(tail):
        text = line.strip(" \t│┃|╭╮╰╯─━")
        if any(c.isalnum() for c in text):
            return text[:300]
    return ""


def _fail(outcome: StepOutcome, status: StepStatus, code: int, message: str,
          keep_rc: bool = False) -> int:
    outcome.status, outcome.message = status, message
    if not keep_rc:
        outcome.exit_code = None
    if outcome.started_at and outcome.seconds is None:
        outcome.seconds = (_now() - outcome.started_at).total_seconds()
    return code


def _with(run: PipelineRun, outcomes: list[StepOutcome]) -> PipelineRun:
    return dataclasses.replace(run, steps=[o.record() for o in outcomes])


def _now() -> datetime:
    return datetime.now(UTC)


__all__ = ["NullReporter", "PipelineRunner", "Reporter", "RunOutcome", "RunStatus",
           "StepOutcome", "StepStatus", "last_words"]
