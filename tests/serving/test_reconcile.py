"""A real ModelRepository following a real registry's deployments (SQLite, PostgreSQL).

The desired state is changed here directly through ``registry.deployments``, as a
controller would; the repository must converge, split, count and report.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import numpy as np
import pytest

import modelport
from modelport.client import Registry
from modelport.registry.entities import Mode
from modelport.registry.traffic import fleet_total
from modelport.serving.app import create_app
from modelport.serving.deployment import BatchingConfig
from modelport.serving.repository import Endpoint, ModelRepository
from modelport.serving.router import Router
from modelport.serving.types import InferenceRequest, Tensor

N = 4


class CrashOnWarmup(modelport.PythonModel):
    """Predicts at registration, but crashes on a server's model thread, so its warm-up
    (the input example, run there) fails."""

    def predict(self, X: Any) -> Any:
        if threading.current_thread().name.startswith("model-"):
            raise RuntimeError("warm-up crash")
        return np.zeros(len(X), dtype=int)


class SlowOnServer(modelport.PythonModel):
    """Answers zeros; takes 0.2 s per call when served (on a model thread or inline on
    the event loop), not when registered."""

    def predict(self, X: Any) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        if on_loop or threading.current_thread() is not threading.main_thread():
            time.sleep(0.2)
        return np.zeros(len(X), dtype=int)


def register(registry: Registry) -> np.ndarray:
    """Model "m": v1 and v2 answer opposite labels; champion -> 1. Returns query rows."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    X = rng.normal(size=(80, N))
    y = (X[:, 0] - X[:, 1] > 0).astype(int)
    registry.log_model(LogisticRegression().fit(X, y), "m", input_example=X[:3])
    registry.log_model(LogisticRegression().fit(X, 1 - y), "m", input_example=X[:3])
    registry.set_alias("m", "champion", 1)
    return X[:4]


def request(X: np.ndarray, **kw: Any) -> InferenceRequest:
    return InferenceRequest("m", [Tensor("input-0", X, "FP64")], **kw)


async def until(check: Callable[[], bool | Awaitable[bool]], what: str,
                timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"{what}: not within {timeout}s")


@asynccontextmanager
async def serving(registry: Registry, *, trusted: bool = False, seed: int = 0,
                  batching: BatchingConfig | None = None) -> AsyncIterator[ModelRepository]:
    endpoint = Endpoint.from_uri("m@champion", trusted=trusted, batching=batching)
    repo = ModelRepository(registry, [endpoint],
                           poll_interval=0.1, deployment_poll_interval=0.05,
                           report_interval=0.05, retry_interval=0.5,
                           router=Router(random.Random(seed)), server_id="test-server")
    await repo.start()
    try:
        assert await repo.wait_ready(60), repo.get("m").error
        yield repo
    finally:
        await repo.stop()


async def versions_answering(repo: ModelRepository, X: np.ndarray, n: int,
                             **kw: Any) -> list[int]:
    return list(await asyncio.gather(*((await_version(repo, X, **kw)) for _ in range(n))))


async def await_version(repo: ModelRepository, X: np.ndarray, **kw: Any) -> int:
    return (await repo.infer(request(X, **kw))).version


def test_canary_then_promotion_without_reload_then_rollback(registry: Registry) -> None:
    X = register(registry)

    async def go() -> None:
        async with serving(registry) as repo:
            served = repo.get("m")
            assert served.versions() == [1]
            rollout, _ = registry.deployments.start_rollout(
                "m", model_name="m", candidate=2, strategy="canary", steps=[30, 100],
                actor="test", mode=Mode.CANARY, stable=1)
            await until(lambda: served.route.candidate is not None, "candidate loaded")
            assert await versions_answering(repo, X, 50) == [1] * 50  # weight 0

            registry.deployments.transition(rollout.id, "test", "step",
                                            deployment_changes={"weight": 30.0})
            await until(lambda: served.route.weight == 30.0, "weight 30")
            seen = await versions_answering(repo, X, 400)
            assert 60 < seen.count(2) < 180, seen.count(2)

            candidate = served.route.candidate
            registry.deployments.transition(
                rollout.id, "test", "promoted", rollout_changes={"status": "promoted"},
                deployment_changes={"stable": 2, "candidate": None, "mode": None,
                                    "weight": 0.0, "previous": 1})
            await until(lambda: served.route.stable is candidate, "promoted without reload")
            assert served.route.candidate is None
            await until(lambda: list(served.loaded) == [2], "v1 freed")
            assert served.traffic.version(1).stats.state == "unloaded"
            assert set(await versions_answering(repo, X, 20)) == {2}
            assert registry.get("m@champion").version == 2  # the alias moved with stable

            registry.deployments.update("m", "test", "rollback", stable=1, previous=2)
            await until(lambda: served.versions() == [1], "rolled back to v1")
            assert set(await versions_answering(repo, X, 20)) == {1}

            async def reported() -> bool:
                reports = await asyncio.to_thread(registry.records.traffic, "m")
                by_version = {r.version: r.stats for r in reports}
                return (by_version.get(2, {}).get("requests", 0) >= 20
                        and by_version.get(1, {}).get("state") == "ready")

            await until(reported, "counters in the registry")
            reports = registry.records.traffic("m")
            assert {r.server_id for r in reports} == {"test-server"}
            total = fleet_total([r.stats for r in reports if r.version == 2])
            assert total.errors == 0 and sum(total.outputs.values()) >= 20 * len(X)

    asyncio.run(go())


