"""``modelport datasets ...``: register, list, show, diff and verify dataset versions."""

from __future__ import annotations

import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from modelport.cli.output import console, err_console, info, print_json, when
from modelport.cli.state import state
from modelport.datasets.diff import ColumnChange, DatasetDiff, schema_changes
from modelport.registry.entities import DatasetVersion

app = typer.Typer(no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
PSI_WARN = 0.2  # the usual "significant shift" line for the population stability index


def _changes_text(changes: list[ColumnChange]) -> list[str]:
    return [str(c) for c in changes]


@app.command()
def register(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    file: Annotated[Path, typer.Argument(help="A CSV or Parquet file.")],
    description: Annotated[str, typer.Option("--description", help="What this data is.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Register FILE as the next version of dataset NAME (identical content: the version
    that holds it). A schema unlike the previous version's is registered, with a warning
    and the changes."""
    reg = state(ctx).registry()
    status = err_console().status("registering", spinner="dots")
    with status, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the schema change is printed below
        result = reg.datasets.register(name, file, description=description,
                                       progress=lambda msg: status.update(escape(msg)))
    v = result.version
    changes = (schema_changes(result.previous.schema, v.schema)
               if result.created and result.previous is not None else [])
    if as_json:
        print_json({"dataset": v.to_dict(), "created": result.created,
                    "previous": result.previous.uri if result.previous else None,
                    "schema_changes": [asdict(c) for c in changes]})
    else:
        _print_summary(v)
        info(f"registered {v.uri}" if result.created
             else f"unchanged: the same content is {v.uri}")
    if changes:
        assert result.previous is not None
        err_console().print(f"[bold yellow]warning:[/] {escape(v.uri)} changes the schema of "
                            f"{escape(result.previous.uri)}:", highlight=False)
        for line in _changes_text(changes):
            err_console().print(f"  {escape(line)}", highlight=False)


def _print_summary(v: DatasetVersion) -> None:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in (
        ("dataset", f"{v.name}/{v.version}"), ("digest", v.artifact_digest),
        ("rows", f"{v.rows:,}"),
        ("columns", f"{len(v.schema)}: " + ", ".join(f"{c['name']}:{c['dtype']}"
                                                    for c in v.schema)),
    ):
        table.add_row(key, escape(value))
    console().print(table)


@app.command("list")
def list_(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="List this dataset's versions.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List datasets, or the versions of one dataset."""
    reg = state(ctx).registry()
    if name is None:
        datasets = reg.datasets.list()
        if as_json:
            print_json([d.to_dict() for d in datasets])
            return
        table = Table("name", "latest", "versions", "updated (UTC)")
        for d in datasets:
            table.add_row(escape(d.name), str(d.latest_version or "-"), str(d.version_count),
                          when(d.updated_at))
        console().print(table)
        return
    versions = reg.datasets.versions(name)
    if as_json:
        print_json([v.to_dict() for v in versions])
        return
    table = Table("version", "rows", "columns", "format", "source", "fingerprint",
                  "created (UTC)", "by", "description")
    for v in versions:
        table.add_row(str(v.version), f"{v.rows:,}", str(len(v.schema)), v.format,
                      escape(v.source), v.fingerprint[7:19], when(v.created_at),
                      escape(v.created_by), escape(v.description))
    console().print(table)


@app.command()
def show(
    ctx: typer.Context,
    uri: Annotated[str, typer.Argument(help="NAME (newest), NAME/VERSION or datasets:/...")],
    as_json: JsonOpt = False,
) -> None:
    """Show a dataset version: digests, rows, schema and its profile per column."""
    v = state(ctx).registry().datasets.get(uri)
    if as_json:
        print_json(v.to_dict())
        return
    table = Table(show_header=False, box=None)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in (
        ("uri", v.uri), ("digest", v.artifact_digest), ("data digest", v.data_digest),
        ("fingerprint", v.fingerprint), ("format", v.format), ("source", v.source),
        ("rows", f"{v.rows:,}"), ("columns", str(len(v.schema))),
        ("created", f"{when(v.created_at)} UTC by {v.created_by}"),
        ("description", v.description or "-"),
    ):
        table.add_row(key, escape(value))
    console().print(table)
    console().print(_profile_table(v))


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def _profile_table(v: DatasetVersion) -> Table:
    features = {f["name"]: f for f in v.profile.get("features", [])}
    table = Table("column", "dtype", "kind", "missing", "mean", "std", "min", "max",
                  "top values")
    for col in v.schema:
        f = features.get(col["name"], {})
        stats = f.get("stats") or {}
        count = f.get("count") or 0
        missing = f"{100 * f.get('missing', 0) / count:.1f}%" if count else "-"
        top = ", ".join(str(c) for c in (f.get("categories") or [])[:3])
        table.add_row(escape(col["name"]), col["dtype"], f.get("kind", "-"), missing,
                      _num(stats.get("mean")), _num(stats.get("std")), _num(stats.get("min")),
                      _num(stats.get("max")), escape(top) or "-")
    return table


@app.command()
def diff(
    ctx: typer.Context,
    old: Annotated[str, typer.Argument(help="The earlier version: NAME/1 or datasets:/...")],
    new: Annotated[str, typer.Argument(help="The later version: NAME/2 or datasets:/...")],
    as_json: JsonOpt = False,
) -> None:
    """Schema changes (columns added, removed, retyped, reordered) and per-column profile
    changes (missing share, mean, std, PSI) from OLD to NEW."""
    result = state(ctx).registry().datasets.diff(old, new)
    if as_json:
        print_json(result.to_dict())
        return
    _print_diff(result)


def _print_diff(d: DatasetDiff) -> None:
    out = console()
    out.print(f"[bold]{escape(d.old)}[/] → [bold]{escape(d.new)}[/]: rows {d.old_rows:,} → "
              f"{d.new_rows:,}" + (" (same content)" if d.same_content else ""))
    if d.schema:
        out.print("schema changes:")
        for line in _changes_text(list(d.schema)):
            out.print(f"  {escape(line)}", highlight=False)
    else:
        out.print("schema unchanged")
    table = Table("column", "kind", "missing", "mean", "std", "PSI")
    for f in d.features:
        kind = f.new_kind if f.old_kind == f.new_kind else f"{f.old_kind} → {f.new_kind}"
        psi = _num(f.psi)
        if f.psi is not None and f.psi >= PSI_WARN:
            psi = f"[bold red]{psi}[/]"
        table.add_row(escape(f.feature), kind,
                      f"{100 * f.old_missing:.1f}% → {100 * f.new_missing:.1f}%",
                      f"{_num(f.old_mean)} → {_num(f.new_mean)}",
                      f"{_num(f.old_std)} → {_num(f.new_std)}", psi)
    out.print(table)


@app.command()
def verify(
    ctx: typer.Context,
    uri: Annotated[str, typer.Argument(help="NAME/VERSION or datasets:/...")],
) -> None:
    """Re-hash every file of a dataset version against its digest (exit 5 if altered)."""
    reg = state(ctx).registry()
    v = reg.datasets.get(uri)
    size = reg.datasets.verify(v)
    info(f"[green]ok[/]: {escape(v.uri)}, {size:,} bytes match {v.artifact_digest}")
