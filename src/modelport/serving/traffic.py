"""Per-version traffic counters of one server process, reported to the registry.

Every routed request adds to its version's ``VersionStats`` (the registry's counter
layout, which controllers judge rollouts by). The request path only adds integers
and keeps a reference to the first output tensor; turning outputs into the histogram
and writing to the registry happen off the request path, in a background task that
reports each endpoint's changed counters every ``interval`` seconds from a thread.
Each process reports under its own ``server_id``; the controller sums the fleet.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from modelport.registry.traffic import VersionStats

log = logging.getLogger("modelport.serving")
Report = Callable[[str, str, Mapping[int, dict[str, Any]]], None]
MAX_PENDING = 2048  # output arrays kept before folding them into the histogram at once


def new_server_id() -> str:
    """hostname:pid:random, unique per process (also across restarts and workers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class VersionCounter:
    """One version's counters on this process."""

    __slots__ = ("_pending", "dropped", "owner", "stats")

    def __init__(self, owner: EndpointTraffic) -> None:
        self.owner = owner
        self.stats = VersionStats()
        self.dropped = 0  # shadow copies not sent because the candidate's queue was full
        self._pending: list[np.ndarray[Any, Any]] = []

    def record(self, seconds: float, ok: bool, output: np.ndarray[Any, Any] | None = None
               ) -> None:
        """One routed request, answered (``ok``) or failed; ``output``: its first
        output tensor, histogrammed later."""
        self.stats.record(seconds, ok)
        if output is not None:
            self._pending.append(output)
            if len(self._pending) >= MAX_PENDING:
                self.fold()
        self.owner.changes += 1

    def record_shadow(self, compared: int, agreed: int) -> None:
        """Rows of a shadow copy compared with stable's answer, and how many agreed."""
        self.stats.record_shadow(compared, agreed)
        self.owner.changes += 1

    def drop(self) -> None:
        """A shadow copy dropped (the candidate's queue was full)."""
        self.dropped += 1
        self.owner.changes += 1

    def set_state(self, state: str, error: str = "") -> None:
        """loading | ready | failed (with why) | unloaded (retired by this server)."""
        self.stats.state, self.stats.error = state, error
        self.owner.changes += 1

    def fold(self) -> None:
        """Move pending outputs into the histogram, one numpy pass per dtype and shape."""
        pending, self._pending = self._pending, []
        groups: dict[tuple[str, tuple[int, ...]], list[np.ndarray[Any, Any]]] = {}
        for arr in pending:
            groups.setdefault((arr.dtype.str, arr.shape[1:]), []).append(arr)
        for arrays in groups.values():
            try:
                self.stats.record_outputs(np.concatenate(arrays))
            except (TypeError, ValueError):  # odd outputs (0-d, ragged): count them alone
                for arr in arrays:
                    if arr.ndim:
                        self.stats.record_outputs(arr)

    def to_dict(self) -> dict[str, Any]:
        """The stored form: the registry's layout plus ``shadow_dropped``; a copy, so
        the request path can go on counting while a thread stores it."""
        self.fold()
        data = self.stats.to_dict()
        data["latency"], data["outputs"] = list(data["latency"]), dict(data["outputs"])
        data["shadow_dropped"] = self.dropped
        return data


class EndpointTraffic:
    """The counters of every version of one endpoint."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.versions: dict[int, VersionCounter] = {}
        self.changes = 0
        self.flushed = 0

    def version(self, version: int) -> VersionCounter:
        """The counter of ``version`` (created on first use)."""
        found = self.versions.get(version)
        if found is None:
            found = self.versions[version] = VersionCounter(self)
        return found

    def snapshot(self) -> dict[int, dict[str, Any]]:
        """Every version's counters, ready to store."""
        return {v: c.to_dict() for v, c in self.versions.items()}


class TrafficCounters:
    """All endpoints' counters on this process, and the task that reports them."""

    def __init__(self, report: Report | None, *, server_id: str | None = None,
                 interval: float = 0.25) -> None:
        self.report = report
        self.server_id = server_id or new_server_id()
        self.interval = interval
        self.endpoints: dict[str, EndpointTraffic] = {}
        self._failing_since: float | None = None
        self._last_warning = 0.0

    def endpoint(self, name: str) -> EndpointTraffic:
        """The counters of endpoint ``name`` (created on first use)."""
        found = self.endpoints.get(name)
        if found is None:
            found = self.endpoints[name] = EndpointTraffic(name)
        return found

    async def run(self) -> None:
        """Report changed counters every ``interval`` seconds, until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()

    async def flush(self) -> None:
        """Report every endpoint whose counters changed since its last report."""
        if self.report is None:
            return
        for ep in list(self.endpoints.values()):
            mark = ep.changes
            if mark == ep.flushed:
                continue
            snapshot = ep.snapshot()  # on the loop: consistent with the request path
            try:
                await asyncio.to_thread(self.report, self.server_id, ep.name, snapshot)
            except Exception as exc:  # the registry is down: keep counting, retry later
                self._warn(exc)
                return
            ep.flushed = mark
            if self._failing_since is not None:
                log.info("traffic counters reported again after %.1fs",
                         time.monotonic() - self._failing_since)
                self._failing_since = None

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        if now - self._last_warning >= 30.0:
            self._last_warning = now
            log.warning("cannot report traffic counters to the registry (%s); retrying", exc)


__all__ = ["EndpointTraffic", "TrafficCounters", "VersionCounter", "new_server_id"]
