"""Building lineage from what the registry already records.

Upstream of a model version: the dataset versions it was linked to at registration,
the pipeline run that registered it (tags ``pipeline``, ``pipeline_run``,
``git_commit``, written by ``modelport pipeline run``), its tuning study and trial
(tags ``modelport.tune.study``, ``.trial``, ``.value``) and, for a conversion, its
source version (tag ``converted_from``) with the source's own upstream. Downstream:
its gate results, the rollouts it was the candidate of (with their events and
deployment), the deployments serving it now, and its conversions.

Read-only; a handful of queries per version (rollouts, deployments and their events
are read once per build).
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

from modelport.errors import InvalidInputError, NotFoundError
from modelport.lineage import graph as g
from modelport.registry.entities import (
    Deployment,
    DeploymentEvent,
    Mode,
    ModelVersion,
    Rollout,
)
from modelport.uri import ModelURI, parse_uri

if TYPE_CHECKING:
    from modelport.client import Registry
    from modelport.registry.entities import DatasetVersion, GateResult

PIPELINE_TAG, PIPELINE_RUN_TAG, GIT_COMMIT_TAG = "pipeline", "pipeline_run", "git_commit"
CONVERTED_FROM_TAG = "converted_from"
TUNE_STUDY_TAG = "modelport.tune.study"
TUNE_TRIAL_TAG = "modelport.tune.trial"
TUNE_VALUE_TAG = "modelport.tune.value"
MAX_DEPTH = 4  # conversions of conversions: enough for any real chain, bounded for loops


class Builder:
    """Adds nodes and edges for versions and datasets to one :class:`Lineage`."""

    def __init__(self, registry: Registry, lineage: g.Lineage) -> None:
        self.reg, self.lineage = registry, lineage
        self._rollouts: builtins.list[Rollout] | None = None
        self._deployments: builtins.list[Deployment] | None = None
        self._events: dict[str, builtins.list[DeploymentEvent]] = {}
        self._versions: dict[str, builtins.list[ModelVersion]] = {}

    # -- nodes ----------------------------------------------------------------------------

    def version(self, v: ModelVersion) -> str:
        """The node of a model version."""
        return self.lineage.add(g.Node(v.uri, g.MODEL_VERSION, v.uri, {
            "model": v.name, "version": v.version, "flavor": v.flavor,
            "aliases": list(v.aliases), "metrics": v.metrics, "created_at": v.created_at
            .isoformat(), "created_by": v.created_by})).id

    def dataset(self, d: DatasetVersion) -> str:
        """The node of a dataset version."""
        return self.lineage.add(g.Node(d.uri, g.DATASET, d.uri, {
            "dataset": d.name, "version": d.version, "rows": d.rows,
            "columns": len(d.schema), "fingerprint": d.fingerprint, "source": d.source,
            "created_at": d.created_at.isoformat()})).id

    # -- upstream ---------------------------------------------------------------------------

    def upstream(self, v: ModelVersion, depth: int = MAX_DEPTH,
                 datasets: bool = True) -> None:
        """Datasets, pipeline run, tuning study and conversion source of ``v``."""
        node = self.version(v)
        if datasets:
            for link in self.reg.datasets.store.links_of_model(v.name, v.version):
                ds = self.reg.datasets.get(link.dataset_uri)
                self.lineage.link(self.dataset(ds), node, link.role)
        run_id = v.tags.get(PIPELINE_RUN_TAG)
        if run_id:
            self.lineage.link(self._pipeline_run(run_id, v), node, g.PRODUCED)
        study = v.tags.get(TUNE_STUDY_TAG)
        if study:
            sid = self.lineage.add(g.Node(f"tune_study:{study}", g.TUNE_STUDY,
                                          f"tuning study {study}", {"study": study})).id
            self.lineage.link(sid, node, g.TRIAL, trial=v.tags.get(TUNE_TRIAL_TAG),
                              value=_number(v.tags.get(TUNE_VALUE_TAG)))
        source = self._source_of(v)
        if source is not None and depth > 0:
            self.lineage.link(self.version(source), node, g.CONVERTED,
                              conversion=v.tags.get("conversion"))
            self.upstream(source, depth - 1)

    def _pipeline_run(self, run_id: str, v: ModelVersion) -> str:
        attrs: dict[str, Any] = {"run_id": run_id, "pipeline": v.tags.get(PIPELINE_TAG),
                                 "git_commit": v.tags.get(GIT_COMMIT_TAG), "recorded": False}
        try:
            run = self.reg.records.pipeline_run(run_id)
            attrs.update(pipeline=run.pipeline, status=run.status, git_commit=run.git_commit,
                         started_at=run.started_at.isoformat(), actor=run.actor,
                         recorded=True)
        except NotFoundError:
            pass  # the tags are all there is (the run's record was pruned or never saved)
        label = f"pipeline run {attrs['pipeline'] or '?'} {run_id[:8]}"
        return self.lineage.add(g.Node(f"pipeline_run:{run_id}", g.PIPELINE_RUN, label,
                                       attrs)).id

    def _source_of(self, v: ModelVersion) -> ModelVersion | None:
        text = v.tags.get(CONVERTED_FROM_TAG)
        if not text:
            return None
        try:
            return self.reg.get(parse_uri(text))
        except (NotFoundError, InvalidInputError):
            return None  # deleted since, or a tag someone else wrote

    # -- downstream -------------------------------------------------------------------------

    def downstream(self, v: ModelVersion, depth: int = MAX_DEPTH) -> None:
        """Gates, rollouts (with their deployment), serving deployments, conversions."""
        node = self.version(v)
        for gate in self.reg.records.gate_results(v.name, v.version):
            self.lineage.link(node, self._gate(gate), g.GATED)
        for r in self._all_rollouts():
            if r.model_name == v.name and r.candidate == v.version:
                rid = self._rollout(r)
                self.lineage.link(node, rid, g.CANDIDATE)
                self.lineage.link(rid, self._deployment(r.deployment), g.ROLLED_OUT)
        for dep in self._all_deployments():
            role = serving_role(dep, v)
            if role is not None:
                self.lineage.link(node, self._deployment(dep.name), g.SERVES, role=role[0],
                                  share=role[1])
        if depth > 0:
            for other in self.conversions_of(v):
                self.lineage.link(node, self.version(other), g.CONVERTED,
                                  conversion=other.tags.get("conversion"))
                self.downstream(other, depth - 1)

    def conversions_of(self, v: ModelVersion) -> builtins.list[ModelVersion]:
        """Live versions of the same model tagged ``converted_from`` ``v``."""
        if v.name not in self._versions:
            self._versions[v.name] = self.reg.list(v.name)
        return [o for o in self._versions[v.name]
                if o.tags.get(CONVERTED_FROM_TAG) in (v.uri, ModelURI(v.name, v.version).short)]

    def _gate(self, gate: GateResult) -> str:
        failed = [c.get("name") for c in gate.report.get("checks", [])
                  if isinstance(c, dict) and not c.get("passed") and not c.get("skipped")]
        verdict = "passed" if gate.passed else "failed"
        against = f" vs v{gate.against}" if gate.against is not None else ""
        return self.lineage.add(g.Node(f"gate:{gate.id}", g.GATE,
                                       f"gate #{gate.id} {verdict}{against}", {
            "gate_id": gate.id, "passed": gate.passed, "against": gate.against,
            "failed_checks": failed, "created_at": gate.created_at.isoformat(),
            "created_by": gate.created_by})).id

    def _rollout(self, r: Rollout) -> str:
        events = [{"kind": e.kind, "at": e.at.isoformat(), "actor": e.actor,
                   "reason": e.reason}
                  for e in self._deployment_events(r.deployment) if e.rollout_id == r.id]
        return self.lineage.add(g.Node(f"rollout:{r.id}", g.ROLLOUT,
                                       f"rollout #{r.id} {r.strategy}: {r.status.value}", {
            "rollout_id": r.id, "deployment": r.deployment, "strategy": r.strategy,
            "status": r.status.value, "steps": r.steps, "stable": r.stable,
            "candidate": r.candidate, "reason": r.reason, "created_by": r.created_by,
            "created_at": r.created_at.isoformat(), "updated_at": r.updated_at.isoformat(),
            "events": events})).id

    def _deployment(self, name: str) -> str:
        dep = next((d for d in self._all_deployments() if d.name == name), None)
        attrs: dict[str, Any] = {"deployment": name}
        if dep is not None:
            attrs.update(model=dep.model_name, stable=dep.stable, candidate=dep.candidate,
                         mode=dep.mode.value if dep.mode else None, weight=dep.weight,
                         alias=dep.alias)
        return self.lineage.add(g.Node(f"deployment:{name}", g.DEPLOYMENT,
                                       f"deployment {name}", attrs)).id

    def _all_rollouts(self) -> builtins.list[Rollout]:
        if self._rollouts is None:
            self._rollouts = self.reg.deployments.rollouts()[::-1]  # oldest first
        return self._rollouts

    def _all_deployments(self) -> builtins.list[Deployment]:
        if self._deployments is None:
            self._deployments = self.reg.deployments.list()
        return self._deployments

    def _deployment_events(self, name: str) -> builtins.list[DeploymentEvent]:
        if name not in self._events:
            self._events[name] = self.reg.deployments.events(name)
        return self._events[name]


def serving_role(dep: Deployment, v: ModelVersion) -> tuple[str, float] | None:
    """(``stable`` | ``candidate``, share of answers in percent) if ``dep`` serves
    ``v`` now; a shadow candidate answers none (it gets copies)."""
    if dep.model_name != v.name:
        return None
    split = dep.candidate is not None and dep.mode in (Mode.CANARY, Mode.BLUEGREEN)
    if dep.stable == v.version:
        return "stable", 100.0 - dep.weight if split else 100.0
    if dep.candidate == v.version:
        return "candidate", dep.weight if split else 0.0
    return None


def _number(text: str | None) -> float | str | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text


__all__ = ["CONVERTED_FROM_TAG", "GIT_COMMIT_TAG", "MAX_DEPTH", "PIPELINE_RUN_TAG",
           "PIPELINE_TAG", "TUNE_STUDY_TAG", "TUNE_TRIAL_TAG", "TUNE_VALUE_TAG", "Builder",
           "serving_role"]
