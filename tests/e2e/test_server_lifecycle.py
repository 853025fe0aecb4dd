"""End to end: a real ``modelport serve`` process through its lifecycle.

Hot swaps under load, the repository API, readiness while loading, Prometheus metrics
(checked by ``promtool``), draining on SIGTERM, several workers, overload, timeouts,
failing models and versions that cannot load. Every test makes its own home and its
own server processes; every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

import modelport
from modelport.client import Registry
from modelport.config import Settings
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e

N_FEATURES = 4


# -- models (PythonModels at module level: pickled by value, loaded by the server) --------


class SlowLoad(modelport.PythonModel):
    """Takes ~2 s in load_context, so the server is live but not ready for a while."""

    def load_context(self, context: Any) -> None:
        time.sleep(2.0)

    def predict(self, X: Any) -> Any:
        return np.zeros(len(X))


class Sleepy(modelport.PythonModel):
    """Sleeps ``delay`` seconds per model call."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def predict(self, X: Any) -> Any:
        time.sleep(self.delay)
        return np.zeros(len(X))


class Failing(modelport.PythonModel):
    """Always raises, with a message the client must never see."""

    def predict(self, X: Any) -> Any:
        raise ValueError("secret detail xyz")


# -- helpers ------------------------------------------------------------------------------


def registry(home: Path) -> Registry:
    """A fresh Registry on ``home`` (one per thread: SQLite connections stay put)."""
    return Registry(settings=Settings.load(home))


def oip_body(X: np.ndarray) -> dict[str, Any]:
    """An OIP JSON infer request carrying ``X`` as one FP64 tensor."""
    return {"inputs": [{"name": "input-0", "datatype": "FP64", "shape": list(X.shape),
                        "data": X.ravel().tolist()}]}


ONE_ROW = oip_body(np.zeros((1, N_FEATURES)))


def register_iris(home: Path) -> tuple[np.ndarray, dict[str, list[int]]]:
    """Model "m": v1 and v2 (whose predictions differ), champion -> 1.

    Returns query rows and each version's predictions on them.
    """
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    X = rng.normal(size=(120, N_FEATURES))
    y = (X[:, 0] + 0.5 * X[:, 1] - X[:, 2] > 0).astype(int)
    v1 = LogisticRegression().fit(X, y)
    v2 = LogisticRegression().fit(X, 1 - y)  # the opposite labels: every prediction differs
    Xq = X[:3]
    expected = {"1": v1.predict(Xq).tolist(), "2": v2.predict(Xq).tolist()}
    assert expected["1"] != expected["2"]
    with registry(home) as reg:
        assert reg.log_model(v1, "m", input_example=X[:5]).version == 1
        assert reg.log_model(v2, "m", input_example=X[:5]).version == 2
        reg.set_alias("m", "champion", 1)
    return Xq, expected


def register_python(home: Path, name: str, model: modelport.PythonModel) -> str:
    """Register a PythonModel (no input example: no warm-up call); returns its URI."""
    with registry(home) as reg:
        version = reg.log_model(model, name).version
    return f"{name}/{version}"


def move_alias(home: Path, version: int) -> None:
    """champion of "m" -> ``version``, through the Python API."""
    with registry(home) as reg:
        reg.set_alias("m", "champion", version)


def write_config(tmp_path: Path, spec: dict[str, Any]) -> Path:
    """A serve.yaml holding ``spec``."""
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def wait_for(check: Callable[[], bool], timeout: float, what: str, server: ServerProcess,
             interval: float = 0.05) -> None:
    """Poll ``check`` until it is true; fail with the server log after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    pytest.fail(f"{what}: not within {timeout}s\n--- server log ---\n{server.log()}")


def status_of(url: str) -> int | None:
    """A GET's status code, or None if the server does not answer."""
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.TransportError:
        return None


def metric_samples(text: str, family: str) -> list[Any]:
    """The samples of one metric family in Prometheus text."""
    return [s for f in text_string_to_metric_families(text) if f.name == family
            for s in f.samples]


def gauge_value(text: str, family: str, **labels: str) -> float | None:
    """The value of ``family{labels}``, or None if absent."""
    for s in metric_samples(text, family):
        if s.name == family and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    return None


async def post_many(url: str, path: str, body: dict[str, Any], n: int,
                    timeout: float = 30.0) -> list[httpx.Response | BaseException]:
    """``n`` concurrent POSTs, each on its own connection; responses or exceptions."""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:
        return await asyncio.gather(*(client.post(path, json=body) for _ in range(n)),
                                    return_exceptions=True)


