"""How a triggered pipeline run ended, in words and numbers for its audit record.

Read from what ``pipeline run --json`` printed (the recorded run: each step's status,
the registered version) and from the registry (the rollout of that version). A failed
run must leave the endpoint as it was: a rollout of the new version still running is
aborted (``with_abort``).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelport.client import Registry
from modelport.errors import ModelportError
from modelport.monitoring.rules import Rule
from modelport.registry.entities import Rollout
from modelport.registry.retrains import ACTOR
from modelport.retraining.job import CANCELLED_EXIT, last_error, read_run
from modelport.uri import parse_uri

log = logging.getLogger("modelport.retraining")
_STOPPED = ("failed", "timed_out", "cancelled")


@dataclass(frozen=True)
class Outcome:
    """Succeeded or not, why, and the facts (run, version, rollout, exit code)."""

    succeeded: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def with_abort(self, registry: Registry, endpoint: str) -> Outcome:
        """The failed outcome after aborting the new version's rollout, if one runs."""
        from modelport.rollout import service

        rollout_id = self.details.get("rollout_id")
        active = registry.deployments.active_rollout(endpoint)
        if rollout_id is None or active is None or active.id != rollout_id:
            return self
        try:
            service.abort(registry, endpoint, actor=ACTOR,
                          reason=f"retraining failed: {self.reason}"[:2000])
        except ModelportError as exc:  # ended meanwhile: nothing left to take back
            log.warning("could not abort rollout #%s of %s: %s", rollout_id, endpoint, exc)
            return self
        return dataclasses.replace(
            self, reason=f"{self.reason}; rollout #{rollout_id} aborted",
            details={**self.details, "rollout_status": "aborted"})


def describe(registry: Registry, rule: Rule, code: int, run_id: str, folder: Path, *,
             cancelled: bool) -> Outcome:
    """The outcome of the run ``run_id`` that exited with ``code``."""
    on = rule.on_alert
    assert on is not None
    run = read_run(folder)
    details: dict[str, Any] = {"run_id": run_id, "exit_code": code}
    steps = list(run.get("steps") or []) if run else []
    uri = next((str(s["outputs"]["uri"]) for s in reversed(steps)
                if s.get("kind") == "register" and (s.get("outputs") or {}).get("uri")), None)
    if uri:
        details["version_uri"] = uri
    rollout = _rollout_of(registry, rule.endpoint, uri)
    if rollout is not None:
        details.update(rollout_id=rollout.id, rollout_status=rollout.status.value,
                       strategy=rollout.strategy)
    if code == 0:
        shown = f"{uri} rolled out" if uri else "done"
        if rollout is not None:
            shown += f" by {rollout.strategy} rollout #{rollout.id} ({rollout.status.value})"
        return Outcome(True, f"pipeline {on.pipeline} succeeded (run {run_id}): {shown}",
                       details)
    failed = next((s for s in steps if s.get("status") in _STOPPED), None)
    if failed is not None:
        details["failed_step"] = failed.get("name")
        why = (f"step {failed.get('name')!r} {failed.get('status')}"
               + (f": {failed['message']}" if failed.get("message") else ""))
    else:
        why = last_error(folder) or "no run was recorded"
    if cancelled or code == CANCELLED_EXIT:
        return Outcome(False, f"pipeline {on.pipeline} cancelled (the server stopped), "
                              f"exit code {code}: {why}", details)
    return Outcome(False, f"pipeline {on.pipeline} failed with exit code {code}: {why}",
                   details)


def _rollout_of(registry: Registry, endpoint: str, uri: str | None) -> Rollout | None:
    """The newest rollout on ``endpoint`` of the version ``uri`` names."""
    if not uri:
        return None
    try:
        version = registry.get(parse_uri(uri))
    except ModelportError:
        return None
    return next((r for r in registry.deployments.rollouts(endpoint)
                 if r.model_name == version.name and r.candidate == version.version), None)


__all__ = ["Outcome", "describe"]
