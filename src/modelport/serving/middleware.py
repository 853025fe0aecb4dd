"""ASGI middleware: request ids, the body-size cap, and the JSON access log.

Written as plain ASGI (not Starlette's BaseHTTPMiddleware) so it adds no task or
buffering per request, and so the body cap can refuse a chunked upload while it is
still arriving instead of after it was read whole.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from modelport.errors import PayloadTooLargeError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("modelport.access")
_REQUEST_ID_RE = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


class ServerMiddleware:
    """Adds ``X-Request-ID``, caps bodies at ``max_body_bytes``, logs one JSON line each."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = _header(scope, b"x-request-id")
        # Echo a client's id only if it is plain: anything else could smuggle headers
        # or log lines, so it is replaced, not escaped.
        if incoming is not None and _REQUEST_ID_RE.fullmatch(incoming):
            request_id = incoming.decode()
        else:
            request_id = uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status_holder = [500]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await self._too_large(send_with_id, request_id, declared)
        else:
            await self.app(scope, self._capped(receive), send_with_id)
        self._log(scope, status_holder[0], started, request_id)

    def _capped(self, receive: Receive) -> Receive:
        seen = 0
        limit = self.max_body_bytes

        async def capped_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLargeError(
                        f"request body exceeds the limit of {limit:,} bytes"
                    )
            return message

        return capped_receive

    async def _too_large(self, send: Send, request_id: str, declared: bytes) -> None:
        if declared.isdigit():
            msg = f"request body of {int(declared):,} bytes exceeds the limit of " \
                  f"{self.max_body_bytes:,} bytes"
        else:
            msg = "invalid Content-Length header"
        status = 413 if declared.isdigit() else 400
        body = orjson.dumps({"error": msg})
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _log(scope: Scope, status: int, started: float, request_id: str) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        state = scope.get("state", {})
        access_log.info(orjson.dumps({
            "ts": time.time(), "request_id": request_id, "method": scope.get("method"),
            "path": scope.get("path"), "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "model": state.get("model"), "version": state.get("version"),
            "client": (scope.get("client") or [None])[0],
        }).decode())
