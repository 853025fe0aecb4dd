"""``modelport tokens ...``: create (shown once), list, revoke the server's API tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from modelport.access import ALL_MODELS, Role
from modelport.cli.output import console, info, print_json, when
from modelport.cli.state import state
from modelport.errors import InvalidInputError

app = typer.Typer(no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def parse_expiry(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``3600s`` (or plain seconds) as a timedelta."""
    from modelport.monitoring.realized import parse_window

    try:
        return parse_window(text)
    except (InvalidInputError, OverflowError):
        raise InvalidInputError(f"invalid --expires {text!r}: use a positive number with "
                                "s, m, h or d, e.g. 30d or 12h") from None


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the token, e.g. ci-deploy.")],
    role: Annotated[Role, typer.Option("--role", case_sensitive=False,
                                       help="reader, predictor, deployer or admin.")],
    models: Annotated[str, typer.Option(
        "--models", help="The models it covers: a glob over model names (iris*).")
    ] = ALL_MODELS,
    expires: Annotated[str | None, typer.Option(
        "--expires", help="Lifetime, e.g. 30d, 12h (default: until revoked).")] = None,
    rate: Annotated[float | None, typer.Option(
        "--rate", help="Requests per second it may make, per server process.")] = None,
    burst: Annotated[int | None, typer.Option(
        "--burst", help="Requests it may make at once above --rate (default: one "
                        "second's worth).")] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")
                      ] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create a token and print it, once: only its hash is stored."""
    st = state(ctx)
    issued = st.registry().tokens.create(
        name, role, actor=st.settings().user, models=models,
        expires_in=parse_expiry(expires) if expires is not None else None,
        rate=rate, burst=burst, reason=reason)
    if as_json:
        print_json({**issued.token.to_dict(), "token": issued.value})
    else:
        typer.echo(issued.value)  # stdout alone, so TOKEN=$(modelport tokens create ...) works
    t = issued.token
    scope = "every model" if t.models == ALL_MODELS else f"models matching {t.models!r}"
    expiry = f", expires {when(t.expires_at)} UTC" if t.expires_at else ""
    info(f"created token {escape(t.name)!r} ({t.role.value}, {escape(scope)}{expiry}). "
         "[bold]Store it now[/]: it is shown only this once and cannot be recovered.")


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Tokens with their role, models, limits and state (never a secret or a hash)."""
    found = state(ctx).registry().tokens.list(include_revoked=all_)
    if as_json:
        print_json([t.to_dict() for t in found])
        return
    if not found:
        info("no tokens: create one with modelport tokens create NAME --role ROLE")
        return
    table = Table("name", "role", "models", "prefix", "status", "rate/burst",
                  "created (UTC)", "by", "expires (UTC)", "last used (UTC)")
    for t in found:
        limits = f"{t.rate:g}/s, {t.burst}" if t.rate is not None else "server default"
        table.add_row(escape(t.name), t.role.value, escape(t.models), t.prefix, t.status(),
                      limits, when(t.created_at), escape(t.created_by), when(t.expires_at),
                      when(t.last_used_at))
    console().print(table)


@app.command()
def revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The token to revoke.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")
                      ] = "",
) -> None:
    """Revoke a token: servers refuse it within their cache time (5 s by default)."""
    st = state(ctx)
    token = st.registry().tokens.revoke(name, actor=st.settings().user, reason=reason)
    info(f"revoked token {escape(token.name)!r} ({token.prefix}); running servers refuse "
         "it within their token cache time (auth.cache_seconds, 5 s by default)")
