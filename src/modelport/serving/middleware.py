"""ASGI middleware: request ids, the body-size cap, the JSON access log, and the hand-off
of inference routes to a plain-ASGI handler.

Written as plain ASGI (not Starlette's BaseHTTPMiddleware) so it adds no task or
buffering per request, and so the body cap can refuse a chunked upload while it is
still arriving instead of after it was read whole.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import orjson

from modelport.errors import PayloadTooLargeError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Reply = tuple[int, list[tuple[bytes, bytes]], bytes]  # status, headers, body
# Called for every HTTP request: an awaitable reply if the request is the handler's to
# answer (it reads the body from receive itself), else None and the app answers.
Direct = Callable[[Scope, Receive, dict[str, Any]], Awaitable[Reply] | None]

access_log = logging.getLogger("modelport.access")
_REQUEST_ID_RE = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


class ServerMiddleware:
    """Adds ``X-Request-ID``, caps bodies at ``max_body_bytes``, logs one JSON line each.

    Requests ``direct`` claims are answered from its reply with one start and one body
    message; the others go to ``app`` through a ``send`` that adds the request id.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, direct: Direct | None = None,
                 body_limits: Sequence[tuple[str, int]] = ()) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # (path prefix, cap) pairs replacing ``max_body_bytes`` for the paths they start:
        # uploads to a mounted route may be far larger than any inference request.
        self.body_limits = tuple(body_limits)
        self.direct = direct
        # Request ids: 32 hex digits, a random per-process prefix and a counter. As unique
        # as uuid4 within and across workers, at a fraction of its cost per request.
        self._id_prefix = secrets.token_hex(8)
        self._ids = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = declared = None
        for key, value in scope["headers"]:
            if key == b"x-request-id" and incoming is None:
                incoming = bytes(value)
            elif key == b"content-length" and declared is None:
                declared = bytes(value)
        # Echo a client's id only if it is plain: anything else could smuggle headers
        # or log lines, so it is replaced, not escaped.
        if incoming is not None and _REQUEST_ID_RE.fullmatch(incoming):
            request_id = incoming.decode()
            raw_id = incoming
        else:
            request_id = f"{self._id_prefix}{next(self._ids):016x}"
            raw_id = request_id.encode()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        limit = self._limit(scope["path"]) if self.body_limits else self.max_body_bytes
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            status = await self._too_large(send, raw_id, declared, limit)
        else:
            reply = self.direct(scope, receive, state) if self.direct is not None else None
            if reply is not None:
                status, headers, body = await reply
                headers.append((b"x-request-id", raw_id))
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
            else:
                status = await self._to_app(scope, receive, send, raw_id, limit)
        if access_log.isEnabledFor(logging.INFO):
            self._log(scope, status, started, request_id)

    def _limit(self, path: str) -> int:
        for prefix, limit in self.body_limits:
            if path.startswith(prefix):
                return limit
        return self.max_body_bytes

    async def _to_app(self, scope: Scope, receive: Receive, send: Send, raw_id: bytes,
                      limit: int) -> int:
        status_holder = [500]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", raw_id))
                message["headers"] = headers
            await send(message)

        await self.app(scope, self._capped(receive, limit), send_with_id)
        return status_holder[0]

    @staticmethod
    def _capped(receive: Receive, limit: int) -> Receive:
        seen = 0

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

    @staticmethod
    async def _too_large(send: Send, raw_id: bytes, declared: bytes, limit: int) -> int:
        if declared.isdigit():
            msg = f"request body of {int(declared):,} bytes exceeds the limit of " \
                  f"{limit:,} bytes"
        else:
            msg = "invalid Content-Length header"
        status = 413 if declared.isdigit() else 400
        body = orjson.dumps({"error": msg})
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"), (b"x-request-id", raw_id)]})
        await send({"type": "http.response.body", "body": body})
        return status

    @staticmethod
    def _log(scope: Scope, status: int, started: float, request_id: str) -> None:
        state = scope.get("state", {})
        access_log.info(orjson.dumps({
            "ts": time.time(), "request_id": request_id, "method": scope.get("method"),
            "path": scope.get("path"), "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "model": state.get("model"), "version": state.get("version"),
            "client": (scope.get("client") or [None])[0], "token": state.get("token"),
        }).decode())