def test_shadow_answers_with_stable_and_compares(registry: Registry) -> None:
    X = register(registry)

    async def go() -> None:
        async with serving(registry) as repo:
            served = repo.get("m")
            registry.deployments.start_rollout(
                "m", model_name="m", candidate=2, strategy="shadow", steps=[0], actor="t",
                mode=Mode.SHADOW, stable=1)
            await until(lambda: served.route.shadow, "shadow candidate loaded")
            assert set(await versions_answering(repo, X, 30)) == {1}
            cand = served.traffic.version(2)
            await until(lambda: cand.stats.shadow_compared >= 30 * len(X), "copies compared")
            assert cand.stats.shadow_agreed == 0  # v2 answers the opposite labels
            assert cand.stats.requests >= 30
            stable = served.traffic.version(1)
            assert stable.stats.shadow_compared == 0 and stable.stats.requests == 30

    asyncio.run(go())


def test_shadow_copies_are_dropped_when_the_candidate_queue_is_full(
        registry: Registry) -> None:
    X = register(registry)
    slow = registry.log_model(SlowOnServer(), "m", input_example=X[:2]).version

    async def go() -> None:
        batching = BatchingConfig(max_batch_size=4, max_latency_ms=1, max_queue_rows=8)
        async with serving(registry, trusted=True, batching=batching) as repo:
            served = repo.get("m")
            registry.deployments.start_rollout(
                "m", model_name="m", candidate=slow, strategy="shadow", steps=[0],
                actor="t", mode=Mode.SHADOW, stable=1)
            await until(lambda: served.route.shadow, "shadow candidate loaded")
            # One at a time (stable's queue is small too): stable answers each at once,
            # while the copies pile up on the slow candidate.
            assert {await await_version(repo, X) for _ in range(40)} == {1}
            cand = served.traffic.version(slow)
            # Copies are sent from background tasks: they may still be on their way.
            await until(lambda: cand.dropped > 0, "copies dropped at the full queue")
            await until(lambda: cand.stats.requests + cand.dropped == 40, "copies settled")
            assert cand.stats.errors == 0

    asyncio.run(go())


def test_versioned_requests_bypass_the_split(registry: Registry) -> None:
    X = register(registry)

    async def go() -> None:
        async with serving(registry) as repo:
            registry.deployments.start_rollout(
                "m", model_name="m", candidate=2, strategy="bluegreen", steps=[100],
                actor="t", mode=Mode.BLUEGREEN, stable=1)
            registry.deployments.update("m", "t", "switch", weight=100.0)
            served = repo.get("m")
            await until(lambda: served.route.weight == 100.0 and served.route.candidate
                        is not None, "blue-green switched")
            assert set(await versions_answering(repo, X, 10)) == {2}
            assert set(await versions_answering(repo, X, 10, version=1)) == {1}
            assert served.pinned == {}  # v1 is loaded as stable: not loaded twice

    asyncio.run(go())


def test_sticky_header_pins_a_client_through_the_app(registry: Registry) -> None:
    X = register(registry)
    body = {"inputs": [{"name": "input-0", "datatype": "FP64", "shape": list(X.shape),
                        "data": X.ravel().tolist()}]}

    async def go() -> None:
        async with serving(registry) as repo:
            registry.deployments.start_rollout(
                "m", model_name="m", candidate=2, strategy="canary", steps=[50, 100],
                actor="t", mode=Mode.CANARY, stable=1, sticky="X-User")
            registry.deployments.update("m", "t", "step", weight=50.0)
            await until(lambda: repo.get("m").route.weight == 50.0, "weight 50")
            transport = httpx.ASGITransport(app=create_app(repo))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                sides: dict[str, set[str]] = {}
                for user in range(40):
                    for _ in range(3):
                        r = await client.post("/v2/models/m/infer", json=body,
                                              headers={"x-user": f"u{user}"})
                        assert r.status_code == 200, r.text
                        assert r.headers["x-model-version"] == r.json()["model_version"]
                        sides.setdefault(f"u{user}", set()).add(r.json()["model_version"])
            assert all(len(s) == 1 for s in sides.values()), sides
            assert {v for s in sides.values() for v in s} == {"1", "2"}

    asyncio.run(go())


