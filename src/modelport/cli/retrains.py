"""``modelport monitor retrains``: what alerts triggered, skipped, and how runs ended."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Column, Table

from modelport.cli.output import console, info, print_json, when
from modelport.cli.state import state
from modelport.registry.retrains import Retrain

COLOURS = {"running": "yellow", "succeeded": "green", "failed": "red", "skipped": "dim",
           "interrupted": "red"}


def retrains(
    ctx: typer.Context,
    endpoint: Annotated[str | None, typer.Argument(
        help="Only this endpoint (served model name).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000,
                                       help="At most this many, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Retraining triggered by alerts (on_alert): each trigger with its run's outcome,
    and each skip with its reason, newest first (from the audit log)."""
    from modelport.retraining.trigger import retrain_lease

    registry = state(ctx).registry()
    found = registry.retrains.history(endpoint, limit=limit)
    # A trigger without an outcome whose endpoint lease nobody holds lost its server
    # before the end could be recorded.
    statuses = {e.id: e.status if e.status != "running" or registry.records.lease_holder(
        retrain_lease(e.endpoint)) else "interrupted" for e in found}
    if as_json:
        print_json([{**e.to_dict(), "status": statuses[e.id]} for e in found])
        return
    if not found:
        info(f"no retraining triggered{f' for {endpoint}' if endpoint else ''}")
        return
    # The reason says the rest (version, rollout, exit code); the short columns never
    # wrap, so a narrow terminal folds only the reason.
    table = Table("#", "at", *(("endpoint",) if endpoint is None else ()), "rule", "status",
                  "rows", "rollout", Column("reason", overflow="fold", ratio=1))
    for column in table.columns[:-1]:
        column.no_wrap = True
    for e in found:
        table.add_row(str(e.id), when(e.at), *((escape(e.endpoint),) if endpoint is None
                                               else ()), escape(e.rule),
                      f"[{COLOURS[statuses[e.id]]}]{statuses[e.id]}[/]", _rows(e),
                      _rollout(e), escape(e.reason))
    console().print(table)


def _rows(e: Retrain) -> str:
    rows = e.details.get("rows")
    return f"{rows:,}" if isinstance(rows, int) else "-"


def _rollout(e: Retrain) -> str:
    rid = e.details.get("rollout_id")
    if rid is None:
        return "-"
    return f"#{rid} {e.details.get('rollout_status', '')}"