# -- 1. hot swap under load ---------------------------------------------------------------


async def _load_during_swap(url: str, body: dict[str, Any], *, clients: int, duration: float,
                            max_requests: int, move_at: float,
                            move: Callable[[], None]) -> dict[str, Any]:
    """Hammer ``url`` with ``clients`` loops; call ``move`` (in a thread) at ``move_at``."""
    records: list[tuple[float, float, int, str | None, Any]] = []
    errors: list[str] = []
    marks: dict[str, float] = {}
    sent = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=15.0) as client:
        t0 = time.monotonic()

        async def one_client() -> None:
            nonlocal sent
            while time.monotonic() - t0 < duration and sent < max_requests:
                sent += 1
                started = time.monotonic()
                try:
                    resp = await client.post("/v2/models/m/infer", json=body)
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                doc = resp.json() if resp.status_code == 200 else resp.text
                records.append((started, time.monotonic(), resp.status_code,
                                resp.headers.get("x-model-version"), doc))

        async def mover() -> None:
            await asyncio.sleep(move_at)
            marks["move_start"] = time.monotonic()
            await asyncio.to_thread(move)
            marks["move_end"] = time.monotonic()

        await asyncio.gather(*(one_client() for _ in range(clients)), mover())
    return {"records": records, "errors": errors, **marks}


def test_hot_swap_under_load_drops_nothing(home: Path) -> None:
    Xq, expected = register_iris(home)
    body = oip_body(Xq)
    with ServerProcess(home, ["m@champion"]) as server:
        out = asyncio.run(_load_during_swap(
            server.url, body, clients=64, duration=6.5, max_requests=50_000, move_at=1.5,
            move=lambda: move_alias(home, 2),
        ))
        records, errors = out["records"], out["errors"]
        assert not errors, f"{len(errors)} transport errors, e.g. {errors[:3]}\n{server.log()}"
        bad = [r for r in records if r[2] != 200]
        assert not bad, f"{len(bad)} of {len(records)} failed, e.g. {bad[:3]}"
        for _, _, _, header, doc in records:
            assert doc["model_version"] == header, (header, doc)
            assert doc["outputs"][0]["data"] == expected[header], (header, doc)

        # Answered before the alias moved: v1. Sent more than 3 s after it moved: v2.
        before = [r for r in records if r[1] < out["move_start"]]
        settled = [r for r in records if r[0] > out["move_end"] + 3.0]
        assert len(before) >= 10 and len(settled) >= 10, (len(before), len(settled))
        assert {r[3] for r in before} == {"1"}
        assert {r[3] for r in settled} == {"2"}, \
            f"still version 1 more than 3 s after the move\n{server.log()}"
        first_v2 = min(r[1] for r in records if r[3] == "2")
        print(f"{len(records)} requests, swap seen {first_v2 - out['move_end']:.2f}s "
              "after the alias moved")

        def swapped_metrics() -> bool:
            text = httpx.get(f"{server.url}/metrics", timeout=5).text
            return (gauge_value(text, "modelport_model_loaded", model="m", version="1") == 0.0
                    and gauge_value(text, "modelport_model_loaded", model="m",
                                    version="2") == 1.0)

        wait_for(swapped_metrics, 5.0, "modelport_model_loaded shows v1=0, v2=1", server)
        text = httpx.get(f"{server.url}/metrics", timeout=5).text
        assert 'modelport_model_loaded{model="m",version="1"} 0.0' in text
        assert 'modelport_model_loaded{model="m",version="2"} 1.0' in text


# -- 2. the repository API swaps at once ---------------------------------------------------


def test_repository_load_swaps_immediately(home: Path, tmp_path: Path) -> None:
    Xq, expected = register_iris(home)
    config = write_config(tmp_path, {"models": [{"uri": "m@champion"}], "poll_interval": 3600})
    with ServerProcess(home, ["--config", str(config)]) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        infer = client.post("/v2/models/m/infer", json=oip_body(Xq))
        assert infer.status_code == 200 and infer.json()["model_version"] == "1"

        move_alias(home, 2)
        time.sleep(1.5)  # longer than the default poll: nothing polls with 3600 s
        assert client.post("/v2/models/m/infer", json=oip_body(Xq)).json()["model_version"] == "1"

        resp = client.post("/v2/repository/models/m/load")
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("application/json")
        assert resp.json() == {"name": "m", "versions": [2]}

        infer = client.post("/v2/models/m/infer", json=oip_body(Xq))
        assert infer.status_code == 200
        assert infer.json()["model_version"] == "2"
        assert infer.headers["x-model-version"] == "2"
        assert infer.json()["outputs"][0]["data"] == expected["2"]
        index = client.post("/v2/repository/index").json()
        assert index == [{"name": "m", "version": "2", "state": "READY", "reason": ""}]


