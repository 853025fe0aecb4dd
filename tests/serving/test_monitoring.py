"""The server's monitoring wiring: a real ModelRepository and registry, a real
prediction log and label log writing Parquet, the feedback route and the metrics."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from modelport.client import Registry
from modelport.monitoring.labels import LabelLog
from modelport.monitoring.predlog import PredictionLog
from modelport.monitoring.query import read_labels, read_predictions
from modelport.registry.entities import Mode
from modelport.serving.app import create_app
from modelport.serving.config import load_spec
from modelport.serving.metrics import ServerMetrics
from modelport.serving.monitor import Monitoring, worker_id
from modelport.serving.repository import Endpoint, ModelRepository
from modelport.serving.router import Router
from modelport.serving.types import InferenceRequest, Tensor

from .test_reconcile import until

FEATURES = ["a", "b", "c"]


def register(registry: Registry) -> pd.DataFrame:
    """Model "m" on a 3-column table: v1 and v2 answer opposite labels, champion -> 1."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(120, 3)), columns=FEATURES)
    y = (X["a"] > X["b"]).astype(int)
    registry.log_model(LogisticRegression().fit(X, y), "m", input_example=X[:3],
                       training_data=X)
    registry.log_model(LogisticRegression().fit(X, 1 - y), "m", input_example=X[:3],
                       training_data=X)
    registry.set_alias("m", "champion", 1)
    return X


def monitoring(root: Path, rate: float = 1.0) -> Monitoring:
    return Monitoring(PredictionLog(root, worker_id="w1", sample_rate=rate, flush_seconds=0.05),
                      LabelLog(root, worker_id="fb", flush_seconds=0.05), interval=3600,
                      sync_interval=0.05)


@asynccontextmanager
async def serving(registry: Registry, mon: Monitoring | None) -> AsyncIterator[ModelRepository]:
    repo = ModelRepository(registry, [Endpoint.from_uri("m@champion")], ServerMetrics(),
                           poll_interval=0.1, deployment_poll_interval=0.05,
                           report_interval=0.05, router=Router(random.Random(0)),
                           server_id="test-server", monitoring=mon)
    await repo.start()
    try:
        assert await repo.wait_ready(60), repo.get("m").error
        yield repo
    finally:
        await repo.stop()


def ask(X: pd.DataFrame, rid: str) -> InferenceRequest:
    return InferenceRequest("m", [Tensor("input-0", X.to_numpy(), "FP64")], id=rid)


def test_answers_are_logged_with_version_variant_and_features(
        sqlite_registry: Registry, tmp_path: Path) -> None:
    X = register(sqlite_registry)
    mon = monitoring(tmp_path / "mon")

    async def go() -> None:
        async with serving(sqlite_registry, mon) as repo:
            for i in range(5):
                await repo.infer(ask(X[i:i + 2], f"r{i}"))
            assert mon.predictions.flush(10)
    asyncio.run(go())
    table = read_predictions(tmp_path / "mon", "m").to_pandas()
    assert sorted(set(table["request_id"])) == [f"r{i}" for i in range(5)]
    assert len(table) == 10 and set(table["version"]) == {1}
    assert set(table["variant"]) == {"stable"}
    first = table[table["request_id"] == "r0"].sort_values("row")
    assert [row["a"] for row in first["inputs"]] == pytest.approx(list(X["a"][:2]))
    assert set(first["inputs"].iloc[0]) == set(FEATURES)


def test_shadow_answers_are_logged_as_shadow(sqlite_registry: Registry,
                                             tmp_path: Path) -> None:
    X = register(sqlite_registry)
    mon = monitoring(tmp_path / "mon")

    async def go() -> None:
        async with serving(sqlite_registry, mon) as repo:
            served = repo.get("m")
            sqlite_registry.deployments.start_rollout(
                "m", model_name="m", candidate=2, strategy="shadow", steps=[100],
                actor="test", mode=Mode.SHADOW, stable=1)
            await until(lambda: served.route.candidate is not None and served.route.shadow,
                        "shadow candidate loaded")
            for i in range(4):
                assert (await repo.infer(ask(X[i:i + 1], f"s{i}"))).version == 1
            await repo.shadow.drain()
            assert mon.predictions.flush(10)
    asyncio.run(go())
    table = read_predictions(tmp_path / "mon", "m").to_pandas()
    pairs = set(zip(table["version"], table["variant"], strict=True))
    assert pairs == {(1, "stable"), (2, "shadow")}
    assert sorted(table[table["variant"] == "shadow"]["request_id"]) == [
        f"s{i}" for i in range(4)]


