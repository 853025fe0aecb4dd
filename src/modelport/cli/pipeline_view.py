"""How ``modelport pipeline`` looks: a live progress view on a terminal, streamed lines
in CI logs, the failure report, and the tables of recorded runs."""

from __future__ import annotations

import shlex
import sys
from typing import Any

from rich.markup import escape
from rich.panel import Panel
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text

from modelport.cli.output import console, err_console
from modelport.pipelines.runner import RunOutcome, StepOutcome, StepStatus
from modelport.pipelines.spec import Step
from modelport.registry.entities import PipelineRun

MARKS = {StepStatus.SUCCEEDED: "[green]✓[/]", StepStatus.FAILED: "[red]✗[/]",
         StepStatus.TIMED_OUT: "[red]⏱[/]", StepStatus.CANCELLED: "[yellow]■[/]",
         StepStatus.SKIPPED: "[dim]-[/]"}
REPORT_LINES = 20


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def shown_command(argv: list[str]) -> str:
    """``argv`` as a person would type it (``modelport ...`` for the CLI's own steps)."""
    if argv[1:3] == ["-m", "modelport"]:
        argv = ["modelport", *argv[3:]]
    return shlex.join(argv)


class LiveReporter:
    """Spinner, name and elapsed time per step; the step's latest output line beside it."""

    def __init__(self) -> None:
        self.progress = Progress(SpinnerColumn(finished_text=" "), TextColumn("{task.description}"),
                                 TimeElapsedColumn(), console=err_console())
        self.tasks: dict[int, TaskID] = {}
        self.labels: dict[int, str] = {}

    def __enter__(self) -> LiveReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def step_started(self, index: int, step: Step, argv: list[str]) -> None:
        """Add the step's line to the view."""
        self.labels[index] = f"[bold]{escape(step.label)}[/] [dim]({step.kind})[/]"
        self.tasks[index] = self.progress.add_task(self.labels[index], total=1)

    def step_output(self, index: int, stream: str, line: str) -> None:
        """Show the latest line of output next to the step."""
        if index in self.tasks and line.strip():
            last = escape(line.strip()[:80])
            self.progress.update(self.tasks[index], description=f"{self.labels[index]}  "
                                                                f"[dim]{last}[/]")

    def step_finished(self, index: int, outcome: StepOutcome) -> None:
        """Mark the step done (or add a line for a skipped one)."""
        mark = MARKS.get(outcome.status, "")
        label = self.labels.get(index, f"[bold]{escape(outcome.name)}[/] "
                                       f"[dim]({outcome.kind})[/]")
        text = f"{mark} {label}  {escape(outcome.message[:100] or outcome.status.value)}"
        if index in self.tasks:
            self.progress.update(self.tasks[index], description=text, completed=1)
        else:
            self.progress.add_task(text, total=1, completed=1)


class StreamReporter:
    """For logs (CI, pipes): a line when a step starts and ends, its output in between."""

    def step_started(self, index: int, step: Step, argv: list[str]) -> None:
        """Print what the step runs."""
        err_console().print(f"[bold]▶ {escape(step.label)}[/] [dim]({step.kind})[/] "
                            f"{escape(shown_command(argv))}", highlight=False)

    def step_output(self, index: int, stream: str, line: str) -> None:
        """Print one line of the step's output as it comes."""
        sys.stderr.write(f"  {line}\n")
        sys.stderr.flush()

    def step_finished(self, index: int, outcome: StepOutcome) -> None:
        """Print how the step ended."""
        mark = MARKS.get(outcome.status, "")
        took = f" {_seconds(outcome.seconds)}" if outcome.seconds is not None else ""
        err_console().print(f"{mark} {escape(outcome.name)} {outcome.status.value}{took}"
                            + (f": {escape(outcome.message)}" if outcome.message else ""),
                            highlight=False)


def failure_report(outcome: RunOutcome) -> None:
    """A panel naming the step that stopped the run, its exit code and last lines."""
    step = outcome.failed_step
    if step is None:
        return
    body = Text()
    body.append(f"status     {step.status.value}\n")
    body.append(f"exit code  {step.exit_code if step.exit_code is not None else '-'} "
                f"(pipeline exits {outcome.exit_code})\n")
    body.append(f"duration   {_seconds(step.seconds)}\n")
    body.append(f"message    {step.message}\n")
    body.append(f"run        {outcome.run.id}")
    tail = step.tail[-REPORT_LINES:]
    if tail:
        body.append(f"\n\nlast {len(tail)} lines of output:\n", style="bold")
        body.append("\n".join(tail), style="dim")
    err_console().print(Panel(body, title=f"step {step.name!r} ({step.kind}) {step.status.value}",
                              border_style="red", expand=False))


def runs_table(runs: list[PipelineRun]) -> None:
    """One row per run, newest first (ids shortened like git's: `show` takes a prefix)."""
    table = Table("run", "pipeline", "status", Column("started (UTC)", no_wrap=True), "took",
                  "commit")
    for r in runs:
        stopped = next((s["name"] for s in r.steps
                        if s.get("status") in ("failed", "timed_out", "cancelled")), None)
        status = _status(r.status) + (f" at {escape(stopped)}" if stopped else "")
        table.add_row(r.id[:8], r.pipeline, status, r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                      _duration(r), (r.git_commit or "-")[:8])
    console().print(table)


def show_run(run: PipelineRun) -> None:
    """A run's header, its steps, and the saved output tail of a step that failed."""
    console().print(f"[bold]{escape(run.pipeline)}[/] run {run.id}: {_status(run.status)}  "
                    f"commit {run.git_commit or '-'}  by {escape(run.actor)}  "
                    f"started {run.started_at:%Y-%m-%d %H:%M:%S} UTC  took {_duration(run)}",
                    highlight=False)
    table = Table("step", "kind", "status", "seconds", "exit", "message")
    for s in run.steps:
        table.add_row(s["name"], s["kind"], _status(s["status"]),
                      "-" if s.get("seconds") is None else f"{s['seconds']:.1f}",
                      "-" if s.get("exit_code") is None else str(s["exit_code"]),
                      escape(s.get("message") or ""))
    console().print(table)
    for s in run.steps:
        if s.get("tail") and s["status"] != "succeeded":
            console().print(Panel(Text("\n".join(s["tail"]), style="dim"),
                                  title=f"last lines of {s['name']!r}", expand=False))


def steps_table(steps: list[dict[str, Any]]) -> None:
    """The plan of a validated pipeline: each step and what it runs."""
    table = Table("#", "step", "kind", "runs", "timeout")
    for i, s in enumerate(steps, 1):
        table.add_row(str(i), s["name"], s["kind"], escape(s["runs"]),
                      "-" if s["timeout"] is None else f"{s['timeout']:g} s")
    console().print(table)


def _status(status: str) -> str:
    color = {"succeeded": "green", "failed": "red", "timed_out": "red", "cancelled": "yellow",
             "running": "cyan"}.get(status, "dim")
    return f"[{color}]{status}[/]"


def _duration(run: PipelineRun) -> str:
    if run.finished_at is None:
        return "-"
    return f"{(run.finished_at - run.started_at).total_seconds():.1f} s"


__all__ = ["LiveReporter", "StreamReporter", "failure_report", "runs_table", "show_run",
           "steps_table"]
