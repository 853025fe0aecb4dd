"""The ASGI app in process (no models loaded): limits and errors rendered at the edge."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest

from modelport.client import Registry
from modelport.serving.app import Limits, create_app
from modelport.serving.repository import ModelRepository


@pytest.fixture
def app(sqlite_registry: Registry):
    return create_app(ModelRepository(sqlite_registry, []),
                      limits=Limits(max_body_bytes=4096, max_rows=10))


def _post(app, path: str, body: bytes, **headers: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(path, content=body, headers=headers)

    return asyncio.run(go())


def _oip(rows: int) -> bytes:
    return orjson.dumps({"inputs": [{"name": "input-0", "shape": [rows, 1], "datatype": "FP64",
                                     "data": [0.0] * rows}]})


def test_too_many_rows_is_413_on_every_protocol(app) -> None:
    r = _post(app, "/v2/models/iris/infer", _oip(11))
    assert r.status_code == 413
    assert "at most 10" in r.json()["error"]
    r = _post(app, "/v1/models/iris:predict", orjson.dumps({"instances": [[1.0]] * 11}))
    assert r.status_code == 413


def test_declared_oversized_body_is_refused_before_reading(app) -> None:
    r = _post(app, "/v2/models/iris/infer", b"x" * 5000)
    assert r.status_code == 413
    assert "exceeds the limit of 4,096 bytes" in r.json()["error"]


def test_unknown_model_and_route(app) -> None:
    r = _post(app, "/v2/models/iris/infer", _oip(2))
    assert r.status_code == 404
    assert r.json() == {"error": "model 'iris' is not served here"}
    r = _post(app, "/nope", b"{}")
    assert r.status_code == 404
    assert r.json()["error"].startswith("not found")
    assert len(r.headers["x-request-id"]) == 32


def test_inference_routes_also_answer_through_starlette(app) -> None:
    # Under a root_path the middleware leaves routing to Starlette: same handler, same answer.
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, root_path="/api")
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/api/v2/models/iris/infer", content=_oip(2))

    r = asyncio.run(go())
    assert r.status_code == 404
    assert r.json() == {"error": "model 'iris' is not served here"}
    assert len(r.headers["x-request-id"]) == 32
    r = _post(app, "/predict", b"{}")  # the direct path: no model served
    assert r.status_code == 400 and r.json() == {"error": "this server serves no model"}
