"""What runs in each replica of ``modelport serve --engine ray``: the factory's app, held
out of Ray Serve's rotation until it is warm, answering through Ray's proxy.

Nothing here imports Ray: a replica's app is plain ASGI, the one a ``--workers``
process serves, wrapped twice for the proxy in front of it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from modelport.serving.middleware import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("modelport.serving")

# A replica keeps out of the proxy's rotation until its models are loaded and warmed, at
# most this long (a version that cannot load): then it joins and answers 503 until ready.
READY_WAIT_SECONDS = 300.0
_PROBE_PATH = "/v2/health/ready"


class WarmStart:
    """ASGI wrapper: completes the lifespan startup only once the app answers ready.

    Ray Serve sends requests to a replica as soon as its ASGI startup completes. Holding
    that completion back until ``/v2/health/ready`` answers 200 keeps a replica that is
    still loading (at start, or one the autoscaler adds) out of the rotation, so readiness
    through the proxy means the replicas in it have their models loaded and warmed. After
    ``wait`` seconds it completes anyway, and the replica answers 503 until ready, as a
    local server does.
    """

    def __init__(self, app: ASGIApp, wait: float = READY_WAIT_SECONDS,
                 interval: float = 0.1) -> None:
        self.app = app
        self.wait = wait
        self.interval = interval

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_when_ready(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                await self._until_ready()
            await send(message)

        await self.app(scope, receive, send_when_ready)

    async def _until_ready(self) -> None:
        deadline = time.monotonic() + self.wait
        while not await self._ready():
            if time.monotonic() >= deadline:
                log.warning("replica joins before it is ready (not within %gs): it "
                            "answers 503 until its models load", self.wait)
                return
            await asyncio.sleep(self.interval)

    async def _ready(self) -> bool:
        """Ask the app itself, as the proxy would: the same answer, no second code path."""
        status = 0

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])

        # No access line per probe: nothing else reaches the app until startup completes.
        access = logging.getLogger("modelport.access")
        was, access.disabled = access.disabled, True
        try:
            await self.app(_probe_scope(), receive, send)
        finally:
            access.disabled = was
        return status == 200


class OneRequestId:
    """ASGI wrapper: drops the app's ``X-Request-ID`` response header.

    Ray Serve's proxy gives every request an ``X-Request-ID`` (the client's, or a new
    uuid), which the app adopts, and adds it to every response itself: the app's copy
    would send the same header twice.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_once(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [(k, v) for k, v in message.get("headers", [])
                                      if k.lower() != b"x-request-id"]
            await send(message)

        await self.app(scope, receive, send_once)


def _probe_scope() -> Scope:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": _PROBE_PATH,
            "raw_path": _PROBE_PATH.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"x-request-id", b"ray-replica-warmup")],
            "client": None, "server": None, "state": {}}


def replica_builder(factory: Callable[[], ASGIApp], setup: Callable[[], None] | None,
                    wait: float) -> Callable[[], ASGIApp]:
    """What each replica calls once to get its app (pickled to the replicas by value)."""
    def build() -> ASGIApp:
        if setup is not None:
            setup()
        return WarmStart(OneRequestId(factory()), wait)
    return build


__all__ = ["READY_WAIT_SECONDS", "OneRequestId", "WarmStart", "replica_builder"]
