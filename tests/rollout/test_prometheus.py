"""The Prometheus provider against Debian's real ``prometheus`` scraping a real
``modelport serve``. Under CI=true a missing prometheus fails the test."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest

from modelport.client import Registry
from modelport.config import Settings
from modelport.errors import ConfigurationError, InvalidInputError
from modelport.registry.entities import Mode, Rollout, RolloutStatus
from modelport.rollout.analysis import Thresholds, Window, judge
from modelport.rollout.prometheus import PrometheusProvider
from tests.e2e.server import ServerProcess, free_port

pytestmark = pytest.mark.e2e
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    """The prometheus executable (fails under CI=true when it is missing)."""
    if not os.access(PROMETHEUS, os.X_OK):
        if os.environ.get("CI") == "true":
            pytest.fail("prometheus is not installed (apt-get install prometheus)")
        pytest.skip("prometheus is not installed")
    return PROMETHEUS


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``modelport serve iris@champion`` (iris/1) on a free port, once per module."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    home = tmp_path_factory.mktemp("served") / "home"
    x, y = load_iris(return_X_y=True)
    with Registry(settings=Settings.load(home)) as reg:
        reg.log_model(LogisticRegression(max_iter=300).fit(x, y), "iris", input_example=x[:3])
        reg.set_alias("iris", "champion", 1)
    with ServerProcess(home, ["iris@champion", "--no-controller"]) as server:
        yield server


@pytest.fixture(scope="module")
def prometheus(prometheus_binary: str, served: ServerProcess,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus scraping the server every second; yields its URL."""
    tmp_path = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: modelport\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{served.port}']\n")
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [prometheus_binary, f"--config.file={config}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "prometheus not ready within 30s"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def a_rollout(candidate: int, stable: int) -> Rollout:
    """A rollout entity of endpoint iris (what the controller hands the provider)."""
    now = datetime.now(UTC)
    return Rollout(1, "iris", "iris", candidate, stable, "canary", [50, 100], 60.0, None, 0,
                   now, {}, {}, RolloutStatus.RUNNING, "", False, now, now, "tester")


def test_prometheus_provider_measures_a_real_server(served: ServerProcess,
                                                    prometheus: str) -> None:
    rows = np.zeros((1, 4)).ravel().tolist()
    body = {"inputs": [{"name": "input-0", "datatype": "FP64", "shape": [1, 4],
                        "data": rows}]}
    provider = PrometheusProvider(prometheus, queries={"accuracy": "vector(0.93)"})
    rollout = a_rollout(candidate=1, stable=2)  # iris/2 was never served: no data
    with httpx.Client(base_url=served.url, timeout=10) as client:
        deadline = time.monotonic() + 60
        while True:
            for _ in range(20):
                assert client.post("/v2/models/iris/infer", json=body).status_code == 200
            now = datetime.now(UTC)
            m = provider.measure(rollout, Window(now - timedelta(seconds=60), now, {}))
            if (m.candidate["requests"] or 0) > 0 and m.candidate["p99_ms"] is not None:
                break
            assert time.monotonic() < deadline, f"Prometheus never saw the requests: {m}"
            time.sleep(1)
    c, s = m.candidate, m.stable
    assert c["errors"] == 0 and c["error_rate"] == 0
    assert 0 < c["p99_ms"] <= 10_000  # type: ignore[operator]
    assert c["accuracy"] == pytest.approx(0.93)
    assert s["requests"] is None and s["error_rate"] is None
    assert m.notes["range"] == "60s"
    verdict = judge(m, Thresholds(min_requests=1), Mode.CANARY, step_done=True)
    assert verdict.outcome == "pass", verdict


def test_prometheus_errors_are_clear(prometheus: str) -> None:
    with pytest.raises(InvalidInputError, match="Prometheus refused 'sum\\(\\(': bad_data"):
        PrometheusProvider(prometheus).query("sum((")
    dead = PrometheusProvider(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ConfigurationError, match="unreachable"):
        dead.query("up")


def test_prometheus_settings_are_checked() -> None:
    with pytest.raises(InvalidInputError, match="must be an http"):
        PrometheusProvider("localhost:9090")
    with pytest.raises(InvalidInputError, match="only \\$endpoint, \\$version and \\$window"):
        PrometheusProvider("http://x", queries={"accuracy": "acc{model=\"$model\"}"})
