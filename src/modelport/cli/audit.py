"""``modelport audit ...``: list the audit log, verify its chain, say what served when."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from modelport.cli.output import console, info, print_json, when
from modelport.cli.state import state
from modelport.errors import AuditChainError, InvalidInputError

app = typer.Typer(no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
SHOWN_PROBLEMS = 20


def parse_time(text: str) -> datetime:
    """``now`` or an ISO 8601 time; one without a zone is local time."""
    if text.strip().lower() == "now":
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInputError(
            f"invalid time {text!r}: use ISO 8601 (2026-12-01T14:03, 2026-12-01 14:03+01:00, "
            "2026-12-01T13:03Z) or 'now'; a time without a zone is local time") from None
    return parsed.astimezone() if parsed.tzinfo is None else parsed


def _short(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str) and value.startswith("sha256:"):
        return value[:19] + "…"
    if isinstance(value, dict) and {"id", "status"} <= set(value):  # a rollout
        return f"#{value['id']} {value['status']} step {value.get('step_index', 0) + 1}"
    if isinstance(value, dict | list):
        return "{…}" if isinstance(value, dict) else "[…]"
    return str(value)


def _version_only(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"version"}


def change(before: Any, after: Any, width: int = 60) -> str:
    """What a record changed, in a few words: ``stable 1→2, weight 0→25``."""
    if before is None and after is None:
        return ""
    if _version_only(before) or _version_only(after):  # an alias move
        return f"{_short((before or {}).get('version'))} → " \
               f"{_short((after or {}).get('version', 'removed'))}"
    if before is None or after is None:
        shown = after if after is not None else before
        pairs = [f"{k}={_short(v)}" for k, v in shown.items()
                 if k not in ("kind", "generation") and v not in (None, "", {}, [])] \
            if isinstance(shown, dict) else [_short(shown)]
        text = ("new: " if after is not None else "removed: ") + ", ".join(pairs)
        return text if len(text) <= width else text[:width - 1] + "…"
    if isinstance(before, dict) and isinstance(after, dict):
        keys = [k for k in after if k not in ("generation", "kind") and
                before.get(k) != after[k]]
        return ", ".join(f"{k} {_short(before.get(k))}→{_short(after[k])}" for k in keys)
    return f"{_short(before)} → {_short(after)}"


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option("--model", help="Only records about this "
                                              "model (its versions, aliases, deployments).")
                     ] = None,
    action: Annotated[str | None, typer.Option("--action", help="Only this action "
                                               "(alias.set) or family (rollout).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="The newest N records.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The newest audit records, oldest first: who changed what, when, and why."""
    found = state(ctx).control().audit_list(model=model, action=action, limit=limit)
    if as_json:
        print_json([r.to_dict() for r in found])
        return
    if not found:
        info("no audit records" + (f" for model {model}" if model else ""))
        return
    table = Table("seq", "at (UTC)", "actor", "action", "target", "change", "reason")
    for r in found:
        table.add_row(str(r.seq), when(r.at.astimezone(UTC)), escape(r.actor), r.action,
                      escape(r.target), escape(change(r.before, r.after)), escape(r.reason))
    console().print(table)


@app.command()
def verify(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Check the audit log's hash chain: exit 0 if intact, 12 naming the first record
    that was edited, deleted or reordered."""
    result = state(ctx).control().audit_verify()
    if as_json:
        print_json(result.to_dict())
    elif result.ok:
        console().print(f"audit log intact: {result.records:,} records, head hash "
                        f"{result.head_hash}")
    else:
        for p in result.problems[:SHOWN_PROBLEMS]:
            info(f"[red]broken[/] {escape(p.message)}")
        if len(result.problems) > SHOWN_PROBLEMS:
            info(f"… and {len(result.problems) - SHOWN_PROBLEMS} more")
    if result.problem is not None:
        raise AuditChainError(f"the audit log's chain is broken: {result.problem.message}")


@app.command()
def at(
    ctx: typer.Context,
    endpoint: Annotated[str, typer.Argument(help="The endpoint (deployment or served "
                                            "model name), e.g. iris.")],
    time: Annotated[str, typer.Argument(
        metavar="TIME",
        help="ISO 8601, e.g. 2026-12-01T14:03 or 2026-12-01T13:03Z, or 'now'. A time "
             "without a zone is local time.")],
    alias: Annotated[str, typer.Option("--alias", help="For an endpoint served by alias "
                                       "without a deployment: the alias it follows.")
                     ] = "champion",
    as_json: JsonOpt = False,
) -> None:
    """Which version(s) served ENDPOINT at TIME, from the audit log: stable, and the
    candidate with its traffic share if a rollout was running."""
    moment = parse_time(time)
    served = state(ctx).control().audit_at(endpoint, moment, alias=alias)
    if as_json:
        print_json(served.to_dict())
        return
    console().print(escape(served.sentence()), highlight=False)
    if moment.utcoffset():
        info(f"({time} is {moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC)")
