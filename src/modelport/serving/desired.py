"""The desired state of served endpoints, as the registry's deployments say it.

``DeploymentWatcher`` polls every endpoint's deployment in one query and tells which
changed (by ``generation``); while the registry is unreachable it keeps the last known
state and says so in the log. ``plan_route`` turns a desired state and the versions
loaded now into the routing table requests see.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from modelport.client import Registry
from modelport.errors import ConfigurationError
from modelport.registry.entities import Deployment as DesiredState
from modelport.serving.router import Route

if TYPE_CHECKING:
    from modelport.serving.deployment import Deployment

log = logging.getLogger("modelport.serving")
WARN_EVERY = 30.0  # seconds between repeated warnings while the registry is down


class Governed(Protocol):
    """What the watcher needs of an endpoint."""

    desired: DesiredState | None

    @property
    def model_name(self) -> str: ...


class DeploymentWatcher:
    """Polls the deployments named like the served endpoints."""

    def __init__(self, registry: Registry, interval: float = 0.2) -> None:
        self.registry = registry
        self.interval = interval
        self.enabled = True
        self._failing_since: float | None = None
        self._last_warning = 0.0
        self._mismatch_warned: set[str] = set()

    async def poll(self, models: Mapping[str, Governed]) -> list[str]:
        """Read every endpoint's deployment; set ``desired`` and return the names whose
        desired state changed. On a registry error, change nothing."""
        if not self.enabled or not models:
            return []
        try:
            store = self.registry.deployments
        except ConfigurationError as exc:  # not an SQL registry: nothing to follow
            log.info("not following deployments: %s", exc)
            self.enabled = False
            return []
        try:
            rows = await asyncio.to_thread(store.many, list(models))
        except Exception as exc:
            self._warn(exc)
            return []
        if self._failing_since is not None:
            log.warning("registry reachable again after %.1fs; following deployments",
                        time.monotonic() - self._failing_since)
            self._failing_since = None
        changed = []
        for name, served in models.items():
            row = self._usable(name, served, rows.get(name))
            old = served.desired
            if (old is None) != (row is None) or (
                    old is not None and row is not None and old.generation != row.generation):
                served.desired = row
                changed.append(name)
        return changed

    def _usable(self, name: str, served: Governed, row: DesiredState | None
                ) -> DesiredState | None:
        if row is None or row.model_name == served.model_name:
            return row
        if name not in self._mismatch_warned:  # a misconfiguration: say it once
            self._mismatch_warned.add(name)
            log.error("deployment %r is for model %r but endpoint %r serves model %r; "
                      "ignoring the deployment", name, row.model_name, name, served.model_name)
        return None

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        if now - self._last_warning >= WARN_EVERY:
            self._last_warning = now
            log.warning("cannot read deployments from the registry (%s); serving the last "
                        "known state and retrying every %gs", exc, self.interval)


def plan_route(current: Route, loaded: Mapping[int, Deployment], desired: DesiredState | None,
               stable: int | None, candidate: int | None, endpoint: str) -> Route:
    """The route for the targets given what is loaded: a stable not loaded yet keeps
    the one serving now; a candidate takes part only once loaded (and so warmed)."""
    stable_dep = loaded.get(stable) if stable is not None else None
    if stable_dep is None:
        stable_dep = current.stable
    cand_dep = loaded.get(candidate) if candidate is not None else None
    if cand_dep is None or cand_dep is stable_dep or desired is None or desired.mode is None:
        return Route(stable_dep)
    sticky = desired.sticky.lower().encode("latin-1") if desired.sticky else None
    return Route(stable_dep, cand_dep, desired.mode, desired.weight, sticky,
                 f"{endpoint}/{candidate}".encode())


__all__ = ["DeploymentWatcher", "Governed", "plan_route"]
