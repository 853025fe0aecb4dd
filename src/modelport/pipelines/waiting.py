"""Waiting for a rollout a pipeline started to end: promoted passes, anything else fails.

The pipeline does not drive the rollout; a controller (inside ``modelport serve`` or
``modelport controller``) does. The waiter only reads the rollout's state from the
registry until it is final, the step's time is up, or the run is cancelled (which
leaves the rollout running: abort it with ``modelport rollout abort``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from modelport.registry.entities import Rollout, RolloutStatus

if TYPE_CHECKING:
    from modelport.client import Registry


class RolloutWaiter:
    """Notes the endpoint's newest rollout now; ``wait`` follows the next one to its end."""

    def __init__(self, registry: Registry, endpoint: str, cancel: threading.Event,
                 on_status: Callable[[str], None], poll_seconds: float = 0.5) -> None:
        self.registry = registry
        self.endpoint = endpoint
        self.cancel = cancel
        self.on_status = on_status
        self.poll_seconds = poll_seconds
        self.before = self._newest_id()

    def _newest_id(self) -> int:
        found = self.registry.deployments.rollouts(self.endpoint)
        return found[0].id if found else 0

    def _started(self) -> Rollout | None:
        found = self.registry.deployments.rollouts(self.endpoint)
        return found[0] if found and found[0].id > self.before else None

    def wait(self, timeout: float | None) -> tuple[str, str]:
        """``(step status, message)``: succeeded when the rollout was promoted."""
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        shown = None
        while True:
            rollout = self._started()
            if rollout is None:
                return "failed", (f"`rollout start` succeeded but no new rollout of "
                                  f"{self.endpoint!r} is in the registry")
            if not rollout.status.active:
                return _final(rollout)
            state = (rollout.status, rollout.step_index)
            if state != shown:
                shown = state
                self.on_status(f"rollout {rollout.id} {rollout.status.value}: step "
                               f"{rollout.step_index + 1}/{len(rollout.steps)} at "
                               f"{rollout.weight:g}%")
            if deadline is not None and time.monotonic() >= deadline:
                return "timed_out", (f"rollout {rollout.id} still {rollout.status.value} when "
                                     "the step timed out (it keeps running)")
            if self.cancel.wait(self.poll_seconds):
                return "cancelled", (f"cancelled while waiting; rollout {rollout.id} keeps "
                                     f"running (modelport rollout abort {self.endpoint})")


def _final(rollout: Rollout) -> tuple[str, str]:
    what = f"rollout {rollout.id} of {rollout.model_name}/{rollout.candidate}"
    if rollout.status == RolloutStatus.PROMOTED:
        return "succeeded", f"{what} promoted"
    reason = f": {rollout.reason}" if rollout.reason else ""
    return "failed", f"{what} {rollout.status.value}{reason}"


__all__ = ["RolloutWaiter"]
