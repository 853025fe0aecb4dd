"""A real ``modelport serve`` logs its answers, takes feedback, exports the counters,
and the real CLI scores the logged predictions against that feedback."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import ServerProcess
from tests.e2e.test_server_lifecycle import (
    gauge_value,
    metric_samples,
    oip_body,
    register_iris,
)

pytestmark = pytest.mark.e2e


def _written(client: httpx.Client, n: int, timeout: float = 30.0) -> str:
    """/metrics once the prediction log has written ``n`` rows of model m."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = client.get("/metrics").text
        written = [x.value for x in metric_samples(text, "modelport_prediction_log_rows")
                   if x.name.endswith("_total") and x.labels == {"model": "m",
                                                                  "outcome": "written"}]
        if written and written[0] >= n:
            return text
        time.sleep(0.2)
    pytest.fail(f"the prediction log did not write {n} rows within {timeout}s:\n{text}")


def test_served_predictions_feedback_and_realized_accuracy(cli, tmp_path: Path) -> None:
    home = tmp_path / "home"
    Xq, expected = register_iris(home)
    ids: list[str] = []
    with ServerProcess(home, ["m@champion", "--no-controller"]) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        for i in range(len(Xq)):
            resp = client.post("/v2/models/m/infer", json=oip_body(Xq[i:i + 1]))
            assert resp.status_code == 200, resp.text
            ids.append(resp.headers["x-request-id"])
        text = _written(client, len(Xq))
        assert gauge_value(text, "modelport_prediction_log_queued_rows") == 0.0
        _promtool(text)
        # Every answer right except the last: realized accuracy (n-1)/n.
        labels = [{"id": rid, "label": expected["1"][i] if i < len(ids) - 1
                   else 1 - expected["1"][i]} for i, rid in enumerate(ids)]
        fed = client.post("/v2/models/m/feedback", json=labels)
        assert fed.status_code == 200 and fed.json() == {"accepted": len(ids)}, fed.text
        bad = client.post("/v2/models/m/feedback", json={"id": ids[0]})
        assert bad.status_code == 400 and "label" in bad.json()["error"], bad.text
        unknown = client.post("/v2/models/zz/feedback", json={"id": "x", "label": 1})
        assert unknown.status_code == 404, unknown.text
    # The server has stopped: everything it buffered is on disk.
    result = cli.run(home, "monitor", "metrics", "m", "--window", "1h", "--json")
    assert result.returncode == 0, result
    data = result.json()
    (version,) = data["versions"]
    assert (version["version"], version["predictions"], version["labelled"]) == (
        1, len(ids), len(ids))
    assert version["metrics"]["accuracy"] == pytest.approx((len(ids) - 1) / len(ids))


def _promtool(text: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        message = "promtool not found (Debian package prometheus; scripts/ensure-system-deps.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60, check=False)
    assert check.returncode == 0, (
        f"promtool check metrics failed ({check.returncode}):\n{check.stderr}\n{check.stdout}")
