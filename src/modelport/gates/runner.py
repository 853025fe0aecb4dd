"""``run_gate``: judge a candidate version on evaluation data, store the verdict with it.

Order of work: cheap checks of the arguments first (rules, budget, versions, data),
then the model loads, the metrics of candidate and champion on the same rows, the
rules, the signature and latency checks, and finally one row in the registry.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from modelport.errors import (
    AliasNotFoundError,
    InvalidInputError,
    ModelExecutionError,
    SignatureError,
)
from modelport.gates.checks import latency_check, rule_check, signature_check
from modelport.gates.evaldata import EvalData, load_eval
from modelport.gates.metrics import LOWER_IS_BETTER, METRICS, PRIMARY, Task, averaging
from modelport.gates.report import Check, GateReport
from modelport.gates.rules import Rule, parse_rule
from modelport.gates.scoring import score
from modelport.registry.entities import ModelVersion
from modelport.uri import ModelURI, parse_uri, validate_alias

if TYPE_CHECKING:
    from modelport.client import LoadedModel, Registry

Progress = Callable[[str], None]


def run_gate(
    registry: Registry,
    candidate_uri: str,
    data: Any,
    target: str,
    *,
    against: str | int | None = "champion",
    rules: Iterable[str | Rule] = (),
    max_latency_ms: float | None = None,
    task: Task | str | None = None,
    trusted: bool = False,
    record: bool = True,
    progress: Progress | None = None,
    same_training_schema: bool = False,
) -> GateReport:
    """Gate ``candidate_uri`` on ``data`` (a CSV/Parquet/JSON path or a DataFrame).

    ``against`` names the champion: an alias of the same model (default ``champion``;
    if it does not exist the gate runs without one and says so), a version number, a
    URI of the same model, or None for no comparison. Without ``rules``, the primary
    metric (accuracy, rmse) must be no worse than the champion's. With
    ``same_training_schema`` the candidate's training dataset must have the champion's
    schema. The report is stored with the candidate version unless ``record`` is False.
    """
    started = time.monotonic()
    say = progress or (lambda _msg: None)
    parsed = [r if isinstance(r, Rule) else parse_rule(r) for r in rules]
    _check_budget(max_latency_ms)
    candidate_version = registry.get(candidate_uri)
    champion_version, notes = resolve_champion(registry, candidate_version, against)
    say("reading the evaluation data")
    evaluation = load_eval(data, target, task)
    _check_rules_fit(parsed, evaluation)
    say(f"loading {candidate_version.uri}")
    candidate = registry.load_model(candidate_version.uri, trusted=trusted)
    champion = None
    if champion_version is not None:
        say(f"loading the champion {champion_version.uri}")
        champion = registry.load_model(champion_version.uri, trusted=trusted)

    metrics, checks, latency = _judge(candidate, champion, evaluation, parsed,
                                      max_latency_ms, notes, say)
    if same_training_schema:
        from modelport.gates.datacheck import training_schema_check

        checks.append(training_schema_check(registry, candidate_version, champion_version))
    report = GateReport(
        model=candidate_version.name, version=candidate_version.version,
        candidate=candidate_version.uri,
        champion=champion_version.uri if champion_version else None,
        against=None if against is None else str(against), task=evaluation.task.value,
        averaging=averaging(evaluation.labels()) if evaluation.task is Task.CLASSIFICATION
        else None,
        rows=evaluation.rows, source=evaluation.source, target=evaluation.target_name,
        metrics=metrics, checks=tuple(checks), notes=tuple(dict.fromkeys(notes)),
        seconds=round(time.monotonic() - started, 3), latency=latency,
    )
    if not record:
        return report
    stored = registry.records.record_gate(
        report.model, report.version, passed=report.passed,
        against=report.champion_version, report=report.to_dict(), actor=registry.settings.user)
    return report.with_id(stored.id)


def default_rule(task: Task) -> Rule:
    """The primary metric no worse than the champion's (``accuracy >= champion``)."""
    metric = PRIMARY[task]
    return Rule(metric, "<=" if metric in LOWER_IS_BETTER else ">=")


