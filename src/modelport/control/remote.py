"""``RemoteControl``: the ``Control`` operations sent to a server's ``/api/`` over httpx.

Errors come back as ``{"error", "type"}`` and are raised again as the same
``ModelportError`` class (by its name, else by the HTTP status), so a command exits with
the same code whether it ran locally or remotely. ``MODELPORT_URL`` and
``MODELPORT_TOKEN`` say where and as whom; ``MODELPORT_CA`` names a CA bundle (PEM) to
verify a server's certificate with, e.g. a self-signed one.
"""

from __future__ import annotations

import builtins
import hashlib
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from modelport import errors
from modelport.control import codec
from modelport.control.facade import Move, StartOptions
from modelport.control.upload import DIGEST_HEADER, METADATA_HEADER, encode_metadata
from modelport.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidInputError,
    ModelportError,
    StorageUnavailableError,
)
from modelport.uri import parse_uri

if TYPE_CHECKING:
    from modelport.registry.audit_served import Served
    from modelport.registry.audit_verify import AuditVerification
    from modelport.registry.entities import (
        AliasEvent,
        AuditRecord,
        Deployment,
        DeploymentEvent,
        ModelVersion,
        RegisteredModel,
        Rollout,
    )
    from modelport.rollout.service import Status

URL_ENV, TOKEN_ENV, CA_ENV = "MODELPORT_URL", "MODELPORT_TOKEN", "MODELPORT_CA"
CHUNK = 1 << 20
MAX_METADATA = 12 * 1024  # header bytes: servers refuse much larger header blocks
_BY_STATUS: dict[int, type[ModelportError]] = {
    400: InvalidInputError, 401: AuthenticationError, 403: errors.PermissionDeniedError,
    404: errors.NotFoundError, 409: errors.ConflictError, 413: errors.PayloadTooLargeError,
    415: errors.UnsupportedMediaTypeError, 429: errors.RateLimitedError,
    503: errors.ModelNotReadyError, 504: errors.RequestTimeoutError,
}


def remote_url() -> str | None:
    """``$MODELPORT_URL`` if set (non-empty)."""
    return os.environ.get(URL_ENV, "").strip() or None


def _error(response: httpx.Response) -> ModelportError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    message = body.get("error") if isinstance(body, dict) else None
    message = message or f"the server answered {response.status_code} {response.reason_phrase}"
    named = getattr(errors, str(body.get("type", "")) if isinstance(body, dict) else "", None)
    cls = named if isinstance(named, type) and issubclass(named, ModelportError) \
        and named is not errors.PipelineStepError else \
        _BY_STATUS.get(response.status_code, ModelportError)
    if cls is errors.RateLimitedError:
        retry = response.headers.get("retry-after", "1")
        return errors.RateLimitedError(message, float(retry) if retry.isdigit() else 1.0)
    return cls(message)


