"""A served endpoint: the name and URI it follows, and its state in one process.

``ServedModel`` holds what requests see (the ``Route``), the versions loaded for it,
versions addressed explicitly (pinned), and what the registry wants (the deployment,
or the version the URI resolves to).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field

from modelport.errors import ModelportError
from modelport.registry.entities import Deployment as DesiredState
from modelport.serving.deployment import BatchingConfig, Deployment
from modelport.serving.router import Route
from modelport.serving.traffic import EndpointTraffic
from modelport.uri import ModelURI, parse_uri


@dataclass(frozen=True)
class Endpoint:
    """One served name and the model URI it follows."""

    name: str
    uri: ModelURI
    trusted: bool = False
    batching: BatchingConfig = field(default_factory=BatchingConfig)

    @classmethod
    def from_uri(cls, uri: str, *, name: str | None = None, trusted: bool = False,
                 batching: BatchingConfig | None = None) -> Endpoint:
        """``models:/iris@champion`` is served as ``iris`` unless ``name`` says otherwise."""
        parsed = parse_uri(uri)
        return cls(name or parsed.name, parsed, trusted, batching or BatchingConfig())


class ServedModel:
    """An endpoint: its route (stable and candidate), loaded and pinned versions."""

    def __init__(self, endpoint: Endpoint, traffic: EndpointTraffic) -> None:
        self.endpoint = endpoint
        self.traffic = traffic
        self.route = Route(None)
        self.loaded: dict[int, Deployment] = {}  # what the route may use, by version
        self.pinned: OrderedDict[int, Deployment] = OrderedDict()
        self.desired: DesiredState | None = None  # the registry's deployment, if any
        self.alias_version: int | None = None  # what the endpoint's URI resolves to
        self.failed: dict[int, tuple[float, ModelportError]] = {}  # retry after, why
        self.error: str | None = None
        self.lock = asyncio.Lock()
        self.wake = asyncio.Event()

    @property
    def model_name(self) -> str:
        """The registered model this endpoint serves versions of."""
        return self.endpoint.uri.name

    @property
    def current(self) -> Deployment | None:
        """The stable deployment answering requests (None until one is loaded)."""
        return self.route.stable

    @property
    def ready(self) -> bool:
        """Loaded and warmed."""
        return self.route.stable is not None

    def versions(self) -> list[int]:
        """Versions loaded now (stable first, then the candidate, then pinned ones)."""
        out = self.route.versions()
        return out + [v for v in self.pinned if v not in out]

    def targets(self) -> tuple[int | None, int | None]:
        """The (stable, candidate) versions this endpoint should serve."""
        d = self.desired
        stable = d.stable if d is not None and d.stable is not None else self.alias_version
        candidate = d.candidate if d is not None and d.mode is not None else None
        return stable, (candidate if candidate != stable else None)

    def follows_alias(self) -> bool:
        """Whether the endpoint's URI (not a deployment) says what stable is."""
        return self.desired is None or self.desired.stable is None


__all__ = ["Endpoint", "ServedModel"]
