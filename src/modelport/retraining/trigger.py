"""The retrainer an alert evaluator hands firing alerts to: decide, then start a job.

When a rule with ``on_alert`` starts firing, ``fire`` (on the evaluator's thread, a
few quick registry calls) either skips, and says why in the audit log, or starts a
``RetrainJob`` on a thread and returns at once:

1. the endpoint's lease ``retrain:ENDPOINT`` must be free: one triggered run at a time
   per endpoint, across every server on the registry (each attempt holds it under its
   own holder, so two rules of one server exclude each other too);
2. the rule's ``cooldown`` must have passed since the endpoint's last trigger (kept in
   the audit log, so a restart or another server sees it).

Jobs keep their folders under ``HOME/retraining/ENDPOINT/`` (the exported rows, the
pipeline's log and recorded run); the newest ``KEEP`` per endpoint are kept.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from modelport.client import Registry
from modelport.monitoring.alerts import lease_name
from modelport.monitoring.rules import Rule
from modelport.registry.alerts import Alert
from modelport.retraining.job import JobSpec, RetrainJob

log = logging.getLogger("modelport.retraining")
LEASE_PREFIX = "retrain"
DEFAULT_LEASE_TTL = 30.0
KEEP = 5


def retrain_lease(endpoint: str) -> str:
    """The lease of ``endpoint``'s running retraining: ``retrain:ENDPOINT``."""
    return lease_name(endpoint, LEASE_PREFIX)


class Retrainer:
    """Starts (or skips) the retraining of a firing alert; ``stop`` ends the runs."""

    def __init__(self, registry: Registry, root: str | Path, *,
                 workdir: Path | None = None, python: str = sys.executable,
                 lease_ttl: float = DEFAULT_LEASE_TTL) -> None:
        self.registry, self.root = registry, Path(root)
        self.workdir = workdir or registry.settings.home / "retraining"
        self.python, self.lease_ttl = python, lease_ttl
        self.holder = f"retrain@{socket.gethostname()}:{os.getpid()}"
        self._jobs: list[tuple[RetrainJob, threading.Thread]] = []
        self._lock = threading.Lock()
        self._stopping = False

    def fire(self, rule: Rule, alert: Alert) -> str:
        """Start the retraining ``rule`` asks for, unless it runs already or cools down."""
        on = rule.on_alert
        assert on is not None
        endpoint, lease = rule.endpoint, retrain_lease(rule.endpoint)
        holder = f"{self.holder}#{secrets.token_hex(4)}"
        records, retrains = self.registry.records, self.registry.retrains
        if self._stopping:
            return "retrain skipped: the server is stopping"
        if not records.acquire_lease(lease, holder, self.lease_ttl):
            held = records.lease_holder(lease)
            by = f" ({held[0]})" if held else ""
            self._skip(rule, alert, f"a retraining run of {endpoint} is already running{by}")
            return "retrain skipped: already running"
        last = retrains.last_trigger(endpoint)
        now = datetime.now(UTC)
        if last is not None and now - last.at < on.cooldown:
            records.release_lease(lease, holder)
            until = last.at + on.cooldown
            self._skip(rule, alert, f"cool-down: trigger #{last.id} at "
                                    f"{last.at:%Y-%m-%d %H:%M:%S} UTC; the next one from "
                                    f"{until:%H:%M:%S} UTC")
            return f"retrain skipped: cool-down until {until:%H:%M:%S} UTC"
        folder = self.workdir / endpoint / f"{now:%Y%m%dT%H%M%S}Z-{secrets.token_hex(3)}"
        job = RetrainJob(self.registry.settings, self.root, JobSpec(
            rule, alert, lease, holder, folder, self.python, self.lease_ttl))
        thread = threading.Thread(target=job.run, daemon=True, name=f"retrain:{endpoint}")
        with self._lock:
            self._jobs = [(j, t) for j, t in self._jobs if t.is_alive()]
            self._jobs.append((job, thread))
        thread.start()
        self._prune(self.workdir / endpoint, keep=folder)
        log.info("alert %s/%s: retraining started (pipeline %s)", endpoint, rule.name,
                 on.pipeline)
        return f"retrain started: pipeline {on.pipeline}"

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for every started job to end (``monitor check --once``); whether they did."""
        with self._lock:
            jobs = list(self._jobs)
        return all(job.join(timeout) for job, _ in jobs)

    def stop(self, timeout: float = 60.0) -> None:
        """Cancel the running jobs and wait for them to record how they ended."""
        self._stopping = True
        with self._lock:
            jobs = [(j, t) for j, t in self._jobs if t.is_alive()]
        for job, _ in jobs:
            job.cancel()
        for job, thread in jobs:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("retraining of %s did not end within %gs", job.spec.rule.endpoint,
                            timeout)

    def _skip(self, rule: Rule, alert: Alert, reason: str) -> None:
        assert rule.on_alert is not None
        self.registry.retrains.record_skip(rule.endpoint, rule=rule.name, alert_id=alert.id,
                                           pipeline=rule.on_alert.pipeline, reason=reason)
        log.warning("alert %s/%s: retraining skipped: %s", rule.endpoint, rule.name, reason)

    @staticmethod
    def _prune(base: Path, keep: Path) -> None:
        """Forget all but the newest ``KEEP`` job folders of an endpoint (they hold
        production data and would pile up)."""
        try:
            folders = sorted((p for p in base.iterdir() if p.is_dir() and p != keep),
                             key=lambda p: p.name)
        except OSError:
            return
        for old in folders[:max(0, len(folders) - (KEEP - 1))]:
            shutil.rmtree(old, ignore_errors=True)


__all__ = ["DEFAULT_LEASE_TTL", "KEEP", "LEASE_PREFIX", "Retrainer", "retrain_lease"]
