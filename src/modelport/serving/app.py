"""The ASGI app: routes for every protocol, one inference path, errors rendered at the edge.

``create_app`` builds everything from its arguments; nothing happens at import.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from modelport import __version__
from modelport.errors import (
    InvalidInputError,
    ModelportError,
    OverloadedError,
    PayloadTooLargeError,
    RequestTimeoutError,
    UnsupportedMediaTypeError,
)
from modelport.serving.metrics import ServerMetrics
from modelport.serving.middleware import ServerMiddleware
from modelport.serving.protocols import kserve_v1, mlflow, oip, simple
from modelport.serving.repository import ModelRepository
from modelport.serving.types import InferenceRequest, InferenceResponse
from modelport.uri import validate_name

log = logging.getLogger("modelport.serving")
JSON = "application/json"

Parse = Callable[[bytes], InferenceRequest]
Render = Callable[[InferenceResponse, InferenceRequest], tuple[bytes, dict[str, str]]]


@dataclass(frozen=True)
class Limits:
    """Request limits enforced before any model runs."""

    max_body_bytes: int = 16 * 1024 * 1024
    max_rows: int = 100_000
    request_timeout: float = 30.0


@dataclass
class Server:
    """What the route handlers share: the repository, metrics and limits."""

    repository: ModelRepository
    metrics: ServerMetrics
    limits: Limits = field(default_factory=Limits)

    def error_body(self, exc: ModelportError, request_id: str) -> str:
        """The message a client sees: precise for 4xx, fixed for 5xx (details are logged)."""
        if exc.http_status >= 500 and exc.http_status not in (503, 504):
            return f"internal server error (request id {request_id})"
        return exc.message

    async def run(self, request: Request, protocol: str, parse: Parse, render: Render,
                  render_error: Callable[[str], bytes]) -> Response:
        """Read, parse, infer, render: the one inference path every protocol shares."""
        started = time.perf_counter()
        request_id = request.state.request_id
        model, version, status = "_unknown", "", 200
        headers: dict[str, str] = {}
        try:
            body = decode_body(await request.body(), request.headers.get("content-encoding"),
                               self.limits.max_body_bytes)
            ireq = parse(body)
            if ireq.inputs and ireq.rows > self.limits.max_rows:
                raise PayloadTooLargeError(
                    f"the request has {ireq.rows:,} rows; this server takes at most "
                    f"{self.limits.max_rows:,} per request"
                )
            if ireq.model in self.repository.models:
                model = ireq.model
            request.state.model = ireq.model
            if ireq.id is None:
                ireq.id = request_id
            ireq.headers = request.scope["headers"]  # the router may read a sticky header
            inflight = self.metrics.child(self.metrics.inflight, model)
            inflight.inc()
            try:
                async with asyncio.timeout(self.limits.request_timeout):
                    response = await self.repository.infer(ireq)
            except TimeoutError:
                raise RequestTimeoutError(
                    f"the request took longer than {self.limits.request_timeout:g}s"
                ) from None
            finally:
                inflight.dec()
            version = str(response.version)
            request.state.version = version
            content, headers = render(response, ireq)
            headers = {**headers, "x-model-version": version}
        except ModelportError as exc:
            status = exc.http_status
            if status >= 500 and status not in (503, 504):
                log.error("request %s failed: %s", request_id, exc, exc_info=exc.__cause__)
            content = render_error(self.error_body(exc, request_id))
            headers = {"content-type": JSON}
            if isinstance(exc, OverloadedError):
                headers["retry-after"] = str(max(1, round(exc.retry_after)))
        except ClientDisconnect:
            # The client hung up before sending its whole body (a dropped connection, a
            # client-side timeout). Not a server fault: no traceback, no 5xx in the access
            # log or metrics; 499 as nginx records it. Nobody is left to read the answer.
            log.info("request %s: client disconnected before sending its body", request_id)
            status = 499
            content = render_error("client disconnected before sending the whole body")
            headers = {"content-type": JSON}
        except Exception:
            log.exception("request %s: unexpected error", request_id)
            status = 500
            content = render_error(f"internal server error (request id {request_id})")
            headers = {"content-type": JSON}
        self.metrics.child(self.metrics.requests, model, version, protocol, str(status)).inc()
        if status == 200:
            self.metrics.child(self.metrics.latency, model, version).observe(
                time.perf_counter() - started)
        media = headers.pop("content-type", JSON)
        return Response(content, status_code=status, headers=headers, media_type=media)


def decode_body(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo gzip/deflate Content-Encoding, refusing output beyond ``limit`` (bombs)."""
    if encoding is None or encoding.strip().lower() in ("", "identity"):
        return body
    kind = encoding.strip().lower()
    if kind not in ("gzip", "deflate"):
        raise UnsupportedMediaTypeError(
            f"Content-Encoding {encoding[:40]!r} is not supported; use gzip, deflate or none"
        )
    # wbits: 16+ for gzip framing, 15 for zlib (what HTTP "deflate" means in practice).
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if kind == "gzip" else zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInputError(f"the body is not valid {kind} data: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLargeError(
            f"the decompressed body exceeds the limit of {limit:,} bytes"
        )
    if not inflater.eof:
        raise InvalidInputError(f"the {kind} body is truncated")
    return out


