"""``modelport monitor ...`` and ``modelport feedback``: the prediction log and labels."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from modelport.cli.output import console, info, print_json
from modelport.cli.state import state
from modelport.errors import InvalidInputError

app = typer.Typer(no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
RootOpt = Annotated[Path | None, typer.Option(
    "--root", envvar="MODELPORT_MONITORING",
    help="Monitoring store (default: monitoring_root in config.toml, else HOME/monitoring).")]


def _root(ctx: typer.Context, root: Path | None) -> Path:
    from modelport.monitoring.layout import default_root

    return root if root is not None else default_root(state(ctx).settings())


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"invalid --now {text!r}: use ISO 8601, e.g. "
                                "2026-12-01T12:00:00Z") from None


def feedback(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="The endpoint (served model name) labelled.")],
    file: Annotated[Path, typer.Argument(help="CSV, Parquet, JSON or JSON-lines file with "
                                              "id and label columns (row optional).")],
    root: RootOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record delayed labels (ground truth) for logged predictions, by request id."""
    from modelport.monitoring.labels import read_label_file, record_labels
    from modelport.uri import validate_name

    validate_name(model, "endpoint name")
    labels = read_label_file(file)  # every row is checked before anything is written
    stored = record_labels(_root(ctx, root), model, labels)
    if as_json:
        print_json({"endpoint": model, "recorded": stored})
    else:
        info(f"recorded {stored:,} labels for {model}")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


@app.command()
def metrics(
    ctx: typer.Context,
    endpoint: Annotated[str, typer.Argument(help="The endpoint (served model name).")],
    window: Annotated[str, typer.Option("--window", help="Predictions of the last "
                                        "WINDOW: 30m, 1h, 7d ...")] = "1h",
    now: Annotated[str | None, typer.Option("--now", help="End of the window (ISO 8601; "
                                            "default: now).")] = None,
    root: RootOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Realized metrics per version: logged predictions scored against their labels."""
    from modelport.monitoring.realized import parse_window, realized_metrics

    result = realized_metrics(_root(ctx, root), endpoint, parse_window(window), _when(now))
    if as_json:
        print_json(result.to_dict())
        return
    out = console()
    out.print(f"[bold]{escape(endpoint)}[/] predictions {result.since:%Y-%m-%d %H:%M:%S} → "
              f"{result.until:%Y-%m-%d %H:%M:%S} UTC: {result.labels:,} labels received, "
              f"{result.unknown:,} for unknown ids, {result.duplicates:,} duplicates")
    if not result.versions:
        info("no predictions logged in this window")
        return
    # Versions as columns, metrics as rows: stays readable on a narrow terminal.
    table = Table("", *(f"version {v.version}" for v in result.versions))
    facts = [("variants", lambda v: ", ".join(v.variants)), ("task", lambda v: v.task or "-"),
             ("predictions", lambda v: f"{v.predictions:,}"),
             ("labelled", lambda v: f"{v.labelled:,}"),
             ("duplicates", lambda v: f"{v.duplicates:,}"),
             ("invalid", lambda v: f"{v.invalid:,}")]
    for name, show in facts:
        table.add_row(name, *(show(v) for v in result.versions))
    for metric in dict.fromkeys(m for v in result.versions for m in v.metrics):
        table.add_row(metric, *(_number(v.metrics.get(metric)) for v in result.versions))
    out.print(table)
    for v in result.versions:
        for note in v.notes:
            info(f"version {v.version}: {escape(note)}")
    if result.unknown_examples:
        info("unknown ids, e.g.: " + ", ".join(map(escape, result.unknown_examples)))
    for path in result.skipped_files:
        info(f"[yellow]skipped unreadable file[/] {escape(path)}")


@app.command()
def cleanup(
    ctx: typer.Context,
    days: Annotated[int, typer.Option("--days", help="Keep this many whole days before "
                                      "today (UTC); older day partitions are removed.")],
    root: RootOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove logged predictions and labels older than the retention."""
    from modelport.monitoring.layout import cleanup as run_cleanup

    removed = run_cleanup(_root(ctx, root), days)
    if as_json:
        print_json({"removed": [str(p) for p in removed]})
    else:
        info(f"removed {len(removed)} partitions or leftover files")
