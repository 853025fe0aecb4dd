"""Datasets: named, numbered, content-addressed versions of tabular data, and the links
saying which model versions were trained or evaluated on which dataset versions.

The registry stores what the caller computed (schema, rows, the profile as JSON, the
digests of the bundle it wrote) and guards the keys; it never reads a data file nor
builds a profile (``modelport.datasets`` does, in the client layer), so nothing here
imports monitoring. Registering is idempotent per name and content: ``(dataset,
fingerprint)`` is unique, and the same content again answers the version that holds it.
Version numbers come from a per-dataset counter bumped in the registering transaction,
as for models; each registration appends its audit record (``dataset.register``) there.

The ``*_in`` functions run inside a caller's write transaction: a model version and
the dataset versions registered with it (``log_model(training_data=frame)``) commit
together or not at all.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from modelport.errors import InvalidInputError, NotFoundError
from modelport.registry import audit
from modelport.registry.entities import Dataset, DatasetLink, DatasetVersion
from modelport.registry.schema import dataset_versions as versions_t
from modelport.registry.schema import datasets as datasets_t
from modelport.registry.schema import model_datasets as links_t
from modelport.registry.schema import model_versions
from modelport.registry.schema import registered_models as models_t
from modelport.registry.times import as_utc, utcnow
from modelport.uri import DatasetURI, parse_dataset_uri, validate_name

if TYPE_CHECKING:
    from modelport.registry.store import SqlRegistryStore

TRAINING, EVAL = "training", "eval"
ROLES = (TRAINING, EVAL)
DATASET_REGISTER = audit.DATASET_REGISTER


@dataclass(frozen=True)
class NewDatasetVersion:
    """Everything a caller supplies to register a dataset version (the store numbers it)."""

    name: str
    artifact_digest: str
    artifact_size: int
    data_digest: str
    fingerprint: str
    format: str
    rows: int
    schema: list[dict[str, str]]
    profile: dict[str, Any]
    source: str = ""
    description: str = ""


@dataclass(frozen=True)
class DatasetRef:
    """A dataset version a new model version is linked to, as ``role``: an existing one
    (``uri``) or one to register in the same transaction (``new``)."""

    role: str
    uri: DatasetURI | None = None
    new: NewDatasetVersion | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InvalidInputError(f"dataset role must be one of {', '.join(ROLES)}, "
                                    f"got {self.role!r}")
        if (self.uri is None) == (self.new is None):
            raise InvalidInputError("a dataset link needs exactly one of uri and new")


@dataclass(frozen=True)
class Registration:
    """The outcome of registering: the version holding the content, whether this call
    created it, and the newest version before it (what a schema change is measured
    against; None for a new dataset)."""

    version: DatasetVersion
    created: bool
    previous: DatasetVersion | None


def _version(r: RowMapping, name: str) -> DatasetVersion:
    return DatasetVersion(
        name=name, version=r["version"], artifact_digest=r["artifact_digest"],
        artifact_size=r["artifact_size"], data_digest=r["data_digest"],
        fingerprint=r["fingerprint"], format=r["format"], rows=r["rows"],
        schema=list(r["schema"] or []), profile=dict(r["profile"] or {}),
        source=r["source"], description=r["description"],
        created_at=as_utc(r["created_at"]),  # type: ignore[arg-type]
        created_by=r["created_by"],
    )


def _dataset_row(conn: Connection, name: str, *, lock: bool = False) -> RowMapping:
    validate_name(name, "dataset name")
    q = sa.select(datasets_t).where(datasets_t.c.name == name)
    row = conn.execute(q.with_for_update() if lock else q).mappings().first()
    if row is None:
        raise NotFoundError(f"no dataset named {name!r}", name=name)
    return row


def _ensure_dataset(conn: Connection, name: str, now: datetime) -> RowMapping:
    """The dataset's row, created if missing (race-free), locked for this transaction."""
    validate_name(name, "dataset name")
    values = {"name": name, "next_version": 1, "created_at": now, "updated_at": now}
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        from sqlalchemy.dialects import postgresql, sqlite

        insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
        conn.execute(insert(datasets_t).values(**values).on_conflict_do_nothing())
    elif conn.execute(sa.select(datasets_t.c.id).where(datasets_t.c.name == name)).first() \
            is None:
        conn.execute(sa.insert(datasets_t).values(**values))
    return _dataset_row(conn, name, lock=True)


def _newest(conn: Connection, dataset_id: int, name: str) -> DatasetVersion | None:
    row = conn.execute(sa.select(versions_t).where(versions_t.c.dataset_id == dataset_id)
                       .order_by(versions_t.c.version.desc()).limit(1)).mappings().first()
    return None if row is None else _version(row, name)


