"""The ASGI app: routes for every protocol, one inference path, errors rendered at the edge.

``create_app`` builds everything from its arguments; nothing happens at import. The
inference routes are answered by ``inference.Server`` as plain ASGI (the middleware
hands them over before Starlette); Starlette routes everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from modelport import __version__
from modelport.access import Action
from modelport.errors import ModelNotReadyError, ModelportError, OverloadedError
from modelport.monitoring.labels import parse_feedback
from modelport.serving.auth import Access, Authenticator, AuthMiddleware
from modelport.serving.inference import (
    Limits,
    Server,
    Target,
    decode_body,
    match,
    parse_version,
)
from modelport.serving.metrics import ServerMetrics
from modelport.serving.middleware import Receive, Reply, Scope, ServerMiddleware
from modelport.serving.protocols import kserve_v1, mlflow, oip
from modelport.serving.repository import ModelRepository
from modelport.uri import validate_name

JSON = "application/json"
Job = Callable[[], Coroutine[Any, Any, None]]  # a task run for the app's lifetime
__all__ = ["Limits", "Server", "create_app", "decode_body"]


def _version_param(request: Request) -> int | None:
    return parse_version(request.path_params.get("version"))


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type=JSON)


def _oip_error(exc: ModelportError) -> Response:
    return Response(oip.render_error(exc.message), status_code=exc.http_status, media_type=JSON)


def _routes(server: Server) -> list[Route]:
    repo = server.repository

    def guarded(fn: Callable[[Request], Awaitable[Response]]
                ) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            try:
                name = request.path_params.get("name")
                if name is not None:
                    validate_name(name)
                return await fn(request)
            except ModelportError as exc:
                return _oip_error(exc)
        return handler

    async def live(_: Request) -> Response:
        return _json({"live": True})

    async def ready(_: Request) -> Response:
        ok = repo.ready()
        return _json({"ready": ok}, 200 if ok else 503)

    async def server_meta(_: Request) -> Response:
        return _json(oip.server_metadata(__version__))

    async def model_meta(request: Request) -> Response:
        served = repo.get(request.path_params["name"])
        version = _version_param(request)
        dep = served.current
        if version is not None:
            dep = await repo.pinned(served, version)
        if dep is None:
            return _json({"error": f"model {served.endpoint.name!r} is not ready"}, 503)
        return _json(oip.model_metadata(
            served.endpoint.name, [str(v) for v in served.versions()], dep.loaded.flavor.name,
            oip.tensor_metadata_from_schema(dep.input_schema, "input-0"),
            oip.tensor_metadata_from_schema(dep.output_schema, "output-0"),
        ))

    async def model_ready(request: Request) -> Response:
        served = repo.get(request.path_params["name"])
        version = _version_param(request)
        ok = served.ready and (version is None or version in served.versions())
        return _json({"name": served.endpoint.name, "ready": ok}, 200 if ok else 503)

    async def repo_load(request: Request) -> Response:
        served = await repo.load(request.path_params["name"])
        return _json({"name": served.endpoint.name, "versions": served.versions()})

    async def repo_index(_: Request) -> Response:
        return _json([{"name": m.endpoint.name, "version": str(m.current.version) if m.current
                       else None, "state": "READY" if m.ready else "UNAVAILABLE",
                       "reason": m.error or ""} for m in repo.models.values()])

    async def ping(_: Request) -> Response:
        ok = repo.ready()
        return Response(mlflow.ping_body(), status_code=200 if ok else 503,
                        media_type=JSON)

    async def version(_: Request) -> Response:
        return Response(mlflow.version_body(__version__), media_type=JSON)

    async def v1_status(request: Request) -> Response:
        served = repo.get(request.path_params["name"])
        return _json(kserve_v1.model_status(served.endpoint.name, served.ready),
                     200 if served.ready else 503)

    def inference(protocol: str) -> Callable[[Request], Awaitable[Response]]:
        # Only reached when the middleware did not take the request (a root_path, or a
        # path only Starlette's pattern matches): the same handler, through Starlette.
        async def handler(request: Request) -> Response:
            params = request.path_params
            target = Target(protocol, params.get("name"), params.get("version"))
            status, headers, body = await server.handle(
                target, request.scope, request.receive, request.scope.setdefault("state", {}))
            return Response(body, status_code=status, headers={
                k.decode("latin-1"): v.decode("latin-1") for k, v in headers})
        return handler

    async def feedback(request: Request) -> Response:
        served = repo.get(request.path_params["name"])
        monitoring = repo.monitoring
        if monitoring is None or monitoring.labels is None:
            raise ModelNotReadyError("monitoring is disabled on this server: no feedback "
                                     "is stored (serve.yaml monitoring.enabled)")
        labels = parse_feedback(await request.body())
        try:
            monitoring.labels.offer(served.endpoint.name, labels)
        except OverloadedError as exc:
            response = _oip_error(exc)
            response.headers["retry-after"] = str(max(1, round(exc.retry_after)))
            return response
        server.metrics.child(server.metrics.feedback, served.endpoint.name).inc(len(labels))
        return _json({"accepted": len(labels)})

    async def metrics(_: Request) -> Response:
        if repo.monitoring is not None:
            repo.monitoring.sync(server.metrics)  # the log's counters as of this scrape
        return Response(server.metrics.render(),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    g = guarded
    # The inference routes are listed for the route table (and Starlette's 405 on other
    # methods); POSTs to them are answered by the middleware's direct hand-off.
    return [
        Route("/v2/models/{name}/infer", inference("oip"), methods=["POST"]),
        Route("/predict", inference("simple"), methods=["POST"]),
        Route("/invocations", inference("mlflow"), methods=["POST"]),
        Route("/v1/models/{name}:predict", inference("kserve_v1"), methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}/infer", inference("oip"),
              methods=["POST"]),
        Route("/v2/health/live", live), Route("/v2/health/ready", ready),
        Route("/v2", server_meta),
        Route("/v2/models/{name}", g(model_meta)),
        Route("/v2/models/{name}/ready", g(model_ready)),
        Route("/v2/models/{name}/versions/{version}", g(model_meta)),
        Route("/v2/models/{name}/versions/{version}/ready", g(model_ready)),
        Route("/v2/models/{name}/feedback", g(feedback), methods=["POST"]),
        Route("/v2/repository/index", g(repo_index), methods=["POST"]),
        Route("/v2/repository/models/{name}/load", g(repo_load), methods=["POST"]),
        Route("/ping", ping), Route("/health", ping), Route("/version", version),
        Route("/v1/models/{name}", g(v1_status)),
        Route("/metrics", metrics),
    ]


def create_app(repository: ModelRepository, *, limits: Limits | None = None,
               metrics: ServerMetrics | None = None,
               routes: Sequence[BaseRoute] = (),
               background: Sequence[Job] = (),
               auth: Authenticator | None = None,
               body_limits: Sequence[tuple[str, int]] = ()) -> ServerMiddleware:
    """The ASGI app serving ``repository`` (started on app startup, drained on shutdown).

    ``routes`` are mounted beside the server's own (the CLI adds the dashboard this way,
    so serving knows nothing of it); each of ``background`` runs as a task for the app's
    lifetime and is cancelled at shutdown. With ``auth``, every route but health needs a
    bearer token (``serving.auth``). ``body_limits`` are (path prefix, bytes) caps that
    replace ``limits.max_body_bytes`` for those paths (the control plane's uploads).
    """
    server = Server(repository, metrics or repository.metrics or ServerMetrics(),
                    limits or Limits())
    if repository.metrics is None:
        repository.metrics = server.metrics

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await repository.start()
        tasks = [asyncio.create_task(job()) for job in background]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await repository.stop()

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        message = "not found" if status == 404 else "method not allowed"
        return _json({"error": f"{message}: {request.method} {request.url.path}"}, status)

    app = Starlette(routes=[*_routes(server), *routes], lifespan=lifespan,
                    exception_handlers={404: not_found, 405: not_found})
    # No 307 to the path without its trailing slash: a hostile name ("../") must get its
    # 400/404, not a redirect that echoes it back.
    app.router.redirect_slashes = False

    def direct(scope: Scope, receive: Receive, state: dict[str, Any]) -> Awaitable[Reply] | None:
        target = match(scope)
        if target is None:
            return None
        if auth is None:
            return server.handle(target, scope, receive, state)
        # /predict and /invocations answer with the default model: that is what they need.
        access = Access(Action.PREDICT, target.name or repository.default or "")
        return auth.guard(scope, state, access,
                          lambda: server.handle(target, scope, receive, state))

    inner = app if auth is None else AuthMiddleware(app, auth, lambda: repository.default)
    return ServerMiddleware(inner, max_body_bytes=server.limits.max_body_bytes, direct=direct,
                            body_limits=body_limits)
