"""Signing in to the dashboard with a token: the real app, auth middleware and dashboard
routes over ASGI, a real registry with real tokens. The cookie it sets opens the
dashboard's views and nothing else."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import httpx

from modelport.client import Registry
from modelport.dashboard.routes import Dashboard
from modelport.serving.app import create_app
from modelport.serving.auth import DASHBOARD_COOKIE, AuthConfig, Authenticator
from modelport.serving.metrics import ServerMetrics
from modelport.serving.repository import Endpoint, ModelRepository
from modelport.serving.router import Router
from tests.serving.test_auth import ROW, register


def _app(registry: Registry, root: Path) -> tuple[Any, ModelRepository]:
    repo = ModelRepository(registry, [Endpoint.from_uri("iris")], ServerMetrics(),
                           poll_interval=60, deployment_poll_interval=60,
                           router=Router(random.Random(0)), server_id="test-login")
    dashboard = Dashboard(registry, root, {"iris": "iris"})
    auth = Authenticator(registry.tokens, AuthConfig())
    return create_app(repo, auth=auth, routes=dashboard.routes()), repo


def test_a_token_signs_in_to_the_dashboard_and_its_cookie_opens_nothing_else(
        sqlite_registry: Registry, tmp_path: Path) -> None:
    register(sqlite_registry)
    reader = sqlite_registry.tokens.create("ops", "reader", actor="test").value
    narrow = sqlite_registry.tokens.create("one", "reader", models="fraud",
                                           actor="test").value
    app, repo = _app(sqlite_registry, tmp_path / "monitoring")

    async def go() -> None:
        await repo.start()
        transport = httpx.ASGITransport(app=app, client=("10.0.0.1", 4321))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                # A browser without the cookie is sent to the form; JSON views get 401.
                page = await c.get("/dashboard")
                assert page.status_code == 303, page.text
                assert page.headers["location"] == "/dashboard/login"
                assert (await c.get("/dashboard/api/overview")).status_code == 401
                form = await c.get("/dashboard/login")
                assert form.status_code == 200 and b'name="token"' in form.content
                assert "form-action 'self'" in form.headers["content-security-policy"]
                # Refused: a bad token, a token that cannot read the fleet, junk bodies.
                for body, status in ((b"token=mp_nope", 401),
                                     (f"token={narrow}".encode(), 403),
                                     (b"\xff\xfe", 401), (b"token=" + b"x" * 5000, 401)):
                    bad = await c.post("/dashboard/login", content=body, headers={
                        "content-type": "application/x-www-form-urlencoded"})
                    assert bad.status_code == status, (body[:20], bad.status_code)
                    assert b'role="alert">' in bad.content  # the error is shown
                    assert "set-cookie" not in bad.headers
                ok = await c.post("/dashboard/login", data={"token": reader})
                assert ok.status_code == 303 and ok.headers["location"] == "/dashboard"
                cookie = ok.headers["set-cookie"]
                for flag in ("Path=/dashboard", "HttpOnly", "SameSite=Strict", "Max-Age="):
                    assert flag in cookie, cookie
                assert "Secure" not in cookie  # plain HTTP here; HTTPS adds it
                jar = {"cookie": f"{DASHBOARD_COOKIE}={reader}"}
                assert (await c.get("/dashboard", headers=jar)).status_code == 200
                overview = await c.get("/dashboard/api/overview", headers=jar)
                assert overview.status_code == 200, overview.text
                # Sent anywhere else, the cookie authorizes nothing.
                for path in ("/v2/models/iris", "/metrics", "/v2"):
                    assert (await c.get(path, headers=jar)).status_code == 401, path
                infer = await c.post("/v2/models/iris/infer", content=ROW, headers=jar)
                assert infer.status_code == 401
                out = await c.post("/dashboard/logout", headers=jar)
                assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]
        finally:
            await repo.stop()

    asyncio.run(go())
