"""Which model versions the server holds, and how it follows the registry.

The repository is a reconciler: each endpoint names a model URI (``iris@champion``,
``iris/3``, ``iris``); the repository makes what it serves match what the registry
says that URI means, polling the registry and hot-swapping when an alias moves. A
swap loads and warms the new version beside the old one, switches atomically, lets
the old one drain its queue, then frees it: no request is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from modelport.client import Registry
from modelport.errors import ModelNotFoundError, ModelNotReadyError, ModelportError
from modelport.registry.entities import ModelVersion
from modelport.serving.batcher import BatcherClosedError
from modelport.serving.deployment import BatchingConfig, Deployment
from modelport.serving.metrics import ServerMetrics
from modelport.serving.types import InferenceRequest, InferenceResponse
from modelport.uri import ModelURI, parse_uri

log = logging.getLogger("modelport.serving")
MAX_PINNED_VERSIONS = 3  # explicitly addressed versions kept loaded per endpoint


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
    """An endpoint's current deployment, plus versions addressed explicitly."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.current: Deployment | None = None
        self.pinned: OrderedDict[int, Deployment] = OrderedDict()
        self.error: str | None = None
        self.lock = asyncio.Lock()

    @property
    def ready(self) -> bool:
        """Loaded and warmed."""
        return self.current is not None

    def versions(self) -> list[int]:
        """Versions loaded now (current first)."""
        out = [self.current.version] if self.current else []
        return out + [v for v in self.pinned if v not in out]


