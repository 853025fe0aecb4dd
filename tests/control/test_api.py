"""The control plane in process: the real app and auth middleware, a real registry with
real tokens (``registry.tokens``), real HTTP over ASGI. Every route's permission, the
actor recorded as ``token:NAME``, uploads capped while streaming and digest-checked, and
nothing registered (nor left in the upload folder) on any failure."""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest
from starlette.testclient import TestClient

from modelport.client import Registry
from modelport.control.api import NO_AUTH, ControlAPI
from modelport.control.remote import _error
from modelport.control.upload import encode_metadata
from modelport.errors import GateFailedError, NotFoundError, RateLimitedError
from modelport.serving.app import create_app
from modelport.serving.auth import Authenticator
from modelport.serving.metrics import ServerMetrics
from modelport.serving.repository import ModelRepository

CAP = 64 * 1024


def light(fn: Any) -> bytes:
    # A tiny trusted pickle: the registry is under test here, not a framework.
    return pickle.dumps(SimpleNamespace(predict=fn))


@dataclass
class Api:
    client: TestClient
    registry: Registry
    uploads: Path
    values: dict[str, str] = field(default_factory=dict)

    def token(self, name: str, role: str, **kwargs: Any) -> str:
        self.values[name] = self.registry.tokens.create(name, role, actor="test",
                                                        **kwargs).value
        return name

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any
             ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token is not None:
            headers["authorization"] = f"Bearer {self.values[token]}"
        return self.client.request(method, path, headers=headers, **kwargs)

    def upload(self, name: str, data: bytes, token: str, *, filename: str = "m.pkl",
               trusted: bool = False, headers: dict[str, str] | None = None,
               content: Any = None) -> httpx.Response:
        sent = {"x-content-sha256": hashlib.sha256(data).hexdigest(), **(headers or {})}
        return self.call("POST", f"/api/models/{name}/versions", token,
                         params={"filename": filename, "trusted": str(trusted).lower()},
                         headers=sent, content=data if content is None else content)


def _app(registry: Registry, uploads: Path, *, auth: bool) -> Any:
    repo = ModelRepository(registry, [], ServerMetrics(), poll_interval=60,
                           deployment_poll_interval=60, server_id="test-control")
    api = ControlAPI(registry, max_upload_bytes=CAP, upload_dir=str(uploads))
    return create_app(repo, routes=api.routes(),
                      auth=Authenticator(registry.tokens) if auth else None,
                      body_limits=[("/api/models/", CAP)])


@pytest.fixture
def api(sqlite_registry: Registry, tmp_path: Path) -> Iterator[Api]:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    with TestClient(_app(sqlite_registry, uploads, auth=True)) as client:
        yield Api(client, sqlite_registry, uploads)


def seed(reg: Registry, tmp_path: Path) -> None:
    """iris 1 and 2 (champion -> 1) and fraud 1."""
    for name, fns in (("iris", (np.sign, np.abs)), ("fraud", (np.sign,))):
        for i, fn in enumerate(fns):
            path = tmp_path / f"{name}{i}.pkl"
            path.write_bytes(light(fn))
            reg.register_file(name, path, trusted=True)
    reg.set_alias("iris", "champion", 1)


def test_without_auth_every_api_route_is_refused(sqlite_registry: Registry,
                                                 tmp_path: Path) -> None:
    seed(sqlite_registry, tmp_path)
    with TestClient(_app(sqlite_registry, tmp_path, auth=False)) as client:
        for method, path in [("GET", "/api/models"), ("GET", "/api/models/iris"),
                             ("GET", "/api/audit"), ("PUT", "/api/models/iris/aliases/x"),
                             ("POST", "/api/models/iris/versions?filename=m.pkl"),
                             ("POST", "/api/rollback/iris")]:
            r = client.request(method, path, content=light(np.sign))
            assert (r.status_code, r.json()["error"]) == (403, NO_AUTH), (method, path)
    assert [v.version for v in sqlite_registry.list("iris")] == [2, 1]
    assert "x" not in sqlite_registry.get_model("iris").aliases