def test_candidate_that_crashes_in_warmup_gets_no_traffic(registry: Registry) -> None:
    X = register(registry)
    bad = registry.log_model(CrashOnWarmup(), "m", input_example=X[:2]).version

    async def go() -> None:
        async with serving(registry, trusted=True) as repo:
            served = repo.get("m")
            registry.deployments.start_rollout(
                "m", model_name="m", candidate=bad, strategy="canary", steps=[100],
                actor="t", mode=Mode.CANARY, stable=1)
            registry.deployments.update("m", "t", "step", weight=100.0)
            counter = served.traffic.version(bad)
            await until(lambda: counter.stats.state == "failed", "candidate failed")
            assert "warm-up crash" in counter.stats.error
            assert set(await versions_answering(repo, X, 20)) == {1}
            assert served.route.candidate is None and served.versions() == [1]
            first = served.failed[bad][0]
            await until(lambda: served.failed[bad][0] > first, "retried after a pause")

            async def reported() -> bool:
                stats = {r.version: r.stats for r in
                         await asyncio.to_thread(registry.records.traffic, "m")}
                return stats.get(bad, {}).get("state") == "failed"

            await until(reported, "failed state in the registry")

            registry.deployments.update("m", "t", "abort", candidate=None, mode=None,
                                        weight=0.0)
            await until(lambda: served.targets() == (1, None), "abort seen")

    asyncio.run(go())


def test_restart_mid_rollout_converges_to_the_desired_state(registry: Registry) -> None:
    X = register(registry)
    registry.deployments.start_rollout(
        "m", model_name="m", candidate=2, strategy="canary", steps=[50, 100], actor="t",
        mode=Mode.CANARY, stable=1)
    registry.deployments.update("m", "t", "step", weight=50.0)

    async def go() -> None:
        async with serving(registry) as repo:  # a server (re)starting mid-rollout
            served = repo.get("m")
            await until(lambda: served.route.candidate is not None, "candidate loaded")
            assert set(await versions_answering(repo, X, 100)) == {1, 2}

    asyncio.run(go())


def test_database_outage_keeps_the_last_known_state(pg_url: str, home: Any) -> None:
    """PostgreSQL refuses every connection for a while (ALLOW_CONNECTIONS false, and its
    sessions terminated): the split goes on, no request fails, and once the database
    is back the server follows it again and reports its counters."""
    import psycopg

    from modelport.config import Settings

    name = pg_url.rsplit("/", 1)[1]
    admin = pg_url.rsplit("/", 1)[0].replace("postgresql+psycopg", "postgresql") + "/postgres"
    registry = Registry(settings=Settings.load(home, database_url=pg_url))
    X = register(registry)
    registry.deployments.start_rollout(
        "m", model_name="m", candidate=2, strategy="canary", steps=[50, 100], actor="t",
        mode=Mode.CANARY, stable=1)
    registry.deployments.update("m", "t", "step", weight=50.0)

    def outage(on: bool) -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(not on).lower()}')
            if on:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))

    async def go() -> None:
        async with serving(registry) as repo:
            served = repo.get("m")
            await until(lambda: served.route.candidate is not None, "candidate loaded")
            await asyncio.to_thread(outage, True)
            try:
                before = served.traffic.version(2).stats.requests
                await asyncio.sleep(0.3)  # several failed polls and reports
                assert repo.watcher._failing_since is not None, "the outage was not seen"
                seen = await versions_answering(repo, X, 200)  # raises if any failed
                assert set(seen) == {1, 2}
                assert served.traffic.version(2).stats.requests > before
            finally:
                await asyncio.to_thread(outage, False)
            registry.deployments.update("m", "t", "rollback", candidate=None, mode=None,
                                        weight=0.0)
            await until(lambda: served.versions() == [1], "followed after the outage")

            async def reported() -> bool:
                reports = await asyncio.to_thread(registry.records.traffic, "m")
                return sum(r.stats["requests"] for r in reports) >= 200

            await until(reported, "counters reported after the outage")

    try:
        asyncio.run(go())
    finally:
        registry.close()
