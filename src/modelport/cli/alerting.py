"""Alert evaluation as the commands run it: the rules a server evaluates, the actions
they may take, and the evaluator's thread inside ``modelport serve``.

The actions live here, in the CLI layer, because they move rollouts: monitoring must
not import the rollout stage, so ``serve`` and ``monitor check`` both wire
``rollout.service`` into the ``Alerter`` through ``alert_actions``, and the
``Retrainer`` (``modelport.retraining``) for rules with ``on_alert``.
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
    from modelport.retraining.trigger import Retrainer
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


def check_retraining(rules: list[Rule]) -> None:
    """Every retraining rule's pipeline exists, is valid, gates and rolls out gradually
    (a ConfigurationError naming the rule otherwise)."""
    if any(r.on_alert is not None for r in rules):
        from modelport.retraining.check import check_rules

        check_rules(rules)


def retrainer_for(registry: Registry, root: Path, rules: list[Rule]) -> Retrainer | None:
    """The retrainer of the rules with ``on_alert`` (None when no rule has one)."""
    if not any(r.on_alert is not None for r in rules):
        return None
    from modelport.retraining.trigger import Retrainer

    return Retrainer(registry, root)


def serve_rules(spec: ServeSpec, alerts_file: Path | None) -> list[Rule]:
    """serve.yaml's rules, then those of ``--alerts FILE`` (alerts.yaml format); a rule
    named in both, a bad file, or a retraining pipeline that is missing or could skip
    the gate or the canary, is a ConfigurationError before anything starts."""
    rules = spec.alert_rules()
    if alerts_file is None:
        check_retraining(rules)
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
    check_retraining(rules + extra)
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
    root = Path(spec.monitoring.root or default_root(settings))
    retrainer = retrainer_for(registry, root, rules)
    alerter = Alerter(registry, root, rules, actions=alert_actions(registry),
                      interval=spec.alerting.interval, lease_ttl=spec.alerting.lease_ttl,
                      retrainer=retrainer)
    stop = threading.Event()
    thread = threading.Thread(target=alerter.run, args=(stop,), daemon=True, name="alerter")
    thread.start()
    log.info("alerting: %d rule(s) on %s every %gs (%s)", len(rules),
             ", ".join(alerter.endpoints), alerter.interval, alerter.holder)

    def _stop() -> None:
        stop.set()
        thread.join(timeout=10)
        if retrainer is not None:  # a running pipeline is cancelled and recorded so
            retrainer.stop()
        registry.close()

    return _stop


__all__ = ["ACTOR", "alert_actions", "check_retraining", "retrainer_for", "serve_rules",
           "start_alerter"]
