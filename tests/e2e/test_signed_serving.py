"""End to end: signing and encryption through the real CLI and a real ``modelport serve``.

Keys come from ``modelport keys generate``; versions are registered, signed and verified
with the CLI, with artifacts encrypted at rest; the server runs under serve.yaml
``security: {require_signature: true}``. Every wait has a deadline.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
import skops.io as sio
import yaml
from sklearn.linear_model import LinearRegression

from tests.e2e.conftest import Cli
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e

X = np.arange(6, dtype=float).reshape(2, 3)
BODY = {"inputs": [{"name": "input-0", "datatype": "FP64", "shape": [2, 3],
                    "data": X.ravel().tolist()}]}


def _wait_for(check: Callable[[], bool], timeout: float, what: str,
              server: ServerProcess) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"{what}: not within {timeout}s\n--- server log ---\n{server.log()}")


def _model_file(tmp_path: Path, scale: float) -> Path:
    path = tmp_path / f"model-{scale:g}.skops"
    sio.dump(LinearRegression().fit(X * 3 + 1, (X * 3 + 1).sum(1) * scale), path)
    return path


def _infer(server: ServerProcess, path: str = "/v2/models/iris/infer") -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=BODY, timeout=30)


def _ok(result: object, code: int = 0) -> None:
    assert getattr(result, "returncode", None) == code, str(result)


def test_signed_cli_and_a_server_that_requires_signatures(tmp_path: Path, cli: Cli) -> None:
    home = tmp_path / "home"
    env = {"MODELPORT_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}
    keys = tmp_path / "conf" / "keys"
    gen = cli.run(home, "keys", "generate", "--out", keys, "--name", "release", "--json")
    _ok(gen)
    key_id = gen.json()["key_id"]
    assert (keys / "release.key").stat().st_mode & 0o777 == 0o600
    _ok(cli.run(home, "models", "register", "iris", _model_file(tmp_path, 1), "--sign-key",
                keys / "release.key", env=env))
    _ok(cli.run(home, "models", "register", "iris", _model_file(tmp_path, 2), env=env))
    _ok(cli.run(home, "models", "alias", "iris", "champion", "1", env=env))

    checked = cli.run(home, "models", "verify", "iris/1", "--key", keys / "release.pub",
                      "--json", env=env)
    _ok(checked)
    assert checked.json()["signature"] == "verified" and checked.json()["signed_by"] == key_id
    refused = cli.run(home, "models", "verify", "iris/2", "--key", keys / "release.pub", env=env)
    _ok(refused, 6)
    assert "models:/iris/2 is not signed by a trusted key" in refused.stderr
    no_key = cli.run(home, "models", "verify", "iris/1")  # encrypted, and no key given
    _ok(no_key, 7)
    assert "no encryption key is configured" in no_key.stderr

    config = tmp_path / "conf" / "serve.yaml"
    config.write_text(yaml.safe_dump({
        "models": [{"uri": "models:/iris@champion"}], "poll_interval": 0.2,
        "monitoring": {"enabled": False}, "alerting": {"enabled": False},
        "security": {"require_signature": True, "verify_keys": ["keys/release.pub"]}}))
    with ServerProcess(home, ["--config", str(config), "--no-controller"], env=env) as server:
        first = _infer(server)
        assert first.status_code == 200 and first.json()["model_version"] == "1", first.text
        v1_outputs = first.json()["outputs"][0]["data"]

        # the alias moves to an unsigned version: refused, version 1 keeps answering
        _ok(cli.run(home, "models", "alias", "iris", "champion", "2", env=env))
        _wait_for(lambda: "models:/iris/2 is not signed by a trusted key" in server.log(),
                  30, "the refusal in the server log", server)
        after = _infer(server)
        assert after.status_code == 200 and after.json()["model_version"] == "1", after.text
        assert after.json()["outputs"][0]["data"] == v1_outputs
        assert httpx.get(f"{server.url}/v2/health/ready", timeout=5).status_code == 200
        pinned = _infer(server, "/v2/models/iris/versions/2/infer")
        assert pinned.status_code == 403, pinned.text
        assert "not signed by a trusted key" in pinned.text

        # signed later: the server's retry loads it and switches
        _ok(cli.run(home, "models", "sign", "iris/2", "--key", keys / "release.key", env=env))
        _wait_for(lambda: _infer(server).json().get("model_version") == "2", 60,
                  "the signed version 2 served", server)
        assert _infer(server).json()["outputs"][0]["data"] != v1_outputs

    audit = cli.run(home, "audit", "list", "--action", "version.sign", "--json")
    _ok(audit)
    assert [r["target"] for r in audit.json()] == ["iris/2"]

    # a server whose only candidate is unsigned is not ready, and says why
    _ok(cli.run(home, "models", "register", "iris", _model_file(tmp_path, 3), env=env))
    _ok(cli.run(home, "models", "alias", "iris", "staging", "3", env=env))
    config.write_text(config.read_text().replace("iris@champion", "iris@staging"))
    with ServerProcess(home, ["--config", str(config), "--no-controller"], env=env,
                       wait_ready=False) as server:
        def unavailable() -> bool:
            try:
                index = httpx.post(f"{server.url}/v2/repository/index", timeout=5).json()
            except httpx.TransportError:
                return False
            return bool(index) and index[0]["state"] == "UNAVAILABLE" and \
                "models:/iris/3 is not signed by a trusted key" in index[0]["reason"]

        _wait_for(unavailable, 60, "index UNAVAILABLE because unsigned", server)
        assert httpx.get(f"{server.url}/v2/health/ready", timeout=5).status_code == 503
        assert _infer(server).status_code == 503
