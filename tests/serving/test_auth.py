"""Auth in process: a real registry with real tokens, a real ModelRepository serving two
models, the real app and middleware over ASGI. 401 for a missing or bad token, 403 for
one outside its role or models with no hint of which models exist, 404 only in scope,
health open, /metrics and /dashboard switches, rate limits and brute-force limits
(driven by a fake clock, not by sleeping), and a revocation seen after the cache time."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from modelport.access import Action
from modelport.client import Registry
from modelport.registry.schema import tokens as tokens_t
from modelport.registry.times import utcnow
from modelport.serving.app import create_app
from modelport.serving.auth import (
    AUTHENTICATED,
    FLEET_READ,
    Access,
    AuthConfig,
    Authenticator,
    route_access,
)
from modelport.serving.metrics import ServerMetrics
from modelport.serving.repository import Endpoint, ModelRepository
from modelport.serving.router import Router

X = np.random.default_rng(7).normal(size=(40, 2))
ROW = orjson.dumps({"inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP64",
                                "data": [0.1, 0.2]}]})


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    """The app with auth, its authenticator's clock, and token values by name."""

    app: Any
    auth: Authenticator
    clock: Clock
    registry: Registry
    values: dict[str, str] = field(default_factory=dict)

    def token(self, name: str, role: str, **kwargs: Any) -> str:
        self.values[name] = self.registry.tokens.create(name, role, actor="test",
                                                        **kwargs).value
        return self.values[name]

    async def call(self, method: str, path: str, token: str | None = None, *,
                   body: bytes | None = None, client: str = "10.0.0.1",
                   headers: dict[str, str] | None = None) -> httpx.Response:
        sent = dict(headers or {})
        if token is not None:
            sent["authorization"] = f"Bearer {self.values.get(token, token)}"
        transport = httpx.ASGITransport(app=self.app, client=(client, 4321))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.request(method, path, content=body, headers=sent)


def register(registry: Registry) -> None:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(X, (X[:, 0] > X[:, 1]).astype(int))
    for name in ("iris", "fraud"):
        registry.log_model(model, name, input_example=X[:2])


def dashboard_stand_in() -> list[Route]:
    # Mounted the way serve mounts the real dashboard (create_app's routes=).
    async def page(_: Request) -> PlainTextResponse:
        return PlainTextResponse("dashboard")
    return [Route("/dashboard", page), Route("/dashboard/api/overview", page)]


@asynccontextmanager
async def serving(registry: Registry, config: AuthConfig | None = None
                  ) -> AsyncIterator[Harness]:
    repo = ModelRepository(registry, [Endpoint.from_uri("iris"), Endpoint.from_uri("fraud")],
                           ServerMetrics(), poll_interval=60, deployment_poll_interval=60,
                           router=Router(random.Random(0)), server_id="test-auth")
    clock = Clock()
    auth = Authenticator(registry.tokens, config or AuthConfig(), clock=clock)
    app = create_app(repo, auth=auth, routes=dashboard_stand_in())
    await repo.start()
    try:
        assert await repo.wait_ready(60), repo.get("iris").error
        yield Harness(app, auth, clock, registry)
    finally:
        await repo.stop()


def run(registry: Registry, test: Callable[[Harness], Coroutine[Any, Any, None]],
        config: AuthConfig | None = None) -> None:
    register(registry)

    async def go() -> None:
        async with serving(registry, config) as h:
            await test(h)
    asyncio.run(go())


