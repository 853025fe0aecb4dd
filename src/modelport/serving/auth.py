"""Bearer-token authentication, authorization and rate limits for the server, as plain ASGI.

``create_app`` puts this inside ``ServerMiddleware`` (so refusals carry a request id and
are access-logged) in two places: ``guard`` in front of the direct inference hand-off,
and ``AuthMiddleware`` in front of Starlette for every other route. Which routes need
what is ``route_access``: health is open, ``/metrics`` and ``/dashboard`` need a
fleet-wide read unless the config opens them, a model's routes need that model in the
token's pattern, and any path not listed needs a valid token.

Cost per authenticated request: a scan of the headers, a sha256 of the presented value,
one dict lookup and one constant-time compare against the cached verification, and the
token's bucket. The registry and scrypt are paid on a cache miss only, in a thread: a
verified token is re-read from the registry (no scrypt: this process has seen this exact
value pass) once ``cache_seconds`` have passed, so a revocation or an expiry takes
effect within that time. Everything here is per worker process.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from modelport.access import Action, authorize
from modelport.errors import (
    AuthenticationError,
    ConfigurationError,
    ModelportError,
    PermissionDeniedError,
    RateLimitedError,
)
from modelport.registry.tokens import Token, TokenStore, check_active, split_value
from modelport.serving.middleware import ASGIApp, Receive, Reply, Scope, Send
from modelport.serving.ratelimit import FailureLimiter, TokenBucket, retry_after

log = logging.getLogger("modelport.serving.auth")
STALE_LIMIT = 300.0  # seconds a verified token keeps working while the registry is down
TOUCH_EVERY = 60.0  # seconds between last_used_at writes for one token
MAX_VERDICTS = 1024  # cached authorize verdicts per token
OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready", "/ping", "/health"})
# Browsers send no Authorization header: the dashboard's login page turns a token into
# this cookie, which is scoped to /dashboard (HttpOnly, SameSite=Strict) and accepted
# there only, so it can never authorize an inference or a control-plane call.
DASHBOARD_COOKIE = "modelport_dashboard"
DASHBOARD_LOGIN = "/dashboard/login"
_CHALLENGE = b'Bearer realm="modelport"'


@dataclass(frozen=True)
class AuthConfig:
    """How the server authenticates (``serve.yaml`` ``auth:``)."""

    protect_metrics: bool = True
    protect_dashboard: bool = True
    rate: float | None = None  # default requests per second of a token without its own
    burst: int | None = None
    cache_seconds: float = 5.0
    max_failures: int = 10  # failed authentications per client address ...
    failure_window: float = 60.0  # ... in this many seconds, then 429


@dataclass(frozen=True, slots=True)
class Access:
    """What a request needs: ``action`` on ``model`` (None: the whole fleet); an
    ``action`` of None needs only a valid token."""

    action: Action | None
    model: str | None = None


AUTHENTICATED = Access(None)
FLEET_READ = Access(Action.READ)


def route_access(path: str, config: AuthConfig, default_model: str | None) -> Access | None:
    """What a request to ``path`` needs, or None for an open route."""
    if path in OPEN_PATHS or path in (DASHBOARD_LOGIN, "/dashboard/logout"):
        return None
    if path == "/metrics":
        return FLEET_READ if config.protect_metrics else None
    if path == "/dashboard" or path.startswith("/dashboard/"):
        return FLEET_READ if config.protect_dashboard else None
    if path in ("/predict", "/invocations"):
        return Access(Action.PREDICT, default_model or "")
    if path == "/v2/repository/index":
        return FLEET_READ
    if path.startswith("/v2/repository/models/") and path.endswith("/load"):
        return Access(Action.DEPLOY, path[22:-5])
    if path.startswith("/v2/models/"):
        name, _, rest = path[11:].partition("/")
        action = Action.PREDICT if rest in ("infer", "feedback") or (
            rest.startswith("versions/") and rest.endswith("/infer")) else Action.READ
        return Access(action, name)
    if path.startswith("/v1/models/"):
        name = path[11:]
        if name.endswith(":predict"):
            return Access(Action.PREDICT, name[:-8])
        return Access(Action.READ, name)
    return AUTHENTICATED  # /v2, /version, and whatever is added later (e.g. /api/)


@dataclass(slots=True)
class _Entry:
    """A token this process verified: the sha256 of the value that passed scrypt here."""

    digest: bytes
    token: Token
    checked: float  # monotonic time of the last registry read, or attempt at one
    confirmed: float  # ... of the last one that succeeded
    problem: AuthenticationError | None = None  # revoked or expired, as of ``confirmed``
    bucket: TokenBucket | None = None
    touched: float = field(default=-TOUCH_EVERY)
    # authorize's verdicts by (action, model): role and pattern never change, and the
    # glob match is the dearest step of an admitted request. Bounded (cleared when full).
    verdicts: dict[tuple[Action, str | None], PermissionDeniedError | None] = field(
        default_factory=dict)


class Authenticator:
    """Verifies bearer tokens against the registry, caches them briefly, limits rates."""

    def __init__(self, tokens: TokenStore, config: AuthConfig | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.tokens = tokens
        self.config = config or AuthConfig()
        self.clock = clock
        self.failures = FailureLimiter(self.config.max_failures, self.config.failure_window)
        self._cache: dict[str, _Entry] = {}  # by lookup id
        self._buckets: dict[str, TokenBucket] = {}  # by lookup id: outlive re-verification
        self._pending: dict[bytes, asyncio.Future[Token]] = {}  # verifications in flight
        self._background: set[asyncio.Future[None]] = set()

    async def admit(self, scope: Scope, access: Access) -> Token:
        """The request's token if it may do what ``access`` says; else raises
        AuthenticationError (401), PermissionDeniedError (403) or RateLimitedError."""
        entry = await self._admitted(scope)
        if access.action is not None:
            key = (access.action, access.model)
            try:
                denied = entry.verdicts[key]
            except KeyError:
                denied = _verdict(entry.token, access)
                if len(entry.verdicts) >= MAX_VERDICTS:
                    entry.verdicts.clear()
                entry.verdicts[key] = denied
            if denied is not None:
                raise denied.with_traceback(None)  # a stored error: do not grow its traceback
        return entry.token

    async def authenticate(self, scope: Scope) -> Token:
        """The active token the request presents (rate limits applied)."""
        return (await self._admitted(scope)).token

    async def _admitted(self, scope: Scope) -> _Entry:
        value = _bearer(scope)
        now = self.clock()
        digest = hashlib.sha256(value).digest()
        text = value.decode("latin-1")
        try:
            lookup, _ = split_value(text)
        except AuthenticationError:
            self._failed(scope, now)
            raise
        entry = self._cache.get(lookup)
        if entry is not None and hmac.compare_digest(entry.digest, digest):
            if now - entry.checked >= self.config.cache_seconds:
                await self._refresh(entry, now)
            if now - entry.confirmed > STALE_LIMIT:
                raise ConfigurationError("cannot re-check the token: the registry is "
                                         "unavailable")
        else:
            self._check_address(scope, now)
            entry = await self._verify(scope, lookup, text, digest, now)
        if entry.problem is not None:
            raise entry.problem.with_traceback(None)
        if entry.bucket is not None:
            wait = entry.bucket.take(now)
            if wait > 0:
                raise RateLimitedError(f"token {entry.token.name!r} is over its rate limit "
                                       f"of {entry.bucket.rate:g} requests per second",
                                       retry_after=wait)
        if now - entry.touched >= TOUCH_EVERY:
            entry.touched = now
            self._touch(lookup)
        return entry

    def _check_address(self, scope: Scope, now: float) -> None:
        wait = self.failures.blocked(_address(scope), now)
        if wait > 0:
            raise RateLimitedError("too many failed authentications from this address",
                                   retry_after=wait)

    def _failed(self, scope: Scope, now: float) -> None:
        self._check_address(scope, now)  # a blocked address is told so, not counted again
        self.failures.fail(_address(scope), now)

    async def _verify(self, scope: Scope, lookup: str, value: str, digest: bytes,
                      now: float) -> _Entry:
        # Concurrent first requests with one value share one scrypt.
        pending = self._pending.get(digest)
        if pending is None:
            pending = asyncio.ensure_future(asyncio.to_thread(self.tokens.identify, value))
            self._pending[digest] = pending
            pending.add_done_callback(lambda _: self._pending.pop(digest, None))
        try:
            token = await asyncio.shield(pending)
        except AuthenticationError:
            self._failed(scope, now)
            raise
        entry = _Entry(digest, token, now, now, bucket=self._bucket(token))
        entry.problem = _problem(token)
        self._cache[lookup] = entry
        return entry

    async def _refresh(self, entry: _Entry, now: float) -> None:
        # Marked first: requests meanwhile keep the current verdict (one re-read, not a
        # stampede), and a registry that is down is retried once per cache time.
        entry.checked = now
        try:
            token = await asyncio.to_thread(self.tokens.by_lookup, entry.token.lookup)
        except ModelportError as exc:
            log.warning("cannot re-check token %r (%s); using what was checked %.0f s ago",
                        entry.token.name, exc, now - entry.confirmed)
            return
        entry.confirmed = now
        if token is None:  # its row is gone: treat as never issued
            entry.problem = AuthenticationError("invalid token")
            return
        entry.token = token
        entry.problem = _problem(token)

    def _bucket(self, token: Token) -> TokenBucket | None:
        rate = token.rate if token.rate is not None else self.config.rate
        if rate is None:
            return None
        burst = token.burst if token.rate is not None else self.config.burst
        bucket = self._buckets.get(token.lookup)
        if bucket is None:
            bucket = TokenBucket(rate, burst or max(1, math.ceil(rate)))
            self._buckets[token.lookup] = bucket
        return bucket

    def _touch(self, lookup: str) -> None:
        # Fire and forget: a busy database must not hold up the request it was for.
        future = asyncio.ensure_future(asyncio.to_thread(self._touch_now, lookup))
        self._background.add(future)
        future.add_done_callback(self._background.discard)

    def _touch_now(self, lookup: str) -> None:
        try:
            self.tokens.touch(lookup)
        except Exception as exc:  # last_used_at is a convenience, never a failure
            log.warning("cannot record a token's last use: %s", exc)

    async def check(self, scope: Scope, state: dict[str, Any], access: Access
                    ) -> Reply | None:
        """None if the request is admitted (its token's name in ``state["token"]``, the
        token in ``state["grant"]``), else
        the refusal to send. Never raises."""
        try:
            token = await self.admit(scope, access)
        except ModelportError as exc:
            return refusal(exc, state.get("request_id", ""))
        except Exception:  # the registry failing in an unforeseen way: a 500, logged
            log.exception("request %s: authentication failed unexpectedly",
                          state.get("request_id", ""))
            return refusal(ModelportError("unexpected"), state.get("request_id", ""))
        state["token"] = token.name
        # The verified token itself, for routes that authorize per request (``/api/``).
        state["grant"] = token
        return None

    def guard(self, scope: Scope, state: dict[str, Any], access: Access,
              handle: Callable[[], Awaitable[Reply]]) -> Awaitable[Reply]:
        """The direct inference hand-off's reply: ``handle()``'s once admitted, else
        the refusal."""
        async def guarded() -> Reply:
            refused = await self.check(scope, state, access)
            return refused if refused is not None else await handle()
        return guarded()


def _verdict(token: Token, access: Access) -> PermissionDeniedError | None:
    assert access.action is not None
    try:
        authorize(token, access.action, access.model)
    except PermissionDeniedError as exc:
        return exc
    return None


def _problem(token: Token) -> AuthenticationError | None:
    try:
        check_active(token)
    except AuthenticationError as exc:
        return exc
    return None


def _bearer(scope: Scope) -> bytes:
    for key, value in scope["headers"]:
        if key == b"authorization":
            scheme, _, token = bytes(value).strip().partition(b" ")
            if scheme.lower() != b"bearer" or not token.strip():
                raise AuthenticationError("unsupported authorization scheme: send "
                                          "Authorization: Bearer <token>")
            return token.strip()
    if _is_dashboard(local_path(scope)):
        cookie = dashboard_cookie(scope)
        if cookie:
            return cookie
    raise AuthenticationError("missing token: send Authorization: Bearer <token> (create "
                              "one with modelport tokens create)", missing=True)


def _is_dashboard(path: str) -> bool:
    return path == "/dashboard" or path.startswith("/dashboard/")


def local_path(scope: Scope) -> str:
    """The request's path without the app's ``root_path``."""
    path: str = scope["path"]
    root = scope.get("root_path") or ""
    return path[len(root):] if root and path.startswith(root) else path


def dashboard_cookie(scope: Scope) -> bytes | None:
    """The token in the request's dashboard cookie, if it sends one."""
    prefix = DASHBOARD_COOKIE.encode() + b"="
    for key, value in scope["headers"]:
        if key == b"cookie":
            for part in bytes(value).split(b";"):
                part = part.strip()
                if part.startswith(prefix) and len(part) > len(prefix):
                    return part[len(prefix):]
    return None