def resolve_champion(registry: Registry, candidate: ModelVersion,
                     against: str | int | None) -> tuple[ModelVersion | None, list[str]]:
    """The version to compare with, and a note when there is none."""
    if against is None:
        return None, ["no champion requested: absolute rules only"]
    text = str(against).strip()
    if text.isascii() and text.isdigit():
        return registry.get(ModelURI(candidate.name, version=int(text))), []
    if "/" in text or "@" in text:
        uri = parse_uri(text)
        if uri.name != candidate.name:
            raise InvalidInputError(f"--against {text!r} is a version of {uri.name!r}; a "
                                    f"champion must be a version of {candidate.name!r}")
    else:
        uri = ModelURI(candidate.name, alias=validate_alias(text))
    try:
        version = registry.get(uri)
    except AliasNotFoundError:
        if uri.alias is None:
            raise
        return None, [f"{candidate.name} has no alias {uri.alias!r} yet: no champion to "
                      "compare with, absolute rules only"]
    notes = ([f"the candidate is {uri.short} itself"] if version.version == candidate.version
             else [])
    return version, notes


def _check_budget(max_latency_ms: float | None) -> None:
    if max_latency_ms is None:
        return
    if isinstance(max_latency_ms, bool) or not isinstance(max_latency_ms, (int, float)) \
            or not math.isfinite(max_latency_ms) or max_latency_ms <= 0:
        raise InvalidInputError(f"the latency budget must be a positive number of "
                                f"milliseconds, got {max_latency_ms!r}")


def _check_rules_fit(rules: list[Rule], evaluation: EvalData) -> None:
    usable = METRICS[evaluation.task]
    for rule in rules:
        if rule.metric not in usable:
            raise InvalidInputError(
                f"rule {str(rule)!r}: {rule.metric} is not a {evaluation.task.value} metric "
                f"(the task was taken from target {evaluation.target_name!r}; use --task to "
                f"override); {evaluation.task.value} metrics: {', '.join(usable)}")


def _judge(candidate: LoadedModel, champion: LoadedModel | None, evaluation: EvalData,
           rules: list[Rule], max_latency_ms: float | None, notes: list[str], say: Progress,
           ) -> tuple[dict[str, dict[str, float | None]], list[Check], dict[str, float]]:
    """Metrics of both models on the same rows, then every check (notes are appended)."""
    say(f"scoring on {evaluation.rows:,} rows")
    metric_notes: list[str] = []
    cand_metrics, predicted = _score_candidate(candidate, evaluation, metric_notes)
    metrics = {"candidate": cand_metrics}
    champ_metrics = None
    if champion is not None:
        champ_metrics = _score(champion, evaluation, "the champion", metric_notes)
        metrics["champion"] = champ_metrics
    if not rules and champion is not None:
        rules = [default_rule(evaluation.task)]
        notes.append(f"no rules given: {rules[0]} (the primary metric, no worse than the "
                     "champion's)")
    notes.extend(metric_notes)
    checks = [predicted, *(rule_check(r, cand_metrics, champ_metrics) for r in rules)]
    if champion is not None:
        checks.append(signature_check(candidate, champion))
    latency: dict[str, float] = {}
    if max_latency_ms is not None:
        say("measuring single-row latency")
        check, latency = latency_check(candidate, evaluation.features, max_latency_ms)
        checks.append(check)
    return metrics, checks, latency


def _score(model: LoadedModel, evaluation: EvalData, who: str,
           notes: list[str]) -> dict[str, float | None]:
    try:
        return score(model, evaluation, who, notes)
    except SignatureError as exc:
        raise SignatureError(f"the evaluation data does not fit {who} {model.version.uri}: "
                             f"{exc}") from exc


def _score_candidate(candidate: LoadedModel, evaluation: EvalData,
                     notes: list[str]) -> tuple[dict[str, float | None], Check]:
    """The candidate's metrics, and a "predict" check that fails if the model did."""
    expected = f"{evaluation.rows} predictions"
    try:
        metrics = _score(candidate, evaluation, "the candidate", notes)
    except ModelExecutionError as exc:
        empty: dict[str, float | None] = dict.fromkeys(METRICS[evaluation.task])
        return empty, Check("predict", "predict", False, None, expected, str(exc))
    return metrics, Check("predict", "predict", True, evaluation.rows, expected,
                          f"predicted {evaluation.rows} rows of {evaluation.source}")


__all__ = ["default_rule", "resolve_champion", "run_gate"]
