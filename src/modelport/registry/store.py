"""The SQL registry store: transactional reads and writes of models, versions and aliases.

Every write is one transaction. Version numbers come from a per-model counter bumped
inside the registering transaction (an ``UPDATE ... RETURNING`` that locks the model's
row on PostgreSQL and runs under SQLite's write lock), so concurrent registrations get
distinct, gapless numbers, and a failed registration gives its number back. Each
write appends its audit record (``registry.audit``) in that same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.exc import OperationalError

from modelport.errors import (
    AliasNotFoundError,
    ConfigurationError,
    ModelNotFoundError,
    VersionNotFoundError,
)
from modelport.registry import aliases as alias_rows
from modelport.registry import audit, db
from modelport.registry import datasets as dataset_rows
from modelport.registry.entities import SIGNING_FIELD, AliasEvent, ModelVersion, RegisteredModel
from modelport.registry.schema import dataset_versions, model_aliases, model_versions
from modelport.registry.schema import registered_models as models_t
from modelport.registry.times import as_utc, utcnow
from modelport.uri import ModelURI, validate_alias, validate_name


@dataclass(frozen=True)
class NewVersion:
    """Everything a caller supplies to create a version; the store adds name and number."""

    flavor: str
    artifact_digest: str
    artifact_size: int
    created_by: str
    signature: dict[str, Any] | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    training_data: dict[str, Any] | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    # Dataset versions to link (registering the new ones) in the same transaction.
    datasets: tuple[dataset_rows.DatasetRef, ...] = ()


# Called inside the registering transaction with the version number just allocated;
# returns the signature record kept with the version (the signature covers the number).
Signer = Callable[[int], dict[str, Any]]


class RegistryStore(Protocol):
    """What the rest of modelport needs from a registry backend."""

    def create_version(self, name: str, new: NewVersion, *,
                       signer: Signer | None = None) -> ModelVersion: ...
    def get_model(self, name: str) -> RegisteredModel: ...
    def list_models(self, include_deleted: bool = False) -> list[RegisteredModel]: ...
    def get_version(self, name: str, version: int) -> ModelVersion: ...
    def list_versions(self, name: str, include_deleted: bool = False) -> list[ModelVersion]: ...
    def resolve(self, uri: ModelURI, *, with_aliases: bool = True) -> ModelVersion: ...
    def set_alias(
        self, name: str, alias: str, version: int, actor: str, reason: str = ""
    ) -> AliasEvent: ...
    def delete_alias(self, name: str, alias: str, actor: str, reason: str = "") -> AliasEvent: ...
    def alias_history(self, name: str, alias: str | None = None) -> list[AliasEvent]: ...
    def delete_version(self, name: str, version: int, actor: str, reason: str = "") -> None: ...
    def delete_model(self, name: str, actor: str, reason: str = "") -> None: ...
    def update_model(
        self, name: str, description: str | None = None, tags: dict[str, str] | None = None,
        *, actor: str = "unknown",
    ) -> RegisteredModel: ...
    def digest_in_use(self, digest: str) -> bool: ...




class SqlRegistryStore:
    """Registry backend on SQLAlchemy Core: SQLite (embedded) or PostgreSQL (teams)."""

    def __init__(self, engine: Engine, *, migrate: bool = True) -> None:
        self.engine = engine
        if migrate:
            db.ensure_schema(engine)

    @classmethod
    def from_url(cls, url: str, *, migrate: bool = True) -> SqlRegistryStore:
        """Open (and, by default, migrate) the registry database at ``url``."""
        return cls(db.create_engine(url), migrate=migrate)

    def close(self) -> None:
        """Release the engine's connections."""
        self.engine.dispose()

    # -- transactions -------------------------------------------------------------------

    def reading(self) -> Any:
        """A read transaction (a context manager yielding the connection)."""
        return self._read()

    def writing(self) -> Any:
        """A write transaction (a context manager yielding the connection); SQLite takes
        its write lock up front."""
        return self._write()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except OperationalError as exc:
            raise ConfigurationError(f"registry database unavailable: {exc.orig}") from exc

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with (
                self.engine.connect().execution_options(modelport_write=True) as conn,
                conn.begin(),
            ):
                yield conn
        except OperationalError as exc:
            raise ConfigurationError(f"registry database unavailable: {exc.orig}") from exc

    # -- models -------------------------------------------------------------------------

    def _model_row(
        self, conn: Connection, name: str, *, lock: bool = False, deleted_ok: bool = False
    ) -> RowMapping:
        validate_name(name)
        q = sa.select(models_t).where(models_t.c.name == name)
        if lock:
            q = q.with_for_update()
        row = conn.execute(q).mappings().first()
        if row is None or (row["deleted_at"] is not None and not deleted_ok):
            raise ModelNotFoundError(f"no model named {name!r}", name=name)
        return row

    def _ensure_model(self, conn: Connection, name: str, now: datetime) -> RowMapping:
        """Create the model row if missing (race-free), revive it if soft-deleted."""
        validate_name(name)
        dialect = conn.dialect.name
        values = {
            "name": name,
            "description": "",
            "tags": {},
            "next_version": 1,
            "created_at": now,
            "updated_at": now,
        }
        if dialect in ("postgresql", "sqlite"):
            insert_fn: Any = _dialect_insert(dialect)
            conn.execute(insert_fn(models_t).values(**values).on_conflict_do_nothing())
        elif conn.execute(sa.select(models_t.c.id).where(models_t.c.name == name)).first() is None:
            conn.execute(sa.insert(models_t).values(**values))
        row = self._model_row(conn, name, lock=True, deleted_ok=True)
        if row["deleted_at"] is not None:
            conn.execute(
                sa.update(models_t).where(models_t.c.id == row["id"]).values(deleted_at=None)
            )
            row = self._model_row(conn, name, lock=True)
        return row

    def get_model(self, name: str) -> RegisteredModel:
        """The registered model ``name`` with its latest version and aliases."""
        with self._read() as conn:
            row = self._model_row(conn, name)
            return self._models_from_rows(conn, [row])[0]

    def list_models(self, include_deleted: bool = False) -> list[RegisteredModel]:
        """All registered models, by name."""
        with self._read() as conn:
            q = sa.select(models_t).order_by(models_t.c.name)
            if not include_deleted:
                q = q.where(models_t.c.deleted_at.is_(None))
            rows = list(conn.execute(q).mappings())
            return self._models_from_rows(conn, rows)

    def _models_from_rows(self, conn: Connection, rows: list[RowMapping]) -> list[RegisteredModel]:
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        live = model_versions.c.deleted_at.is_(None)
        stats = {
            mid: (latest, count)
            for mid, latest, count in conn.execute(
                sa.select(
                    model_versions.c.model_id,
                    sa.func.max(model_versions.c.version),
                    sa.func.count(),
                )
                .where(live, model_versions.c.model_id.in_(ids))
                .group_by(model_versions.c.model_id)
            )
        }
        aliases: dict[int, dict[str, int]] = {}
        for mid, alias, version in conn.execute(
            sa.select(model_aliases.c.model_id, model_aliases.c.alias, model_aliases.c.version)
            .where(model_aliases.c.model_id.in_(ids))
            .order_by(model_aliases.c.alias)
        ):
            aliases.setdefault(mid, {})[alias] = version
        return [
            RegisteredModel(
                name=r["name"],
                description=r["description"],
                tags=dict(r["tags"] or {}),
                created_at=as_utc(r["created_at"]),  # type: ignore[arg-type]
                updated_at=as_utc(r["updated_at"]),  # type: ignore[arg-type]
                latest_version=stats.get(r["id"], (None, 0))[0],
                version_count=stats.get(r["id"], (None, 0))[1],
                aliases=aliases.get(r["id"], {}),
                deleted_at=as_utc(r["deleted_at"]),
            )
            for r in rows
        ]

    def update_model(
        self, name: str, description: str | None = None, tags: dict[str, str] | None = None,
        *, actor: str = "unknown",
    ) -> RegisteredModel:
        """Change a model's description or tags (versions themselves never change)."""
        with self._write() as conn:
            row = self._model_row(conn, name, lock=True)
            values: dict[str, Any] = {"updated_at": utcnow()}
            if description is not None:
                values["description"] = description
            if tags is not None:
                values["tags"] = {**(row["tags"] or {}), **tags}
            conn.execute(sa.update(models_t).where(models_t.c.id == row["id"]).values(**values))
            before = {"description": row["description"], "tags": dict(row["tags"] or {})}
            after = {"description": values.get("description", before["description"]),
                     "tags": values.get("tags", before["tags"])}
            audit.append(conn, actor=actor, action=audit.MODEL_UPDATE, target=name, model=name,
                         before=before, after=after)
        return self.get_model(name)

    # -- versions -----------------------------------------------------------------------

    def create_version(self, name: str, new: NewVersion, *,
                       signer: Signer | None = None) -> ModelVersion:
        """Register a new version of ``name`` (creating the model if needed); ``signer``
        signs it in the same transaction, so it is never visible unsigned."""
        now = utcnow()
        with self._write() as conn:
            model = self._ensure_model(conn, name, now)
            next_version = conn.execute(
                sa.update(models_t)
                .where(models_t.c.id == model["id"])
                .values(next_version=models_t.c.next_version + 1, updated_at=now)
                .returning(models_t.c.next_version)
            ).scalar_one()
            version = next_version - 1
            values = dict(new.__dict__)
            attached = dataset_rows.attach_in(conn, values.pop("datasets"), new.created_by)
            linked = {role: ds.uri for role, _, ds in attached}
            if dataset_rows.TRAINING in linked:
                values["training_data"] = {**(new.training_data or {}),
                                           "dataset": linked[dataset_rows.TRAINING]}
            signing = signer(version) if signer is not None else None
            if signing is not None:
                values["environment"] = {**new.environment, SIGNING_FIELD: signing}
            version_id = conn.execute(
                sa.insert(model_versions).values(
                    model_id=model["id"], version=version, created_at=now, **values)
                .returning(model_versions.c.id)
            ).scalar_one()
            dataset_rows.link_in(conn, version_id, attached)
            audit.append(conn, actor=new.created_by, action=audit.VERSION_REGISTER,
                         target=f"{name}/{version}", model=name, after={
                             "flavor": new.flavor, "artifact_digest": new.artifact_digest,
                             "artifact_size": new.artifact_size, "metrics": new.metrics,
                             "tags": new.tags, "description": new.description,
                             **({"signed_by_key": signing["key_id"]} if signing else {}),
                             **({"datasets": linked} if linked else {})})
        return ModelVersion(name=name, version=version, created_at=now, **values)

    def _version_row(
        self, conn: Connection, model_id: int, name: str, version: int
    ) -> RowMapping:
        row = (
            conn.execute(
                sa.select(model_versions).where(
                    model_versions.c.model_id == model_id, model_versions.c.version == version
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise VersionNotFoundError(f"model {name!r} has no version {version}")
        if row["deleted_at"] is not None:
            raise VersionNotFoundError(
                f"{name}/{version} was deleted at {as_utc(row['deleted_at']):%Y-%m-%d %H:%M:%S} UTC"
            )
        return row

    def _to_version(
        self, row: RowMapping, name: str, aliases: tuple[str, ...] = ()
    ) -> ModelVersion:
        return ModelVersion(
            name=name,
            version=row["version"],
            flavor=row["flavor"],
            artifact_digest=row["artifact_digest"],
            artifact_size=row["artifact_size"],
            signature=row["signature"],
            metrics=row["metrics"] or {},
            params=row["params"] or {},
            tags=row["tags"] or {},
            training_data=row["training_data"],
            environment=row["environment"] or {},
            description=row["description"],
            created_at=as_utc(row["created_at"]),  # type: ignore[arg-type]
            created_by=row["created_by"],
            deleted_at=as_utc(row["deleted_at"]),
            aliases=aliases,
        )

    def _aliases_of(self, conn: Connection, model_id: int, version: int) -> tuple[str, ...]:
        return tuple(
            conn.execute(
                sa.select(model_aliases.c.alias)
                .where(model_aliases.c.model_id == model_id, model_aliases.c.version == version)
                .order_by(model_aliases.c.alias)
            ).scalars()
        )

    def get_version(self, name: str, version: int) -> ModelVersion:
        """Version ``version`` of ``name``; deleted versions are not found."""
        with self._read() as conn:
            model = self._model_row(conn, name)
            row = self._version_row(conn, model["id"], name, version)
            return self._to_version(row, name, self._aliases_of(conn, model["id"], version))

    def list_versions(self, name: str, include_deleted: bool = False) -> list[ModelVersion]:
        """All versions of ``name``, newest first."""
        with self._read() as conn:
            model = self._model_row(conn, name)
            q = (
                sa.select(model_versions)
                .where(model_versions.c.model_id == model["id"])
                .order_by(model_versions.c.version.desc())
            )
            if not include_deleted:
                q = q.where(model_versions.c.deleted_at.is_(None))
            by_version: dict[int, list[str]] = {}
            for alias, ver in conn.execute(
                sa.select(model_aliases.c.alias, model_aliases.c.version)
                .where(model_aliases.c.model_id == model["id"])
                .order_by(model_aliases.c.alias)
            ):
                by_version.setdefault(ver, []).append(alias)
            return [
                self._to_version(r, name, tuple(by_version.get(r["version"], ())))
                for r in conn.execute(q).mappings()
            ]

    def resolve(self, uri: ModelURI, *, with_aliases: bool = True) -> ModelVersion:
        """The version a URI points to: by number, by alias, or the newest live one.

        ``with_aliases=False`` leaves ``aliases`` empty and saves a query (loading a
        model does not need them).
        """
        validate_name(uri.name)
        with self._read() as conn:
            # One joined query on the hot path (every load_model, every server poll); the
            # step-by-step lookup runs only to explain what is missing.
            row = conn.execute(self._resolve_query(uri)).mappings().first()
            if row is not None and row["deleted_at"] is None:
                aliases = (self._aliases_of(conn, row["model_id"], row["version"])
                           if with_aliases else ())
                return self._to_version(row, uri.name, aliases)
            return self._resolve_stepwise(conn, uri)

    @staticmethod
    def _resolve_query(uri: ModelURI) -> sa.Select[Any]:
        v, m, a = model_versions, models_t, model_aliases
        q = (sa.select(v).join(m, m.c.id == v.c.model_id)
             .where(m.c.name == uri.name, m.c.deleted_at.is_(None)))
        if uri.alias is not None:
            return q.join(a, sa.and_(a.c.model_id == m.c.id, a.c.alias == uri.alias,
                                     a.c.version == v.c.version))
        if uri.version is not None:
            return q.where(v.c.version == uri.version)
        return q.where(v.c.deleted_at.is_(None)).order_by(v.c.version.desc()).limit(1)

    def _resolve_stepwise(self, conn: Connection, uri: ModelURI) -> ModelVersion:
        model = self._model_row(conn, uri.name)
        version = uri.version
        if uri.alias is not None:
            version = conn.execute(
                sa.select(model_aliases.c.version).where(
                    model_aliases.c.model_id == model["id"],
                    model_aliases.c.alias == uri.alias,
                )
            ).scalar()
            if version is None:
                raise AliasNotFoundError(f"model {uri.name!r} has no alias {uri.alias!r}")
        elif version is None:
            version = conn.execute(
                sa.select(sa.func.max(model_versions.c.version)).where(
                    model_versions.c.model_id == model["id"],
                    model_versions.c.deleted_at.is_(None),
                )
            ).scalar()
            if version is None:
                raise VersionNotFoundError(f"model {uri.name!r} has no live versions")
        row = self._version_row(conn, model["id"], uri.name, version)
        return self._to_version(row, uri.name, self._aliases_of(conn, model["id"], version))

    def digest_in_use(self, digest: str) -> bool:
        """Whether any model version (live or deleted) or dataset version references
        this artifact digest."""
        with self._read() as conn:
            return any(
                conn.execute(sa.select(t.c.id).where(t.c.artifact_digest == digest).limit(1)
                             ).first() is not None
                for t in (model_versions, dataset_versions)
            )

    # -- aliases ------------------------------------------------------------------------

    def set_alias(
        self, name: str, alias: str, version: int, actor: str, reason: str = ""
    ) -> AliasEvent:
        """Point ``alias`` at ``version``, recording who moved it, from where, and why."""
        with self._write() as conn:
            return self.set_alias_in(conn, name, alias, version, actor, reason)

    def set_alias_in(
        self, conn: Connection, name: str, alias: str, version: int, actor: str, reason: str = ""
    ) -> AliasEvent:
        """``set_alias`` inside the caller's write transaction (a deployment's promotion
        moves its alias in the same transaction as its desired state)."""
        validate_alias(alias)
        model = self._model_row(conn, name, lock=True)
        self._version_row(conn, model["id"], name, version)
        return alias_rows.point(conn, model["id"], name, alias, version, actor, reason)

    def delete_alias(self, name: str, alias: str, actor: str, reason: str = "") -> AliasEvent:
        """Remove ``alias``; the removal is kept in the alias history."""
        validate_alias(alias)
        with self._write() as conn:
            model = self._model_row(conn, name, lock=True)
            event = alias_rows.remove(conn, model["id"], name, alias, actor, reason, utcnow())
            if event is None:
                raise AliasNotFoundError(f"model {name!r} has no alias {alias!r}")
            return event

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasEvent]:
        """Every move of ``alias`` (or of all aliases of ``name``), oldest first."""
        if alias is not None:
            validate_alias(alias)
        with self._read() as conn:
            model = self._model_row(conn, name, deleted_ok=True)
            return alias_rows.events(conn, model["id"], name, alias)

    # -- soft delete --------------------------------------------------------------------

    def delete_version(self, name: str, version: int, actor: str, reason: str = "") -> None:
        """Soft-delete a version; aliases pointing at it are removed (and recorded)."""
        with self._write() as conn:
            model = self._model_row(conn, name, lock=True)
            self._version_row(conn, model["id"], name, version)
            now = utcnow()
            alias_rows.drop(conn, model["id"], name, actor, reason or "version deleted", now,
                            version=version)
            conn.execute(
                sa.update(model_versions)
                .where(model_versions.c.model_id == model["id"],
                       model_versions.c.version == version)
                .values(deleted_at=now)
            )
            audit.append(conn, actor=actor, action=audit.VERSION_DELETE,
                         target=f"{name}/{version}", model=name, before={"deleted": False},
                         after={"deleted": True}, reason=reason)

    def delete_model(self, name: str, actor: str, reason: str = "") -> None:
        """Soft-delete a model and all its versions; its aliases are removed (and recorded)."""
        with self._write() as conn:
            model = self._model_row(conn, name, lock=True)
            now = utcnow()
            alias_rows.drop(conn, model["id"], name, actor, reason or "model deleted", now)
            live = list(conn.execute(
                sa.select(model_versions.c.version)
                .where(model_versions.c.model_id == model["id"],
                       model_versions.c.deleted_at.is_(None))
                .order_by(model_versions.c.version)).scalars())
            audit.append(conn, actor=actor, action=audit.MODEL_DELETE, target=name, model=name,
                         before={"deleted": False, "live_versions": live},
                         after={"deleted": True}, reason=reason)
            conn.execute(
                sa.update(model_versions)
                .where(model_versions.c.model_id == model["id"],
                       model_versions.c.deleted_at.is_(None))
                .values(deleted_at=now)
            )
            conn.execute(
                sa.update(models_t).where(models_t.c.id == model["id"])
                .values(deleted_at=now, updated_at=now)
            )


def _dialect_insert(dialect: str) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    return postgresql.insert if dialect == "postgresql" else sqlite.insert


__all__ = ["NewVersion", "RegistryStore", "Signer", "SqlRegistryStore"]