# -- 3. readiness while loading -----------------------------------------------------------


def test_ready_only_after_the_model_loaded(home: Path) -> None:
    uri = register_python(home, "slowload", SlowLoad())
    with ServerProcess(home, [uri, "--trusted"], wait_ready=False) as server:
        wait_for(lambda: status_of(f"{server.url}/v2/health/live") == 200, 60,
                 "live", server)
        # load_context sleeps 2 s: right after the server is live, it cannot be ready.
        assert status_of(f"{server.url}/v2/health/ready") == 503
        resp = httpx.post(f"{server.url}/v2/models/slowload/infer", json=ONE_ROW, timeout=10)
        if status_of(f"{server.url}/v2/health/ready") == 503:  # still loading: it was then
            assert resp.status_code == 503, resp.text
            assert "loading" in resp.json()["error"], resp.text
        wait_for(lambda: status_of(f"{server.url}/v2/health/ready") == 200, 30,
                 "ready", server)
        resp = httpx.post(f"{server.url}/v2/models/slowload/infer", json=ONE_ROW, timeout=10)
        assert resp.status_code == 200, resp.text


# -- 4. Prometheus metrics ----------------------------------------------------------------


def test_metrics_are_exported_and_valid(home: Path) -> None:
    Xq, _ = register_iris(home)
    with ServerProcess(home, ["m@champion"]) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        for _ in range(5):
            assert client.post("/v2/models/m/infer", json=oip_body(Xq)).status_code == 200
        assert client.post("/v2/models/m/infer", json={"inputs": []}).status_code == 400
        resp = client.get("/metrics")
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/plain")
        text = resp.text

    requests = [s for s in metric_samples(text, "modelport_requests")
                if s.name == "modelport_requests_total"]
    assert requests, text
    for s in requests:
        assert set(s.labels) == {"model", "version", "protocol", "status"}, s
    ok = {"model": "m", "version": "1", "protocol": "oip", "status": "200"}
    assert [s.value for s in requests if s.labels == ok] == [5.0], requests
    assert any(s.labels["status"] == "400" for s in requests), requests
    for name in ("modelport_request_duration_seconds_bucket",
                 "modelport_queue_duration_seconds", "modelport_compute_duration_seconds",
                 "modelport_batch_size_rows", "modelport_inflight_requests",
                 "modelport_model_load_seconds"):
        assert name in text, f"{name} missing from /metrics:\n{text}"
    assert gauge_value(text, "modelport_model_load_seconds", model="m", version="1")

    promtool = shutil.which("promtool")
    if promtool is None:
        message = "promtool not found (Debian package prometheus; scripts/ensure-system-deps.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60, check=False)
    assert check.returncode == 0, (
        f"promtool check metrics failed ({check.returncode}):\n{check.stderr}\n{check.stdout}"
    )


# -- 5. SIGTERM drains in-flight requests -------------------------------------------------


async def _requests_then_sigterm(server: ServerProcess, n: int, delay: float
                                 ) -> list[httpx.Response | BaseException]:
    async def sigterm() -> None:
        await asyncio.sleep(delay)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)

    responses, _ = await asyncio.gather(
        post_many(server.url, "/v2/models/sleepy/infer", ONE_ROW, n), sigterm())
    return responses


def test_sigterm_drains_inflight_requests(home: Path) -> None:
    uri = register_python(home, "sleepy", Sleepy(1.0))
    with ServerProcess(home, [uri, "--trusted"]) as server:
        responses = asyncio.run(_requests_then_sigterm(server, 5, 0.3))
        assert server.proc is not None
        try:
            code = server.proc.wait(30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"server still running 30 s after SIGTERM\n{server.log()}")
        statuses = [r.status_code if isinstance(r, httpx.Response) else repr(r)
                    for r in responses]
        assert statuses == [200] * 5, f"{statuses}\n{server.log()}"
        assert code == 0, server.log()


# -- 6. several workers -------------------------------------------------------------------


def test_workers_share_metrics(home: Path) -> None:
    Xq, _ = register_iris(home)
    with ServerProcess(home, ["m@champion", "--workers", "2"]) as server:
        responses = asyncio.run(post_many(server.url, "/v2/models/m/infer", oip_body(Xq), 50))
        statuses = [r.status_code if isinstance(r, httpx.Response) else repr(r)
                    for r in responses]
        assert statuses == [200] * 50, statuses

        totals = []
        for _ in range(6):  # each scrape may land on either worker; both see every file
            text = httpx.get(f"{server.url}/metrics", timeout=10,
                             headers={"connection": "close"}).text
            totals.append(sum(s.value for s in metric_samples(text, "modelport_requests")
                              if s.name == "modelport_requests_total"))
        assert max(totals) >= 50, f"requests_total across scrapes: {totals}\n{text}"


