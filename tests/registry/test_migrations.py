"""Alembic migrations: applied on first use, idempotent, and newer databases refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from modelport.errors import DatabaseSchemaError
from modelport.registry import db
from modelport.registry.schema import metadata
from modelport.registry.store import SqlRegistryStore


def test_head_constant_matches_alembic_scripts() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(db.MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(cfg)
    assert script.get_current_head() == db.HEAD_REVISION
    assert {r.revision for r in script.walk_revisions()} == set(db.KNOWN_REVISIONS)


def test_migrated_schema_matches_the_metadata(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store = SqlRegistryStore.from_url(database_url)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    store.close()
    assert diff == []


def test_upgrade_is_idempotent(database_url: str) -> None:
    engine = db.create_engine(database_url)
    assert db.upgrade(engine) == (None, db.HEAD_REVISION)
    assert db.upgrade(engine) == (db.HEAD_REVISION, db.HEAD_REVISION)
    engine.dispose()


def test_a_newer_database_is_refused(database_url: str) -> None:
    engine = db.create_engine(database_url)
    db.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(DatabaseSchemaError, match="upgrade modelport"):
        SqlRegistryStore(engine)
    with pytest.raises(DatabaseSchemaError):
        db.upgrade(engine)
    engine.dispose()


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    from modelport.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="cannot open the registry database"):
        SqlRegistryStore.from_url("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(ConfigurationError, match="invalid database URL"):
        SqlRegistryStore.from_url("not a url")
