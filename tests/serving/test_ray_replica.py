"""A replica's app wrappers on the real app (real SQLite registry, a real model; no Ray):
startup completes only once warm, and only the proxy sets X-Request-ID."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from modelport.client import Registry
from modelport.serving.config import load_spec
from modelport.serving.ray_replica import OneRequestId, WarmStart
from modelport.serving.server import build_app


async def _lifespan(app: Any) -> tuple[asyncio.Task[None], asyncio.Queue[Any],
                                       asyncio.Queue[Any]]:
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    outbox: asyncio.Queue[Any] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"},
                                    "state": {}}, inbox.get, outbox.put))
    return task, inbox, outbox


async def _ready(app: Any) -> int:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://replica") as client:
        return (await client.get("/v2/health/ready")).status_code


def _spec(home: Path, uri: str) -> Any:
    spec = load_spec(None, [uri])
    return spec.model_copy(update={"home": str(home), "poll_interval": 0.2})


def test_startup_completes_only_once_the_models_are_warm(home: Path,
                                                          sqlite_registry: Registry) -> None:
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(0).normal(size=(40, 3))
    sqlite_registry.log_model(LogisticRegression().fit(X, X[:, 0] > 0), "m",
                              input_example=X[:5])
    app = WarmStart(build_app(_spec(home, "m/1")), wait=60.0, interval=0.02)

    async def scenario() -> tuple[int, int]:
        task, inbox, outbox = await _lifespan(app)
        started = await asyncio.wait_for(outbox.get(), 60)
        assert started["type"] == "lifespan.startup.complete"
        ready = await _ready(app)  # the very first request after startup: ready
        await inbox.put({"type": "lifespan.shutdown"})
        stopped = await outbox.get()
        await task
        return ready, stopped["type"] == "lifespan.shutdown.complete"

    assert asyncio.run(scenario()) == (200, True)


def test_a_model_that_cannot_load_joins_unready_after_the_wait(home: Path,
                                                              sqlite_registry: Registry
                                                              ) -> None:
    app = WarmStart(build_app(_spec(home, "missing/1")), wait=0.3, interval=0.02)

    async def scenario() -> int:
        task, inbox, outbox = await _lifespan(app)
        started = await asyncio.wait_for(outbox.get(), 30)
        assert started["type"] == "lifespan.startup.complete"
        ready = await _ready(app)
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task
        return ready

    assert asyncio.run(scenario()) == 503


def test_the_proxy_alone_sets_the_request_id_header(home: Path,
                                                    sqlite_registry: Registry) -> None:
    app = build_app(_spec(home, "missing/1"))

    async def live(target: Any) -> httpx.Response:
        transport = httpx.ASGITransport(app=target)
        async with httpx.AsyncClient(transport=transport, base_url="http://replica") as c:
            return await c.get("/v2/health/live", headers={"x-request-id": "from-ray"})

    assert asyncio.run(live(app)).headers.get_list("x-request-id") == ["from-ray"]
    wrapped = asyncio.run(live(OneRequestId(app)))
    assert wrapped.status_code == 200 and wrapped.json() == {"live": True}
    assert "x-request-id" not in wrapped.headers  # Ray's proxy adds it, once
