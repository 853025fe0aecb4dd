"""Alert evaluation: each rule's value, its state in the registry, notifications, actions.

Per rule and tick: the condition holding opens a ``pending`` alert (``firing`` at once
when the rule has no ``for:``); a pending alert fires once it has held for ``for:``;
a firing alert whose condition no longer holds is ``resolved``; a pending one whose
condition stopped is discarded. A value of None (no data) changes nothing. Firing and
resolving send the rule's webhook; firing runs the rule's action.

Actions are given by the caller (``actions={"abort_rollout": fn, "rollback": fn}``,
each ``fn(endpoint, reason) -> str`` saying what it did): monitoring does not import
the rollout stage; the CLI wires ``rollout.service.abort``/``rollback`` in. So is the
``retrainer`` a rule with ``on_alert`` hands its firing alert to
(``modelport.retraining``): it must return at once, the run goes on elsewhere.

Several evaluators may share a registry (one in each ``modelport serve``, a ``monitor
check`` loop): ``run``/``poll`` evaluate an endpoint's rules only while holding its
registry lease ``alerter:ENDPOINT``, so each endpoint is evaluated by one of them and
its actions run once; the others stay idle and take over when the lease expires. The
lease is per endpoint, not global, so servers with rules for different endpoints each
evaluate their own. ``tick`` evaluates without leases (``monitor check --once``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from modelport.client import Registry
from modelport.errors import ConflictError, InvalidInputError, ModelportError
from modelport.monitoring import notify
from modelport.monitoring.evaluate import CounterHistory, Sources, Value
from modelport.monitoring.rules import Rule
from modelport.registry.alerts import Alert

log = logging.getLogger("modelport.monitoring")
Action = Callable[[str, str], str]


class Retrainer(Protocol):
    """What runs a rule's ``on_alert`` pipeline when its alert starts firing."""

    def fire(self, rule: Rule, alert: Alert) -> str:
        """Start (or skip) the retraining, without waiting for it; says what it did."""
        ...

DEFAULT_INTERVAL = 30.0
DEFAULT_LEASE_TTL = 15.0
LEASE_PREFIX = "alerter"
_LEASE_NAME_MAX = 128  # the leases table's column


def lease_name(endpoint: str, prefix: str = LEASE_PREFIX) -> str:
    """The lease whose holder evaluates ``endpoint``'s rules: ``alerter:ENDPOINT`` (a
    digest of the name when that would not fit the lease column); ``prefix`` names
    another per-endpoint lease the same way (``retrain:ENDPOINT``)."""
    name = f"{prefix}:{endpoint}"
    if len(name) <= _LEASE_NAME_MAX:
        return name
    return f"{prefix}:sha256:{hashlib.sha256(endpoint.encode()).hexdigest()}"


def alerter_id() -> str:
    """``alerter@HOST:PID``: who holds the leases."""
    return f"alerter@{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Outcome:
    """What one tick did for one rule."""

    rule: Rule
    value: Value
    breached: bool | None  # None: no data
    alert: Alert | None
    change: str  # "", "pending", "firing", "resolved", "discarded"


