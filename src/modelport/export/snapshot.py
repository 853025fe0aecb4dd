"""A self-contained registry holding one version: SQLite plus its blobs, for an image.

Blobs are copied byte for byte (content-addressed: the digests cannot differ) and the
version is registered through the public ``Registry`` with the source's metadata, so
loading it in the image checks the same digests as loading it here. The version keeps
its number: the numbers before it are registered as placeholders and deleted at once,
so ``iris/3`` is ``iris/3`` in the image too (metrics, logs and the audit log of the
source registry keep meaning the same thing), and a signature over (name, number,
digest) still verifies there. With ``MODELPORT_ENCRYPTION_KEY`` set, the copied blobs
are encrypted with that key, as the source's are: the image then needs the key.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import replace
from pathlib import Path

from modelport.artifacts.bundle import Bundle
from modelport.client import Registry
from modelport.config import Settings
from modelport.errors import ArtifactIntegrityError
from modelport.registry.entities import SIGNING_FIELD, ModelVersion
from modelport.registry.store import NewVersion

PLACEHOLDER_REASON = "placeholder: only {uri} is part of this export; numbers kept equal"


def snapshot(source: Registry, version: ModelVersion, home: Path, *, alias: str | None,
             trusted_types: tuple[str, ...] = ()) -> Registry:
    """Create a registry under ``home`` holding ``version`` (and ``alias`` on it).

    Returns the new registry, still open; the caller verifies and closes it.
    """
    home.mkdir(parents=True, exist_ok=True)
    if trusted_types:
        # The operator's extra skops types travel with the model: the image's server
        # must trust what this registry's operator trusted, no more.
        items = ", ".join(f'"{t}"' for t in trusted_types)
        (home / "config.toml").write_text(f"trusted_types = [{items}]\n")
    settings = Settings.load(home, database_url=f"sqlite:///{home / 'registry.db'}",
                             artifacts=str(home / "artifacts"), trusted_types=trusted_types)
    dest = Registry(settings=settings)
    try:
        _copy_blobs(source, dest, version.artifact_digest)
        new = NewVersion(
            flavor=version.flavor, artifact_digest=version.artifact_digest,
            artifact_size=version.artifact_size, created_by=version.created_by,
            signature=version.signature, metrics=version.metrics, params=version.params,
            tags=version.tags, training_data=version.training_data,
            environment=version.environment, description=version.description)
        # A placeholder must not carry the version's signature record (it signs the
        # version's own number); deleted at once, it is never served anyway.
        filler = replace(new, environment={k: v for k, v in new.environment.items()
                                           if k != SIGNING_FIELD})
        for number in range(1, version.version):
            dest.store.create_version(version.name, filler)
            dest.store.delete_version(version.name, number, settings.user,
                                      PLACEHOLDER_REASON.format(uri=version.uri))
        made = dest.store.create_version(version.name, new)
        if made.version != version.version:  # a fresh database: cannot happen unless edited
            raise ArtifactIntegrityError(
                f"the exported registry numbered {version.uri} as {made.version}")
        if alias:
            dest.set_alias(version.name, alias, version.version,
                           reason=f"exported with {version.uri}")
    except BaseException:
        dest.close()
        raise
    return dest


def _copy_blobs(source: Registry, dest: Registry, digest: str) -> None:
    bundle = Bundle(source.artifacts, digest)  # reads and checks the manifest
    wanted = [digest, *(entry["digest"] for entry in bundle.manifest["files"].values())]
    for blob in wanted:
        stored = dest.artifacts.put(source.artifacts.get(blob))  # get() re-hashes
        if stored != blob:
            raise ArtifactIntegrityError(f"blob {blob} was stored as {stored}")


def compact(home: Path) -> None:
    """Fold SQLite's write-ahead log into ``registry.db``, so one file holds everything
    (an image layer must not carry a -wal file the database depends on), and drop the
    artifact store's empty temp folder."""
    db = home / "registry.db"
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # absent, or not empty: leave it
        (home / "artifacts" / "tmp").rmdir()
