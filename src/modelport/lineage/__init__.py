"""Lineage: where a model version came from and where it went.

dataset → tuning study / pipeline run → model version → gates → rollouts →
deployments, built on demand from what the registry records (dataset links, tags,
gate results, rollouts and their events, deployments). ``of_uri`` gives the graph
around a version or a dataset; ``deployed_on`` answers the reverse question, which
deployed versions were trained on a dataset. Read-only.
"""

from modelport.lineage.graph import Edge, Lineage, Node
from modelport.lineage.queries import (
    deployed_on,
    endpoint_lineage,
    of_dataset,
    of_uri,
    of_version,
    version_summary,
)

__all__ = ["Edge", "Lineage", "Node", "deployed_on", "endpoint_lineage", "of_dataset",
           "of_uri", "of_version", "version_summary"]