def register_in(conn: Connection, new: NewDatasetVersion, actor: str) -> Registration:
    """Register ``new`` in the caller's write transaction (idempotent by fingerprint)."""
    now = utcnow()
    dataset = _ensure_dataset(conn, new.name, now)
    same = conn.execute(sa.select(versions_t).where(
        versions_t.c.dataset_id == dataset["id"],
        versions_t.c.fingerprint == new.fingerprint)).mappings().first()
    previous = _newest(conn, dataset["id"], new.name)
    if same is not None:
        return Registration(_version(same, new.name), False, previous)
    number = conn.execute(
        sa.update(datasets_t).where(datasets_t.c.id == dataset["id"])
        .values(next_version=datasets_t.c.next_version + 1, updated_at=now)
        .returning(datasets_t.c.next_version)).scalar_one() - 1
    values = {k: v for k, v in new.__dict__.items() if k != "name"}
    conn.execute(sa.insert(versions_t).values(
        dataset_id=dataset["id"], version=number, created_at=now, created_by=actor, **values))
    version = DatasetVersion(name=new.name, version=number, created_at=now, created_by=actor,
                             **values)
    audit.append(conn, actor=actor, action=DATASET_REGISTER,
                 target=f"dataset:{new.name}/{number}", after={
                     "artifact_digest": new.artifact_digest, "data_digest": new.data_digest,
                     "fingerprint": new.fingerprint, "format": new.format, "rows": new.rows,
                     "columns": version.columns, "source": new.source,
                     "description": new.description})
    return Registration(version, True, previous)


def _resolve_row(conn: Connection, uri: DatasetURI) -> RowMapping:
    dataset = _dataset_row(conn, uri.name)
    q = sa.select(versions_t).where(versions_t.c.dataset_id == dataset["id"])
    if uri.version is not None:
        q = q.where(versions_t.c.version == uri.version)
    row = conn.execute(q.order_by(versions_t.c.version.desc()).limit(1)).mappings().first()
    if row is None:
        raise NotFoundError(f"dataset {uri.name!r} has no version {uri.version}"
                            if uri.version is not None
                            else f"dataset {uri.name!r} has no versions")
    return row


def attach_in(conn: Connection, refs: Sequence[DatasetRef], actor: str
              ) -> list[tuple[str, int, DatasetVersion]]:
    """Resolve or register every ref in the caller's transaction: ``(role, row id,
    version)`` for :func:`link_in` once the model version's row exists."""
    out = []
    for ref in refs:
        if ref.new is not None:
            version = register_in(conn, ref.new, actor).version
            uri = DatasetURI(version.name, version.version)
        else:
            assert ref.uri is not None
            uri = ref.uri
        row = _resolve_row(conn, uri)
        out.append((ref.role, int(row["id"]), _version(row, uri.name)))
    return out


def link_in(conn: Connection, model_version_id: int,
            attached: Iterable[tuple[str, int, DatasetVersion]]) -> None:
    """Link a model version's row to the dataset versions :func:`attach_in` returned."""
    now = utcnow()
    seen = set()
    for role, dataset_version_id, _ in attached:
        if (role, dataset_version_id) in seen:
            continue
        seen.add((role, dataset_version_id))
        conn.execute(sa.insert(links_t).values(
            model_version_id=model_version_id, dataset_version_id=dataset_version_id,
            role=role, created_at=now))


_LINK_COLUMNS = (models_t.c.name.label("model"), model_versions.c.version.label("model_version"),
                 links_t.c.role, datasets_t.c.name.label("dataset"),
                 versions_t.c.version.label("dataset_version"), links_t.c.created_at)


def _links_query() -> sa.Select[Any]:
    return (sa.select(*_LINK_COLUMNS)
            .select_from(links_t)
            .join(model_versions, model_versions.c.id == links_t.c.model_version_id)
            .join(models_t, models_t.c.id == model_versions.c.model_id)
            .join(versions_t, versions_t.c.id == links_t.c.dataset_version_id)
            .join(datasets_t, datasets_t.c.id == versions_t.c.dataset_id)
            .where(model_versions.c.deleted_at.is_(None)))


def _link(r: RowMapping) -> DatasetLink:
    return DatasetLink(model=r["model"], model_version=r["model_version"], role=r["role"],
                       dataset=r["dataset"], dataset_version=r["dataset_version"],
                       created_at=as_utc(r["created_at"]))  # type: ignore[arg-type]


