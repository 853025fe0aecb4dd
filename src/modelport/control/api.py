"""The control plane's HTTP routes under ``/api/``: the registry and rollouts, by token.

Every route needs the request's verified token (``serving.auth`` puts it in
``scope["state"]["grant"]``); a server started without auth has none, and every
``/api/`` request is then refused (403): an unauthenticated network control plane is
what CVE-2023-48022 exploited. Each route calls ``access.authorize`` itself:

    read    GET models, versions, aliases, history, rollouts, audit (a model the token
            covers; the unscoped lists and ``audit verify`` need a token for "*"; the
            model list shows only models the token covers)
    deploy  register an upload, move or remove an alias, start/promote/pause/resume/
            abort a rollout, roll back
    admin   register an upload with ``trusted=true`` (it runs code in this server)

A rollout route authorizes on the model its endpoint serves (the endpoint's name when
it has no deployment, so a token outside it learns nothing of whether it exists). The
actor recorded for every change is ``token:NAME``.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelport.access import Action, authorize
from modelport.client import Registry
from modelport.control import upload
from modelport.control.facade import MOVES, LocalControl, StartOptions
from modelport.errors import InvalidInputError, ModelportError, PermissionDeniedError
from modelport.registry.tokens import Token
from modelport.uri import parse_uri, validate_alias, validate_name

log = logging.getLogger("modelport.control")
PREFIX = "/api"
MAX_JSON_BYTES = 1 << 20  # a rollout plan or an alias move is a few hundred bytes
NO_AUTH = "the control plane needs auth: start serve with --auth"
Handler = Callable[[Request], Awaitable[Response]]


def json_response(payload: Any, status: int = 200) -> Response:
    """``payload`` as a JSON response."""
    return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
                    status_code=status, media_type="application/json",
                    headers={"cache-control": "no-store"})


def error_response(exc: ModelportError) -> Response:
    """``{"error": message, "type": class}``: the class lets a client raise the same
    error (and so exit with the same code) as a local run would."""
    response = json_response({"error": exc.message, "type": type(exc).__name__},
                             exc.http_status)
    retry = getattr(exc, "retry_after", None)
    if retry is not None:
        response.headers["retry-after"] = str(max(1, round(retry)))
    return response


def grant(request: Request) -> Token:
    """The request's verified token; PermissionDeniedError if the server has no auth."""
    token = request.scope.get("state", {}).get("grant")
    if not isinstance(token, Token):
        raise PermissionDeniedError(NO_AUTH)
    return token


def allowed(token: Token, action: Action, model: str | None) -> bool:
    """Whether ``authorize`` lets ``token`` do ``action`` on ``model``."""
    try:
        authorize(token, action, model)
    except PermissionDeniedError:
        return False
    return True


def _flag(value: str | None, what: str) -> bool:
    if value is None or value.lower() in ("0", "false", "no", ""):
        return False
    if value.lower() in ("1", "true", "yes"):
        return True
    raise InvalidInputError(f"{what} must be true or false, got {value!r}")


async def _json_body(request: Request) -> dict[str, Any]:
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BYTES:
            raise InvalidInputError(f"the JSON body exceeds {MAX_JSON_BYTES:,} bytes")
    if not raw:
        return {}
    try:
        data = orjson.loads(bytes(raw))
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInputError("the body must be a JSON object")
    return data


def _reason(data: dict[str, Any]) -> str:
    reason = data.get("reason", "")
    if not isinstance(reason, str):
        raise InvalidInputError("\"reason\" must be a string")
    return reason


