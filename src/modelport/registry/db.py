"""Database engines and schema migrations for the registry.

SQLite is the embedded default; PostgreSQL is for teams. Migrations (Alembic) run
automatically on first use, under a lock, so that several processes opening a new
database at once do not race each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from modelport.errors import ConfigurationError, DatabaseSchemaError

# The newest migration this code knows. A test checks it equals Alembic's head, so the
# hot path (opening a registry) can compare without importing Alembic at all.
HEAD_REVISION = "0007"
KNOWN_REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007")
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 0x6D6F64656C  # "model": an arbitrary advisory lock id for migrations


def create_engine(url: str) -> Engine:
    """Create an engine with the settings modelport needs for this dialect."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigurationError(f"invalid database URL {url!r}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    try:
        return sa.create_engine(parsed, pool_pre_ping=True, future=True, **_json_codec())
    except (ImportError, sa.exc.NoSuchModuleError) as exc:
        raise ConfigurationError(
            f"no driver for {parsed.drivername}: install modelport[postgres] ({exc})"
        ) from exc


def _json_codec() -> dict[str, Any]:
    # orjson decodes the JSON columns (signature, metrics, ...) several times faster than
    # the json module: listing 10,000 versions spent most of its time there.
    import orjson

    return {
        "json_serializer": lambda obj: orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode(),
        "json_deserializer": orjson.loads,
    }


def _sqlite_engine(url: sa.engine.URL) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 60}, future=True, **_json_codec())

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module so BEGIN IMMEDIATE works.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=60000")
        _enable_wal(cur)
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front: a deferred transaction that later
        # upgrades to a writer can fail with SQLITE_BUSY instead of waiting.
        if conn.get_execution_options().get("modelport_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def _enable_wal(cur: Any) -> None:
    """Switch a database to WAL (a persistent setting: a no-op once done).

    Switching needs an exclusive lock, and SQLite answers "database is locked" at once,
    without its busy handler, while another process is migrating a new database; so
    retry for as long as the busy timeout would have waited.
    """
    import sqlite3
    import time

    deadline = time.monotonic() + 60
    while True:
        try:
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def current_revision(conn: Connection) -> str | None:
    """The Alembic revision stamped in the database, or None for an empty one."""
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def ensure_schema(engine: Engine) -> None:
    """Bring the schema to the newest revision; refuse a database newer than the code."""
    try:
        with engine.connect() as conn:
            rev = current_revision(conn)
    except OperationalError as exc:
        raise ConfigurationError(f"cannot open the registry database: {exc.orig}") from exc
    if rev == HEAD_REVISION:
        return
    _check_known(rev)
    upgrade(engine)


def _check_known(rev: str | None) -> None:
    if rev is not None and rev not in KNOWN_REVISIONS:
        raise DatabaseSchemaError(
            f"the registry database is at migration {rev!r}, which this modelport does not "
            f"know (newest known: {HEAD_REVISION!r}); upgrade modelport"
        )


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Apply pending migrations under a lock; return (revision before, revision after)."""
    from alembic import command
    from alembic.config import Config

    with engine.connect().execution_options(modelport_write=True) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        before = current_revision(conn)
        _check_known(before)
        if before != HEAD_REVISION:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.attributes["connection"] = conn
            try:
                command.upgrade(cfg, "head")
            except SQLAlchemyError as exc:
                raise DatabaseSchemaError(f"migration failed: {exc}") from exc
    return before, HEAD_REVISION
