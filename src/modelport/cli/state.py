"""Per-invocation CLI state: global options and the registry opened from them.

With ``MODELPORT_URL`` set, the commands that have a remote form (``models list|show|
register|alias|history``, ``rollout ...``, ``rollback``, ``audit ...``) get a
``RemoteControl`` from ``control()``; every other command needs a local registry and
refuses to run (``registry()``) rather than silently act on ``MODELPORT_HOME``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from modelport.client import Registry
from modelport.config import Settings
from modelport.errors import InvalidInputError

if TYPE_CHECKING:
    from modelport.control.facade import Control


@dataclass
class State:
    """What the root callback learned; opens the registry lazily, once."""

    home: Path | None = None
    command: str = "modelport"
    _registry: Registry | None = field(default=None, repr=False)
    _control: Control | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        """Resolved settings for this invocation."""
        return Settings.load(self.home)

    def registry(self) -> Registry:
        """The local registry (opened, and migrated if new, on first use); refused
        while ``MODELPORT_URL`` points the CLI at a server."""
        from modelport.control.remote import URL_ENV, remote_url

        url = remote_url()
        if url is not None:
            raise InvalidInputError(
                f"{self.command} works on a local registry only, and {URL_ENV} is set "
                f"({url}): unset {URL_ENV} to run it against MODELPORT_HOME")
        if self._registry is None:
            self._registry = Registry(settings=self.settings())
        return self._registry

    def control(self) -> Control:
        """The registry and rollout operations: on the server at ``MODELPORT_URL`` (as
        ``MODELPORT_TOKEN``) if set, else on the local registry."""
        if self._control is None:
            from modelport.control.remote import RemoteControl, remote_url

            if remote_url() is not None:
                self._control = RemoteControl()
            else:
                from modelport.control.facade import LocalControl

                self._control = LocalControl(self.registry())
        return self._control


def state(ctx: typer.Context) -> State:
    """The State of the running command."""
    obj = ctx.find_root().obj
    assert isinstance(obj, State)
    obj.command = ctx.command_path or obj.command
    return obj
