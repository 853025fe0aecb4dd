"""Shared fixtures: a throwaway registry on SQLite or on the local PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelport.client import Registry
from modelport.config import Settings

PG_ADMIN_URL = os.environ.get("MODELPORT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_running() -> bool:
    import psycopg

    url = PG_ADMIN_URL.replace("postgresql+psycopg", "postgresql")
    try:
        psycopg.connect(url, connect_timeout=3).close()
        return True
    except psycopg.OperationalError:
        return False


def _start_pg() -> None:
    clusters = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not clusters or shutil.which("pg_ctlcluster") is None:
        return
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", clusters[-1], "main", "start"],
        check=False, capture_output=True, timeout=60,
    )


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The admin URL of a running PostgreSQL (started if it is not running)."""
    if not _pg_running():
        _start_pg()
    if not _pg_running():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 and could not be started")
        pytest.skip("PostgreSQL is not reachable")
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    import psycopg

    name = f"modelport_test_{uuid.uuid4().hex[:12]}"
    admin = pg_server.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = pg_server.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh registry database URL, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty MODELPORT_HOME, also set in the environment for code that reads it."""
    h = tmp_path / "home"
    monkeypatch.setenv("MODELPORT_HOME", str(h))
    monkeypatch.delenv("MODELPORT_DATABASE_URL", raising=False)
    monkeypatch.delenv("MODELPORT_TRUSTED_TYPES", raising=False)
    for key in ("MODELPORT_SIGNING_KEY", "MODELPORT_VERIFY_KEYS", "MODELPORT_ENCRYPTION_KEY"):
        monkeypatch.delenv(key, raising=False)  # a developer's keys must not change a test
    monkeypatch.setenv("MODELPORT_USER", "tester")
    return h


@pytest.fixture
def registry(home: Path, database_url: str) -> Iterator[Registry]:
    """A Registry on a fresh database (SQLite and PostgreSQL) with local artifacts."""
    reg = Registry(settings=Settings.load(home, database_url=database_url))
    try:
        yield reg
    finally:
        reg.close()


@pytest.fixture
def sqlite_registry(home: Path) -> Iterator[Registry]:
    """A Registry on the embedded default (SQLite under MODELPORT_HOME)."""
    reg = Registry(settings=Settings.load(home))
    try:
        yield reg
    finally:
        reg.close()


@pytest.fixture(autouse=True)
def _no_foreign_running_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    """Run each test without an event loop marked running on the main thread.

    A library that drives its own loop from the main thread (Playwright's sync API runs
    one in a greenlet) can leave asyncio believing a loop is running there; every later
    ``asyncio.run`` in the suite would then fail with "cannot be called from a running
    event loop". Tests are synchronous, so no loop of theirs is running at this point:
    any found belongs to someone else and is set aside for the test's duration.
    """
    import asyncio.events
    import threading

    found = (asyncio.events._get_running_loop()
             if threading.current_thread() is threading.main_thread() else None)
    if found is None or "browser" in request.fixturenames:  # the browser needs its loop
        yield
        return
    asyncio.events._set_running_loop(None)
    try:
        yield
    finally:
        asyncio.events._set_running_loop(found)
