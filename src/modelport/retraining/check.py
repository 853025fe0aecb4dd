"""Start-up checks of a retraining rule's pipeline: it exists, is valid, and cannot put
a retrained model straight into production.

A retraining pipeline must gate the new version before rolling it out, and roll it
out gradually: a ``gate`` step, then a ``rollout`` step on the rule's endpoint (canary,
shadow or blue-green; a canary whose first step is 100% would be a direct switch).
A ``run`` step could still do anything a shell can; these checks catch the honest
mistakes, not a determined operator.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelport.errors import ConfigurationError, InvalidInputError
from modelport.monitoring.rules import Rule
from modelport.pipelines.loader import PipelineFile, load_pipeline
from modelport.pipelines.spec import RolloutSpec
from modelport.registry.entities import Mode

GRADUAL = (Mode.CANARY, Mode.SHADOW, Mode.BLUEGREEN)


def check_rule(rule: Rule) -> PipelineFile:
    """The pipeline ``rule`` runs when it fires; ConfigurationError naming the rule when
    it is missing, invalid, another pipeline, or could skip the gate or the canary."""
    on = rule.on_alert
    if on is None:
        raise ConfigurationError(f"alert {rule.endpoint}/{rule.name} has no on_alert")
    where = f"alert {rule.endpoint}/{rule.name}: on_alert 'run pipeline {on.pipeline}'"
    try:
        source = load_pipeline(on.pipeline_file)
    except InvalidInputError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None
    if source.pipeline.name != on.pipeline:
        raise ConfigurationError(
            f"{where}: {on.pipeline_file} is the pipeline {source.pipeline.name!r}, not "
            f"{on.pipeline!r} (point pipeline_file: at the file of {on.pipeline!r})")
    kinds = [s.kind for s in source.pipeline.steps]
    if "gate" not in kinds:
        raise ConfigurationError(
            f"{where}: {on.pipeline_file} has no gate step; a retrained model must pass a "
            "gate before it gets any traffic")
    rollouts = [i for i, k in enumerate(kinds) if k == "rollout"]
    if not rollouts:
        raise ConfigurationError(
            f"{where}: {on.pipeline_file} has no rollout step; a retrained model reaches "
            "production only through a canary, shadow or blue-green rollout, never "
            "straight")
    first_gate = kinds.index("gate")
    for i in rollouts:
        step = source.pipeline.steps[i]
        spec: RolloutSpec = step.spec
        label = f"{where}: {on.pipeline_file} step {i + 1} ({step.label})"
        if i < first_gate:
            raise ConfigurationError(f"{label} rolls out before the gate step: gate first")
        if spec.strategy not in GRADUAL:
            raise ConfigurationError(f"{label}: strategy must be canary, shadow or "
                                     f"bluegreen, not {spec.strategy.value!r}")
        if spec.strategy is Mode.CANARY and spec.steps and spec.steps[0] >= 100:
            raise ConfigurationError(f"{label}: a canary that starts at 100% is a direct "
                                     "switch; start with a share such as [10, 50, 100]")
        if "${" not in spec.endpoint and spec.endpoint != rule.endpoint:
            raise ConfigurationError(f"{label} rolls out to {spec.endpoint!r}, but the alert "
                                     f"retrains {rule.endpoint!r}")
    return source


def check_rules(rules: Sequence[Rule]) -> dict[tuple[str, str], PipelineFile]:
    """``check_rule`` for every rule with ``on_alert``, keyed by (endpoint, rule name)."""
    return {(r.endpoint, r.name): check_rule(r) for r in rules if r.on_alert is not None}


__all__ = ["GRADUAL", "check_rule", "check_rules"]
