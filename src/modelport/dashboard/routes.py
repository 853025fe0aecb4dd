"""The dashboard's HTTP routes: the page, its vendored static files and two JSON views.

``GET /dashboard`` is one static page (``static/index.html``) whose script polls
``/dashboard/api/overview`` every couple of seconds and ``/dashboard/api/endpoints/NAME``
less often; charts are drawn by uPlot, vendored under ``static/vendor`` with its licence.
Everything is read-only. Responses carry a strict Content-Security-Policy (scripts only
from this server, nothing inline) so a model or alert name can never become script.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Mapping
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from modelport.client import Registry
from modelport.dashboard import snapshot
from modelport.dashboard.sampler import DEFAULT_PERIOD, TrafficSampler
from modelport.errors import InvalidInputError, ModelportError, NotFoundError
from modelport.uri import validate_name

DETAIL_TTL = 10.0  # seconds a detail view (a prediction-log scan) is reused
MAX_WINDOW = timedelta(days=7)
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'")
_HEADERS = {"content-security-policy": _CSP, "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer", "cache-control": "no-store"}
# The only files served: a fixed list, so no request path ever reaches the file system.
_STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "vendor/uPlot.iife.min.js": "text/javascript; charset=utf-8",
    "vendor/uPlot.min.css": "text/css; charset=utf-8",
    "vendor/uPlot.LICENSE": "text/plain; charset=utf-8",
}


# The login form posts to this server: the one page whose CSP allows a form action.
_LOGIN_HEADERS = {**_HEADERS, "content-security-policy": _CSP.replace(
    "form-action 'none'", "form-action 'self'")}
MAX_LOGIN_BYTES = 4096


def _asset(name: str) -> bytes:
    return resources.files("modelport.dashboard").joinpath("static", name).read_bytes()


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
                    status_code=status, media_type="application/json", headers=_HEADERS)


def _redirect(location: str, extra: dict[str, str] | None = None) -> Response:
    return Response(status_code=303, headers={**_HEADERS, "location": location,
                                              **(extra or {})})


def parse_window(text: str | None) -> timedelta:
    """``?window=`` as 30m, 1h, 24h, 7d (default 1h, at most 7 days)."""
    from modelport.monitoring.realized import parse_window as parse

    window = parse(text or "1h")
    if window > MAX_WINDOW:
        raise InvalidInputError(f"window {text!r} is longer than the dashboard's 7d")
    return window


class Dashboard:
    """The routes and the background sampler of one server's dashboard."""

    def __init__(self, registry: Registry, root: str | Path, served: Mapping[str, str], *,
                 period: float = DEFAULT_PERIOD) -> None:
        self.registry, self.root, self.served = registry, Path(root), dict(served)
        self._endpoints: list[str] = sorted(self.served)
        self.sampler = TrafficSampler(registry, lambda: self._endpoints, period=period)
        self._detail: dict[tuple[str, timedelta], tuple[float, Any]] = {}
        self._lock = asyncio.Lock()
        self._static = {name: _asset(name) for name in _STATIC}
        self._index = _asset("index.html")
        self._login = _asset("login.html")

    def routes(self) -> list[BaseRoute]:
        """The routes to mount beside the inference server's own."""
        return [
            Route("/dashboard", self.page), Route("/dashboard/", self.page),
            Route("/dashboard/login", self.login_page, methods=["GET"]),
            Route("/dashboard/login", self.login, methods=["POST"]),
            Route("/dashboard/logout", self.logout, methods=["POST"]),
            Route("/dashboard/static/{path:path}", self.static),
            Route("/dashboard/api/overview", self.overview),
            Route("/dashboard/api/endpoints/{name}", self.detail),
            Route("/dashboard/api/lineage/{name}", self.lineage),
        ]

    def background(self) -> list[Callable[[], Coroutine[Any, Any, None]]]:
        """Tasks to run while the server runs: the traffic sampler."""
        return [self._sample_forever]

    async def _sample_forever(self) -> None:
        await self._refresh_endpoints()
        await self.sampler.run()

    async def _refresh_endpoints(self) -> None:
        # On failure the last list is kept: the registry being down must not break the page.
        with contextlib.suppress(ModelportError):
            self._endpoints = await asyncio.to_thread(
                snapshot.endpoints_of, self.registry, self.served)

    # -- handlers -------------------------------------------------------------------------

    async def page(self, _: Request) -> Response:
        return Response(self._index, media_type="text/html; charset=utf-8", headers=_HEADERS)

    async def login_page(self, request: Request) -> Response:
        if request.scope.get("state", {}).get("authenticator") is None:
            return _redirect("/dashboard")  # no auth on this server: nothing to sign in to
        return Response(self._login, media_type="text/html; charset=utf-8",
                        headers=_LOGIN_HEADERS)

    async def login(self, request: Request) -> Response:
        """Check the posted token as ``/dashboard`` would, then keep it in the cookie."""
        from urllib.parse import parse_qs

        from modelport.serving.auth import FLEET_READ, login_cookie

        auth = request.scope.get("state", {}).get("authenticator")
        if auth is None:
            return _redirect("/dashboard")
        body = await request.body()
        fields = {}
        if len(body) <= MAX_LOGIN_BYTES:
            with contextlib.suppress(UnicodeDecodeError, ValueError):
                fields = parse_qs(body.decode("ascii"), max_num_fields=4)
        token = (fields.get("token") or [""])[0].strip()
        status = 401
        if token and token.isascii():
            # The token checked exactly as a Bearer header on /dashboard: same cache,
            # rate and failed-login limits, same FLEET_READ scope.
            probe = {**request.scope, "path": "/dashboard", "root_path": "",
                     "headers": [(b"authorization", f"Bearer {token}".encode())]}
            refused = await auth.check(probe, {}, FLEET_READ)
            if refused is None:
                secure = request.url.scheme == "https"
                return _redirect("/dashboard", {"set-cookie": login_cookie(token,
                                                                           secure=secure)})
            status = refused[0]
        page = self._login.replace(b'role="alert" hidden>', b'role="alert">')
        return Response(page, status_code=status, media_type="text/html; charset=utf-8",
                        headers=_LOGIN_HEADERS)

    async def logout(self, _: Request) -> Response:
        from modelport.serving.auth import logout_cookie

        return _redirect("/dashboard/login", {"set-cookie": logout_cookie()})

    async def static(self, request: Request) -> Response:
        path = request.path_params["path"]
        body = self._static.get(path)
        if body is None:
            return _json({"error": f"not found: {request.url.path}"}, 404)
        return Response(body, media_type=_STATIC[path], headers={
            **_HEADERS, "cache-control": "public, max-age=3600"})

    async def overview(self, _: Request) -> Response:
        try:
            data = await asyncio.to_thread(snapshot.overview, self.registry, self.served,
                                           self.sampler)
        except ModelportError as exc:
            return _json({"error": exc.message}, exc.http_status)
        self._endpoints = [e["name"] for e in data["endpoints"]]
        return _json(data)

    async def detail(self, request: Request) -> Response:
        try:
            name = await self._known(request.path_params["name"])
            window = parse_window(request.query_params.get("window"))
            return _json(await self._cached_detail(name, window))
        except ModelportError as exc:
            return _json({"error": exc.message}, exc.http_status)

    async def lineage(self, request: Request) -> Response:
        """Where each version the endpoint serves came from (datasets, run, gate)."""
        from modelport.lineage import endpoint_lineage

        try:
            name = await self._known(request.path_params["name"])
            return _json(await asyncio.to_thread(endpoint_lineage, self.registry, name,
                                                 self.served.get(name)))
        except ModelportError as exc:
            return _json({"error": exc.message}, exc.http_status)

    async def _known(self, text: str) -> str:
        name = validate_name(text, "endpoint name")
        if name not in self._endpoints:
            await self._refresh_endpoints()
        if name not in self._endpoints:
            raise NotFoundError(f"no endpoint {name!r} is served or deployed")
        return name

    async def _cached_detail(self, name: str, window: timedelta) -> Any:
        key = (name, window)
        async with self._lock:  # one scan at a time: many open tabs cost one scan
            hit = self._detail.get(key)
            if hit is not None and time.monotonic() - hit[0] < DETAIL_TTL:
                return hit[1]
            data = await asyncio.to_thread(snapshot.detail, self.registry, self.root, name,
                                           window, self.served.get(name))
            if len(self._detail) > 64:
                self._detail.clear()
            self._detail[key] = (time.monotonic(), data)
            return data


__all__ = ["DETAIL_TTL", "Dashboard", "parse_window"]
