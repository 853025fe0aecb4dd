"""The dashboard in a real browser (Debian's chromium) against a real ``modelport serve``.

One server, one canary rollout held at its first step, drifted traffic, labels for every
answer and a firing alert; the page must show the numbers the test itself knows: how
many requests it sent, each version's realized accuracy from the labels it posted, the
drifted feature, the rollout's weight and the alert.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml

from tests.e2e.conftest import Cli
from tests.e2e.server import ServerProcess
from tests.e2e.test_server_lifecycle import registry

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
DRIFTED = "petal length (cm)"
N_REQUESTS = 60


def _register(home: Path) -> Any:
    """iris v1 (champion) and v2, both with the training data's reference profile."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    with registry(home) as reg:
        for c in (1.0, 0.05):  # v2 is weaker: the two accuracies differ
            model = LogisticRegression(C=c, max_iter=1000).fit(X, y)
            reg.log_model(model, "iris", input_example=X[:5], training_data=X,
                          metrics={"train_accuracy": float(model.score(X, y))})
        reg.set_alias("iris", "champion", 1)
    return X, y


def _traffic(client: httpx.Client, X: Any, y: Any) -> dict[str, list[tuple[str, int, int]]]:
    """N_REQUESTS one-row requests with petal length shifted far off its training range;
    per answering version: (request id, prediction, true label)."""
    rng = np.random.default_rng(3)
    rows = rng.integers(0, len(X), size=N_REQUESTS)
    answered: dict[str, list[tuple[str, int, int]]] = {}
    for i in rows:
        x = X.iloc[int(i)].to_numpy(dtype=float).copy()
        x[2] += 6.0
        resp = client.post("/v2/models/iris/infer", json={"inputs": [
            {"name": "input-0", "datatype": "FP64", "shape": [1, 4], "data": x.tolist()}]})
        assert resp.status_code == 200, resp.text
        pred = int(resp.json()["outputs"][0]["data"][0])
        answered.setdefault(resp.headers["x-model-version"], []).append(
            (resp.headers["x-request-id"], pred, int(y.iloc[int(i)])))
    return answered


def _wait_for_step(cli: Cli, home: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = cli.run(home, "rollout", "status", "iris", "--json")
        data = out.json()
        if data and data[0]["rollout"]["step_started_at"]:
            return
        time.sleep(0.3)
    pytest.fail(f"the canary never started its first step: {out}")


def _text(page: Any, selector: str) -> str:
    return str(page.locator(selector).first.inner_text()).strip()


def test_dashboard_shows_real_numbers(cli: Cli, page: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    X, y = _register(home)
    config = tmp_path / "serve.yaml"
    config.write_text(yaml.safe_dump({
        "models": [{"uri": "models:/iris@champion"}],
        "dashboard": {"refresh_seconds": 0.5},
        "monitoring": {"interval": 1}}))
    rules = tmp_path / "alerts.yaml"
    rules.write_text(yaml.safe_dump({"endpoints": {"iris": [
        {"name": "busy", "expr": "requests > 10 over 1h", "severity": "warning"}]}}))
    with ServerProcess(home, ["--config", str(config)]) as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        started = cli.run(home, "rollout", "start", "iris", "--candidate", "iris/2",
                          "--strategy", "canary", "--steps", "30,100",
                          "--step-duration", "10m")
        assert started.returncode == 0, started
        _wait_for_step(cli, home)
        answered = _traffic(client, X, y)
        labels = [{"id": rid, "label": truth} for rows in answered.values()
                  for rid, _, truth in rows]
        assert client.post("/v2/models/iris/feedback", json=labels).status_code == 200
        checked = cli.run(home, "monitor", "check", "--rules", rules, "--once", "--json")
        assert checked.returncode == 0, checked
        assert checked.json()[0]["state"] == "firing", checked

        page.goto(f"{server.url}/dashboard")
        # Traffic: the fleet counters the page shows add up to what was sent.
        page.wait_for_function(
            """n => [...document.querySelectorAll('#traffic td.requests')]
                   .reduce((s, td) => s + Number(td.textContent.replace(/,/g, '')), 0) === n""",
            arg=N_REQUESTS, timeout=30_000)
        for version, rows in answered.items():
            cell = page.locator(f'#traffic tr[data-version="{version}"] td.requests')
            assert cell.inner_text() == str(len(rows))
        # The rollout, at its first step.
        assert _text(page, "#rollout-status") == "running"
        assert "30% to the candidate" in _text(page, "#rollout")
        assert "v2 (canary, 30% of traffic)" in _text(page, "#desired")
        # The alert the real evaluator opened.
        alert = page.locator('#alerts tr[data-rule="busy"]')
        assert alert.get_attribute("data-state") == "firing"
        assert "requests" in alert.inner_text()
        # Realized accuracy per version, from the labels posted (the log is flushed
        # every few seconds, the detail view refreshed every ten: wait for both).
        for version, rows in answered.items():
            expected = sum(p == t for _, p, t in rows) / len(rows)
            row = page.locator(f'#realized tr[data-version="{version}"]')
            row.wait_for(timeout=40_000)
            page.wait_for_function(
                """([v, n]) => { const r = document.querySelector(
                       `#realized tr[data-version="${v}"]`);
                   return r && Number(r.children[2].textContent) === n; }""",
                arg=[version, len(rows)], timeout=40_000)
            assert float(row.get_attribute("data-accuracy")) == pytest.approx(expected)
        # Drift: the shifted feature is flagged, on the stable version's window.
        drifted = page.locator(f'#drift tr[data-feature="{DRIFTED}"]')
        drifted.wait_for(timeout=40_000)
        assert drifted.get_attribute("data-drifted") == "true"
        assert drifted.locator("td.flag").inner_text() == "DRIFT"
        # Lineage: both versions were logged with the same training frame.
        origin = page.locator('#lineage tr[data-version="2"]')
        origin.wait_for(timeout=20_000)
        assert "datasets:/iris-training/1" in origin.inner_text()
        # Charts: uPlot drew canvases from sampled points.
        page.wait_for_function(
            "Number(document.querySelector('#chart-rps').dataset.points) >= 2",
            timeout=20_000)
        assert page.locator("#chart-rps canvas").count() == 1
        assert _text(page, "#status").startswith("live")
        assert "iris" in _text(page, "#models")
        shot = tmp_path / "dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        if os.environ.get("MODELPORT_DASHBOARD_SCREENSHOT"):
            shutil.copy(shot, os.environ["MODELPORT_DASHBOARD_SCREENSHOT"])
