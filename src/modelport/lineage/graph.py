"""A lineage graph: nodes (datasets, runs, versions, gates, rollouts, deployments) and
directed edges that follow the data: dataset → model version → gate / rollout →
deployment.

Node ids are stable and readable: a URI for datasets and model versions
(``datasets:/churn/3``, ``models:/churn/7``), ``KIND:KEY`` for the rest
(``gate:12``, ``rollout:4``, ``deployment:churn``, ``pipeline_run:<id>``,
``tune_study:<name>``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DATASET = "dataset"
MODEL_VERSION = "model_version"
PIPELINE_RUN = "pipeline_run"
TUNE_STUDY = "tune_study"
GATE = "gate"
ROLLOUT = "rollout"
DEPLOYMENT = "deployment"
KINDS = (DATASET, PIPELINE_RUN, TUNE_STUDY, MODEL_VERSION, GATE, ROLLOUT, DEPLOYMENT)

# Edge relations, read "source RELATION target".
TRAINED = "training"  # dataset → model version it trained
EVALUATED = "eval"  # dataset → model version evaluated on it
PRODUCED = "produced"  # pipeline run → model version it registered
TRIAL = "trial"  # tuning study → model version of one of its trials
CONVERTED = "converted"  # source version → its conversion
GATED = "gated"  # model version → gate result
CANDIDATE = "candidate"  # model version → rollout it was the candidate of
ROLLED_OUT = "rolled_out"  # rollout → deployment it ran on
SERVES = "serves"  # model version → deployment serving it now (stable or candidate)
UPSTREAM = (TRAINED, EVALUATED, PRODUCED, TRIAL, CONVERTED)


@dataclass(frozen=True)
class Node:
    """One thing in the lineage: its id, kind, a short label and its facts."""

    id: str
    kind: str
    label: str
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return {"id": self.id, "kind": self.kind, "label": self.label, **self.attrs}


@dataclass(frozen=True)
class Edge:
    """``source`` → ``target`` by ``relation`` (facts of the link itself in ``attrs``)."""

    source: str
    target: str
    relation: str
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return {"source": self.source, "target": self.target, "relation": self.relation,
                **self.attrs}


@dataclass
class Lineage:
    """The graph around one root node (a model version or a dataset version)."""

    root: str
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def add(self, node: Node) -> Node:
        """Add ``node`` unless one with its id is there; return the one kept."""
        return self.nodes.setdefault(node.id, node)

    def link(self, source: str, target: str, relation: str, **attrs: Any) -> None:
        """Add an edge (once per source, target and relation)."""
        if not any(e.source == source and e.target == target and e.relation == relation
                   for e in self.edges):
            self.edges.append(Edge(source, target, relation, attrs))

    def incoming(self, node_id: str) -> list[Edge]:
        """Edges into ``node_id``, in the order they were added."""
        return [e for e in self.edges if e.target == node_id]

    def outgoing(self, node_id: str) -> list[Edge]:
        """Edges out of ``node_id``, in the order they were added."""
        return [e for e in self.edges if e.source == node_id]

    def to_dict(self) -> dict[str, Any]:
        """``{"root", "nodes": [...], "edges": [...]}``: nodes in insertion order."""
        return {"root": self.root, "nodes": [n.to_dict() for n in self.nodes.values()],
                "edges": [e.to_dict() for e in self.edges]}


__all__ = ["CANDIDATE", "CONVERTED", "DATASET", "DEPLOYMENT", "EVALUATED", "GATE", "GATED",
           "KINDS", "MODEL_VERSION", "PIPELINE_RUN", "PRODUCED", "ROLLED_OUT", "ROLLOUT",
           "SERVES", "TRAINED", "TRIAL", "TUNE_STUDY", "UPSTREAM", "Edge", "Lineage", "Node"]
