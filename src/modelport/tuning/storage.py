"""Where studies live: Optuna's RDB storage next to the registry, and the bookkeeping of
trials that several processes (and killed ones) leave behind.

Optuna keeps its own tables and, like the registry, stamps its schema revision in an
Alembic ``alembic_version`` table; two Alembic histories cannot share that table, so
Optuna's tables get their own namespace beside the registry's: on PostgreSQL the schema
``modelport_optuna`` of the same database, on SQLite a sibling file
(``registry.db`` → ``registry-optuna.db``). Optuna's own tools open the same studies
with ``storage_url()``'s URL.

A trial records the host and process running it. A ``RUNNING`` trial whose process is
gone (on this host) is marked failed and interrupted at once; one whose process ran on
another host is failed by Optuna's heartbeat once it has been silent for
``GRACE_SECONDS``. Interrupted trials do not count towards a study's trial budget.
"""

from __future__ import annotations

import contextlib
import os
import socket
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from modelport.errors import ConfigurationError, NotFoundError

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

OPTUNA_SCHEMA = "modelport_optuna"
HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 60
_PG_OPEN_LOCK = 0x6F7074756E61  # "optuna": an arbitrary advisory lock id
# Trial user attributes modelport writes (and reads back in reports and resumes).
HOST = "modelport.host"
PID = "modelport.pid"
PID_START = "modelport.pid_start"
ERROR = "modelport.error"
INTERRUPTED = "modelport.interrupted"
METRICS = "modelport.metrics"
MODEL_FILE = "modelport.model_file"
PRUNED_AT = "modelport.pruned_at"


@dataclass(frozen=True)
class StorageTarget:
    """Optuna's URL and engine options for one registry database."""

    url: str
    engine_kwargs: dict[str, Any] = field(default_factory=dict)
    schema: str | None = None  # PostgreSQL: created if missing


def storage_target(database_url: str) -> StorageTarget:
    """Where the studies of the registry at ``database_url`` are kept."""
    try:
        parsed = sa.engine.make_url(database_url)
    except sa.exc.ArgumentError as exc:
        raise ConfigurationError(f"invalid database URL {database_url!r}: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ConfigurationError("tuning needs a registry database that outlives the "
                                     "process: an SQLite file or PostgreSQL, not :memory:")
        path = Path(parsed.database).expanduser()
        sibling = path.with_name(f"{path.stem}-optuna{path.suffix or '.db'}")
        # Several tuning processes on one machine write at once: wait, do not fail.
        return StorageTarget(f"sqlite:///{sibling}", {"connect_args": {"timeout": 60}})
    if backend == "postgresql":
        return StorageTarget(
            parsed.render_as_string(hide_password=False),
            {"pool_pre_ping": True,
             "connect_args": {"options": f"-c search_path={OPTUNA_SCHEMA}"}},
            schema=OPTUNA_SCHEMA)
    raise ConfigurationError(f"tuning supports SQLite and PostgreSQL registries, not {backend}")


def storage_url(database_url: str) -> str:
    """A URL Optuna's own tools (``optuna-dashboard``, ``optuna.load_study``) can open
    the registry's studies with."""
    target = storage_target(database_url)
    if target.schema is None:
        return target.url
    url = sa.engine.make_url(target.url)
    return url.update_query_dict({"options": f"-csearch_path={target.schema}"}).render_as_string(
        hide_password=False)


def open_storage(database_url: str, *, create: bool = True) -> optuna.storages.RDBStorage:
    """Optuna's storage for the registry at ``database_url`` (tables created if new;
    with ``create=False`` a registry that never tuned raises NotFoundError instead)."""
    import optuna

    target = storage_target(database_url)
    if not create and not _exists(target):
        raise NotFoundError("no study: nothing was ever tuned on this registry")
    try:
        # Optuna creates its tables without a lock: two processes opening a new storage
        # at once both issue CREATE TABLE and one fails. Serialise the opening.
        with _opening(target), warnings.catch_warnings():
            # heartbeat_interval is marked experimental; it is what resuming relies on.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                target.url, engine_kwargs=target.engine_kwargs,
                heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS)
    except sa.exc.SQLAlchemyError as exc:
        raise ConfigurationError(f"cannot open the tuning storage: {exc}") from exc


