"""How the CLI prints: rich tables for people, ``--json`` for scripts, one-line errors."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape

_out = Console(soft_wrap=True)
_err = Console(stderr=True, soft_wrap=True)


def console() -> Console:
    """The console for normal output."""
    return _out


def err_console() -> Console:
    """The console for progress and messages (stderr, so stdout stays clean for data)."""
    return _err


def print_json(payload: Any) -> None:
    """Write ``payload`` as indented JSON on stdout (no rich markup, no wrapping)."""
    sys.stdout.write(
        orjson.dumps(payload, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
                     | orjson.OPT_NON_STR_KEYS).decode()
        + "\n"
    )
    sys.stdout.flush()


def error(message: str) -> None:
    """One clear line on stderr (the message is shown verbatim, never read as markup)."""
    _err.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)


def info(message: str) -> None:
    """A progress or success line on stderr, so stdout stays clean for data."""
    _err.print(message, highlight=False)


def when(value: datetime | None) -> str:
    """A short local-looking timestamp (UTC) for tables."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"
