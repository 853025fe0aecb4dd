"""The lineage questions users ask: the graph around a version or a dataset, which
deployed versions were trained on a dataset, and what an endpoint serves came from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelport.errors import NotFoundError
from modelport.lineage import build as b
from modelport.lineage.graph import Lineage
from modelport.registry.datasets import TRAINING
from modelport.uri import ModelURI, is_dataset_uri, parse_dataset_uri

if TYPE_CHECKING:
    from modelport.client import Registry
    from modelport.registry.entities import ModelVersion


def of_version(registry: Registry, uri: str) -> Lineage:
    """Upstream and downstream of the model version ``uri`` points to (a version,
    an alias or a name: its newest version)."""
    version = registry.get(uri)
    lineage = Lineage(version.uri)
    builder = b.Builder(registry, lineage)
    builder.upstream(version)
    builder.downstream(version)
    return lineage


def of_dataset(registry: Registry, uri: str) -> Lineage:
    """A dataset version, the model versions linked to it (with how they were made)
    and everything downstream of them."""
    dataset = registry.datasets.get(uri)
    lineage = Lineage(dataset.uri)
    builder = b.Builder(registry, lineage)
    builder.dataset(dataset)
    for link in registry.datasets.models(dataset):
        version = registry.get(ModelURI(link.model, version=link.model_version))
        builder.upstream(version, depth=0)
        builder.downstream(version)
    return lineage


def of_uri(registry: Registry, uri: str) -> Lineage:
    """:func:`of_dataset` for ``datasets:/...``, else :func:`of_version`."""
    return of_dataset(registry, uri) if is_dataset_uri(uri) else of_version(registry, uri)


def deployed_on(registry: Registry, uri: str, *, role: str = TRAINING
                ) -> list[dict[str, Any]]:
    """The model versions a deployment serves now that were trained (``role``) on the
    dataset ``uri``, or converted from one that was. A bare ``datasets:/NAME`` asks about
    every version of the dataset, not only the newest."""
    parsed = parse_dataset_uri(uri)
    builder = b.Builder(registry, Lineage(str(parsed)))
    found: dict[str, tuple[ModelVersion, str, str | None]] = {}
    queue: list[tuple[ModelVersion, str, str | None]] = []
    for link in registry.datasets.models(parsed, role=role):
        try:
            queue.append((registry.get(ModelURI(link.model, version=link.model_version)),
                          link.dataset_uri, None))
        except NotFoundError:
            continue
    while queue:
        version, dataset, via = queue.pop(0)
        if version.uri in found:
            continue
        found[version.uri] = (version, dataset, via)
        queue.extend((c, dataset, version.uri) for c in builder.conversions_of(version))
    deployments = registry.deployments.list()
    out = []
    for version, dataset, via in found.values():
        serving = [{"deployment": d.name, "role": r[0], "share": r[1]}
                   for d in deployments if (r := b.serving_role(d, version)) is not None]
        if serving:
            out.append({"model_version": version.uri, "dataset": dataset, "role": role,
                        "converted_from": via, "aliases": list(version.aliases),
                        "deployments": serving})
    return out


def endpoint_lineage(registry: Registry, endpoint: str, model: str | None = None
                     ) -> dict[str, Any]:
    """Where each version an endpoint serves came from: its deployment's stable and
    candidate, else the aliased versions of ``model`` (default: the endpoint's name)."""
    dep = registry.deployments.find(endpoint)
    picks: list[tuple[ModelURI, str]] = []
    if dep is not None:
        model = dep.model_name
        if dep.stable is not None:
            picks.append((ModelURI(model, version=dep.stable), "stable"))
        if dep.candidate is not None:
            picks.append((ModelURI(model, version=dep.candidate),
                          dep.mode.value if dep.mode else "candidate"))
    else:
        model = model or endpoint
        try:
            aliases = registry.get_model(model).aliases
        except NotFoundError:
            aliases = {}
        picks = [(ModelURI(model, version=v), f"@{a}") for a, v in aliases.items()]
    versions = []
    for uri, role in picks:
        try:
            versions.append({"role": role, **version_summary(registry, registry.get(uri))})
        except NotFoundError:
            continue
    return {"endpoint": endpoint, "model": model, "versions": versions}


def version_summary(registry: Registry, v: ModelVersion) -> dict[str, Any]:
    """One version's origin in a few fields: datasets, pipeline run, tuning trial,
    conversion source and newest gate verdict."""
    datasets = []
    for link in registry.datasets.store.links_of_model(v.name, v.version):
        ds = registry.datasets.get(link.dataset_uri)
        datasets.append({"uri": ds.uri, "role": link.role, "rows": ds.rows,
                         "columns": len(ds.schema)})
    gate = registry.records.latest_gate(v.name, v.version)
    tags = v.tags
    return {
        "uri": v.uri, "version": v.version, "datasets": datasets,
        "pipeline_run": ({"id": tags[b.PIPELINE_RUN_TAG], "pipeline": tags.get(b.PIPELINE_TAG),
                          "git_commit": tags.get(b.GIT_COMMIT_TAG)}
                         if b.PIPELINE_RUN_TAG in tags else None),
        "tuning": ({"study": tags[b.TUNE_STUDY_TAG], "trial": tags.get(b.TUNE_TRIAL_TAG),
                    "value": tags.get(b.TUNE_VALUE_TAG)} if b.TUNE_STUDY_TAG in tags else None),
        "converted_from": tags.get(b.CONVERTED_FROM_TAG),
        "gate": None if gate is None else {"id": gate.id, "passed": gate.passed,
                                           "at": gate.created_at.isoformat()},
    }


__all__ = ["deployed_on", "endpoint_lineage", "of_dataset", "of_uri", "of_version",
           "version_summary"]
