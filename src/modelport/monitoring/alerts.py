"""Alert evaluation: each rule's value, its state in the registry, notifications, actions.

Per rule and tick: the condition holding opens a ``pending`` alert (``firing`` at once
when the rule has no ``for:``); a pending alert fires once it has held for ``for:``;
a firing alert whose condition no longer holds is ``resolved``; a pending one whose
condition stopped is discarded. A value of None (no data) changes nothing. Firing and
resolving send the rule's webhook; firing runs the rule's action.

Actions are given by the caller (``actions={"abort_rollout": fn, "rollback": fn}``,
each ``fn(endpoint, reason) -> str`` saying what it did): monitoring does not import
the rollout stage; the CLI wires ``rollout.service.abort``/``rollback`` in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from modelport.client import Registry
from modelport.errors import ConflictError, ModelportError
from modelport.monitoring import notify
from modelport.monitoring.evaluate import CounterHistory, Sources, Value
from modelport.monitoring.rules import Rule
from modelport.registry.alerts import Alert

log = logging.getLogger("modelport.monitoring")
Action = Callable[[str, str], str]
DEFAULT_INTERVAL = 30.0


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
                 webhook_retries: int = 3) -> None:
        self.registry, self.root, self.rules = registry, Path(root), list(rules)
        self.actions = dict(actions or {})
        self.interval = interval
        self.webhook_timeout, self.webhook_retries = webhook_timeout, webhook_retries
        self.history = CounterHistory()

    def tick(self, now: datetime | None = None) -> list[Outcome]:
        """Evaluate every rule once; a rule that fails to evaluate is logged and skipped."""
        now = now or datetime.now(UTC)
        sources = Sources(self.registry, self.root, self.history, now)
        out = []
        for rule in self.rules:
            try:
                out.append(self._evaluate(rule, sources, now))
            except ModelportError as exc:
                log.warning("alert %s/%s not evaluated: %s", rule.endpoint, rule.name, exc)
        sources.record_snapshots()
        return out

    def run(self, stop: threading.Event) -> None:
        """Tick every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # keep watching: one bad tick must not end monitoring
                log.exception("alert evaluation failed")
            stop.wait(self.interval)

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
        if rule.action != "none":
            done = self._act(rule, alert)
            alert = self.registry.alerts.update(alert.id, action=done)
        self._notify(rule, alert, value)
        return alert

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


__all__ = ["DEFAULT_INTERVAL", "Action", "Alerter", "Outcome"]
