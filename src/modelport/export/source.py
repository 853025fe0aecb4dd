"""What a build packs: the version an ENDPOINT_OR_URI names, and the name it serves under.

A URI (``iris/3``, ``iris@champion``, ``models:/iris/latest``) names a version and is
served under the model's name. A bare name is an endpoint: its deployment's stable
version, served under the endpoint's name, so a client of the live endpoint calls the
container the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelport.client import Registry
from modelport.errors import DeploymentNotFoundError, InvalidInputError, ModelNotFoundError
from modelport.flavors import get_flavor
from modelport.registry.entities import ModelVersion
from modelport.uri import parse_uri, validate_name

_SLUG_BAD = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class Source:
    """The resolved version, how it was named, and its served (endpoint) name."""

    version: ModelVersion
    endpoint: str
    given: str
    alias: str | None = None

    @property
    def uri(self) -> str:
        """The pinned URI, ``models:/NAME/VERSION``."""
        return self.version.uri

    @property
    def runs_code(self) -> bool:
        """Whether loading the version executes code from its artifact."""
        return get_flavor(self.version.flavor).runs_code

    @property
    def slug(self) -> str:
        """The endpoint name as a Kubernetes / image name: lowercase ``[a-z0-9-]``, at
        most 50 characters (room for suffixes), starting and ending alphanumeric."""
        return slug(self.endpoint)


def slug(name: str) -> str:
    """``name`` as a DNS-1123 label fragment (``Fraud_V2.x`` → ``fraud-v2-x``)."""
    text = _SLUG_BAD.sub("-", name.lower()).strip("-")[:50].strip("-")
    return text or "model"


def resolve(registry: Registry, target: str) -> Source:
    """The version behind ``target``: a URI, or an endpoint with a deployment.

    NotFoundError (exit 3) when the model, version, alias or endpoint does not exist or
    the endpoint serves nothing yet.
    """
    if not isinstance(target, str) or not target.strip():
        raise InvalidInputError("give an endpoint name or a model URI such as iris@champion")
    if _is_uri(target):
        uri = parse_uri(target)
        version = registry.get(uri)
        return Source(version, version.name, target, uri.alias)
    validate_name(target, "endpoint name")
    deployment = registry.deployments.find(target)
    if deployment is None:
        hint = _model_hint(registry, target)
        raise DeploymentNotFoundError(
            f"no deployment named {target!r}{hint}", name=target)
    if deployment.stable is None:
        raise DeploymentNotFoundError(
            f"deployment {target!r} has no stable version yet: nothing to build",
            name=target)
    version = registry.store.get_version(deployment.model_name, deployment.stable)
    return Source(version, deployment.name, target)


def _is_uri(target: str) -> bool:
    return target.startswith("models:/") or "/" in target or "@" in target


def _model_hint(registry: Registry, name: str) -> str:
    try:
        model = registry.get_model(name)
    except ModelNotFoundError:
        return " (and no model of that name either)"
    if model.latest_version is None:
        return ""
    return (f"; {name!r} is a model: give a version URI such as {name}/"
            f"{model.latest_version} or {name}@ALIAS")