# -- 7. overload --------------------------------------------------------------------------


def test_overload_answers_503_with_retry_after(home: Path, tmp_path: Path) -> None:
    uri = register_python(home, "slow", Sleepy(0.2))
    config = write_config(tmp_path, {"models": [{
        "uri": uri, "trusted": True, "batching": {"max_batch_size": 1, "max_queue_rows": 2},
    }]})
    with ServerProcess(home, ["--config", str(config)]) as server:
        responses = asyncio.run(post_many(server.url, "/v2/models/slow/infer", ONE_ROW, 20))
        answered = [r for r in responses if isinstance(r, httpx.Response)]
        assert len(answered) == 20, responses
        statuses = sorted(r.status_code for r in answered)
        assert set(statuses) == {200, 503}, statuses
        for resp in answered:
            if resp.status_code == 503:
                assert int(resp.headers["retry-after"]) >= 1
                error = resp.json()["error"]
                assert "queue" in error, error
        resp = httpx.post(f"{server.url}/v2/models/slow/infer", json=ONE_ROW, timeout=30)
        assert resp.status_code == 200, resp.text


# -- 8. request timeout -------------------------------------------------------------------


def test_request_timeout_answers_504(home: Path, tmp_path: Path) -> None:
    uri = register_python(home, "sleepy", Sleepy(2.0))
    config = write_config(tmp_path, {"limits": {"request_timeout": 0.5}})
    with ServerProcess(home, [uri, "--trusted", "--config", str(config)]) as server:
        # 504, not the 200 the model would give after 2 s: the limit cut the request off.
        resp = httpx.post(f"{server.url}/v2/models/sleepy/infer", json=ONE_ROW, timeout=30)
        assert resp.status_code == 504, resp.text
        assert resp.headers["content-type"].startswith("application/json")
        assert "0.5" in resp.json()["error"]
        assert status_of(f"{server.url}/v2/health/live") == 200
        assert status_of(f"{server.url}/v2/health/ready") == 200


# -- 9. a failing model -------------------------------------------------------------------


def test_model_failure_hides_detail_from_client(home: Path) -> None:
    uri = register_python(home, "failing", Failing())
    with ServerProcess(home, [uri, "--trusted"]) as server:
        resp = httpx.post(f"{server.url}/v2/models/failing/infer", json=ONE_ROW, timeout=30)
        assert resp.status_code == 500
        request_id = resp.headers["x-request-id"]
        assert resp.json() == {"error": f"internal server error (request id {request_id})"}
        assert "secret detail" not in resp.text
        assert "Traceback" not in resp.text
        wait_for(lambda: "secret detail xyz" in server.log(), 5.0,
                 "the failure's detail in the server log", server)
        assert status_of(f"{server.url}/v2/health/live") == 200


# -- 10. a version that cannot load -------------------------------------------------------


def test_unloadable_version_reports_why(home: Path) -> None:
    uri = register_python(home, "custom", Sleepy(0.0))
    with ServerProcess(home, [uri], wait_ready=False) as server:  # no --trusted
        wait_for(lambda: status_of(f"{server.url}/v2/health/live") == 200, 60, "live", server)

        def unavailable() -> bool:
            index = httpx.post(f"{server.url}/v2/repository/index", timeout=5).json()
            return bool(index) and index[0]["state"] == "UNAVAILABLE" and \
                "trusted" in index[0]["reason"]

        wait_for(unavailable, 15, "index shows UNAVAILABLE because of trust", server)
        index = httpx.post(f"{server.url}/v2/repository/index", timeout=5).json()
        assert index[0]["name"] == "custom" and index[0]["version"] is None, index
        deadline = time.monotonic() + 2.5  # across a few retries by the 1 s poll
        while time.monotonic() < deadline:
            assert status_of(f"{server.url}/v2/health/ready") == 503
            time.sleep(0.25)
        resp = httpx.post(f"{server.url}/v2/models/custom/infer", json=ONE_ROW, timeout=10)
        assert resp.status_code == 503 and "trusted" in resp.json()["error"], resp.text
        assert server.proc is not None and server.proc.poll() is None, server.log()
        assert status_of(f"{server.url}/v2/health/live") == 200