class ModelRepository:
    """All endpoints of one server process, kept in step with the registry."""

    def __init__(self, registry: Registry, endpoints: list[Endpoint],
                 metrics: ServerMetrics | None = None, poll_interval: float = 1.0) -> None:
        names = [e.name for e in endpoints]
        if len(set(names)) != len(names):
            raise ModelportError(f"two endpoints share a name: {names}")
        self.registry = registry
        self.models = {e.name: ServedModel(e) for e in endpoints}
        self.metrics = metrics
        self.poll_interval = poll_interval
        self._watcher: asyncio.Task[None] | None = None

    @property
    def default(self) -> str | None:
        """The endpoint ``/predict`` and ``/invocations`` use: the first one."""
        return next(iter(self.models), None)

    def ready(self) -> bool:
        """True when every endpoint is loaded and warmed."""
        return all(m.ready for m in self.models.values())

    def get(self, name: str) -> ServedModel:
        """The endpoint ``name`` (404 if this server does not serve it)."""
        try:
            return self.models[name]
        except KeyError:
            raise ModelNotFoundError(f"model {name!r} is not served here") from None

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Follow the registry in the background: load every endpoint, then keep in step.

        The server answers (live, not ready) while models load; an endpoint that fails
        to load is retried every poll and reports why on its ready and index routes.
        """
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def wait_ready(self, timeout: float) -> bool:
        """Wait until every endpoint is ready, or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while not self.ready() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.ready()

    async def stop(self) -> None:
        """Stop following the registry and drain every deployment."""
        if self._watcher:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for served in self.models.values():
            deps = [d for d in [served.current, *served.pinned.values()] if d is not None]
            served.current = None
            served.pinned.clear()
            for dep in deps:
                await dep.close()

    async def _watch(self) -> None:
        frozen = False
        while True:
            await asyncio.gather(*(self._reconcile_logged(n) for n in list(self.models)))
            if not frozen and self.ready():
                # Models, libraries and caches loaded so far live as long as the server:
                # move them out of the cyclic GC's sight. Otherwise each full collection
                # walks ~200k objects and stalls every request for 100+ ms (the serving
                # benchmark's p99). Later swaps are rare and are not frozen, so a retired
                # version's memory is still reclaimed.
                gc.collect()
                gc.freeze()
                frozen = True
            await asyncio.sleep(self.poll_interval)

    async def _reconcile_logged(self, name: str) -> None:
        try:
            await self.reconcile(name)
        except ModelportError as exc:  # keep serving the last known state
            log.error("reconciling %s failed: %s; still serving what it had", name, exc)
        except Exception:
            log.exception("reconciling %s failed; still serving what it had", name)

    async def reconcile(self, name: str) -> bool:
        """Make endpoint ``name`` serve what its URI resolves to now; True if it changed."""
        served = self.get(name)
        try:
            wanted = await asyncio.to_thread(self.registry.get, served.endpoint.uri)
        except ModelportError as exc:
            if served.current is None:
                served.error = str(exc)
            raise
        if served.current is not None and served.current.version == wanted.version:
            return False
        async with served.lock:
            if served.current is not None and served.current.version == wanted.version:
                return False
            await self._swap(served, wanted)
        return True

    async def _load(self, served: ServedModel, version: ModelVersion) -> Deployment:
        started = time.perf_counter()
        uri = f"models:/{version.name}/{version.version}"
        loaded = await asyncio.to_thread(
            self.registry.load_model, uri, trusted=served.endpoint.trusted
        )
        dep = Deployment(served.endpoint.name, loaded, served.endpoint.batching, self.metrics)
        await asyncio.to_thread(dep.warm)
        if self.metrics is not None:
            labels = (served.endpoint.name, str(version.version))
            self.metrics.load_time.labels(*labels).set(time.perf_counter() - started)
            self.metrics.loaded.labels(*labels).set(1)
        log.info("loaded %s as %s version %d in %.3fs", uri, served.endpoint.name,
                 version.version, time.perf_counter() - started)
        return dep

    async def _swap(self, served: ServedModel, version: ModelVersion) -> None:
        try:
            new = served.pinned.pop(version.version, None) or await self._load(served, version)
        except ModelportError as exc:
            served.error = f"loading {version.uri} failed: {exc}"
            log.error("%s; still serving %s", served.error,
                      served.current.version if served.current else "nothing")
            raise
        old, served.current = served.current, new  # the switch: one assignment
        served.error = None
        if old is not None:
            await self._retire(served, old)

    async def _retire(self, served: ServedModel, dep: Deployment) -> None:
        await dep.close()  # drains: every request already queued on it is answered
        if self.metrics is not None:
            self.metrics.loaded.labels(served.endpoint.name, str(dep.version)).set(0)

    async def pinned(self, served: ServedModel, version: int) -> Deployment:
        """The deployment of an explicitly addressed version, loaded on first use."""
        if served.current is not None and served.current.version == version:
            return served.current
        if version in served.pinned:
            served.pinned.move_to_end(version)
            return served.pinned[version]
        async with served.lock:
            if version not in served.pinned:
                uri = ModelURI(served.endpoint.uri.name, version=version)
                mv = await asyncio.to_thread(self.registry.get, uri)
                served.pinned[version] = await self._load(served, mv)
                while len(served.pinned) > MAX_PINNED_VERSIONS:
                    _, evicted = served.pinned.popitem(last=False)
                    await self._retire(served, evicted)
        return served.pinned[version]

    # -- requests -----------------------------------------------------------------------

    async def infer(self, request: InferenceRequest) -> InferenceResponse:
        """Route a request to the version it names, or to the endpoint's current one."""
        served = self.get(request.model)
        while True:
            if request.version is not None:
                dep = await self.pinned(served, request.version)
            elif served.current is None:
                raise ModelNotReadyError(
                    f"model {request.model!r} is not ready"
                    + (f": {served.error}" if served.error else " (loading)")
                )
            else:
                dep = served.current
            try:
                return await dep.infer(request)
            except BatcherClosedError:
                continue  # swapped out between lookup and submit: go to the new one

    async def load(self, name: str) -> ServedModel:
        """Re-resolve and (re)load endpoint ``name`` now (the OIP repository API)."""
        await self.reconcile(name)
        return self.get(name)
