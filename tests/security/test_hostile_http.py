"""Hostile requests against a real ``modelport serve``: each answered with a precise 4xx,
nothing written to the registry, and the next good request still served.

Attack classes: path traversal and SQL metacharacters in model names and versions
(plain, percent-encoded, NUL, absolute), deeply nested JSON, oversized bodies declared
and chunked, compressed bodies (a decompression bomb is cut off at the cap), and header
injection through ``X-Request-ID``.
"""

from __future__ import annotations

import gzip
import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import orjson
import pytest

from tests.e2e.server import ServerProcess
from tests.e2e.test_server_lifecycle import ONE_ROW, register_iris, registry

pytestmark = pytest.mark.e2e
MAX_BODY = 1024 * 1024


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    home = tmp_path_factory.mktemp("hostile") / "home"
    register_iris(home)
    with ServerProcess(home, ["m@champion", "--no-controller", "--max-body-bytes",
                              str(MAX_BODY)]) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        yield SimpleNamespace(url=server.url, port=server.port, client=client, home=home,
                              server=server)


def _registry_state(home: Path) -> tuple[object, ...]:
    with registry(home) as reg:
        models = [(m.name, m.version_count, tuple(sorted(m.aliases.items())))
                  for m in reg.list()]
        return (tuple(models), len(reg.audit.list(limit=10_000)))


def _still_serves(srv: SimpleNamespace) -> None:
    ok = srv.client.post("/v2/models/m/infer", json=ONE_ROW)
    assert ok.status_code == 200, ok.text


def _refused(resp: httpx.Response, *statuses: int) -> None:
    assert resp.status_code in statuses, (resp.status_code, resp.text)
    assert "error" in resp.json(), resp.text
    assert "Traceback" not in resp.text


TRAVERSAL = [
    "..", "..%2F..%2Fetc%2Fpasswd", "%2e%2e", "%2E%2E%2F", "m%00", "%00",
    "%2Fetc%2Fpasswd", "m%2F..%2F..%2Fregistry.db", "..%5C..%5Cwindows",
    "m%27%3B%20DROP%20TABLE%20model_versions%3B--", "m%22%20OR%201%3D1", "%C0%AE%C0%AE",
]


@pytest.mark.parametrize("name", TRAVERSAL)
def test_hostile_model_names(srv: SimpleNamespace, name: str) -> None:
    before = _registry_state(srv.home)
    for method, path in (("POST", f"/v2/models/{name}/infer"),
                         ("GET", f"/v2/models/{name}"),
                         ("GET", f"/v2/models/{name}/ready"),
                         ("POST", f"/v2/repository/models/{name}/load"),
                         ("POST", f"/v2/models/{name}/feedback"),
                         ("GET", f"/v1/models/{name}"),
                         ("POST", f"/v1/models/{name}:predict"),
                         ("GET", f"/dashboard/api/endpoints/{name}")):
        # Sent byte for byte: an HTTP client would resolve "..", the attacker's does not.
        status, body = _send(srv.port, method, path.encode(), orjson.dumps(ONE_ROW))
        assert status in (400, 404), (method, path, status, body)
        assert b'"error"' in body and b"Traceback" not in body
    assert _registry_state(srv.home) == before
    _still_serves(srv)


@pytest.mark.parametrize("version", ["0", "-1", "..", "1%00", "1%2F..", "99999999999999999999",
                                     "1;DROP", "1e3"])
def test_hostile_versions(srv: SimpleNamespace, version: str) -> None:
    status, body = _send(srv.port, "POST", f"/v2/models/m/versions/{version}/infer".encode(),
                         orjson.dumps(ONE_ROW))
    assert status in (400, 404), (version, status, body)
    assert b'"error"' in body
    _still_serves(srv)


def test_deeply_nested_json(srv: SimpleNamespace) -> None:
    for body in (b"[" * 200_000 + b"]" * 200_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000):
        for path in ("/v2/models/m/infer", "/invocations", "/predict", "/v1/models/m:predict",
                     "/v2/models/m/feedback"):
            resp = srv.client.post(path, content=body,
                                   headers={"content-type": "application/json"})
            _refused(resp, 400, 413)
    _still_serves(srv)


def test_oversized_bodies_declared_and_chunked(srv: SimpleNamespace) -> None:
    big = b'{"inputs": [' + b" " * (MAX_BODY + 10) + b"]}"
    _refused(srv.client.post("/v2/models/m/infer", content=big), 413)

    def chunks() -> Iterator[bytes]:
        for _ in range(64):  # 64 MiB offered; the server stops reading after 1 MiB
            yield b" " * MAX_BODY

    _refused(srv.client.post("/predict", content=chunks()), 413)
    _still_serves(srv)


def test_a_decompression_bomb_is_cut_off_at_the_body_cap(srv: SimpleNamespace) -> None:
    # 512 MiB of zeros in ~0.5 MiB: inflating it whole would blow the server's memory.
    # The server inflates gzip bodies incrementally and stops at the body cap.
    bomb = gzip.compress(b"\0" * (512 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < MAX_BODY
    for path in ("/v2/models/m/infer", "/invocations", "/predict"):
        resp = srv.client.post(path, content=bomb, headers={
            "content-encoding": "gzip", "content-type": "application/json"})
        _refused(resp, 413)
        assert "decompressed body exceeds" in resp.json()["error"]
    honest = srv.client.post("/v2/models/m/infer", content=gzip.compress(orjson.dumps(ONE_ROW)),
                             headers={"content-encoding": "gzip",
                                      "content-type": "application/json"})
    assert honest.status_code == 200, honest.text
    _still_serves(srv)


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def _send(port: int, method: str, path: bytes, body: bytes) -> tuple[int, bytes]:
    """One raw request; the status and the body of the answer."""
    head = (method.encode() + b" " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    headers, _, payload = data.partition(b"\r\n\r\n")
    return int(headers.split(b" ", 2)[1]), payload


def test_request_id_header_injection(srv: SimpleNamespace) -> None:
    body = b'{"features": [[1, 2, 3, 4]]}'
    for bad in (b"abc\rSet-Cookie: pwned=1", b"abc\x00def", b"a" * 5000,
                b"<script>alert(1)</script>", b"id with spaces", b"\xff\xfe"):
        head = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Connection: close\r\nX-Request-ID: " + bad + b"\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        answer = _raw(srv.port, head + body)
        headers = answer.split(b"\r\n\r\n", 1)[0]
        assert b"pwned" not in headers and b"<script>" not in headers, answer[:500]
        assert b"set-cookie" not in headers.lower()
        if headers.startswith(b"HTTP/1.1 200"):
            rid = [h for h in headers.split(b"\r\n") if h.lower().startswith(b"x-request-id:")]
            assert rid and rid[0].split(b":", 1)[1].strip() != bad  # replaced, not echoed
    # A well-formed id is honoured.
    resp = srv.client.post("/predict", json={"features": [[1, 2, 3, 4]]},
                           headers={"x-request-id": "trace-123.abc"})
    assert resp.status_code == 200 and resp.headers["x-request-id"] == "trace-123.abc"
