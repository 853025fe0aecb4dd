"""Alert evaluation as the commands run it: the rules a server evaluates, the actions
they may take, and the evaluator's thread inside ``modelport serve``.

The actions live here, in the CLI layer, because they move rollouts: monitoring must
not import the rollout stage, so ``serve`` and ``monitor check`` both wire
``rollout.service`` into the ``Alerter`` through ``alert_actions``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from modelport.client import Registry
from modelport.config import Settings
from modelport.errors import ConfigurationError, InvalidInputError
from modelport.monitoring.alerts import Action, Alerter
from modelport.monitoring.rules import Rule, load_rules

if TYPE_CHECKING:  # the serving stack is heavy to import; monitor check does not need it
    from modelport.serving.config import ServeSpec

log = logging.getLogger("modelport.serving")
ACTOR = "modelport-alerts"  # who deployment events name when an alert acted


def alert_actions(registry: Registry) -> dict[str, Action]:
    """``abort_rollout`` and ``rollback`` on ``registry``, each saying what it did."""
    from modelport.rollout import service

    def abort(endpoint: str, reason: str) -> str:
        r, _ = service.abort(registry, endpoint, actor=ACTOR, reason=reason)
        return f"rollout #{r.id} aborted"

    def rollback(endpoint: str, reason: str) -> str:
        dep = service.rollback(registry, endpoint, actor=ACTOR, reason=reason)
        return f"stable is now {dep.model_name}/{dep.stable}"

    return {"abort_rollout": abort, "rollback": rollback}


def serve_rules(spec: ServeSpec, alerts_file: Path | None) -> list[Rule]:
    """serve.yaml's rules, then those of ``--alerts FILE`` (alerts.yaml format); a rule
    named in both, or a bad file, is a ConfigurationError before anything starts."""
    rules = spec.alert_rules()
    if alerts_file is None:
        return rules
    try:
        extra = load_rules(alerts_file)
    except InvalidInputError as exc:
        raise ConfigurationError(f"--alerts: {exc}") from None
    ours = {(r.endpoint, r.name) for r in rules}
    for rule in extra:
        if (rule.endpoint, rule.name) in ours:
            raise ConfigurationError(
                f"--alerts {alerts_file}: endpoint {rule.endpoint!r} rule {rule.name!r} is "
                "also in the serve configuration; rename one of them")
    served = {e.name for e in spec.endpoints()}
    others = sorted({r.endpoint for r in extra} - served)
    if others:
        # Allowed (the rules read the registry, not this server), but a typo would
        # otherwise go unnoticed forever as "no data".
        log.warning("--alerts %s has rules for endpoints this server does not serve: %s",
                    alerts_file, ", ".join(others))
    return rules + extra


def start_alerter(settings: Settings, spec: ServeSpec,
                  rules: list[Rule]) -> Callable[[], None] | None:
    """The alert evaluator on a thread of this (main) process, unless there are no rules
    or ``alerting.enabled`` is false. Its leases keep it idle while another evaluator
    holds an endpoint. Returns what stops it cleanly (None: nothing started)."""
    if not rules or not spec.alerting.enabled:
        if rules:
            log.info("alerting disabled: %d rule(s) not evaluated", len(rules))
        return None
    from modelport.monitoring.layout import default_root

    registry = Registry(settings=settings)
    root = spec.monitoring.root or default_root(settings)
    alerter = Alerter(registry, root, rules, actions=alert_actions(registry),
                      interval=spec.alerting.interval, lease_ttl=spec.alerting.lease_ttl)
    stop = threading.Event()
    thread = threading.Thread(target=alerter.run, args=(stop,), daemon=True, name="alerter")
    thread.start()
    log.info("alerting: %d rule(s) on %s every %gs (%s)", len(rules),
             ", ".join(alerter.endpoints), alerter.interval, alerter.holder)

    def _stop() -> None:
        stop.set()
        thread.join(timeout=10)
        registry.close()

    return _stop


__all__ = ["ACTOR", "alert_actions", "serve_rules", "start_alerter"]
