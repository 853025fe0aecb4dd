"""The dashboard's routes on a real registry: JSON views, static files, bad input."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from starlette.applications import Starlette

from modelport.client import Registry
from modelport.dashboard.routes import Dashboard
from modelport.serving.config import load_spec


@pytest.fixture
def client(sqlite_registry: Registry, tmp_path: Path) -> Iterator[Client]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    model = LogisticRegression().fit(X, X[:, 0] > 0)
    sqlite_registry.log_model(model, "iris", input_example=X[:2], metrics={"acc": 0.9})
    sqlite_registry.log_model(model, "iris", input_example=X[:2])
    sqlite_registry.set_alias("iris", "champion", 1)
    sqlite_registry.records.record_gate("iris", 2, passed=False, against=1, report={},
                                        actor="ci")
    sqlite_registry.deployments.create("fraud", "iris", 2, "tester")
    dashboard = Dashboard(sqlite_registry, tmp_path / "monitoring", {"iris": "iris"})
    yield Client(Starlette(routes=dashboard.routes()))


class Client:
    """A synchronous ``get`` over httpx's ASGI transport (the handlers are async).

    Each call runs its own event loop on a fresh thread: the session's Playwright
    browser keeps a loop running on the main thread.
    """

    def __init__(self, app: Starlette) -> None:
        self.transport = httpx.ASGITransport(app=app)

    def get(self, url: str) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=self.transport, base_url="http://d") as c:
                return await c.get(url)

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, go()).result()


def test_overview_lists_served_and_deployed_endpoints(client: Client) -> None:
    resp = client.get("/dashboard/api/overview")
    assert resp.status_code == 200
    data = resp.json()
    by_name = {e["name"]: e for e in data["endpoints"]}
    assert set(by_name) == {"fraud", "iris"}
    iris = by_name["iris"]
    assert iris["deployment"] is None and iris["aliases"] == {"champion": 1}
    assert [v["version"] for v in iris["versions"]] == [2, 1]  # newest first
    assert iris["versions"][0]["gate"]["passed"] is False
    assert iris["versions"][1]["metrics"] == {"acc": 0.9}
    fraud = by_name["fraud"]
    assert fraud["deployment"]["stable"] == 2 and fraud["model"] == "iris"
    assert fraud["rollout"] is None and fraud["traffic"] == []
    assert data["models"][0]["name"] == "iris"


def test_detail_of_an_endpoint_and_bad_requests(client: Client) -> None:
    ok = client.get("/dashboard/api/endpoints/fraud?window=30m")
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["realized"]["versions"] == [] and body["drift"]["features"] == []
    assert [e["kind"] for e in body["events"]] == ["created"]
    unknown = client.get("/dashboard/api/endpoints/nope")
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]
    for bad in ("?window=banana", "?window=30d", "?window=-1h"):
        resp = client.get(f"/dashboard/api/endpoints/iris{bad}")
        assert resp.status_code == 400, (bad, resp.text)
        assert "window" in resp.json()["error"]
    assert client.get("/dashboard/api/endpoints/a%2F..").status_code in (400, 404)


def test_lineage_of_what_an_endpoint_serves(client: Client) -> None:
    deployed = client.get("/dashboard/api/lineage/fraud")
    assert deployed.status_code == 200, deployed.text
    body = deployed.json()
    assert body["model"] == "iris"
    [stable] = body["versions"]
    assert (stable["role"], stable["uri"]) == ("stable", "models:/iris/2")
    assert stable["gate"]["passed"] is False and stable["datasets"] == []
    followed = client.get("/dashboard/api/lineage/iris").json()  # no deployment: aliases
    assert [(v["role"], v["version"]) for v in followed["versions"]] == [("@champion", 1)]
    assert client.get("/dashboard/api/lineage/nope").status_code == 404


def test_page_and_static_files(client: Client) -> None:
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "/dashboard/static/vendor/uPlot.iife.min.js" in page.text
    js = client.get("/dashboard/static/vendor/uPlot.iife.min.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert js.text.startswith("/*! https://github.com/leeoniya/uPlot")
    licence = client.get("/dashboard/static/vendor/uPlot.LICENSE")
    assert "MIT License" in licence.text
    for path in ("vendor/%2E%2E/app.js", "%2E%2E/routes.py", "index.html", "nope.js", "vendor"):
        assert client.get(f"/dashboard/static/{path}").status_code == 404, path


def test_serve_can_leave_the_dashboard_out(sqlite_registry: Registry) -> None:
    from modelport.cli.serve import _factory
    from modelport.control.factory import FACTORY, extension

    spec = load_spec(None, ["iris@champion"])
    assert _factory(spec) == FACTORY  # the control plane's factory, dashboard or not
    paths = {getattr(r, "path", "") for r in extension(sqlite_registry, spec)[0]}
    assert "/dashboard" in paths and "/api/models" in paths
    off = spec.model_copy(update={"dashboard": spec.dashboard.model_copy(
        update={"enabled": False})})
    routes, background = extension(sqlite_registry, off)
    paths = {getattr(r, "path", "") for r in routes}
    assert "/api/models" in paths and not any(p.startswith("/dashboard") for p in paths)
    assert list(background) == []