class RemoteControl:
    """``Control`` against ``url``'s ``/api/`` with bearer ``token``."""

    def __init__(self, url: str | None = None, token: str | None = None, *,
                 timeout: float = 60.0, verify: str | bool | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        url = url or remote_url()
        if not url:
            raise ConfigurationError(f"no server to connect to: pass url= or set {URL_ENV}")
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"{URL_ENV} must start with http:// or https://, got "
                                     f"{url!r}")
        token = token or os.environ.get(TOKEN_ENV, "").strip()
        if not token:
            raise AuthenticationError(f"{URL_ENV} is set but {TOKEN_ENV} is not: create a "
                                      "token on the server (modelport tokens create NAME "
                                      f"--role deployer) and set {TOKEN_ENV}", missing=True)
        self.url = url.rstrip("/")
        ca = os.environ.get(CA_ENV, "").strip()
        self._http = httpx.Client(
            base_url=self.url, headers={"authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout, connect=10.0),
            verify=verify if verify is not None else (ca or True), transport=transport)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> RemoteControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RemoteControl {self.url}>"  # never the token

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, "/api" + path, **kwargs)
        except httpx.TimeoutException as exc:
            raise errors.RequestTimeoutError(f"{self.url} did not answer in time: {exc}"
                                             ) from None
        except httpx.TransportError as exc:
            raise StorageUnavailableError(f"cannot reach the modelport server at {self.url}: "
                                          f"{exc}") from None
        if response.status_code >= 400:
            raise _error(response)
        return response.json()

    # -- models ---------------------------------------------------------------------------

    def list(self, name: str | None = None, *, include_deleted: bool = False
             ) -> builtins.list[Any]:
        """All models (that the token covers), or the versions of ``name``."""
        params = {"all": "true"} if include_deleted else {}
        if name is None:
            return [codec.model_from(d) for d in self._call("GET", "/models", params=params)]
        return [codec.version_from(d) for d in
                self._call("GET", f"/models/{_seg(name)}/versions", params=params)]

    def get_model(self, name: str) -> RegisteredModel:
        """The registered model ``name``."""
        return codec.model_from(self._call("GET", f"/models/{_seg(name)}"))

    def get(self, uri: str) -> ModelVersion:
        """The version ``uri`` points to (NAME/VERSION, NAME@ALIAS, models:/...)."""
        parsed = parse_uri(uri)
        if parsed.alias is not None:
            path = f"/models/{_seg(parsed.name)}/aliases/{_seg(parsed.alias)}"
        elif parsed.version is not None:
            path = f"/models/{_seg(parsed.name)}/versions/{parsed.version}"
        else:  # the latest version, as the local registry resolves a bare NAME
            versions = self.list(parsed.name)
            if not versions:
                raise errors.VersionNotFoundError(f"model {parsed.name!r} has no versions")
            return versions[0]  # newest first
        return codec.version_from(self._call("GET", path))

    def register_file(self, name: str, path: str | os.PathLike[str], *, trusted: bool = False,
                      input_example: Any = None, metrics: dict[str, float] | None = None,
                      params: dict[str, Any] | None = None,
                      tags: dict[str, str] | None = None, description: str = "",
                      sign_key: str | os.PathLike[str] | None = None) -> ModelVersion:
        """Upload a model file (streamed, with its sha256) and register it on the server."""
        if sign_key is not None:
            raise InvalidInputError("--sign-key needs a local registry: a remote server "
                                    "signs uploads with its own MODELPORT_SIGNING_KEY, and a "
                                    "version can be signed later with modelport models sign")
        p = Path(path)
        if not p.is_file():
            raise InvalidInputError(f"model file not found: {p}")
        headers = {DIGEST_HEADER: _sha256(p), "content-type": "application/octet-stream",
                   "content-length": str(p.stat().st_size)}
        meta = _metadata(input_example, metrics, params, tags, description)
        if meta:
            headers[METADATA_HEADER] = meta
        query = {"filename": p.name, "trusted": "true" if trusted else "false"}
        with p.open("rb") as fh:
            found = self._call("POST", f"/models/{_seg(name)}/versions", params=query,
                               headers=headers, content=_chunks(fh),
                               timeout=httpx.Timeout(None, connect=10.0))
        return codec.version_from(found)

    def set_alias(self, name: str, alias: str, version: int, *, reason: str = ""
                  ) -> AliasEvent:
        """Point ``alias`` of ``name`` at ``version``."""
        return codec.alias_event_from(self._call(
            "PUT", f"/models/{_seg(name)}/aliases/{_seg(alias)}",
            json={"version": version, "reason": reason}))

    def delete_alias(self, name: str, alias: str, *, reason: str = "") -> AliasEvent:
        """Remove ``alias`` of ``name``."""
        return codec.alias_event_from(self._call(
            "DELETE", f"/models/{_seg(name)}/aliases/{_seg(alias)}", params={"reason": reason}))

    def history(self, name: str, alias: str | None = None) -> builtins.list[AliasEvent]:
        """Every alias move of ``name`` (or of one alias)."""
        params = {"alias": alias} if alias else {}
        return [codec.alias_event_from(d) for d in
                self._call("GET", f"/models/{_seg(name)}/history", params=params)]

    # -- rollouts -------------------------------------------------------------------------

    def rollout_start(self, endpoint: str, options: StartOptions
                      ) -> tuple[Rollout, Deployment]:
        """Start a rollout on ``endpoint``."""
        return codec.moved_from(self._call("POST", f"/rollouts/{_seg(endpoint)}",
                                           json=options.to_dict()))

    def rollout_status(self, endpoint: str | None = None) -> builtins.list[Status]:
        """Active rollouts, or the endpoint's newest one."""
        path = "/rollouts" if endpoint is None else f"/rollouts/{_seg(endpoint)}"
        return [codec.status_from(d) for d in self._call("GET", path)]

    def rollout_move(self, endpoint: str, move: Move, *, reason: str = ""
                     ) -> tuple[Rollout, Deployment]:
        """Promote, pause, resume or abort the endpoint's active rollout."""
        return codec.moved_from(self._call("POST", f"/rollouts/{_seg(endpoint)}/{move}",
                                           json={"reason": reason}))

    def rollback(self, endpoint: str, *, reason: str = "") -> Deployment:
        """Put the endpoint's previous stable version back."""
        return codec.deployment_from(self._call("POST", f"/rollback/{_seg(endpoint)}",
                                                json={"reason": reason}))

    def rollout_history(self, endpoint: str) -> builtins.list[DeploymentEvent]:
        """Every event of the endpoint."""
        return [codec.event_from(d) for d in
                self._call("GET", f"/rollouts/{_seg(endpoint)}/history")]

    # -- audit ----------------------------------------------------------------------------

    def audit_list(self, *, model: str | None = None, action: str | None = None,
                   limit: int = 50) -> builtins.list[AuditRecord]:
        """The newest audit records, oldest first."""
        params: dict[str, Any] = {"limit": limit}
        params.update({k: v for k, v in (("model", model), ("action", action)) if v})
        return [codec.record_from(d) for d in self._call("GET", "/audit", params=params)]

    def audit_verify(self) -> AuditVerification:
        """The server's audit chain checked."""
        return codec.verification_from(self._call("GET", "/audit/verify"))

    def audit_at(self, endpoint: str, moment: datetime, *, alias: str = "champion"
                 ) -> Served:
        """What served ``endpoint`` at ``moment``."""
        return codec.served_from(self._call("GET", "/audit/at", params={
            "endpoint": endpoint, "time": moment.isoformat(), "alias": alias}))


def _seg(value: str) -> str:
    # One path segment: a "/" or "%" in a name must reach the server's name check, not
    # change which route is called.
    return quote(value, safe="")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _chunks(fh: Any) -> Iterator[bytes]:
    while block := fh.read(CHUNK):
        yield block


def _metadata(example: Any, metrics: dict[str, float] | None, params: dict[str, Any] | None,
              tags: dict[str, str] | None, description: str) -> str | None:
    import orjson

    data: dict[str, Any] = {k: v for k, v in (("metrics", metrics), ("params", params),
                                              ("tags", tags)) if v}
    if description:
        data["description"] = description
    if example is not None:
        from modelport.datafiles import example_to_json

        data["input_example"] = orjson.loads(example_to_json(example))
    if not data:
        return None
    encoded = encode_metadata(data)
    if len(encoded) > MAX_METADATA:
        raise InvalidInputError(f"the metadata (input example, metrics, params, tags, "
                                f"description) is {len(encoded):,} bytes encoded, over the "
                                f"{MAX_METADATA:,} a remote upload can carry: shorten it")
    return encoded


__all__ = ["CA_ENV", "TOKEN_ENV", "URL_ENV", "RemoteControl", "remote_url"]
