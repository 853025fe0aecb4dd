"""``modelport pipeline run|runs|show|validate`` and ``modelport init --ci github|gitlab``.

Exit codes of ``pipeline run``: 0 when every step succeeded; the failing step's own
exit code when it was a modelport command (register, gate, rollout: e.g. 10 for a
failed gate, 2 for invalid input); 11 when a command step failed, timed out, or a
rollout it waited for was not promoted; 2 for an invalid pipeline file; 130 when
interrupted (Ctrl-C, SIGTERM), after the running step was stopped and the run recorded.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from modelport.cli.output import info, print_json
from modelport.cli.pipeline_view import (
    LiveReporter,
    StreamReporter,
    failure_report,
    runs_table,
    show_run,
    steps_table,
)
from modelport.cli.state import state
from modelport.errors import ConflictError, InvalidInputError, NotFoundError, PipelineStepError
from modelport.pipelines.loader import DEFAULT_FILE, load_pipeline
from modelport.pipelines.runner import CANCELLED_EXIT, PipelineRunner, Reporter, RunOutcome
from modelport.pipelines.steps import RunInfo, plan
from modelport.pipelines.templates import init_project
from modelport.registry.entities import PipelineRun
from modelport.registry.records import RecordStore

app = typer.Typer(no_args_is_help=True)

PREFIX_MIN = 6
PREFIX_SEARCH = 1000  # how many recent runs a short id is looked up among
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
FileOpt = Annotated[Path, typer.Option("--file", "-f", help="The pipeline file.")]


@contextlib.contextmanager
def cancel_on_signals() -> Iterator[threading.Event]:
    """An event set by Ctrl-C or SIGTERM (instead of dying mid-step)."""
    cancel = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        cancel.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield cancel
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@app.command()
def run(
    ctx: typer.Context,
    file: FileOpt = Path(DEFAULT_FILE),
    stream: Annotated[bool | None, typer.Option(
        "--stream/--no-stream",
        help="Print every line of the steps' output (default: when stderr is not a terminal)."
    )] = None,
    as_json: JsonOpt = False,
    run_id: Annotated[str | None, typer.Option(
        "--run-id", help="Record the run under this id (a new UUID), so a caller can "
                         "follow it from its start; default: a fresh one.")] = None,
) -> None:
    """Run the pipeline's steps in order; stop at the first failure; record the run."""
    source = load_pipeline(file)
    if not source.pipeline.steps:
        raise InvalidInputError(f"{file} has no steps, only a tune: block: run `modelport tune`")
    reg = state(ctx).registry()
    if run_id is not None:
        run_id = _new_run_id(reg.records, run_id)
    streaming = stream if stream is not None else not sys.stderr.isatty()
    with cancel_on_signals() as cancel:
        if streaming:
            outcome = _run(source, reg, StreamReporter(), cancel, run_id)
        else:
            with LiveReporter() as live:
                outcome = _run(source, reg, live, cancel, run_id)
    if as_json:
        print_json(outcome.run.to_dict())
    name = source.pipeline.name
    if outcome.exit_code == 0:
        total = (outcome.run.finished_at - outcome.run.started_at).total_seconds() \
            if outcome.run.finished_at else 0.0
        info(f"[green]✓[/] pipeline [bold]{name}[/] succeeded in {total:.1f} s "
             f"(run {outcome.run.id})")
        return
    failure_report(outcome)
    step = outcome.failed_step
    where = f" at step {step.name!r}" if step else ""
    if outcome.exit_code == CANCELLED_EXIT:
        info(f"pipeline {name} cancelled{where}; run {outcome.run.id} recorded as cancelled")
        raise typer.Exit(CANCELLED_EXIT)
    raise PipelineStepError(f"pipeline {name!r} failed{where}: "
                            f"{step.message if step else 'failed'}",
                            exit_code=outcome.exit_code)


def _run(source: Any, reg: Any, reporter: Reporter, cancel: threading.Event,
         run_id: str | None) -> RunOutcome:
    return PipelineRunner(source, reg, reporter=reporter, cancel=cancel, run_id=run_id).run()


