"""The training-data check: refuse a candidate trained on data of another schema than
the champion's (``modelport gate --same-training-schema``).

It reads the dataset links both versions got at registration
(``log_model(training_data=...)``): the schemas of their training dataset versions must
list the same columns, with the same dtypes, in the same order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelport.gates.report import Check
from modelport.registry.datasets import TRAINING

if TYPE_CHECKING:
    from modelport.client import Registry
    from modelport.registry.entities import DatasetVersion, ModelVersion

NAME = "training data schema"


def _training(registry: Registry, v: ModelVersion) -> DatasetVersion | None:
    links = [link for link in registry.datasets.store.links_of_model(v.name, v.version)
             if link.role == TRAINING]
    return registry.datasets.get(links[-1].dataset_uri) if links else None


def training_schema_check(registry: Registry, candidate: ModelVersion,
                          champion: ModelVersion | None) -> Check:
    """Pass when the candidate's training dataset has the champion's schema; skipped
    without a champion or when the champion has no training dataset linked; failed when
    the candidate has none (there is nothing to vouch for it)."""
    from modelport.datasets.diff import schema_changes

    if champion is None:
        return Check(NAME, "dataset", True, None, "the champion's schema",
                     "skipped: no champion to compare with", skipped=True)
    theirs = _training(registry, champion)
    if theirs is None:
        return Check(NAME, "dataset", True, None, "the champion's schema",
                     f"skipped: {champion.uri} has no training dataset linked", skipped=True)
    expected = f"the schema of {theirs.uri}"
    ours = _training(registry, candidate)
    if ours is None:
        return Check(NAME, "dataset", False, "unknown", expected,
                     f"{candidate.uri} has no training dataset linked: register it with "
                     "training_data= to compare")
    changes = schema_changes(theirs.schema, ours.schema)
    if changes:
        return Check(NAME, "dataset", False, "different", expected,
                     f"{ours.uri} differs from {theirs.uri}: " + "; ".join(map(str, changes)))
    return Check(NAME, "dataset", True, "same", expected,
                 f"{ours.uri} has the schema of {theirs.uri}")


__all__ = ["NAME", "training_schema_check"]