def test_missing_or_invalid_token_is_401_with_a_bearer_challenge(
        sqlite_registry: Registry) -> None:
    async def test(h: Harness) -> None:
        h.token("ci", "predictor")
        for path in ("/v2/models/iris/infer", "/v1/models/iris:predict", "/predict"):
            r = await h.call("POST", path, body=ROW)  # the direct hand-off
            assert r.status_code == 401, (path, r.text)
            assert r.headers["www-authenticate"] == 'Bearer realm="modelport"'
            assert r.json()["error"].startswith("missing token: send Authorization: Bearer")
            assert len(r.headers["x-request-id"]) == 32
        r = await h.call("GET", "/v2/models/iris")  # through Starlette
        assert r.status_code == 401 and "missing token" in r.json()["error"]
        for bad in ("mp_0123456789abcdef_nope", "garbage", h.values["ci"] + "x"):
            r = await h.call("POST", "/v2/models/iris/infer", bad, body=ROW)
            assert (r.status_code, r.json()) == (401, {"error": "invalid token"})
            assert r.headers["www-authenticate"] == \
                'Bearer realm="modelport", error="invalid_token"'
        r = await h.call("GET", "/v2/models/iris",
                         headers={"authorization": "Basic dXNlcjpwYXNz"})
        assert r.status_code == 401 and "Bearer" in r.json()["error"]
        r = await h.call("POST", "/v2/models/iris/infer", "ci", body=ROW)
        assert r.status_code == 200, r.text
        assert r.json()["model_name"] == "iris"
    run(sqlite_registry, test)


def test_scope_refusals_give_no_hint_of_which_models_exist(sqlite_registry: Registry) -> None:
    async def test(h: Harness) -> None:
        h.token("iris-only", "predictor", models="iris*")
        for method, path, body in [
            ("POST", "/v2/models/{}/infer", ROW), ("POST", "/v2/models/{}/versions/1/infer", ROW),
            ("POST", "/v1/models/{}:predict", b'{"instances": [[0.1, 0.2]]}'),
            ("GET", "/v2/models/{}", None), ("GET", "/v2/models/{}/ready", None),
            ("GET", "/v1/models/{}", None),
            ("POST", "/v2/models/{}/feedback", b'{"id": "x", "label": 1}'),
        ]:
            served = await h.call(method, path.format("fraud"), "iris-only", body=body)
            ghost = await h.call(method, path.format("ghost"), "iris-only", body=body)
            assert served.status_code == ghost.status_code == 403, (path, served.text)
            assert served.json() == ghost.json(), path  # the same words either way
            assert served.headers["www-authenticate"].endswith('error="insufficient_scope"')
            assert "fraud" not in served.text and "ghost" not in ghost.text
            # In scope, a model that is not served is the usual 404.
            missing = await h.call(method, path.format("iris-ghost"), "iris-only", body=body)
            assert missing.status_code == 404, (path, missing.text)
        ok = await h.call("POST", "/v2/models/iris/infer", "iris-only", body=ROW)
        assert ok.status_code == 200
        meta = await h.call("GET", "/v2/models/iris", "iris-only")
        assert meta.status_code == 200 and meta.json()["name"] == "iris"
        # Views of the whole fleet would list other models: a scoped token gets none.
        for method, path in [("GET", "/metrics"), ("POST", "/v2/repository/index"),
                             ("GET", "/dashboard"), ("GET", "/dashboard/api/overview")]:
            r = await h.call(method, path, "iris-only")
            assert r.status_code == 403, (path, r.text)
            assert "fraud" not in r.text
    run(sqlite_registry, test)


def test_roles_decide_what_a_token_may_do(sqlite_registry: Registry) -> None:
    async def test(h: Harness) -> None:
        for role in ("reader", "predictor", "deployer", "admin"):
            h.token(role, role)
        h.token("fraud-reader", "reader", models="fraud")
        for name in ("reader", "fraud-reader"):
            r = await h.call("POST", "/v2/models/fraud/infer", name, body=ROW)
            assert r.status_code == 403, r.text
            assert r.json() == {"error": "a reader token may not predict"}
        assert (await h.call("GET", "/v2/models/fraud", "fraud-reader")).status_code == 200
        assert (await h.call("GET", "/v2/models/iris", "fraud-reader")).status_code == 403
        for name in ("reader", "predictor", "deployer", "admin"):
            assert (await h.call("GET", "/metrics", name)).status_code == 200
            assert (await h.call("POST", "/v2/repository/index", name)).status_code == 200
        for name in ("predictor", "deployer", "admin"):
            r = await h.call("POST", "/predict", name, body=b'{"features": [[0.1, 0.2]]}')
            assert r.status_code == 200, r.text
        # Reloading a model from the registry is a deployer's move.
        r = await h.call("POST", "/v2/repository/models/iris/load", "predictor")
        assert r.status_code == 403 and "may not deploy" in r.json()["error"]
        r = await h.call("POST", "/v2/repository/models/iris/load", "deployer")
        assert r.status_code == 200, r.text
    run(sqlite_registry, test)