def _version_param(request: Request) -> int | None:
    raw = request.path_params.get("version")
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9 or int(raw) < 1:
        raise InvalidInputError(f"invalid model version {raw[:20]!r}: expected a positive number")
    return int(raw)


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

    async def oip_infer(request: Request) -> Response:
        name = request.path_params["name"]
        version = _version_param(request)
        raw_len = request.headers.get("inference-header-content-length")
        if raw_len is not None and not raw_len.isdigit():
            raise InvalidInputError("Inference-Header-Content-Length must be a number")
        header_length = int(raw_len) if raw_len is not None else None
        return await server.run(
            request, "oip",
            lambda body: oip.parse_infer(body, model=name, version=version,
                                         header_length=header_length),
            oip.render_infer, oip.render_error,
        )

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

    def default_model() -> str:
        name = repo.default
        if name is None:
            raise InvalidInputError("this server serves no model")
        return name

    async def invocations(request: Request) -> Response:
        ctype = request.headers.get("content-type")
        return await server.run(
            request, "mlflow",
            lambda body: mlflow.parse_invocations(body, ctype, model=default_model(),
                                                  max_rows=server.limits.max_rows),
            lambda resp, _req: (mlflow.render_predictions(resp), {}), mlflow.render_error,
        )

    async def v1_status(request: Request) -> Response:
        served = repo.get(request.path_params["name"])
        return _json(kserve_v1.model_status(served.endpoint.name, served.ready),
                     200 if served.ready else 503)

    async def v1_predict(request: Request) -> Response:
        name = request.path_params["name"]
        return await server.run(
            request, "kserve_v1",
            lambda body: kserve_v1.parse_predict(body, model=name,
                                                 max_rows=server.limits.max_rows),
            lambda resp, _req: (kserve_v1.render_predict(resp), {}), kserve_v1.render_error,
        )

    async def simple_predict(request: Request) -> Response:
        return await server.run(
            request, "simple",
            lambda body: simple.parse_predict(body, model=default_model(),
                                              max_rows=server.limits.max_rows),
            lambda resp, _req: (simple.render_predict(resp), {}), oip.render_error,
        )

    async def metrics(_: Request) -> Response:
        return Response(server.metrics.render(),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    g = guarded
    # Starlette matches routes in order: the inference routes come first so the hot path
    # does not try a dozen patterns before its own.
    return [
        Route("/v2/models/{name}/infer", g(oip_infer), methods=["POST"]),
        Route("/predict", g(simple_predict), methods=["POST"]),
        Route("/invocations", g(invocations), methods=["POST"]),
        Route("/v1/models/{name}:predict", g(v1_predict), methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}/infer", g(oip_infer), methods=["POST"]),
        Route("/v2/health/live", live), Route("/v2/health/ready", ready),
        Route("/v2", server_meta),
        Route("/v2/models/{name}", g(model_meta)),
        Route("/v2/models/{name}/ready", g(model_ready)),
        Route("/v2/models/{name}/versions/{version}", g(model_meta)),
        Route("/v2/models/{name}/versions/{version}/ready", g(model_ready)),
        Route("/v2/repository/index", g(repo_index), methods=["POST"]),
        Route("/v2/repository/models/{name}/load", g(repo_load), methods=["POST"]),
        Route("/ping", ping), Route("/health", ping), Route("/version", version),
        Route("/v1/models/{name}", g(v1_status)),
        Route("/metrics", metrics),
    ]


def create_app(repository: ModelRepository, *, limits: Limits | None = None,
               metrics: ServerMetrics | None = None) -> ServerMiddleware:
    """The ASGI app serving ``repository`` (started on app startup, drained on shutdown)."""
    server = Server(repository, metrics or repository.metrics or ServerMetrics(),
                    limits or Limits())
    if repository.metrics is None:
        repository.metrics = server.metrics

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await repository.start()
        try:
            yield
        finally:
            await repository.stop()

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        message = "not found" if status == 404 else "method not allowed"
        return _json({"error": f"{message}: {request.method} {request.url.path}"}, status)

    app = Starlette(routes=_routes(server), lifespan=lifespan,
                    exception_handlers={404: not_found, 405: not_found})
    return ServerMiddleware(app, max_body_bytes=server.limits.max_body_bytes)
