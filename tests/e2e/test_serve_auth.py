"""End to end: real ``modelport serve`` processes with auth and TLS, real tokens from the
real ``modelport tokens`` CLI, real HTTP clients (httpx, ``tritonclient.http``).

A public bind without a usable token refuses to start (exit 7, saying what to do);
``--insecure-no-auth`` starts it open; ``--auth`` on loopback takes tokens, refuses
others, rate-limits, and honours a revocation; ``--tls-cert/--tls-key`` serve HTTPS that
a client verifies against the self-signed certificate made here.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest

from modelport.client import Registry
from modelport.config import Settings
from tests.e2e.conftest import Cli
from tests.e2e.server import ServerProcess, free_port
from tests.tls import self_signed

pytestmark = pytest.mark.e2e

X = np.random.default_rng(11).normal(size=(60, 2))
ROW = orjson.dumps({"inputs": [{"name": "input-0", "shape": [2, 2], "datatype": "FP64",
                                "data": [0.1, 0.2, -0.3, 0.4]}]})
SERVE = ["iris", "--no-controller"]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    from sklearn.linear_model import LogisticRegression

    h = tmp_path / "home"
    with Registry(settings=Settings.load(h)) as reg:
        model = LogisticRegression().fit(X, (X[:, 0] > X[:, 1]).astype(int))
        reg.log_model(model, "iris", input_example=X[:2])
        reg.log_model(model, "fraud", input_example=X[:2])
    return h


def bearer(value: str) -> dict[str, str]:
    return {"authorization": f"Bearer {value}"}


def test_public_bind_refuses_without_usable_auth_and_starts_when_told(
        cli: Cli, home: Path, tmp_path: Path) -> None:
    port = str(free_port())
    r = cli.run(home, "serve", *SERVE, "--host", "0.0.0.0", "--port", port)
    assert r.returncode == 7, r
    assert "authentication is on (--host 0.0.0.0 is not loopback)" in r.stderr, r
    assert "modelport tokens create" in r.stderr and "--insecure-no-auth" in r.stderr
    config = tmp_path / "serve.yaml"
    config.write_text("auth: {enabled: false}\n")
    cli.run(home, "tokens", "create", "ci", "--role", "predictor")
    r = cli.run(home, "serve", *SERVE, "--host", "0.0.0.0", "--port", port, "--config", config)
    assert r.returncode == 7 and "Pass --insecure-no-auth" in r.stderr, r
    r = cli.run(home, "serve", *SERVE, "--tls-cert", config, "--port", port)
    assert r.returncode == 7 and "--tls-cert and --tls-key go together" in r.stderr, r
    with ServerProcess(home, [*SERVE, "--host", "0.0.0.0", "--insecure-no-auth"]) as srv:
        answer = httpx.post(f"{srv.url}/v2/models/iris/infer", content=ROW, timeout=10)
        assert answer.status_code == 200, answer.text
        assert "WITHOUT authentication" in srv.log()


def test_tokens_against_a_real_server(cli: Cli, home: Path, tmp_path: Path) -> None:
    created = cli.run(home, "tokens", "create", "ci", "--role", "predictor", "--models",
                      "iris*")
    assert created.returncode == 0, created
    ci = created.stdout.strip()
    assert ci.startswith("mp_") and "shown only this once" in created.stderr
    reader = cli.run(home, "tokens", "create", "ops", "--role", "reader", "--json").json()
    slow = cli.run(home, "tokens", "create", "slow", "--role", "predictor", "--rate", "0.1",
                   "--burst", "2").stdout.strip()
    listed = cli.run(home, "tokens", "list", "--json")
    assert {t["name"] for t in listed.json()} == {"ci", "ops", "slow"}
    assert ci.split("_", 2)[2] not in listed.stdout and "scrypt" not in listed.stdout
    config = tmp_path / "serve.yaml"
    config.write_text("auth: {cache_seconds: 0.5}\n")
    with ServerProcess(home, [*SERVE, "--auth", "--config", config]) as srv:
        url = srv.url
        r = httpx.post(f"{url}/v2/models/iris/infer", content=ROW, timeout=10)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        r = httpx.post(f"{url}/v2/models/iris/infer", content=ROW, headers=bearer(ci),
                       timeout=10)
        assert r.status_code == 200, r.text
        for model in ("fraud", "ghost"):  # out of scope: served or not, the same 403
            r = httpx.post(f"{url}/v2/models/{model}/infer", content=ROW, headers=bearer(ci),
                           timeout=10)
            assert r.status_code == 403 and model not in r.text
        assert httpx.get(f"{url}/metrics", timeout=10).status_code == 401
        page = httpx.get(f"{url}/dashboard", timeout=10)  # a browser: to the sign-in form
        assert page.status_code == 303 and page.headers["location"] == "/dashboard/login"
        signed = httpx.post(f"{url}/dashboard/login", data={"token": reader["token"]},
                            timeout=10)
        assert signed.status_code == 303 and "HttpOnly" in signed.headers["set-cookie"]
        cookie = {"cookie": signed.headers["set-cookie"].split(";")[0]}
        assert httpx.get(f"{url}/dashboard/api/overview", headers=cookie,
                         timeout=10).status_code == 200
        assert httpx.get(f"{url}/metrics", headers=cookie, timeout=10).status_code == 401
        for path in ("/metrics", "/dashboard"):
            assert httpx.get(f"{url}{path}", headers=bearer(ci), timeout=10
                             ).status_code == 403, path  # scoped: no fleet views
            ok = httpx.get(f"{url}{path}", headers=bearer(reader["token"]), timeout=10)
            assert ok.status_code == 200, (path, ok.text[:200])
        assert httpx.get(f"{url}/v2/health/live", timeout=10).status_code == 200
        check_tritonclient(srv.port, ci)
        check_rate_limit(url, slow)
        revoked = cli.run(home, "tokens", "revoke", "ci", "--reason", "e2e")
        assert revoked.returncode == 0, revoked
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = httpx.post(f"{url}/v2/models/iris/infer", content=ROW, headers=bearer(ci),
                           timeout=10)
            if r.status_code != 200:
                break
            time.sleep(0.1)
        assert (r.status_code, r.json()) == (401, {"error": "token 'ci' has been revoked"})
        assert '"token":"ci"' in srv.log()  # the access log names who called
    actions = [a["action"] for a in cli.run(home, "audit", "list", "--json").json()]
    assert actions == ["version.register"] * 2 + ["token.create"] * 3 + ["token.revoke"]


def check_tritonclient(port: int, token: str) -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    from tritonclient.utils import InferenceServerException

    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{port}", network_timeout=20)
    try:
        assert client.is_server_live()  # health needs no token
        inp = httpclient.InferInput("input-0", [3, 2], "FP64")
        inp.set_data_from_numpy(X[:3], binary_data=True)
        with pytest.raises(InferenceServerException, match="missing token"):
            client.infer("iris", [inp])
        result = client.infer("iris", [inp], headers=bearer(token))
        assert result.as_numpy("output-0").shape[0] == 3
        assert client.get_model_metadata("iris", headers=bearer(token))["name"] == "iris"
    finally:
        client.close()


def check_rate_limit(url: str, token: str) -> None:
    codes = []
    for _ in range(3):  # a burst of 2, then 0.1 per second: the third waits ~10 s
        r = httpx.get(f"{url}/v2/models/iris", headers=bearer(token), timeout=10)
        codes.append(r.status_code)
    assert codes == [200, 200, 429], codes
    assert int(r.headers["retry-after"]) >= 1
    assert "rate limit" in r.json()["error"]


def test_tls_with_a_self_signed_certificate(cli: Cli, home: Path, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path / "tls")
    token = cli.run(home, "tokens", "create", "ci", "--role", "predictor").stdout.strip()
    args = [*SERVE, "--auth", "--tls-cert", str(cert), "--tls-key", str(key)]
    with ServerProcess(home, args, ca=cert) as srv:
        assert srv.url.startswith("https://")
        r = httpx.post(f"{srv.url}/v2/models/iris/infer", content=ROW, headers=bearer(token),
                       verify=srv.verify, timeout=10)
        assert r.status_code == 200, r.text
        assert r.http_version in ("HTTP/1.1", "HTTP/2")
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{srv.url}/v2/health/live", timeout=10)  # not a publicly trusted CA
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")  # plain HTTP
            try:
                answer = sock.recv(4096)
            except ConnectionResetError:
                answer = b""
            assert b'"live"' not in answer
    bad = cli.run(home, "serve", *SERVE, "--tls-cert", str(cert), "--tls-key",
                  str(tmp_path / "nope.key"), "--port", str(free_port()))
    assert bad.returncode == 7 and "cannot read --tls-key" in bad.stderr, bad


def test_tokens_cli_refusals_write_nothing(cli: Cli, home: Path) -> None:
    for args, code, words in [
        (["create", "x", "--role", "boss"], 2, "'boss' is not one of"),
        (["create", "x", "--role", "reader", "--expires", "0d"], 2, "invalid --expires"),
        (["create", "x", "--role", "admin", "--models", "iris"], 2, "covers every model"),
        (["create", "x", "--role", "reader", "--burst", "3"], 2, "a burst needs a rate"),
        (["create", "../x", "--role", "reader"], 2, "invalid token name"),
        (["revoke", "nope"], 3, "no live token named 'nope'"),
    ]:
        r = cli.run(home, "tokens", *args)
        assert r.returncode == code and words in r.stderr, r
        assert r.stdout == "", r  # no token value printed for a refusal
    assert cli.run(home, "tokens", "list", "--json").json() == []
    assert cli.run(home, "tokens", "create", "x", "--role", "reader").returncode == 0
    again = cli.run(home, "tokens", "create", "x", "--role", "reader")
    assert again.returncode == 4 and "already exists" in again.stderr and again.stdout == ""