def login_cookie(value: str, *, secure: bool, max_age: int = 12 * 3600) -> str:
    """The Set-Cookie value that keeps a dashboard login (``value``: the token)."""
    flags = "; Secure" if secure else ""
    return (f"{DASHBOARD_COOKIE}={value}; Path=/dashboard; Max-Age={max_age}; HttpOnly; "
            f"SameSite=Strict{flags}")


def logout_cookie() -> str:
    """The Set-Cookie value that ends a dashboard login."""
    return f"{DASHBOARD_COOKIE}=; Path=/dashboard; Max-Age=0; HttpOnly; SameSite=Strict"


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def refusal(exc: ModelportError, request_id: str) -> Reply:
    """A refusal as a reply, in the servers' ``{"error": ...}`` shape, with the headers
    its status calls for (``WWW-Authenticate``, ``Retry-After``)."""
    status = exc.http_status
    message = exc.message if status < 500 else f"internal server error (request id " \
                                                f"{request_id})"
    if status >= 500:
        log.error("request %s: cannot authenticate: %s", request_id, exc)
    body = orjson.dumps({"error": message})
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if status == 401:
        missing = exc.details.get("missing", False)
        headers.append((b"www-authenticate", _CHALLENGE if missing
                        else _CHALLENGE + b', error="invalid_token"'))
    elif status == 403:
        headers.append((b"www-authenticate", _CHALLENGE + b', error="insufficient_scope"'))
    elif isinstance(exc, RateLimitedError):
        headers.append((b"retry-after", str(retry_after(exc.retry_after)).encode()))
    return status, headers, body