class ControlAPI:
    """The ``/api/`` routes over one worker's registry."""

    def __init__(self, registry: Registry, *, max_upload_bytes: int = upload.DEFAULT_MAX_UPLOAD,
                 upload_dir: str | None = None) -> None:
        self.registry = registry
        self.max_upload_bytes = max_upload_bytes
        self.upload_dir = upload_dir

    def control(self, token: Token) -> LocalControl:
        """The registry acting as ``token:NAME`` (shares this worker's connections)."""
        base = self.registry
        acting = Registry(settings=replace(base.settings, user=f"token:{token.name}"),
                          store=base.store, artifact_store=base.artifacts)
        return LocalControl(acting)

    def _endpoint_model(self, endpoint: str) -> str:
        validate_name(endpoint, "endpoint name")
        dep = self.registry.deployments.find(endpoint)
        return dep.model_name if dep is not None else endpoint

    # -- models ---------------------------------------------------------------------------

    async def models(self, request: Request) -> Response:
        token = grant(request)
        everything = _flag(request.query_params.get("all"), "all")
        found = await run_in_threadpool(self.registry.list, None, include_deleted=everything)
        return json_response([m.to_dict() for m in found
                              if allowed(token, Action.READ, m.name)])

    async def model(self, request: Request) -> Response:
        name = request.path_params["name"]
        authorize(grant(request), Action.READ, name)
        found = await run_in_threadpool(self.registry.get_model, name)
        return json_response(found.to_dict())

    async def versions(self, request: Request) -> Response:
        name = request.path_params["name"]
        authorize(grant(request), Action.READ, name)
        everything = _flag(request.query_params.get("all"), "all")
        found = await run_in_threadpool(self.registry.list, name, include_deleted=everything)
        return json_response([v.to_dict() for v in found])

    async def version(self, request: Request) -> Response:
        name, ref = request.path_params["name"], request.path_params["version"]
        authorize(grant(request), Action.READ, name)
        if not ref.isdigit():
            raise InvalidInputError(f"version must be a number, got {ref[:40]!r}")
        found = await run_in_threadpool(self.registry.get, parse_uri(f"{name}/{ref}"))
        return json_response(found.to_dict())

    async def alias(self, request: Request) -> Response:
        name, alias = request.path_params["name"], request.path_params["alias"]
        token = grant(request)
        validate_alias(alias)
        if request.method == "GET":
            authorize(token, Action.READ, name)
            found = await run_in_threadpool(self.registry.get, parse_uri(f"{name}@{alias}"))
            return json_response(found.to_dict())
        authorize(token, Action.DEPLOY, name)
        ctl = self.control(token)
        if request.method == "DELETE":
            reason = request.query_params.get("reason", "")
            event = await run_in_threadpool(ctl.delete_alias, name, alias, reason=reason)
            return json_response(event.to_dict())
        data = await _json_body(request)
        version = data.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise InvalidInputError("the body needs \"version\": the version number to point at")
        event = await run_in_threadpool(ctl.set_alias, name, alias, version,
                                        reason=_reason(data))
        return json_response(event.to_dict())

    async def history(self, request: Request) -> Response:
        name = request.path_params["name"]
        authorize(grant(request), Action.READ, name)
        alias = request.query_params.get("alias")
        events = await run_in_threadpool(self.registry.history, name, alias)
        return json_response([e.to_dict() for e in events])

    async def register(self, request: Request) -> Response:
        """``POST /api/models/NAME/versions``: the body is the model file."""
        name = request.path_params["name"]
        token = grant(request)
        trusted = _flag(request.query_params.get("trusted"), "trusted")
        # A trusted file is unpickled by this server as it is registered: code execution
        # here, so it takes an admin, not a deployer.
        authorize(token, Action.ADMIN if trusted else Action.DEPLOY, name)
        filename = upload.check_filename(request.query_params.get("filename"))
        meta = upload.parse_metadata(request.headers.get(upload.METADATA_HEADER))
        expected = upload.expected_digest(request.headers)
        example = None
        if meta.get("input_example") is not None:
            from modelport.datafiles import example_from_json

            try:
                example = example_from_json(orjson.dumps(meta["input_example"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise InvalidInputError(f"invalid input_example in the upload metadata: "
                                        f"{exc}") from None
        with tempfile.TemporaryDirectory(prefix="modelport-upload-", dir=self.upload_dir) as d:
            path = Path(d) / filename
            got = await upload.receive_to(request.stream(), path, self.max_upload_bytes,
                                          request.headers.get("content-length"))
            if expected is not None and got != expected:
                raise InvalidInputError(f"digest mismatch: the body's sha256 is {got}, the "
                                        f"client said {expected}; nothing was registered")
            version = await run_in_threadpool(
                self.control(token).register_file, name, path, trusted=trusted,
                input_example=example, metrics=meta.get("metrics"), params=meta.get("params"),
                tags=meta.get("tags"), description=meta.get("description", ""))
        return json_response(version.to_dict(), 201)

    # -- rollouts -------------------------------------------------------------------------

    async def rollouts(self, request: Request) -> Response:
        authorize(grant(request), Action.READ, None)
        found = await run_in_threadpool(LocalControl(self.registry).rollout_status, None)
        return json_response([s.to_dict() for s in found])

    async def rollout(self, request: Request) -> Response:
        endpoint = request.path_params["endpoint"]
        token = grant(request)
        model = await run_in_threadpool(self._endpoint_model, endpoint)
        if request.method == "GET":
            authorize(token, Action.READ, model)
            found = await run_in_threadpool(LocalControl(self.registry).rollout_status,
                                            endpoint)
            return json_response([s.to_dict() for s in found])
        authorize(token, Action.DEPLOY, model)
        options = StartOptions.from_dict(await _json_body(request))
        authorize(token, Action.DEPLOY, parse_uri(options.candidate).name)
        rollout, dep = await run_in_threadpool(self.control(token).rollout_start, endpoint,
                                               options)
        return json_response({"rollout": rollout.to_dict(), "deployment": dep.to_dict()}, 201)

    async def move(self, request: Request) -> Response:
        endpoint, move = request.path_params["endpoint"], request.path_params["move"]
        token = grant(request)
        if move not in MOVES:
            raise InvalidInputError(f"unknown rollout action {move[:40]!r}: use "
                                    f"{', '.join(MOVES)}")
        authorize(token, Action.DEPLOY, await run_in_threadpool(self._endpoint_model, endpoint))
        reason = _reason(await _json_body(request))
        rollout, dep = await run_in_threadpool(self.control(token).rollout_move, endpoint,
                                               move, reason=reason)  # type: ignore[arg-type]
        return json_response({"rollout": rollout.to_dict(), "deployment": dep.to_dict()})

    async def rollout_history(self, request: Request) -> Response:
        endpoint = request.path_params["endpoint"]
        token = grant(request)
        authorize(token, Action.READ, await run_in_threadpool(self._endpoint_model, endpoint))
        events = await run_in_threadpool(LocalControl(self.registry).rollout_history, endpoint)
        return json_response([e.to_dict() for e in events])

    async def rollback(self, request: Request) -> Response:
        endpoint = request.path_params["endpoint"]
        token = grant(request)
        authorize(token, Action.DEPLOY, await run_in_threadpool(self._endpoint_model, endpoint))
        reason = _reason(await _json_body(request))
        dep = await run_in_threadpool(self.control(token).rollback, endpoint, reason=reason)
        return json_response(dep.to_dict())

    # -- audit ----------------------------------------------------------------------------

    async def audit(self, request: Request) -> Response:
        q = request.query_params
        model = q.get("model")
        if model is not None:
            validate_name(model)
        authorize(grant(request), Action.READ, model)
        limit_text = q.get("limit", "50")
        if not limit_text.isdigit():
            raise InvalidInputError(f"limit must be a positive number, got {limit_text[:20]!r}")
        found = await run_in_threadpool(LocalControl(self.registry).audit_list, model=model,
                                        action=q.get("action"), limit=int(limit_text))
        return json_response([r.to_dict() for r in found])

    async def audit_verify(self, request: Request) -> Response:
        authorize(grant(request), Action.READ, None)
        result = await run_in_threadpool(self.registry.audit.verify)
        return json_response(result.to_dict())

    async def audit_at(self, request: Request) -> Response:
        q = request.query_params
        endpoint, text = q.get("endpoint"), q.get("time")
        if not endpoint or not text:
            raise InvalidInputError("audit at needs ?endpoint=NAME&time=ISO8601")
        token = grant(request)
        authorize(token, Action.READ, await run_in_threadpool(self._endpoint_model, endpoint))
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidInputError(f"invalid time {text[:40]!r}: use ISO 8601") from None
        if moment.tzinfo is None:
            raise InvalidInputError(f"time {text[:40]!r} needs a zone (e.g. +00:00 or Z)")
        served = await run_in_threadpool(self.registry.audit.served_at, endpoint, moment,
                                         alias=q.get("alias", "champion"))
        return json_response(served.to_dict())

    # -- wiring ---------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        """The routes to mount beside the server's own."""
        p, g = PREFIX, _guarded
        return [
            Route(f"{p}/models", g(self.models)),
            Route(f"{p}/models/{{name}}", g(self.model)),
            Route(f"{p}/models/{{name}}/versions", g(self.versions)),
            Route(f"{p}/models/{{name}}/versions", g(self.register), methods=["POST"]),
            Route(f"{p}/models/{{name}}/versions/{{version}}", g(self.version)),
            Route(f"{p}/models/{{name}}/aliases/{{alias}}", g(self.alias),
                  methods=["GET", "PUT", "DELETE"]),
            Route(f"{p}/models/{{name}}/history", g(self.history)),
            Route(f"{p}/rollouts", g(self.rollouts)),
            Route(f"{p}/rollouts/{{endpoint}}", g(self.rollout), methods=["GET", "POST"]),
            Route(f"{p}/rollouts/{{endpoint}}/history", g(self.rollout_history)),
            Route(f"{p}/rollouts/{{endpoint}}/{{move}}", g(self.move), methods=["POST"]),
            Route(f"{p}/rollback/{{endpoint}}", g(self.rollback), methods=["POST"]),
            Route(f"{p}/audit", g(self.audit)),
            Route(f"{p}/audit/verify", g(self.audit_verify)),
            Route(f"{p}/audit/at", g(self.audit_at)),
        ]


def _guarded(fn: Handler) -> Handler:
    """``fn`` with names checked and errors rendered as ``{"error", "type"}``."""
    async def handler(request: Request) -> Response:
        try:
            name = request.path_params.get("name")
            if name is not None:
                validate_name(name)
            return await fn(request)
        except ModelportError as exc:
            return error_response(exc)
        except Exception:  # a bug or an unforeseen failure: logged, never echoed
            rid = request.scope.get("state", {}).get("request_id", "")
            log.exception("request %s to %s failed", rid, request.url.path)
            return json_response({"error": f"internal server error (request id {rid})",
                                  "type": "ModelportError"}, 500)
    return handler


__all__ = ["NO_AUTH", "PREFIX", "ControlAPI", "error_response", "grant", "json_response"]