def test_sampling_zero_writes_nothing_and_counts(sqlite_registry: Registry,
                                                 tmp_path: Path) -> None:
    X = register(sqlite_registry)
    mon = monitoring(tmp_path / "mon", rate=0.0)

    async def go() -> None:
        async with serving(sqlite_registry, mon) as repo:
            for i in range(3):
                await repo.infer(ask(X[:2], f"z{i}"))
            assert mon.predictions.flush(10)
            assert mon.predictions.stats()["m"]["sampled_out"] == 6
    asyncio.run(go())
    assert read_predictions(tmp_path / "mon", "m").num_rows == 0
    assert not (tmp_path / "mon" / "predictions").exists()


async def _post(app: Any, path: str, body: bytes) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.post(path, content=body,
                                 headers={"content-type": "application/json"})


def test_feedback_route_and_metrics(sqlite_registry: Registry, tmp_path: Path) -> None:
    X = register(sqlite_registry)
    mon = monitoring(tmp_path / "mon")

    async def go() -> None:
        async with serving(sqlite_registry, mon) as repo:
            app = create_app(repo)
            await repo.infer(ask(X[:1], "f1"))
            ok = await _post(app, "/v2/models/m/feedback", b'{"id": "f1", "label": 1}')
            assert ok.status_code == 200 and ok.json() == {"accepted": 1}
            many = await _post(app, "/v2/models/m/feedback",
                               b'[{"id": "f1", "label": 0}, {"id": "f2", "label": 1}]')
            assert many.json() == {"accepted": 2}
            missing = await _post(app, "/v2/models/nope/feedback", b'{"id": "x", "label": 1}')
            assert missing.status_code == 404 and "nope" in missing.json()["error"]
            for bad, words in [(b"{", "JSON"), (b'{"label": 1}', "id"),
                               (b'{"id": "x", "label": null}', "label"),
                               (b'{"id": "x", "label": 1, "extra": 2}', "extra"),
                               (b"[]", "")]:
                answer = await _post(app, "/v2/models/m/feedback", bad)
                assert answer.status_code == 400, (bad, answer.text)
                assert words.lower() in answer.json()["error"].lower(), (bad, answer.text)
            assert mon.labels is not None and mon.labels.flush(10)
            assert mon.predictions.flush(10)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                text = (await client.get("/metrics")).text
            assert 'modelport_prediction_log_rows_total{model="m",outcome="written"} 1.0' \
                in text
            assert "modelport_prediction_log_queued_rows 0.0" in text
            assert 'modelport_feedback_labels_total{model="m"} 3.0' in text
            assert 'modelport_label_log_rows_total{model="m",outcome="written"} 3.0' in text
            assert 'modelport_label_log_rows_total{model="m",outcome="dropped"}' not in text
    asyncio.run(go())
    labels = read_labels(tmp_path / "mon", "m").to_pandas()
    assert list(labels["request_id"]) == ["f1", "f1", "f2"]


def test_feedback_without_monitoring_is_503(sqlite_registry: Registry) -> None:
    register(sqlite_registry)

    async def go() -> None:
        async with serving(sqlite_registry, None) as repo:
            answer = await _post(create_app(repo), "/v2/models/m/feedback",
                                 b'{"id": "x", "label": 1}')
            assert answer.status_code == 503 and "disabled" in answer.json()["error"]
    asyncio.run(go())


def test_full_label_buffer_is_503_with_retry_after(sqlite_registry: Registry,
                                                   tmp_path: Path) -> None:
    register(sqlite_registry)
    mon = Monitoring(PredictionLog(tmp_path, worker_id="w"),
                     LabelLog(tmp_path, worker_id="fb", max_queue_rows=1), interval=3600)

    async def go() -> None:
        async with serving(sqlite_registry, mon) as repo:
            answer = await _post(create_app(repo), "/v2/models/m/feedback",
                                 b'[{"id": "x", "label": 1}, {"id": "y", "label": 1}]')
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == "1"
            app = create_app(repo)
            ok = await _post(app, "/v2/models/m/feedback", b'{"id": "z", "label": 1}')
            assert ok.status_code == 200, ok.text
            assert mon.labels is not None and mon.labels.flush(10)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                text = (await client.get("/metrics")).text
            for outcome, count in (("dropped", 2.0), ("written", 1.0)):
                assert (f'modelport_label_log_rows_total{{model="m",outcome="{outcome}"}} '
                        f"{count}") in text
            assert mon.labels.stats() == {"m": {"written": 1, "dropped": 2, "failed": 0}}
    asyncio.run(go())