def test_predict_and_invocations_check_the_default_model(sqlite_registry: Registry) -> None:
    async def test(h: Harness) -> None:
        h.token("fraud-only", "predictor", models="fraud")
        h.token("iris-only", "predictor", models="iris")
        body = b'{"features": [[0.1, 0.2]]}'
        assert (await h.call("POST", "/predict", "fraud-only", body=body)).status_code == 403
        assert (await h.call("POST", "/predict", "iris-only", body=body)).status_code == 200
        json = {"content-type": "application/json"}
        mlflow = b'{"inputs": [[0.1, 0.2]]}'
        r = await h.call("POST", "/invocations", "fraud-only", body=mlflow, headers=json)
        assert r.status_code == 403
        r = await h.call("POST", "/invocations", "iris-only", body=mlflow, headers=json)
        assert r.status_code == 200, r.text
    run(sqlite_registry, test)


def test_health_is_open_and_everything_else_needs_a_token(sqlite_registry: Registry) -> None:
    async def test(h: Harness) -> None:
        h.token("scoped", "reader", models="nothing-here")
        for path in ("/v2/health/live", "/v2/health/ready", "/ping", "/health"):
            r = await h.call("GET", path)
            assert r.status_code == 200, (path, r.text)
        for path in ("/v2", "/version", "/no/such/route", "/metrics", "/dashboard/api/x"):
            assert (await h.call("GET", path)).status_code == 401, path
        page = await h.call("GET", "/dashboard")  # a browser: to the login form
        assert page.status_code == 303 and page.headers["location"] == "/dashboard/login"
        # Server metadata and unknown routes need a valid token, not a particular scope.
        assert (await h.call("GET", "/v2", "scoped")).json()["name"] == "modelport"
        assert (await h.call("GET", "/version", "scoped")).status_code == 200
        assert (await h.call("GET", "/no/such/route", "scoped")).status_code == 404
    run(sqlite_registry, test)


def test_metrics_and_dashboard_can_be_left_open(sqlite_registry: Registry) -> None:
    async def test(h: Harness) -> None:
        r = await h.call("GET", "/metrics")
        assert r.status_code == 200 and "modelport_" in r.text
        assert (await h.call("GET", "/dashboard")).text == "dashboard"
        assert (await h.call("GET", "/v2/models/iris")).status_code == 401  # still guarded
    run(sqlite_registry, test,
        AuthConfig(protect_metrics=False, protect_dashboard=False))


def test_token_rate_limit_is_429_with_retry_after(sqlite_registry: Registry) -> None:
    async def test(h: Harness) -> None:
        h.token("slow", "predictor", rate=0.5, burst=2)
        h.token("fast", "predictor")  # no rate of its own: the server default
        h.token("free", "predictor")
        codes = [(await h.call("POST", "/v2/models/iris/infer", "slow", body=ROW)).status_code
                 for _ in range(3)]
        assert codes == [200, 200, 429]
        r = await h.call("GET", "/v2/models/iris", "slow")  # every route takes from it
        assert r.status_code == 429
        assert r.headers["retry-after"] == "2"  # 1 request / 0.5 per second
        assert "over its rate limit of 0.5 requests per second" in r.json()["error"]
        h.clock.now += 2.0
        assert (await h.call("GET", "/v2/models/iris", "slow")).status_code == 200
        # Another token has its own bucket: the server default, 1/s with a burst of 3.
        fast = [(await h.call("GET", "/v2/models/iris", "fast")).status_code
                for _ in range(4)]
        assert fast == [200, 200, 200, 429]
        h.clock.now += 1.0
        assert (await h.call("GET", "/v2/models/iris", "fast")).status_code == 200
        # The limit survives a re-verification after the cache time.
        h.clock.now += 10.0
        burst = [(await h.call("GET", "/v2/models/iris", "fast")).status_code
                 for _ in range(4)]
        assert burst == [200, 200, 200, 429]
    run(sqlite_registry, test, AuthConfig(rate=1.0, burst=3))