def _new_run_id(records: RecordStore, text: str) -> str:
    """``--run-id``: a UUID no recorded run has."""
    try:
        run_id = str(uuid.UUID(text.strip()))
    except ValueError:
        raise InvalidInputError(f"--run-id {text[:80]!r} is not a UUID") from None
    try:
        records.pipeline_run(run_id)
    except NotFoundError:
        return run_id
    raise ConflictError(f"a pipeline run {run_id} is already recorded")


@app.command()
def runs(
    ctx: typer.Context,
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="Only this pipeline.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Recorded pipeline runs, newest first."""
    found = state(ctx).registry().records.pipeline_runs(pipeline, limit=limit)
    if as_json:
        print_json([r.to_dict() for r in found])
    else:
        runs_table(found)


@app.command()
def show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(
        metavar="RUN_ID", help="A run id, or its first characters as `runs` shows them.")],
    as_json: JsonOpt = False,
) -> None:
    """One recorded run: each step's status, duration, exit code, message."""
    found = _find_run(state(ctx).registry().records, run_id.strip())
    if as_json:
        print_json(found.to_dict())
    else:
        show_run(found)


def _find_run(records: RecordStore, run_id: str) -> PipelineRun:
    """A run by id, or by a unique prefix (6+ characters) of a recent run's id."""
    if not run_id or len(run_id) > 64:
        raise InvalidInputError(f"{run_id[:80]!r} is not a pipeline run id")
    try:
        return records.pipeline_run(run_id)
    except NotFoundError:
        if len(run_id) < PREFIX_MIN:
            raise
    matches = [r for r in records.pipeline_runs(limit=PREFIX_SEARCH) if r.id.startswith(run_id)]
    if len(matches) > 1:
        raise InvalidInputError(f"{run_id!r} is the start of {len(matches)} run ids: give more")
    if not matches:
        raise NotFoundError(f"no pipeline run {run_id!r}")
    return matches[0]


@app.command()
def validate(file: FileOpt = Path(DEFAULT_FILE), as_json: JsonOpt = False) -> None:
    """Check a pipeline file and show what each step would run (runs nothing)."""
    source = load_pipeline(file)
    info_ = RunInfo(python="python", folder=source.folder, pipeline=source.pipeline.name,
                    run_id="RUN_ID", git_commit=None)
    steps = []
    for step in source.pipeline.steps:
        try:
            argv = plan(step, info_).argv
        except InvalidInputError:  # a metrics file the train step has not written yet
            argv = ["modelport", "models", "register", step.spec.name, step.spec.file, "..."]
        if argv[:3] == ["python", "-m", "modelport"]:
            argv = ["modelport", *argv[3:]]
        steps.append({"name": step.label, "kind": step.kind, "runs": shlex.join(argv),
                      "timeout": step.timeout})
    tune = source.pipeline.tune
    summary: dict[str, Any] | None = None if tune is None else {
        "model": tune.model, "params": list(tune.space), "trials": tune.trials,
        "objective": f"{tune.objective.direction} {tune.objective.metric}"}
    if as_json:
        print_json({"name": source.pipeline.name, "file": str(source.path), "steps": steps,
                    "tune": summary})
    else:
        info(f"[green]✓[/] {source.path} is a valid pipeline [bold]{source.pipeline.name}[/]")
        if steps:
            steps_table(steps)
        if summary is not None:
            info(f"tune: {summary['objective']} of {summary['model']} over "
                 f"{', '.join(summary['params'])} in {summary['trials']} trials "
                 "(`modelport tune`)")


def init(
    ci: Annotated[str | None, typer.Option(
        "--ci", help="Also write a CI workflow: github or gitlab.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    folder: Annotated[Path, typer.Option("--dir", help="The project folder.")] = Path("."),
) -> None:
    """Write a starter modelport.yaml and a CI workflow that runs it on every push."""
    for w in init_project(folder, ci, force=force):
        info(f"{w.action} {w.path}")
    info("next: edit modelport.yaml, then try `modelport pipeline run`")