class Alerter:
    """Evaluates rules against a registry and a monitoring store, tick by tick."""

    def __init__(self, registry: Registry, root: str | Path, rules: Sequence[Rule], *,
                 actions: Mapping[str, Action] | None = None,
                 interval: float = DEFAULT_INTERVAL, webhook_timeout: float = 5.0,
                 webhook_retries: int = 3, holder: str | None = None,
                 lease_ttl: float = DEFAULT_LEASE_TTL,
                 history: CounterHistory | None = None,
                 retrainer: Retrainer | None = None) -> None:
        if not interval > 0 or not lease_ttl > 0:
            raise InvalidInputError("the alert interval and lease ttl must be positive")
        self.registry, self.root, self.rules = registry, Path(root), list(rules)
        self.actions = dict(actions or {})
        self.retrainer = retrainer
        self.interval = interval
        self.webhook_timeout, self.webhook_retries = webhook_timeout, webhook_retries
        self.history = history or CounterHistory(registry)
        self.holder = holder or alerter_id()
        self.lease_ttl = lease_ttl
        self.endpoints = list(dict.fromkeys(r.endpoint for r in self.rules))
        self.held: set[str] = set()  # endpoints whose lease this alerter holds
        self._renewed = -float("inf")  # monotonic time of the last lease renewal

    def tick(self, now: datetime | None = None) -> list[Outcome]:
        """Evaluate every rule once, leases or not; a rule that fails to evaluate is
        logged and skipped."""
        return self._tick(now, leased=False)

    def poll(self, now: datetime | None = None) -> list[Outcome]:
        """Renew the leases, then evaluate the rules of the endpoints held (none while
        other evaluators hold them all)."""
        return self._tick(now, leased=True) if self.lead() else []

    def run(self, stop: threading.Event) -> None:
        """Until ``stop`` is set: renew the leases a few times per ttl, evaluate the held
        endpoints' rules every ``interval`` seconds; then give the leases up."""
        pause = min(self.interval, self.lease_ttl / 3)
        due = 0.0
        try:
            while not stop.is_set():
                try:
                    if self.lead() and time.monotonic() >= due:
                        due = time.monotonic() + self.interval
                        self._tick(None, leased=True)
                except Exception:  # keep watching: one bad tick must not end monitoring
                    log.exception("alert evaluation failed")
                stop.wait(pause)
        finally:
            self.release()

    # -- leases ---------------------------------------------------------------------------

    def lead(self) -> set[str]:
        """Take or renew the lease of every endpoint with rules; the endpoints held."""
        held = set()
        for endpoint in self.endpoints:
            try:
                if self.registry.records.acquire_lease(lease_name(endpoint), self.holder,
                                                       self.lease_ttl):
                    held.add(endpoint)
            except ModelportError as exc:  # database unreachable: evaluate nothing
                (log.warning if endpoint in self.held else log.debug)(
                    "alert lease of %s not renewed: %s", endpoint, exc)
        for endpoint in sorted(held ^ self.held):
            log.info("%s %s the alert lease of %s", self.holder,
                     "took" if endpoint in held else "lost", endpoint)
        self.held, self._renewed = held, time.monotonic()
        return held

    def release(self) -> None:
        """Give the leases up (clean shutdown), so another evaluator takes over at once."""
        for endpoint in sorted(self.held):
            try:
                self.registry.records.release_lease(lease_name(endpoint), self.holder)
            except ModelportError as exc:
                log.warning("could not release the alert lease of %s: %s", endpoint, exc)
        self.held = set()

    def _tick(self, now: datetime | None, *, leased: bool) -> list[Outcome]:
        now = now or datetime.now(UTC)
        sources = Sources(self.registry, self.root, self.history, now)
        out = []
        for rule in self.rules:
            if leased:
                # A slow tick (drift over a large log) must not outlast the leases.
                if time.monotonic() - self._renewed > self.lease_ttl / 3:
                    self.lead()
                if rule.endpoint not in self.held:
                    continue
            try:
                out.append(self._evaluate(rule, sources, now))
            except ModelportError as exc:
                log.warning("alert %s/%s not evaluated: %s", rule.endpoint, rule.name, exc)
        sources.record_snapshots()
        return out

    # -- one rule -------------------------------------------------------------------------

    def _evaluate(self, rule: Rule, sources: Sources, now: datetime) -> Outcome:
        value = sources.value(rule)
        store = self.registry.alerts
        current = store.open_alert(rule.endpoint, rule.name)
        if value.value is None:
            if current is not None:
                current = store.update(current.id, last_evaluated_at=now)
            return Outcome(rule, value, None, current, "")
        breached = rule.condition.breached(value.value)
        message = _message(rule, value)
        if breached and current is None:
            state = "firing" if rule.for_.total_seconds() <= 0 else "pending"
            try:
                current = store.open(rule.endpoint, rule.name, state=state,
                                     severity=rule.severity, expr=rule.expr,
                                     value=value.value, threshold=rule.condition.threshold,
                                     message=message, now=now)
            except ConflictError:  # another evaluator opened it first
                return Outcome(rule, value, breached,
                               store.open_alert(rule.endpoint, rule.name), "")
            if state == "firing":
                return Outcome(rule, value, breached, self._fired(rule, current, value), state)
            return Outcome(rule, value, breached, current, state)
        if breached and current is not None:
            fire = current.state == "pending" and now - current.started_at >= rule.for_
            current = store.update(current.id, value=value.value, message=message,
                                   last_evaluated_at=now,
                                   **({"state": "firing", "fired_at": now} if fire else {}))
            if fire:
                return Outcome(rule, value, breached, self._fired(rule, current, value),
                               "firing")
            return Outcome(rule, value, breached, current, "")
        if current is None:
            return Outcome(rule, value, breached, None, "")
        if current.state == "pending":
            store.discard(current.id)
            return Outcome(rule, value, breached, None, "discarded")
        current = store.update(current.id, state="resolved", value=value.value,
                               message=f"resolved: {message}", resolved_at=now,
                               last_evaluated_at=now)
        self._notify(rule, current, value)
        return Outcome(rule, value, breached, current, "resolved")

    def _fired(self, rule: Rule, alert: Alert, value: Value) -> Alert:
        done = []
        if rule.action != "none":
            done.append(self._act(rule, alert))
        if rule.on_alert is not None:
            done.append(self._retrain(rule, alert))
        if done:
            alert = self.registry.alerts.update(alert.id, action="; ".join(done))
        self._notify(rule, alert, value)
        return alert

    def _retrain(self, rule: Rule, alert: Alert) -> str:
        if self.retrainer is None:
            log.warning("alert %s/%s: on_alert given but no retrainer configured",
                        rule.endpoint, rule.name)
            return "retrain: not configured"
        try:
            return self.retrainer.fire(rule, alert)
        except ModelportError as exc:  # e.g. the registry is unreachable
            log.warning("alert %s/%s: retraining not started: %s", rule.endpoint, rule.name,
                        exc)
            return f"retrain failed: {exc}"

    def _act(self, rule: Rule, alert: Alert) -> str:
        act = self.actions.get(rule.action)
        if act is None:
            log.warning("alert %s/%s: no %s action configured", rule.endpoint, rule.name,
                        rule.action)
            return f"{rule.action}: not configured"
        reason = f"alert {rule.name} firing: {alert.message}"
        try:
            return f"{rule.action}: {act(rule.endpoint, reason)}"
        except ModelportError as exc:  # e.g. no active rollout to abort
            log.warning("alert %s/%s: %s failed: %s", rule.endpoint, rule.name, rule.action,
                        exc)
            return f"{rule.action} failed: {exc}"

    def _notify(self, rule: Rule, alert: Alert, value: Value) -> None:
        log.warning("alert %s/%s %s: %s", rule.endpoint, rule.name, alert.state, alert.message)
        if rule.webhook:
            notify.send(rule.webhook, notify.payload(alert, description=rule.description,
                                                     note=value.note),
                        timeout=self.webhook_timeout, retries=self.webhook_retries)


def _message(rule: Rule, value: Value) -> str:
    v = value.value
    shown = "-" if v is None else f"{v:.4g}"
    text = f"{rule.condition.subject} = {shown} ({rule.expr})"
    return f"{text}; {value.note}" if value.note else text


__all__ = ["DEFAULT_INTERVAL", "DEFAULT_LEASE_TTL", "Action", "Alerter", "Outcome",
           "Retrainer", "alerter_id", "lease_name"]