def test_reads_need_a_token_and_stay_inside_its_models(api: Api, tmp_path: Path) -> None:
    seed(api.registry, tmp_path)
    r = api.call("GET", "/api/models")
    assert r.status_code == 401 and "missing token" in r.json()["error"]
    api.token("all", "reader")
    api.token("iris-only", "reader", models="iris*")
    assert [m["name"] for m in api.call("GET", "/api/models", "all").json()] == \
        ["fraud", "iris"]
    assert [m["name"] for m in api.call("GET", "/api/models", "iris-only").json()] == ["iris"]
    ok = {"/api/models/iris": "iris", "/api/models/iris/versions/2": 2,
          "/api/models/iris/aliases/champion": 1}
    for path, expected in ok.items():
        body = api.call("GET", path, "iris-only").json()
        assert expected in (body.get("name"), body.get("version")), (path, body)
    assert [v["version"] for v in api.call("GET", "/api/models/iris/versions",
                                           "iris-only").json()] == [2, 1]
    history = api.call("GET", "/api/models/iris/history", "iris-only").json()
    assert [(e["alias"], e["to_version"], e["actor"]) for e in history] == \
        [("champion", 1, "tester")]
    # Outside the pattern: 403 whether the model exists or not, never 404.
    for path in ("/api/models/fraud", "/api/models/nope", "/api/models/fraud/versions/1",
                 "/api/models/fraud/history", "/api/rollouts/fraud"):
        r = api.call("GET", path, "iris-only")
        assert r.status_code == 403 and r.json()["type"] == "PermissionDeniedError", path
    r = api.call("GET", "/api/models/iris/versions/9", "iris-only")
    assert (r.status_code, r.json()["type"]) == (404, "VersionNotFoundError")
    r = api.call("GET", "/api/models/bad%20name", "all")
    assert r.status_code == 400 and "invalid model name" in r.json()["error"], r.text