class AuthMiddleware:
    """Admits each request to ``app`` per ``route_access``; answers refusals itself."""

    def __init__(self, app: ASGIApp, auth: Authenticator,
                 default_model: Callable[[], str | None]) -> None:
        self.app = app
        self.auth = auth
        self.default_model = default_model

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websocket routes: none reaches the app unchecked
            await send({"type": "websocket.close", "code": 1008})
            return
        path = local_path(scope)
        state = scope.setdefault("state", {})
        state["authenticator"] = self.auth  # the dashboard's login page verifies with it
        access = route_access(path, self.auth.config, self.default_model())
        if access is not None:
            refused = await self.auth.check(scope, state, access)
            if refused is not None:
                status, headers, body = refused
                if status == 401 and path in ("/dashboard", "/dashboard/") and \
                        scope["method"] == "GET":
                    # A browser opening the page without its cookie: to the login form.
                    status, headers, body = 303, [(b"location", DASHBOARD_LOGIN.encode()),
                                                  (b"content-length", b"0")], b""
                await send({"type": "http.response.start", "status": status,
                            "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


__all__ = ["AUTHENTICATED", "DASHBOARD_COOKIE", "DASHBOARD_LOGIN", "FLEET_READ", "Access",
           "AuthConfig", "AuthMiddleware", "Authenticator", "dashboard_cookie", "local_path",
           "login_cookie", "logout_cookie", "refusal", "route_access"]