class DatasetStore:
    """Dataset versions and their links to model versions, in the registry's database."""

    def __init__(self, store: SqlRegistryStore) -> None:
        self.store = store

    def register(self, new: NewDatasetVersion, actor: str) -> Registration:
        """Register ``new`` as the next version of its dataset, unless a version of that
        name already holds the same content (then that one, ``created=False``)."""
        try:
            with self.store.writing() as conn:
                return register_in(conn, new, actor)
        except sa.exc.IntegrityError:
            # A concurrent registration of the same content won the unique key.
            found = self.by_fingerprint(new.name, new.fingerprint)
            if found is None:
                raise
            return Registration(found, False, None)

    def by_fingerprint(self, name: str, fingerprint: str) -> DatasetVersion | None:
        """The version of ``name`` holding content with this fingerprint, if any."""
        return self._find(name, versions_t.c.fingerprint == fingerprint)

    def by_data_digest(self, name: str, data_digest: str) -> DatasetVersion | None:
        """The version of ``name`` whose stored file has this sha256, if any (lets a
        re-registered file be recognised before it is read)."""
        return self._find(name, versions_t.c.data_digest == data_digest)

    def _find(self, name: str, where: sa.ColumnElement[bool]) -> DatasetVersion | None:
        validate_name(name, "dataset name")
        q = (sa.select(versions_t).join(datasets_t, datasets_t.c.id == versions_t.c.dataset_id)
             .where(datasets_t.c.name == name, where)
             .order_by(versions_t.c.version).limit(1))
        with self.store.reading() as conn:
            row = conn.execute(q).mappings().first()
        return None if row is None else _version(row, name)

    def get(self, uri: str | DatasetURI) -> DatasetVersion:
        """The version a URI points to (``datasets:/NAME/VERSION``, ``NAME`` = newest)."""
        parsed = uri if isinstance(uri, DatasetURI) else parse_dataset_uri(uri)
        with self.store.reading() as conn:
            return _version(_resolve_row(conn, parsed), parsed.name)

    def list(self) -> builtins.list[Dataset]:
        """Every dataset, by name, with its newest version number and version count."""
        stats = (sa.select(versions_t.c.dataset_id, sa.func.max(versions_t.c.version)
                           .label("latest"), sa.func.count().label("n"))
                 .group_by(versions_t.c.dataset_id).subquery())
        q = (sa.select(datasets_t, stats.c.latest, stats.c.n)
             .outerjoin(stats, stats.c.dataset_id == datasets_t.c.id)
             .order_by(datasets_t.c.name))
        with self.store.reading() as conn:
            return [Dataset(name=r["name"], latest_version=r["latest"],
                            version_count=int(r["n"] or 0),
                            created_at=as_utc(r["created_at"]),  # type: ignore[arg-type]
                            updated_at=as_utc(r["updated_at"]))  # type: ignore[arg-type]
                    for r in conn.execute(q).mappings()]

    def versions(self, name: str) -> builtins.list[DatasetVersion]:
        """Every version of ``name``, newest first."""
        with self.store.reading() as conn:
            dataset = _dataset_row(conn, name)
            rows = conn.execute(sa.select(versions_t)
                                .where(versions_t.c.dataset_id == dataset["id"])
                                .order_by(versions_t.c.version.desc())).mappings()
            return [_version(r, name) for r in rows]

    def links_of_model(self, name: str, version: int) -> builtins.list[DatasetLink]:
        """The dataset versions one model version was trained or evaluated on."""
        validate_name(name)
        q = _links_query().where(models_t.c.name == name, model_versions.c.version == version)
        with self.store.reading() as conn:
            return [_link(r) for r in conn.execute(q.order_by(links_t.c.id)).mappings()]

    def links_of_dataset(self, name: str, version: int | None = None,
                         role: str | None = None) -> builtins.list[DatasetLink]:
        """The live model versions linked to a dataset (or one of its versions), oldest
        link first; ``role`` keeps only ``training`` or ``eval`` links."""
        validate_name(name, "dataset name")
        q = _links_query().where(datasets_t.c.name == name)
        if version is not None:
            q = q.where(versions_t.c.version == version)
        if role is not None:
            q = q.where(links_t.c.role == role)
        with self.store.reading() as conn:
            _dataset_row(conn, name)
            return [_link(r) for r in conn.execute(q.order_by(links_t.c.id)).mappings()]

    def digest_in_use(self, digest: str) -> bool:
        """Whether any dataset version references this bundle digest."""
        with self.store.reading() as conn:
            return conn.execute(sa.select(versions_t.c.id).where(
                versions_t.c.artifact_digest == digest).limit(1)).first() is not None


__all__ = ["EVAL", "ROLES", "TRAINING", "DatasetRef", "DatasetStore", "NewDatasetVersion",
           "Registration", "attach_in", "link_in", "register_in"]
