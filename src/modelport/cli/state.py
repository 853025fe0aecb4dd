"""Per-invocation CLI state: global options and the registry opened from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer

from modelport.client import Registry
from modelport.config import Settings


@dataclass
class State:
    """What the root callback learned; opens the registry lazily, once."""

    home: Path | None = None
    _registry: Registry | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        """Resolved settings for this invocation."""
        return Settings.load(self.home)

    def registry(self) -> Registry:
        """The registry (opened, and migrated if new, on first use)."""
        if self._registry is None:
            self._registry = Registry(settings=self.settings())
        return self._registry


def state(ctx: typer.Context) -> State:
    """The State of the running command."""
    obj = ctx.find_root().obj
    assert isinstance(obj, State)
    return obj
