"""Concurrent registrations from real processes get distinct, gapless version numbers."""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

WORKERS = 4
PER_WORKER = 15


def _register_many(database_url: str, artifacts: str, n: int, barrier: object) -> list[int]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from modelport.client import Registry
    from modelport.config import Settings

    rng = np.random.default_rng(0)
    X = rng.random((40, 3))
    model = LogisticRegression().fit(X, (X[:, 0] > 0.5).astype(int))
    reg = Registry(settings=Settings.load(artifacts, database_url=database_url,
                                          artifacts=artifacts))
    barrier.wait(60)  # type: ignore[attr-defined]  # start together to maximise contention
    out = [reg.log_model(model, "shared", metrics={"i": i}).version for i in range(n)]
    reg.close()
    return out


def _run(database_url: str, artifacts: Path) -> list[int]:
    from modelport.registry.store import SqlRegistryStore

    SqlRegistryStore.from_url(database_url).close()  # migrate once up front
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(WORKERS)
        # ProcessPoolExecutor (unlike Pool) fails loudly if a worker dies.
        with ProcessPoolExecutor(WORKERS, mp_context=ctx) as pool:
            futures = [pool.submit(_register_many, database_url, str(artifacts), PER_WORKER,
                                   barrier) for _ in range(WORKERS)]
            results = [f.result(timeout=240) for f in futures]
    return [v for chunk in results for v in chunk]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_concurrent_registrations_are_gapless(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (f"sqlite:///{tmp_path / 'r.db'}" if backend == "sqlite"
           else request.getfixturevalue("pg_url"))
    versions = _run(url, tmp_path / "artifacts")
    assert sorted(versions) == list(range(1, WORKERS * PER_WORKER + 1))

    from modelport.registry.store import SqlRegistryStore

    store = SqlRegistryStore.from_url(url)
    try:
        listed = [v.version for v in store.list_versions("shared")]
        assert sorted(listed) == list(range(1, WORKERS * PER_WORKER + 1))
        assert store.get_model("shared").latest_version == WORKERS * PER_WORKER
    finally:
        store.close()


def _open_and_migrate(database_url: str, barrier: object) -> str | None:
    import sqlalchemy as sa

    from modelport.registry import db
    from modelport.registry.store import SqlRegistryStore

    barrier.wait(60)  # type: ignore[attr-defined]
    store = SqlRegistryStore.from_url(database_url)
    with store.engine.connect() as conn:
        rev = db.current_revision(conn)
        conn.execute(sa.text("SELECT count(*) FROM model_versions")).scalar()
    store.close()
    return rev


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_first_use_migration_from_many_processes(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (f"sqlite:///{tmp_path / 'fresh.db'}" if backend == "sqlite"
           else request.getfixturevalue("pg_url"))
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(WORKERS)
        with ProcessPoolExecutor(WORKERS, mp_context=ctx) as pool:
            futures = [pool.submit(_open_and_migrate, url, barrier) for _ in range(WORKERS)]
            revs = [f.result(timeout=120) for f in futures]
    from modelport.registry.db import HEAD_REVISION

    assert revs == [HEAD_REVISION] * WORKERS
