"""``modelport gate``: judge a candidate on evaluation data; exit 10 when it fails."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from modelport.cli.output import console, info, print_json
from modelport.cli.state import state
from modelport.errors import GateFailedError, InvalidInputError


class TaskChoice(StrEnum):
    """``--task`` values."""

    classification = "classification"
    regression = "regression"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _print_report(report: object) -> None:
    from modelport.gates import GateReport

    assert isinstance(report, GateReport)
    out = console()
    out.print(f"[bold]{report.candidate}[/] vs {report.champion or 'no champion'} on "
              f"{report.rows:,} rows of {escape(report.source)} (target "
              f"{escape(report.target)!r}, {report.task}"
              + (f", {report.averaging}" if report.averaging else "") + ")")
    champion = report.metrics.get("champion")
    table = Table("metric", "candidate", *(("champion", "Δ") if champion is not None else ()))
    for metric, value in report.metrics["candidate"].items():
        row = [metric, _number(value)]
        if champion is not None:
            other = champion.get(metric)
            delta = None if value is None or other is None else value - other
            row += [_number(other), "-" if delta is None else f"{delta:+.4g}"]
        table.add_row(*row)
    out.print(table)
    checks = Table("check", "result", "observed", "expected")
    details = []
    for c in report.checks:
        result = ("[yellow]skipped[/]" if c.skipped else "[green]pass[/]" if c.passed
                  else "[bold red]FAIL[/]")
        observed = _number(c.observed) if isinstance(c.observed, float) else str(
            "-" if c.observed is None else c.observed)
        checks.add_row(escape(c.name), result, escape(observed), escape(c.expected))
        # A rule's message only restates its row; other checks' messages say what was done.
        if c.message and (c.kind != "rule" or c.skipped or c.observed is None):
            details.append(f"{c.name}: {c.message}")
    out.print(checks)
    for line in details:
        out.print(f"  {escape(line)}")
    for note in report.notes:
        out.print(f"[dim]note: {escape(note)}[/]")


def gate(
    ctx: typer.Context,
    candidate_uri: Annotated[str, typer.Argument(
        metavar="CANDIDATE_URI", help="The version to judge: NAME/VERSION, models:/..., ...")],
    data: Annotated[Path, typer.Option("--data", help="Evaluation rows: CSV or Parquet.")],
    target: Annotated[str, typer.Option("--target", help="The column holding the truth.")],
    against: Annotated[str, typer.Option(
        "--against", help="Champion: an alias, a version number or a URI of the same "
        "model. A missing alias means no champion.")] = "champion",
    rule: Annotated[list[str] | None, typer.Option(
        "--rule", help="e.g. 'accuracy >= 0.9', 'f1 >= champion - 0.01' (repeatable). "
        "Default: the primary metric no worse than the champion's.")] = None,
    max_latency_ms: Annotated[float | None, typer.Option(
        "--max-latency-ms", help="Budget for the p99 of single-row predict, in ms.")] = None,
    task: Annotated[TaskChoice | None, typer.Option(
        "--task", help="Override the task detected from the target.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    junit: Annotated[Path | None, typer.Option(
        "--junit", help="Also write the report as JUnit XML to this file.")] = None,
    same_training_schema: Annotated[bool, typer.Option(
        "--same-training-schema", help="Fail when the candidate's training dataset has "
        "another schema than the champion's.")] = False,
) -> None:
    """Recompute metrics of CANDIDATE_URI and its champion on the same rows and apply the
    rules, a latency budget and a signature check; exit 0 on pass, 10 on fail."""
    from modelport.gates import run_gate
    from modelport.gates.junit import write_junit

    if junit is not None and not junit.parent.is_dir():
        raise InvalidInputError(f"folder for --junit not found: {junit.parent}")
    if not data.is_file():
        raise InvalidInputError(f"evaluation data not found: {data}")
    reg = state(ctx).registry()
    status = Console(stderr=True).status("gating", spinner="dots")
    with status:
        report = run_gate(reg, candidate_uri, data, target, against=against,
                          rules=tuple(rule or ()), max_latency_ms=max_latency_ms,
                          task=task.value if task else None,
                          progress=lambda msg: status.update(escape(msg)),
                          same_training_schema=same_training_schema)
    if junit is not None:
        write_junit(report, junit)
    if as_json:
        print_json(report.to_dict())
    else:
        _print_report(report)
    if not report.passed:
        raise GateFailedError(report.summary(), gate_id=report.gate_id)
    info(f"[green]{escape(report.summary())}[/]")
