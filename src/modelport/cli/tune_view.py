"""How ``modelport tune`` looks: a progress bar (trial n/N, best so far) on a terminal,
a line per trial in CI logs, and the tables of ``tune report``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from modelport.cli.output import console, err_console

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from modelport.tuning.report import StudyReport

MARKS = {"complete": "[green]✓[/]", "pruned": "[yellow]✂[/]", "fail": "[red]✗[/]",
         "interrupted": "[red]■[/]", "running": "[cyan]…[/]"}


def shown_params(params: dict[str, Any], width: int = 70) -> str:
    """``C=0.52 penalty=l2`` (floats to 4 significant digits), cut to ``width``."""
    text = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in params.items())
    return text if len(text) <= width else text[:width - 1] + "…"


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _finished_line(trial: FrozenTrial, metric: str) -> str:
    from modelport.tuning import storage as st

    state = "interrupted" if st.interrupted(trial) else trial.state.name.lower()
    mark = MARKS.get(state, "")
    if state == "complete":
        what = f"{escape(metric)}={_value(trial.value)}"
    else:
        what = escape(str(trial.user_attrs.get(st.ERROR, state))[:120])
    params = escape(shown_params(trial.params))
    return f"{mark} trial {trial.number} {state}  {what}  [dim]{params}[/]"


def _best_text(best: FrozenTrial | None) -> str:
    return "best -" if best is None else f"best {_value(best.value)} (trial {best.number})"


class LiveTuneReporter:
    """A progress bar: trials counted in the study of its budget, best value so far."""

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[best]}"), TimeElapsedColumn(), console=err_console())
        self.task: TaskID | None = None
        self.name = ""

    def __enter__(self) -> LiveTuneReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def study_opened(self, study: str, done: int, target: int, interrupted: list[int]) -> None:
        """Start the bar where the study is."""
        self.name = escape(study)
        if done:
            self.progress.console.print(f"resuming study [bold]{self.name}[/]: {done} of "
                                        f"{target} trials done", highlight=False)
        if interrupted:
            self.progress.console.print(f"marked interrupted trials {interrupted} as failed "
                                        "(their process had ended)", highlight=False)
        self.task = self.progress.add_task(f"study [bold]{self.name}[/]", total=target,
                                           completed=min(done, target), best="best -")

    def trial_started(self, number: int, params: dict[str, Any]) -> None:
        """Show the running trial's parameters."""
        if self.task is not None:
            shown = escape(shown_params(params, 40))
            self.progress.update(self.task, description=f"study [bold]{self.name}[/] · trial "
                                                        f"{number} [dim]{shown}[/]")

    def trial_output(self, number: int, stream: str, line: str) -> None:
        """Nothing: a command's output is kept for the failed trial's message."""

    def trial_finished(self, trial: FrozenTrial, done: int, target: int,
                       best: FrozenTrial | None) -> None:
        """A line for the trial above the bar; the bar moves on."""
        self.progress.console.print(_finished_line(trial, self.metric), highlight=False)
        if self.task is not None:
            self.progress.update(self.task, completed=min(done, target), best=_best_text(best),
                                 description=f"study [bold]{self.name}[/]")


class StreamTuneReporter:
    """For logs (CI, pipes): a line per trial, and command output as it comes."""

    def __init__(self, metric: str) -> None:
        self.metric = metric

    def study_opened(self, study: str, done: int, target: int, interrupted: list[int]) -> None:
        """Say where the study starts."""
        err_console().print(f"study [bold]{escape(study)}[/]: {done} of {target} trials done"
                            + (f"; interrupted trials {interrupted} marked failed"
                               if interrupted else ""), highlight=False)

    def trial_started(self, number: int, params: dict[str, Any]) -> None:
        """Print the trial's parameters."""
        err_console().print(f"[bold]▶ trial {number}[/] {escape(shown_params(params, 200))}",
                            highlight=False)

    def trial_output(self, number: int, stream: str, line: str) -> None:
        """Print one line of the command's output."""
        sys.stderr.write(f"  {line}\n")
        sys.stderr.flush()

    def trial_finished(self, trial: FrozenTrial, done: int, target: int,
                       best: FrozenTrial | None) -> None:
        """Print how the trial ended and where the study is."""
        err_console().print(f"{_finished_line(trial, self.metric)}  [dim]{done}/{target}, "
                            f"{_best_text(best)}[/]", highlight=False)


def trials_table(report: StudyReport) -> None:
    """The trials of a study, one row each."""
    table = Table(title=f"study {escape(report.study)} ({report.direction} "
                        f"{escape(report.metric or 'value')})", title_justify="left")
    for col in ("trial", "state", "value", "params", "duration", "note"):
        table.add_column(col, justify="right" if col in ("trial", "value", "duration")
                         else "left", overflow="fold")
    for t in report.trials:
        table.add_row(str(t.number), f"{MARKS.get(t.state, '')} {t.state}", _value(t.value),
                      escape(shown_params(t.params, 60)),
                      "-" if t.seconds is None else f"{t.seconds:.1f} s", escape(t.note[:80]))
    console().print(table)


def summary(report: StudyReport) -> None:
    """The best trial, the registered versions and the parameter importances."""
    out = console()
    counts = ", ".join(f"{n} {state}" for state, n in sorted(report.counts.items()))
    out.print(f"{len(report.trials)} trials: {counts or 'none'}", highlight=False)
    best = report.best
    if best is None:
        out.print("best trial: none complete yet", highlight=False)
    else:
        out.print(f"best trial: [bold]{best.number}[/] {escape(report.metric or 'value')}="
                  f"{_value(best.value)}  {escape(shown_params(best.params, 200))}",
                  highlight=False)
    for uri in report.registered:
        out.print(f"registered: {escape(uri)}", highlight=False)
    if report.importances is None:
        out.print(f"[dim]{escape(report.importance_note)}[/]", highlight=False)
        return
    table = Table(title="parameter importances (fANOVA)", title_justify="left")
    table.add_column("param")
    table.add_column("importance", justify="right")
    table.add_column("")
    for name, value in report.importances.items():
        table.add_row(escape(name), f"{value:.3f}", "█" * round(value * 30))
    out.print(table)


__all__ = ["LiveTuneReporter", "StreamTuneReporter", "shown_params", "summary",
           "trials_table"]
