"""The rollout controller: walks every active rollout, one tick at a time.

Only the holder of the registry lease ``rollout-controller`` acts, so any number of
controllers (one inside each ``modelport serve``, or standalone) behave as one. The
controller keeps no state of its own: each tick reads the rollouts, the servers'
counters and the baseline stored at the step's start, and every move is one registry
transaction guarded by ``expect_step``. A controller that dies mid-step, or another
that takes over when the lease expires, therefore resumes exactly where it was.

Per rollout and tick:

1. No step started yet: wait until every live server (counters updated within
   ``live_seconds``) reports the candidate ``ready``, then start step 0. A server
   reporting ``failed`` fails the rollout at once; so does ``ready_timeout``.
2. Otherwise measure the step's window and judge it: a failing check (or a server
   reporting the candidate ``failed``) rolls back now, within this tick; a passed step
   moves on (or promotes after the last one). A paused rollout holds its step but is
   still rolled back if it fails.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from modelport.client import Registry
from modelport.errors import ConflictError, ModelportError
from modelport.registry.entities import Rollout, RolloutStatus, TrafficReport
from modelport.registry.traffic import VersionStats
from modelport.rollout import moves
from modelport.rollout.analysis import AnalysisProvider, Thresholds
from modelport.rollout.assess import assess, provider_for

log = logging.getLogger("modelport.rollout.controller")
LEASE = "rollout-controller"


@dataclass(frozen=True)
class Move:
    """One move a tick made (what tests and logs look at)."""

    rollout_id: int
    kind: str
    reason: str


def controller_id() -> str:
    """``controller@HOST:PID``: who the events name and who holds the lease."""
    return f"controller@{socket.gethostname()}:{os.getpid()}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Controller:
    """Drives rollouts from the registry; call ``tick()`` or ``run(stop)``."""

    def __init__(self, registry: Registry, *, holder: str | None = None,
                 interval: float = 0.1, lease_ttl: float = 3.0, live_seconds: float = 3.0,
                 extra_providers: Sequence[AnalysisProvider] = (),
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.registry = registry
        self.holder = holder or controller_id()
        self.interval = interval
        self.lease_ttl = lease_ttl
        self.live_seconds = live_seconds
        self.extra_providers = list(extra_providers)
        self.clock = clock
        self.leader = False

    # -- the loop -----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set, then give the lease up. A standby controller
        tries for the lease a few times per ttl rather than every tick."""
        standby = max(self.interval, self.lease_ttl / 3)
        try:
            while not stop.is_set():
                try:
                    self.tick()
                except Exception:  # never let one bad tick end the loop
                    log.exception("controller tick failed")
                stop.wait(self.interval if self.leader else standby)
        finally:
            self.release()

    def release(self) -> None:
        """Give the lease up (clean shutdown), so another controller takes over at once."""
        if self.leader:
            try:
                self.registry.records.release_lease(LEASE, self.holder)
            except ModelportError as exc:
                log.warning("could not release the controller lease: %s", exc)
            self.leader = False

    def tick(self, now: datetime | None = None) -> list[Move]:
        """Renew the lease and, if held, advance every active rollout once."""
        now = now or self.clock()
        try:
            leader = self.registry.records.acquire_lease(LEASE, self.holder, self.lease_ttl)
        except ModelportError as exc:  # database unreachable: act on nothing
            if self.leader:
                log.warning("controller lease not renewed: %s", exc)
            self.leader = False
            return []
        if leader != self.leader:
            log.info("%s %s the controller lease", self.holder,
                     "took" if leader else "lost")
        self.leader = leader
        if not leader:
            return []
        try:
            active = self.registry.deployments.rollouts(active_only=True)
        except ModelportError as exc:
            log.warning("cannot read rollouts: %s", exc)
            return []
        done = []
        for rollout in reversed(active):  # oldest first
            try:
                move = self.advance(rollout, now)
            except ConflictError as exc:  # someone moved it meanwhile: next tick sees it
                log.info("rollout #%s: %s", rollout.id, exc)
                continue
            except ModelportError as exc:
                log.warning("rollout #%s: no move this tick: %s", rollout.id, exc)
                continue
            if move is not None:
                log.info("rollout #%s: %s (%s)", move.rollout_id, move.kind, move.reason)
                done.append(move)
        return done

    # -- one rollout --------------------------------------------------------------------

    def advance(self, rollout: Rollout, now: datetime) -> Move | None:
        """Make the one move this rollout needs now, if any."""
        reports = self.registry.records.traffic(rollout.deployment)
        if rollout.step_started_at is None:
            if rollout.status is RolloutStatus.PAUSED:
                return None
            return self._warm_up(rollout, reports, now)
        broken = self._failed_servers(rollout, reports, now)
        if broken:
            reason = "candidate failed on " + "; ".join(broken)
            return self._end(rollout, RolloutStatus.ROLLED_BACK, "rolled_back", reason,
                             {"servers": broken})
        provider = provider_for(self.registry, rollout, self.extra_providers)
        seen = assess(rollout, provider, now, reports)
        metrics = {"step": rollout.step_index, "weight": rollout.weight, **seen.to_dict()}
        if seen.verdict.outcome == "fail":
            return self._end(rollout, RolloutStatus.ROLLED_BACK, "rolled_back",
                             f"analysis failed: {seen.verdict.reason}", metrics)
        if seen.verdict.outcome != "pass" or rollout.status is RolloutStatus.PAUSED:
            return None
        last = rollout.step_index + 1 >= len(rollout.steps)
        if last:
            reason = f"all {len(rollout.steps)} steps passed"
            moves.promote(self.registry, rollout, self.holder, reason=reason, metrics=metrics,
                          expect_step=rollout.step_index)
            return Move(rollout.id, "promoted", reason)
        nxt = rollout.step_index + 1
        reason = (f"step {rollout.step_index + 1} passed; step {nxt + 1}/"
                  f"{len(rollout.steps)}: {rollout.steps[nxt]:g}% to the candidate")
        moves.start_step(self.registry, rollout, nxt, self.holder, now,
                         provider.snapshot(rollout, reports), reason=reason, metrics=metrics)
        return Move(rollout.id, "step_started", reason)

    def _warm_up(self, rollout: Rollout, reports: list[TrafficReport],
                 now: datetime) -> Move | None:
        live = self._live(reports, now)
        states = {r.server_id: VersionStats.from_dict(r.stats) for r in reports
                  if r.version == rollout.candidate and r.server_id in live}
        broken = [f"{sid}: {s.error or 'load failed'}" for sid, s in sorted(states.items())
                  if s.state == "failed"]
        if broken:
            return self._end(rollout, RolloutStatus.FAILED, "failed",
                             "candidate failed to load on " + "; ".join(broken),
                             {"servers": broken})
        waiting = sorted(sid for sid in live
                         if sid not in states or states[sid].state != "ready")
        if live and not waiting:
            provider = provider_for(self.registry, rollout, self.extra_providers)
            reason = (f"candidate ready on {len(live)} server(s); step 1/"
                      f"{len(rollout.steps)}: {rollout.steps[0]:g}% to the candidate")
            moves.start_step(self.registry, rollout, 0, self.holder, now,
                             provider.snapshot(rollout, reports), reason=reason,
                             metrics={"servers": sorted(live)}, kind="step_started")
            return Move(rollout.id, "step_started", reason)
        timeout = Thresholds.from_dict(rollout.analysis).ready_timeout
        if (now - rollout.updated_at).total_seconds() > timeout:
            reason = (f"candidate not ready after {timeout:g}s: "
                      + (f"still loading on {', '.join(waiting)}" if live
                         else "no live server reports this deployment"))
            return self._end(rollout, RolloutStatus.FAILED, "failed", reason,
                             {"waiting": waiting})
        return None

    def _live(self, reports: list[TrafficReport], now: datetime) -> set[str]:
        since = now - timedelta(seconds=self.live_seconds)
        return {r.server_id for r in reports if r.updated_at >= since}

    def _failed_servers(self, rollout: Rollout, reports: list[TrafficReport],
                        now: datetime) -> list[str]:
        live = self._live(reports, now)
        out = []
        for r in reports:
            if r.version == rollout.candidate and r.server_id in live:
                stats = VersionStats.from_dict(r.stats)
                if stats.state == "failed":
                    out.append(f"{r.server_id}: {stats.error or 'failed'}")
        return sorted(out)

    def _end(self, rollout: Rollout, status: RolloutStatus, kind: str, reason: str,
             metrics: dict[str, object]) -> Move:
        moves.end(self.registry, rollout, self.holder, status, kind=kind, reason=reason,
                  metrics=dict(metrics), expect_step=rollout.step_index)
        return Move(rollout.id, kind, reason)


__all__ = ["LEASE", "Controller", "Move", "controller_id"]
