"""``modelport db ...``: schema migrations of the registry database."""

from __future__ import annotations

from typing import Annotated

import typer

from modelport.cli.output import info, print_json
from modelport.cli.state import state
from modelport.registry import db

app = typer.Typer(no_args_is_help=True)


@app.command()
def upgrade(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Apply pending migrations to the registry database (also done on first use)."""
    settings = state(ctx).settings()
    engine = db.create_engine(settings.database_url)
    try:
        before, after = db.upgrade(engine)
    finally:
        engine.dispose()
    if as_json:
        print_json({"from": before, "to": after, "database": engine.url.render_as_string()})
    elif before == after:
        info(f"database already at {after}")
    else:
        info(f"database upgraded from {before or 'empty'} to {after}")


@app.command()
def current(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Show the database's migration revision and the newest this code knows."""
    settings = state(ctx).settings()
    engine = db.create_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            rev = db.current_revision(conn)
    finally:
        engine.dispose()
    if as_json:
        print_json({"current": rev, "head": db.HEAD_REVISION})
    else:
        info(f"current {rev or 'empty'}, head {db.HEAD_REVISION}")
