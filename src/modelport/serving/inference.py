"""The inference routes as plain ASGI: read, parse, infer, render, one reply.

These four routes are the server's hot path. Starlette's request and response objects,
its router and its exception middlewares cost more per request than everything else a
small model's request does, so ``ServerMiddleware`` hands these paths to
``Server.handle`` directly; every other route stays on Starlette (``app.py``). A reply
is ``(status, headers, body)``, sent by the middleware as one start and one body.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import ClientDisconnect

from modelport.errors import (
    InvalidInputError,
    ModelportError,
    OverloadedError,
    PayloadTooLargeError,
    RequestTimeoutError,
    UnsupportedMediaTypeError,
)
from modelport.serving.deadlines import Deadlines
from modelport.serving.metrics import ServerMetrics
from modelport.serving.middleware import Receive, Reply, Scope
from modelport.serving.protocols import kserve_v1, mlflow, oip, simple
from modelport.serving.repository import ModelRepository
from modelport.serving.types import InferenceRequest, InferenceResponse
from modelport.uri import validate_name

log = logging.getLogger("modelport.serving")
JSON = b"application/json"

Parse = Callable[[bytes], InferenceRequest]
Render = Callable[[InferenceResponse, InferenceRequest], tuple[bytes, dict[str, str]]]


@dataclass(frozen=True)
class Limits:
    """Request limits enforced before any model runs."""

    max_body_bytes: int = 16 * 1024 * 1024
    max_rows: int = 100_000
    request_timeout: float = 30.0


@dataclass(slots=True)
class Target:
    """What an inference path names: its protocol, and the model and version in it.

    ``number`` and ``checked`` are filled once the name and version have been validated
    (``check``): ``match`` hands the same checked Target to every request on a valid path
    it has seen, so a busy path is parsed and validated once, not per request.
    """

    protocol: str
    name: str | None = None
    version: str | None = None
    number: int | None = None  # ``version`` as a validated number
    checked: bool = False

    def check(self) -> None:
        """Validate the name and version (a 400 naming the fault), once."""
        if not self.checked:
            assert self.name is not None
            validate_name(self.name)
            self.number = parse_version(self.version)
            self.checked = True


_READ_HEADERS = frozenset({b"content-type", b"content-encoding",
                           b"inference-header-content-length"})
_PREDICT = Target("simple", checked=True)
_INVOCATIONS = Target("mlflow", checked=True)
# Paths name models, so a server sees few of them; the cap keeps a client inventing
# paths from growing the cache (past it, new paths just get a fresh Target each time).
_TARGETS: dict[str, Target] = {}
MAX_CACHED_TARGETS = 1024


def match(scope: Scope) -> Target | None:
    """The inference route a request is for, or None (Starlette then routes it).

    Same patterns as the Starlette routes they shadow (a ``{name}`` is ``[^/]+``).
    """
    if scope["method"] != "POST" or scope.get("root_path"):
        return None
    path: str = scope["path"]
    if path == "/predict":
        return _PREDICT
    if path == "/invocations":
        return _INVOCATIONS
    target = _TARGETS.get(path)
    if target is None:
        target = _parse_path(path)
        if target is not None and len(_TARGETS) < MAX_CACHED_TARGETS:
            try:
                target.check()
            except InvalidInputError:  # not cached: each request gets its own 400
                return target
            _TARGETS[path] = target
    return target


def _parse_path(path: str) -> Target | None:
    if path.startswith("/v2/models/") and path.endswith("/infer"):
        parts = path[11:-6].split("/")
        if len(parts) == 1 and parts[0]:
            return Target("oip", parts[0])
        if len(parts) == 3 and parts[1] == "versions" and parts[0] and parts[2]:
            return Target("oip", parts[0], parts[2])
        return None
    if path.startswith("/v1/models/") and path.endswith(":predict"):
        name = path[11:-8]
        if name and "/" not in name:
            return Target("kserve_v1", name)
    return None


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body, refused once it passes ``limit`` bytes (chunked uploads)."""
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnect
    body: bytes = message.get("body", b"")
    if len(body) > limit:
        raise PayloadTooLargeError(f"request body exceeds the limit of {limit:,} bytes")
    if not message.get("more_body", False):
        return body
    chunks, seen = [body], len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > limit:
            raise PayloadTooLargeError(f"request body exceeds the limit of {limit:,} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def parse_version(raw: str | None) -> int | None:
    """A version from a path (None if the path names none), or a 400."""
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9 or int(raw) < 1:
        raise InvalidInputError(f"invalid model version {raw[:20]!r}: expected a positive number")
    return int(raw)


def _reply(status: int, body: bytes, content_type: bytes = JSON,
           extra: list[tuple[bytes, bytes]] | None = None) -> Reply:
    headers = extra or []
    headers += [(b"content-length", str(len(body)).encode()), (b"content-type", content_type)]
    return status, headers, body


@dataclass
class Server:
    """What the inference routes share: the repository, metrics and limits."""

    repository: ModelRepository
    metrics: ServerMetrics
    limits: Limits = field(default_factory=Limits)
    deadlines: Deadlines = field(init=False)

    def __post_init__(self) -> None:
        self.deadlines = Deadlines(self.limits.request_timeout)

    def error_body(self, exc: ModelportError, request_id: str) -> str:
        """The message a client sees: precise for 4xx, fixed for 5xx (details are logged)."""
        if exc.http_status >= 500 and exc.http_status not in (503, 504):
            return f"internal server error (request id {request_id})"
        return exc.message

    def default_model(self) -> str:
        """The model ``/predict`` and ``/invocations`` answer with."""
        name = self.repository.default
        if name is None:
            raise InvalidInputError("this server serves no model")
        return name

    def _protocol(self, target: Target, headers: dict[bytes, str]
                  ) -> tuple[Parse, Render, Callable[[str], bytes]]:
        """The parse, render and error render of ``target``'s protocol (400s raised here
        are answered without touching metrics, as a bad path is not a request)."""
        max_rows = self.limits.max_rows
        if target.protocol == "simple":
            return (lambda body: simple.parse_predict(body, model=self.default_model(),
                                                      max_rows=max_rows),
                    _render_simple, oip.render_error)
        if target.protocol == "mlflow":
            ctype = headers.get(b"content-type")
            return (lambda body: mlflow.parse_invocations(body, ctype, model=self.default_model(),
                                                          max_rows=max_rows),
                    _render_mlflow, mlflow.render_error)
        name = target.name
        assert name is not None
        target.check()
        if target.protocol == "kserve_v1":
            return (lambda body: kserve_v1.parse_predict(body, model=name, max_rows=max_rows),
                    _render_kserve_v1, kserve_v1.render_error)
        version = target.number
        raw_len = headers.get(b"inference-header-content-length")
        if raw_len is not None and not (raw_len.isascii() and raw_len.isdigit()):
            raise InvalidInputError("Inference-Header-Content-Length must be a number")
        length = int(raw_len) if raw_len is not None else None
        return (lambda body: oip.parse_infer_body(body, model=name, version=version,
                                                  header_length=length),
                oip.render_infer, oip.render_error)

    async def handle(self, target: Target, scope: Scope, receive: Receive,
                     state: dict[str, str]) -> Reply:
        """Answer one inference request; never raises (every failure is a reply)."""
        started = time.perf_counter()
        request_id = state["request_id"]
        headers: dict[bytes, str] = {}
        for key, value in scope["headers"]:
            # The first of repeated headers, as Starlette reads them.
            if key in _READ_HEADERS and key not in headers:
                headers[key] = value.decode("latin-1")
        try:
            parse, render, render_error = self._protocol(target, headers)
        except ModelportError as exc:
            return _reply(exc.http_status, oip.render_error(exc.message))
        model, version, status = "_unknown", "", 200
        extra: list[tuple[bytes, bytes]] = []
        media = JSON
        try:
            body = await read_body(receive, self.limits.max_body_bytes)
            ireq = parse(decode_body(body, headers.get(b"content-encoding"),
                                     self.limits.max_body_bytes))
            if ireq.inputs and ireq.rows > self.limits.max_rows:
                raise PayloadTooLargeError(
                    f"the request has {ireq.rows:,} rows; this server takes at most "
                    f"{self.limits.max_rows:,} per request"
                )
            if ireq.model in self.repository.models:
                model = ireq.model
            state["model"] = ireq.model
            if ireq.id is None:
                ireq.id = request_id
            ireq.headers = scope["headers"]  # the router may read a sticky header
            response = await self._infer(ireq, model)
            version = str(response.version)
            state["version"] = version
            content, rendered = render(response, ireq)
            for key, value in rendered.items():
                if key.lower() == "content-type":
                    media = value.encode("latin-1")
                else:
                    extra.append((key.lower().encode("latin-1"), value.encode("latin-1")))
            extra.append((b"x-model-version", version.encode("latin-1")))
        except ModelportError as exc:
            status = exc.http_status
            version = str(exc.details.get("version", ""))  # set once a version was chosen
            if status >= 500 and status not in (503, 504):
                log.error("request %s failed: %s", request_id, exc, exc_info=exc.__cause__)
            content, media, extra = render_error(self.error_body(exc, request_id)), JSON, []
            if isinstance(exc, OverloadedError):
                extra.append((b"retry-after", str(max(1, round(exc.retry_after))).encode()))
        except ClientDisconnect:
            # The client hung up before sending its whole body (a dropped connection, a
            # client-side timeout). Not a server fault: no traceback, no 5xx in the access
            # log or metrics; 499 as nginx records it. Nobody is left to read the answer.
            log.info("request %s: client disconnected before sending its body", request_id)
            status = 499
            content = render_error("client disconnected before sending the whole body")
            media, extra = JSON, []
        except Exception:
            log.exception("request %s: unexpected error", request_id)
            status = 500
            content = render_error(f"internal server error (request id {request_id})")
            media, extra = JSON, []
        tallies = self.metrics.deployment(model, version)
        tallies.answered(target.protocol, status)
        if status == 200:
            tallies.latency.observe(time.perf_counter() - started)
        return _reply(status, content, media, extra)

    async def _infer(self, ireq: InferenceRequest, model: str) -> InferenceResponse:
        inflight = self.metrics.inflight_of(model)
        inflight.inc()
        deadline = self.deadlines.start()
        try:
            return await self.repository.infer(ireq)
        except asyncio.CancelledError:
            if deadline.done():  # cancelled by the timeout, not by a shutdown
                raise RequestTimeoutError(
                    f"the request took longer than {self.limits.request_timeout:g}s"
                ) from None
            raise
        finally:
            deadline.done()
            inflight.dec()


def _render_simple(response: InferenceResponse, _: InferenceRequest
                   ) -> tuple[bytes, dict[str, str]]:
    return simple.render_predict(response), {}


def _render_mlflow(response: InferenceResponse, _: InferenceRequest
                   ) -> tuple[bytes, dict[str, str]]:
    return mlflow.render_predictions(response), {}


def _render_kserve_v1(response: InferenceResponse, _: InferenceRequest
                      ) -> tuple[bytes, dict[str, str]]:
    return kserve_v1.render_predict(response), {}


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