def test_gauges_from_labels_and_profile(sqlite_registry: Registry, tmp_path: Path) -> None:
    X = register(sqlite_registry)
    mon = monitoring(tmp_path / "mon")

    async def go() -> None:
        async with serving(sqlite_registry, mon) as repo:
            answers = [await repo.infer(ask(X[i:i + 1], f"g{i}")) for i in range(40)]
            assert mon.predictions.flush(10)
            assert mon.labels is not None
            mon.labels.offer("m", [_label(f"g{i}", a) for i, a in enumerate(answers)])
            # One label for an id never logged, and a second (same) label for g0.
            mon.labels.offer("m", [_label("nobody", answers[0]), _label("g0", answers[0])])
            assert mon.labels.flush(10)
            observed = await asyncio.to_thread(mon.observe, repo.watched())
            assert repo.metrics is not None
            mon.export(repo.metrics, observed)
            text = repo.metrics.render().decode()
            assert 'modelport_realized_metric{metric="accuracy",model="m",version="1"} 1.0' \
                in text
            assert 'modelport_drift_score{feature="a",model="m",version="1"}' in text
            assert 'modelport_drift_detected{model="m",version="1"}' in text
            for kind, count in (("received", 42.0), ("unknown", 1.0), ("duplicate", 1.0)):
                assert f'modelport_realized_labels{{kind="{kind}",model="m"}} {count}' in text
    asyncio.run(go())


def _label(rid: str, answer: Any) -> Any:
    from modelport.monitoring.labels import Label

    return Label(rid, int(answer.outputs[0].data[0]))


def test_observe_survives_a_broken_store(tmp_path: Path) -> None:
    root = tmp_path / "mon"
    mon = monitoring(root)
    (root / "predictions").mkdir(parents=True)
    (root / "predictions" / "endpoint=m").write_text("not a folder")
    from modelport.serving.monitor import Watched

    observed = mon.observe([Watched("m", 1, None)])
    assert [o.endpoint for o in observed] == ["m"]
    mon.close()


def test_serve_yaml_monitoring_keys(tmp_path: Path) -> None:
    cfg = tmp_path / "serve.yaml"
    cfg.write_text("models:\n  - uri: m@champion\n    monitoring: {sample_rate: 0.25}\n"
                   "  - uri: n\nmonitoring: {root: /tmp/x, interval: 5}\n")
    spec = load_spec(cfg, [])
    assert spec.sample_rates() == {"m": 0.25, "n": 1.0}
    assert spec.monitoring.root == "/tmp/x" and spec.monitoring.enabled
    for bad in ["models:\n  - uri: m\n    monitoring: {sample_rate: 2}\n",
                "models:\n  - uri: m\nmonitoring: {bogus: 1}\n"]:
        cfg.write_text(bad)
        with pytest.raises(Exception, match="monitoring"):
            load_spec(cfg, [])


def test_worker_id_is_file_name_safe() -> None:
    assert worker_id("my-host.local:123:abcdef") == "my_host.local_123_abcdef"
    assert len(worker_id("x" * 100 + ":1:2")) == 64


def test_retention_removes_old_day_partitions(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    root = tmp_path / "mon"
    old = root / "predictions" / "endpoint=m" / "date=2026-11-01"
    recent = root / "predictions" / "endpoint=m" / "date=2026-11-30"
    for folder in (old, recent):
        folder.mkdir(parents=True)
        (folder / "w-1-0.parquet").write_bytes(b"x")
    mon = Monitoring(PredictionLog(root, worker_id="w"), retention_days=7)
    removed = mon.cleanup(now=datetime(2026, 12, 1, tzinfo=UTC))
    assert removed == [old] and not old.exists() and recent.exists()
    assert mon.cleanup(now=datetime(2026, 12, 1, tzinfo=UTC)) == []
    mon.close()
    spec = load_spec(None, ["m"])
    assert spec.monitoring.retention_days == 7