def test_failed_authentications_are_limited_per_address(sqlite_registry: Registry) -> None:
    async def test(h: Harness) -> None:
        h.token("known", "predictor")
        h.token("other", "predictor")
        assert (await h.call("GET", "/v2/models/iris", "known", client="10.0.0.9")
                ).status_code == 200  # verified, so cached
        for i in range(10):
            r = await h.call("GET", "/v2/models/iris", f"mp_{i:016x}_guess", client="10.0.0.9",
                             headers={"x-forwarded-for": f"192.0.2.{i}"})  # not believed
            assert r.status_code == 401, i
        r = await h.call("GET", "/v2/models/iris", "mp_0000000000000000_guess",
                         client="10.0.0.9")
        assert r.status_code == 429
        assert r.json() == {"error": "too many failed authentications from this address"}
        assert r.headers["retry-after"] == "60"
        assert (await h.call("GET", "/v2/models/iris", "garbage", client="10.0.0.9")
                ).status_code == 429
        # Even a right value is not checked from there while blocked (that is the point)...
        assert (await h.call("GET", "/v2/models/iris", "other", client="10.0.0.9")
                ).status_code == 429
        # ... but one this server already verified still works, and so do other addresses.
        assert (await h.call("GET", "/v2/models/iris", "known", client="10.0.0.9")
                ).status_code == 200
        assert (await h.call("GET", "/v2/models/iris", "other", client="10.0.0.10")
                ).status_code == 200
        h.clock.now += 61
        assert (await h.call("GET", "/v2/models/iris", "other", client="10.0.0.9")
                ).status_code == 200
    run(sqlite_registry, test)


def test_revocation_and_expiry_take_effect_after_the_cache_time(
        sqlite_registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    async def test(h: Harness) -> None:
        h.token("ci", "predictor")
        h.token("short", "predictor")
        calls: dict[str, int] = {"identify": 0, "by_lookup": 0}
        for method in calls:
            real = getattr(h.registry.tokens, method)

            def counted(*args: Any, _real: Any = real, _name: str = method) -> Any:
                calls[_name] += 1
                return _real(*args)
            monkeypatch.setattr(h.registry.tokens, method, counted)
        for _ in range(5):
            assert (await h.call("POST", "/v2/models/iris/infer", "ci", body=ROW)
                    ).status_code == 200
        assert calls == {"identify": 1, "by_lookup": 0}  # one scrypt, then the cache
        h.registry.tokens.revoke("ci", actor="test")
        h.clock.now += 4.9
        assert (await h.call("POST", "/v2/models/iris/infer", "ci", body=ROW)
                ).status_code == 200  # within the cache time (documented)
        h.clock.now += 0.2
        r = await h.call("POST", "/v2/models/iris/infer", "ci", body=ROW)
        assert (r.status_code, r.json()) == (401, {"error": "token 'ci' has been revoked"})
        assert calls == {"identify": 1, "by_lookup": 1}  # re-read, no second scrypt
        assert (await h.call("GET", "/v2/models/iris", "ci")).status_code == 401
        # An expiry is seen the same way (the row changed as time passed).
        assert (await h.call("GET", "/v2/models/iris", "short")).status_code == 200
        with h.registry.store.engine.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(sa.update(tokens_t).where(tokens_t.c.name == "short")
                         .values(expires_at=utcnow() - timedelta(seconds=1)))
        h.clock.now += 5.0
        r = await h.call("GET", "/v2/models/iris", "short")
        assert (r.status_code, r.json()) == (401, {"error": "token 'short' has expired"})
    run(sqlite_registry, test)


def test_last_use_is_recorded(sqlite_registry: Registry) -> None:
    async def test(h: Harness) -> None:
        h.token("ci", "reader")
        assert (await h.call("GET", "/v2/models/iris", "ci")).status_code == 200
        for _ in range(100):  # written in the background
            if h.registry.tokens.get("ci").last_used_at is not None:
                break
            await asyncio.sleep(0.02)
        assert h.registry.tokens.get("ci").last_used_at is not None
    run(sqlite_registry, test)


@pytest.mark.parametrize(("path", "access"), [
    ("/v2/health/live", None), ("/v2/health/ready", None), ("/ping", None), ("/health", None),
    ("/metrics", FLEET_READ), ("/dashboard", FLEET_READ), ("/dashboard/static/app.js",
                                                          FLEET_READ),
    ("/dashboardx", AUTHENTICATED), ("/v2", AUTHENTICATED), ("/version", AUTHENTICATED),
    ("/api/models", AUTHENTICATED), ("/v2/repository/index", FLEET_READ),
    ("/v2/repository/models/iris/load", Access(Action.DEPLOY, "iris")),
    ("/v2/models/iris", Access(Action.READ, "iris")),
    ("/v2/models/iris/ready", Access(Action.READ, "iris")),
    ("/v2/models/iris/versions/2", Access(Action.READ, "iris")),
    ("/v2/models/iris/versions/2/ready", Access(Action.READ, "iris")),
    ("/v2/models/iris/infer", Access(Action.PREDICT, "iris")),
    ("/v2/models/iris/versions/2/infer", Access(Action.PREDICT, "iris")),
    ("/v2/models/iris/feedback", Access(Action.PREDICT, "iris")),
    ("/v1/models/iris", Access(Action.READ, "iris")),
    ("/v1/models/iris:predict", Access(Action.PREDICT, "iris")),
    ("/predict", Access(Action.PREDICT, "default")),
    ("/invocations", Access(Action.PREDICT, "default")),
])
def test_route_access_table(path: str, access: Access | None) -> None:
    assert route_access(path, AuthConfig(), "default") == access


def test_a_websocket_never_reaches_the_app(sqlite_registry: Registry) -> None:
    from modelport.serving.auth import AuthMiddleware

    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["type"])

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    middleware = AuthMiddleware(app, Authenticator(sqlite_registry.tokens), lambda: None)
    scope = {"type": "websocket", "path": "/v2/models/iris/infer", "headers": []}
    asyncio.run(middleware(scope, receive, send))
    assert reached == [] and sent == [{"type": "websocket.close", "code": 1008}]
    asyncio.run(middleware({"type": "lifespan"}, receive, send))
    assert reached == ["lifespan"]


