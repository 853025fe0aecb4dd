"""Which model versions the server holds, and how it follows the registry.

The repository is a reconciler. Each endpoint names a model URI (``iris@champion``,
``iris/3``, ``iris``); when the registry holds a deployment with the endpoint's name,
that desired state governs instead: its ``stable`` version, and its ``candidate`` with
a mode (shadow, canary, blue-green). Deployments are polled often (one indexed query
for every endpoint), aliases less often.

Each endpoint has a keeper task that converges what is loaded to what is desired: it
loads and warms a version beside the ones serving, then switches the endpoint's
``Route`` (one assignment), then lets versions no longer wanted drain their queues and
frees them. No request is dropped. Changes that need no load (a weight, a candidate
removed, a candidate promoted to stable) switch the route at once, in the poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelport.client import Registry
from modelport.errors import ModelNotFoundError, ModelNotReadyError, ModelportError
from modelport.serving.batcher import BatcherClosedError
from modelport.serving.deployment import Deployment
from modelport.serving.desired import DeploymentWatcher, plan_route
from modelport.serving.endpoint import Endpoint, ServedModel
from modelport.serving.metrics import ServerMetrics
from modelport.serving.monitor import Monitoring, Watched
from modelport.serving.router import Route, Router
from modelport.serving.shadow import Shadow
from modelport.serving.traffic import TrafficCounters
from modelport.serving.types import InferenceRequest, InferenceResponse
from modelport.uri import ModelURI

if TYPE_CHECKING:
    from modelport.artifacts.signing import VerifyKeys

log = logging.getLogger("modelport.serving")
MAX_PINNED_VERSIONS = 3  # explicitly addressed versions kept loaded per endpoint


class ModelRepository:
    """All endpoints of one server process, kept in step with the registry."""

    def __init__(self, registry: Registry, endpoints: list[Endpoint],
                 metrics: ServerMetrics | None = None, poll_interval: float = 1.0, *,
                 deployment_poll_interval: float = 0.2, report_interval: float = 0.25,
                 retry_interval: float = 3.0, router: Router | None = None,
                 server_id: str | None = None, monitoring: Monitoring | None = None,
                 verify_keys: VerifyKeys | None = None) -> None:
        names = [e.name for e in endpoints]
        if len(set(names)) != len(names):
            raise ModelportError(f"two endpoints share a name: {names}")
        self.registry = registry
        self.metrics = metrics
        self.poll_interval = poll_interval
        self.retry_interval = retry_interval
        self.router = router or Router()
        self.traffic = TrafficCounters(self._report, server_id=server_id,
                                       interval=report_interval)
        self.models = {e.name: ServedModel(e, self.traffic.endpoint(e.name)) for e in endpoints}
        self.watcher = DeploymentWatcher(registry, deployment_poll_interval)
        self.monitoring = monitoring  # None: no prediction log, no feedback route
        # The signature policy: with keys, a version not signed by one is never loaded
        # (the check comes before its bytes are read); the endpoint keeps what it had.
        self.verify_keys = verify_keys
        self.predictions = monitoring.predictions if monitoring is not None else None
        self.shadow = Shadow(metrics, self.predictions)
        self._tasks: list[asyncio.Task[None]] = []
        self._frozen = False

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

    def _report(self, server_id: str, endpoint: str, stats: Mapping[int, dict[str, Any]]
                ) -> None:
        self.registry.records.report_traffic(server_id, endpoint, stats)

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Follow the registry in the background: load every endpoint, then keep in step.

        The server answers (live, not ready) while models load; a version that fails to
        load is retried every ``retry_interval`` and reports why on the ready and index
        routes (and, as its traffic state, in the registry).
        """
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._start_following()),
                       loop.create_task(self.traffic.run())]
        if self.monitoring is not None and self.metrics is not None:
            self._tasks.append(loop.create_task(
                self.monitoring.run(self.metrics, self.watched)))

    def watched(self) -> list[Watched]:
        """Each endpoint's serving stable version and its reference profile."""
        found = []
        for name, served in self.models.items():
            stable = served.route.stable
            found.append(Watched(name, stable.version if stable else None,
                                 stable.loaded.reference_profile if stable else None))
        return found

    async def _start_following(self) -> None:
        # The desired state first: a server (re)starting mid-rollout loads what the
        # registry wants, not what the alias said a moment ago.
        await self._poll_deployments()
        loop = asyncio.get_running_loop()
        self._tasks += [loop.create_task(self._keep(s)) for s in self.models.values()]
        self._tasks.append(loop.create_task(self._follow_deployments()))
        await self._follow_aliases()

    async def wait_ready(self, timeout: float) -> bool:
        """Wait until every endpoint is ready, or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while not self.ready() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.ready()

    async def stop(self) -> None:
        """Stop following the registry, drain every deployment, report counters."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self.shadow.drain()
        for served in self.models.values():
            deps = {id(d): d for d in [*served.loaded.values(), *served.pinned.values()]}
            served.route = Route(None)
            served.loaded.clear()
            served.pinned.clear()
            for dep in deps.values():
                await dep.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):  # the registry may be down: do not hang
                await self.traffic.flush()
        if self.monitoring is not None:
            await asyncio.to_thread(self.monitoring.close)

    async def _follow_deployments(self) -> None:
        while True:
            await asyncio.sleep(self.watcher.interval)
            await self._poll_deployments()

    async def _poll_deployments(self) -> None:
        changed = await self.watcher.poll(self.models)
        for name in changed:
            served = self.models[name]
            self._apply_route(served)  # what needs no load happens now
            served.wake.set()

    async def _follow_aliases(self) -> None:
        while True:
            await asyncio.gather(*(self._resolve_alias(s) for s in self.models.values()))
            await asyncio.sleep(self.poll_interval)

    async def _resolve_alias(self, served: ServedModel, *, force: bool = False) -> None:
        if not served.follows_alias():
            return
        try:
            wanted = await asyncio.to_thread(self.registry.get, served.endpoint.uri)
        except Exception as exc:  # keep serving the last known state
            if served.route.stable is None:
                served.error = str(exc)
            log.error("resolving %s failed: %s; still serving what it had",
                      served.endpoint.uri, exc)
            if force:
                raise
            return
        if wanted.version != served.alias_version:
            served.alias_version = wanted.version
            served.wake.set()

    async def _keep(self, served: ServedModel) -> None:
        """The endpoint's keeper: converge whenever woken, and retry failed loads."""
        while True:
            retries = [at for at, _ in served.failed.values()]
            wait = max(0.05, min(retries) - time.monotonic()) if retries else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await served.wake.wait()
            served.wake.clear()
            try:
                await self._converge(served)
            except Exception:
                log.exception("reconciling %s failed; still serving what it had",
                              served.endpoint.name)
            self._freeze_once()

    def _freeze_once(self) -> None:
        if not self._frozen and self.ready():
            # Models, libraries and caches loaded so far live as long as the server:
            # move them out of the cyclic GC's sight. Otherwise each full collection
            # walks ~200k objects and stalls every request for 100+ ms (the serving
            # benchmark's p99). Later swaps are rare and are not frozen, so a retired
            # version's memory is still reclaimed.
            gc.collect()
            gc.freeze()
            self._frozen = True

    async def reconcile(self, name: str) -> bool:
        """Make endpoint ``name`` serve what the registry says now; True if its stable
        version changed. Raises why if the stable version cannot be loaded."""
        served = self.get(name)
        await self._poll_deployments()
        await self._resolve_alias(served, force=True)
        before = served.route.stable
        await self._converge(served, force=True)
        stable, _ = served.targets()
        if stable is not None and stable in served.failed:
            raise served.failed[stable][1]
        return served.route.stable is not before

    async def _converge(self, served: ServedModel, *, force: bool = False) -> None:
        async with served.lock:
            self._apply_route(served)
            for gone in set(served.failed) - set(served.targets()):
                del served.failed[gone]  # no longer wanted: no more retries
            for which in (0, 1):  # stable first; re-read targets: a load takes a while
                version = served.targets()[which]
                if version is not None and version not in served.loaded:
                    await self._bring_up(served, version, force=force)
                    self._apply_route(served)
            await self._retire_unrouted(served)

    def _apply_route(self, served: ServedModel) -> None:
        stable, candidate = served.targets()
        route = plan_route(served.route, served.loaded, served.desired, stable, candidate,
                           served.endpoint.name)
        if route != served.route:
            served.route = route  # the switch: one assignment
            log.info("%s: stable %s, candidate %s", served.endpoint.name,
                     route.stable.version if route.stable else None,
                     f"{route.candidate.version} ({route.mode}, {route.weight:g}%)"
                     if route.candidate else None)

    async def _bring_up(self, served: ServedModel, version: int, *, force: bool) -> None:
        retry = served.failed.get(version)
        if retry is not None and not force and time.monotonic() < retry[0]:
            return
        counter = served.traffic.version(version)
        counter.set_state("loading")
        try:
            dep = served.pinned.pop(version, None)
            if dep is None:
                uri = ModelURI(served.endpoint.uri.name, version=version)
                mv = await asyncio.to_thread(self.registry.get, uri)
                dep = await self._load(served, mv.name, mv.version)
        except ModelportError as exc:
            self._failed(served, version, exc)
            return
        except Exception as exc:  # a crash while loading or warming up
            log.exception("loading %s/%d crashed", served.endpoint.uri.name, version)
            self._failed(served, version, ModelportError(f"{type(exc).__name__}: {exc}"))
            return
        served.failed.pop(version, None)
        served.loaded[version] = dep
        served.error = None
        counter.set_state("ready")

    def _failed(self, served: ServedModel, version: int, exc: ModelportError) -> None:
        message = f"loading {served.endpoint.uri.name}/{version} failed: {exc}"
        served.failed[version] = (time.monotonic() + self.retry_interval, exc)
        served.traffic.version(version).set_state("failed", message)
        if served.route.stable is None:
            served.error = message
        log.error("%s; still serving %s (retry in %gs)", message,
                  served.route.versions() or "nothing", self.retry_interval)

    async def _load(self, served: ServedModel, model: str, version: int) -> Deployment:
        started = time.perf_counter()
        uri = f"models:/{model}/{version}"
        loaded = await asyncio.to_thread(
            self.registry.load_model, uri, trusted=served.endpoint.trusted,
            require_signature_keys=self.verify_keys,
        )
        dep = Deployment(served.endpoint.name, loaded, served.endpoint.batching, self.metrics)
        try:
            await asyncio.to_thread(dep.warm)
        except BaseException:
            await dep.close()
            raise
        if self.metrics is not None:
            labels = (served.endpoint.name, str(version))
            self.metrics.load_time.labels(*labels).set(time.perf_counter() - started)
            self.metrics.loaded.labels(*labels).set(1)
        log.info("loaded %s as %s version %d in %.3fs", uri, served.endpoint.name,
                 version, time.perf_counter() - started)
        return dep

    async def _retire_unrouted(self, served: ServedModel) -> None:
        route = served.route
        for version, dep in list(served.loaded.items()):
            if dep is not route.stable and dep is not route.candidate:
                del served.loaded[version]
                await self._retire(served, dep)
                served.traffic.version(version).set_state("unloaded")

    async def _retire(self, served: ServedModel, dep: Deployment) -> None:
        await dep.close()  # drains: every request already queued on it is answered
        if self.metrics is not None:
            self.metrics.loaded.labels(served.endpoint.name, str(dep.version)).set(0)

    async def pinned(self, served: ServedModel, version: int) -> Deployment:
        """The deployment of an explicitly addressed version, loaded on first use."""
        if version in served.loaded:
            return served.loaded[version]
        if version in served.pinned:
            served.pinned.move_to_end(version)
            return served.pinned[version]
        async with served.lock:
            if version in served.loaded:
                return served.loaded[version]
            if version not in served.pinned:
                uri = ModelURI(served.endpoint.uri.name, version=version)
                mv = await asyncio.to_thread(self.registry.get, uri)
                served.pinned[version] = await self._load(served, mv.name, mv.version)
                while len(served.pinned) > MAX_PINNED_VERSIONS:
                    _, evicted = served.pinned.popitem(last=False)
                    await self._retire(served, evicted)
        return served.pinned[version]

    # -- requests -----------------------------------------------------------------------

    async def infer(self, request: InferenceRequest) -> InferenceResponse:
        """Route a request to the version it names, or split it between stable and
        candidate; count it against the version that answered."""
        served = self.get(request.model)
        if request.version is not None:  # a versioned URL bypasses the split
            while True:
                dep = await self.pinned(served, request.version)
                started = time.perf_counter()
                try:
                    response = await dep.infer(request)
                    if self.predictions is not None:
                        stable = served.route.stable
                        self._log(served, request, response, dep, started,
                                  "stable" if dep is stable or stable is None else "candidate")
                    return response
                except BatcherClosedError:
                    continue
                except ModelportError as exc:
                    exc.details.setdefault("version", dep.version)
                    raise
        while True:
            route = served.route
            stable = route.stable
            if stable is None:
                raise ModelNotReadyError(
                    f"model {request.model!r} is not ready"
                    + (f": {served.error}" if served.error else " (loading)")
                )
            dep = stable
            if route.candidate is not None and self.router.to_candidate(route, request.headers):
                dep = route.candidate
            counter = served.traffic.version(dep.version)
            started = time.perf_counter()
            try:
                response = await dep.infer(request)
            except BatcherClosedError:
                continue  # swapped out between lookup and submit: go to the new one
            except BaseException as exc:
                counter.record(time.perf_counter() - started, False)
                if isinstance(exc, ModelportError):
                    # So the edge labels the failure with the version that failed (the
                    # Prometheus analysis tells a failing candidate from its stable).
                    exc.details.setdefault("version", dep.version)
                raise
            outputs = response.outputs
            counter.record(time.perf_counter() - started, True,
                           outputs[0].data if outputs else None)
            if self.predictions is not None:
                self._log(served, request, response, dep, started,
                          "stable" if dep is stable else "candidate")
            if route.candidate is not None and route.shadow:
                self.shadow.send(route.candidate, served.traffic.version(route.candidate.version),
                                 request, outputs)
            return response

    def _log(self, served: ServedModel, request: InferenceRequest,
             response: InferenceResponse, dep: Deployment, started: float,
             variant: str) -> None:
        # References only: the log's writer thread does every conversion. A logging
        # failure must never fail the answer it logs.
        assert self.predictions is not None
        try:
            self.predictions.offer(served.endpoint.name, request.id or "", dep.version,
                                   variant, request.inputs, response.outputs,
                                   (time.perf_counter() - started) * 1000.0, dep.input_schema)
        except Exception:
            log.exception("logging request %s failed; answered anyway", request.id)

    async def load(self, name: str) -> ServedModel:
        """Re-resolve and (re)load endpoint ``name`` now (the OIP repository API)."""
        await self.reconcile(name)
        return self.get(name)


__all__ = ["Endpoint", "ModelRepository", "ServedModel"]