def test_upload_registers_as_the_token_with_its_metadata(api: Api, tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(3).normal(size=(40, 2))
    path = tmp_path / "sk.skops"
    sio.dump(LogisticRegression().fit(X, (X[:, 0] > 0).astype(int)), path)
    api.token("ci-bot", "deployer", models="iris*")
    meta = encode_metadata({"metrics": {"accuracy": 0.9}, "tags": {"team": "a"},
                            "description": "from CI", "input_example": {"data": X[:2].tolist()}})
    r = api.upload("iris", path.read_bytes(), "ci-bot", filename="sk.skops",
                   headers={"x-modelport-metadata": meta})
    assert r.status_code == 201, r.text
    v = api.registry.get("iris/1")
    assert (v.created_by, v.flavor, v.metrics, v.description) == \
        ("token:ci-bot", "sklearn", {"accuracy": 0.9}, "from CI")
    assert v.tags == {"team": "a", "source_file": "sk.skops"} and v.signature is not None
    assert r.json()["artifact_digest"] == v.artifact_digest
    record = api.registry.audit.list(model="iris")[-1]
    assert (record.actor, record.action) == ("token:ci-bot", "version.register")
    assert list(api.uploads.iterdir()) == []


def test_upload_refusals_register_nothing(api: Api, tmp_path: Path) -> None:
    seed(api.registry, tmp_path)
    api.token("reader", "reader")
    api.token("deployer", "deployer")
    api.token("fraud-deployer", "deployer", models="fraud")
    api.token("admin", "admin")
    data = light(np.sign)
    cases: list[tuple[int, str, Any]] = [
        (403, "a reader token may not deploy", api.upload("iris", data, "reader")),
        (403, "may not admin", api.upload("iris", data, "deployer", trusted=True)),
        (403, "not allowed to deploy this model", api.upload("iris", data, "fraud-deployer")),
        (403, "runs arbitrary code", api.upload("iris", data, "deployer")),  # untrusted pickle
        (400, "digest mismatch", api.upload("iris", data, "admin", trusted=True,
                                            headers={"x-content-sha256": "0" * 64})),
        (400, "X-Content-SHA256 must be 64 hex", api.upload(
            "iris", data, "admin", trusted=True, headers={"x-content-sha256": "abc"})),
        (400, "invalid upload file name", api.upload("iris", data, "admin", trusted=True,
                                                     filename="../evil.pkl")),
        (400, "needs ?filename", api.upload("iris", data, "admin", filename="")),
        (400, "empty upload", api.upload("iris", b"", "admin", trusted=True)),
        (400, "base64url", api.upload("iris", data, "admin", trusted=True,
                                      headers={"x-modelport-metadata": "{not base64"})),
        # Declared too large: refused before a byte is read.
        (413, "exceeds the limit", api.upload("iris", b"x" * (CAP + 1), "admin",
                                              trusted=True)),
    ]

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted while it streams
        for _ in range(CAP // 1024 + 8):
            yield b"x" * 1024

    cases.append((413, "exceeds the limit", api.upload("iris", b"", "admin", trusted=True,
                                                       headers={"x-content-sha256": "0" * 64},
                                                       content=chunked())))
    for status, text, r in cases:
        assert r.status_code == status and text in r.json()["error"], (status, text, r.text)
    assert [v.version for v in api.registry.list("iris")] == [2, 1]
    assert list(api.uploads.iterdir()) == []
    r = api.upload("iris", data, "admin", trusted=True)
    assert r.status_code == 201 and r.json()["created_by"] == "token:admin", r.text


def test_alias_moves_need_deploy_and_record_the_token(api: Api, tmp_path: Path) -> None:
    seed(api.registry, tmp_path)
    api.token("reader", "reader")
    api.token("cd", "deployer", models="iris")
    r = api.call("PUT", "/api/models/iris/aliases/champion", "reader", json={"version": 2})
    assert r.status_code == 403
    r = api.call("PUT", "/api/models/iris/aliases/champion", "cd",
                 json={"version": 2, "reason": "better"})
    assert r.status_code == 200 and r.json()["from_version"] == 1, r.text
    r = api.call("PUT", "/api/models/iris/aliases/champion", "cd", json={"version": "2"})
    assert r.status_code == 400 and "version" in r.json()["error"]
    r = api.call("PUT", "/api/models/iris/aliases/staging", "cd", json={"version": 7})
    assert r.status_code == 404
    r = api.call("DELETE", "/api/models/iris/aliases/champion", "cd",
                 params={"reason": "gone"})
    assert r.status_code == 200 and r.json()["to_version"] is None
    events = api.registry.history("iris", "champion")
    assert [(e.to_version, e.actor, e.reason) for e in events[1:]] == \
        [(2, "token:cd", "better"), (None, "token:cd", "gone")]


def test_rollout_start_status_moves_rollback_and_history(api: Api, tmp_path: Path) -> None:
    seed(api.registry, tmp_path)
    api.token("reader", "reader", models="iris")
    api.token("cd", "deployer", models="iris")
    api.token("other", "deployer", models="fraud")
    plan = {"candidate": "iris/2", "step_duration": "60s", "steps": "10,100"}
    assert api.call("POST", "/api/rollouts/iris", "reader", json=plan).status_code == 403
    assert api.call("POST", "/api/rollouts/iris", "other", json=plan).status_code == 403
    r = api.call("POST", "/api/rollouts/iris", "cd", json={**plan, "bogus": 1})
    assert r.status_code == 400 and "unknown rollout option(s): bogus" in r.json()["error"]
    r = api.call("POST", "/api/rollouts/iris", "cd", json={**plan, "steps": "10,50"})
    assert r.status_code == 400, r.text
    assert api.registry.deployments.find("iris") is None  # refused: nothing written
    r = api.call("POST", "/api/rollouts/iris", "cd", json=plan)
    assert r.status_code == 201, r.text
    assert r.json()["rollout"]["created_by"] == "token:cd"
    assert r.json()["rollout"]["steps"] == [10.0, 100.0]
    status = api.call("GET", "/api/rollouts/iris", "reader").json()
    assert [s["rollout"]["status"] for s in status] == ["running"]
    for move, expected in (("pause", "paused"), ("resume", "running")):
        assert api.call("POST", f"/api/rollouts/iris/{move}", "reader").status_code == 403
        r = api.call("POST", f"/api/rollouts/iris/{move}", "cd", json={})
        assert (r.status_code, r.json()["rollout"]["status"]) == (200, expected), r.text
    assert api.call("POST", "/api/rollouts/iris/pause", "cd").status_code == 200
    r = api.call("POST", "/api/rollouts/iris/pause", "cd")
    assert (r.status_code, r.json()["type"]) == (409, "ConflictError")
    assert api.call("POST", "/api/rollouts/iris/explode", "cd").status_code == 400
    r = api.call("POST", "/api/rollouts/iris/promote", "cd")
    assert r.json()["deployment"]["stable"] == 2, r.text
    assert api.call("POST", "/api/rollback/iris", "reader").status_code == 403
    r = api.call("POST", "/api/rollback/iris", "cd", json={"reason": "bad"})
    assert r.status_code == 200 and r.json()["stable"] == 1, r.text
    kinds = [(e["kind"], e["actor"]) for e in
             api.call("GET", "/api/rollouts/iris/history", "reader").json()]
    assert kinds[-1] == ("rollback", "token:cd") and ("promoted", "token:cd") in kinds
    r = api.call("GET", "/api/rollouts/iris2", "cd")  # outside the pattern "iris"
    assert r.status_code == 403
    api.token("all", "reader")
    assert api.call("GET", "/api/rollouts/nope", "all").status_code == 404
    assert api.call("GET", "/api/rollouts", "all").status_code == 200
    assert api.call("GET", "/api/rollouts", "reader").status_code == 403  # fleet-wide


def test_audit_list_verify_and_at(api: Api, tmp_path: Path) -> None:
    seed(api.registry, tmp_path)
    api.token("all", "reader")
    api.token("iris-only", "reader", models="iris")
    records = api.call("GET", "/api/audit", "all", params={"limit": 2}).json()
    assert [r["action"] for r in records] == ["token.create", "token.create"]
    aliases = api.call("GET", "/api/audit", "all", params={"action": "alias"}).json()
    assert [(r["action"], r["target"]) for r in aliases] == [("alias.set", "iris@champion")]
    assert api.call("GET", "/api/audit", "iris-only").status_code == 403
    mine = api.call("GET", "/api/audit", "iris-only", params={"model": "iris"}).json()
    assert {r["model"] for r in mine} == {"iris"}
    assert api.call("GET", "/api/audit", "all", params={"limit": "x"}).status_code == 400
    assert api.call("GET", "/api/audit/verify", "iris-only").status_code == 403
    verified = api.call("GET", "/api/audit/verify", "all").json()
    assert verified["ok"] is True and verified["records"] >= 4
    from datetime import UTC, datetime

    now = datetime.now(UTC).isoformat()
    served = api.call("GET", "/api/audit/at", "iris-only",
                      params={"endpoint": "iris", "time": now}).json()
    assert served["versions"][0]["version"] == 1 and "iris/1" in served["sentence"]
    r = api.call("GET", "/api/audit/at", "iris-only",
                 params={"endpoint": "iris", "time": "2026-01-01T10:00"})
    assert r.status_code == 400 and "needs a zone" in r.json()["error"]
    r = api.call("GET", "/api/audit/at", "iris-only", params={"endpoint": "fraud",
                                                             "time": now})
    assert r.status_code == 403


def test_remote_errors_come_back_as_the_same_class() -> None:
    def answer(status: int, body: dict[str, Any], **headers: str) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    gate = _error(answer(409, {"error": "failed its gate", "type": "GateFailedError"}))
    assert type(gate) is GateFailedError and gate.exit_code == 10
    assert isinstance(_error(answer(404, {"error": "x", "type": "Nonsense"})), NotFoundError)
    limited = _error(answer(429, {"error": "slow down"}, **{"retry-after": "7"}))
    assert isinstance(limited, RateLimitedError) and limited.retry_after == 7.0