def test_a_registry_outage_keeps_verified_tokens_for_a_while(
        sqlite_registry: Registry, caplog: pytest.LogCaptureFixture) -> None:
    db = sqlite_registry.settings.home / "registry.db"
    engine = sqlite_registry.store.engine  # type: ignore[attr-defined]

    def move(src_dir: Any, dst_dir: Any) -> None:
        engine.dispose()  # no pooled connection keeps the old file open
        for suffix in ("", "-wal", "-shm"):
            path = src_dir / f"registry.db{suffix}"
            if path.exists():
                path.replace(dst_dir / path.name)

    async def test(h: Harness) -> None:
        h.token("ci", "predictor")
        h.token("unseen", "predictor")
        assert (await h.call("GET", "/v2/models/iris", "ci")).status_code == 200
        away = db.parent / "away"
        away.mkdir()
        move(db.parent, away)  # the registry is gone: every read fails
        try:
            h.clock.now += 6  # past the cache time: the re-read fails, the verdict stays
            assert (await h.call("GET", "/v2/models/iris", "ci")).status_code == 200
            assert "cannot re-check token 'ci'" in caplog.text
            r = await h.call("GET", "/v2/models/iris", "unseen")  # never verified here
            assert r.status_code == 500 and r.json()["error"].startswith(
                "internal server error (request id")
            h.clock.now += 300  # too long without a successful check
            assert (await h.call("GET", "/v2/models/iris", "ci")).status_code == 500
        finally:
            db.unlink(missing_ok=True)  # the empty file the failed reads created
            move(away, db.parent)
        h.clock.now += 6
        assert (await h.call("GET", "/v2/models/iris", "ci")).status_code == 200
        assert (await h.call("GET", "/v2/models/iris", "unseen")).status_code == 200
    run(sqlite_registry, test)