@contextlib.contextmanager
def _opening(target: StorageTarget) -> Iterator[None]:
    """Hold a cross-process lock (PostgreSQL advisory lock; a lock file beside the
    SQLite file) while the storage is opened, its schema created if needed."""
    if target.schema is None:
        import fcntl

        path = Path(sa.engine.make_url(target.url).database or "")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            _sqlite_wal(path)
            yield
        return
    engine = sa.create_engine(target.url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_OPEN_LOCK})
            try:
                conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{target.schema}"'))
                conn.commit()
                yield
            finally:
                conn.rollback()
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_OPEN_LOCK})
                conn.commit()
    except sa.exc.ProgrammingError as exc:
        raise ConfigurationError(
            f"cannot create the schema {target.schema!r} for Optuna's tables: {exc.orig} "
            "(create it, or grant CREATE on the database to this user)") from exc
    finally:
        engine.dispose()


def _exists(target: StorageTarget) -> bool:
    if target.schema is None:
        return Path(sa.engine.make_url(target.url).database or "").is_file()
    engine = sa.create_engine(target.url)
    try:
        with engine.connect() as conn:
            return target.schema in sa.inspect(conn).get_schema_names()
    except sa.exc.SQLAlchemyError as exc:
        raise ConfigurationError(f"cannot open the tuning storage: {exc}") from exc
    finally:
        engine.dispose()


def _sqlite_wal(path: Path) -> None:
    # WAL is a setting of the file: readers (a report, a polling test) never block the
    # writers, as in the registry's own database.
    import sqlite3

    conn = sqlite3.connect(path, timeout=60)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


# -- who runs a trial -------------------------------------------------------------------


def this_process() -> dict[str, Any]:
    """The user attributes that say which process runs a trial."""
    return {HOST: socket.gethostname(), PID: os.getpid(), PID_START: _started(os.getpid())}


def _started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def process_gone(attrs: dict[str, Any]) -> bool:
    """Whether the process a trial's attributes name has ended (False when it ran on
    another host, or the attributes say nothing: the heartbeat decides those)."""
    if attrs.get(HOST) != socket.gethostname() or not isinstance(attrs.get(PID), int):
        return False
    pid = attrs[PID]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    start = attrs.get(PID_START)
    return start is not None and _started(pid) not in (None, start)


def fail_interrupted(study: optuna.Study) -> list[int]:
    """Mark failed (and interrupted) the running trials whose process is gone; returns
    their numbers."""
    from optuna.trial import TrialState

    storage = study._storage
    done = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if not process_gone(attrs):
            continue
        with contextlib.suppress(RuntimeError):  # it finished meanwhile after all
            storage.set_trial_user_attr(
                trial._trial_id, ERROR,
                f"interrupted: its process (pid {attrs.get(PID)}) ended during the trial")
            storage.set_trial_user_attr(trial._trial_id, INTERRUPTED, True)
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            done.append(trial.number)
    return done


def interrupted(trial: FrozenTrial) -> bool:
    """A trial that failed because its process died, not because of its command."""
    from optuna.trial import TrialState

    return trial.state == TrialState.FAIL and (
        bool(trial.user_attrs.get(INTERRUPTED)) or ERROR not in trial.user_attrs)


def counted(trials: Iterable[FrozenTrial]) -> int:
    """How many trials count towards the budget: all but the interrupted ones."""
    return sum(1 for t in trials if not interrupted(t))


__all__ = ["GRACE_SECONDS", "HEARTBEAT_SECONDS", "OPTUNA_SCHEMA", "StorageTarget", "counted",
           "fail_interrupted", "interrupted", "open_storage", "process_gone", "storage_target",
           "storage_url", "this_process"]
