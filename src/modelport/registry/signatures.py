"""A version's signature record: the one thing about a version that may change later.

The registry keeps the record opaque (``client`` and ``artifacts.signing`` make and
check it) under ``environment["signing"]``, which nothing else writes after
registration, so no migration is needed. Only the record lives here, never a key.
Adding or replacing one appends a ``version.sign`` audit record in the same
transaction.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from modelport.errors import ConflictError, InvalidInputError
from modelport.registry import audit
from modelport.registry.entities import SIGNING_FIELD, ModelVersion
from modelport.registry.schema import model_versions
from modelport.registry.store import SqlRegistryStore


def set_signing(store: SqlRegistryStore, name: str, version: int, record: dict[str, Any],
                actor: str, *, replace: bool = False) -> ModelVersion:
    """Store ``record`` as the signature of ``name``/``version`` and return the version.

    The same record again changes nothing. A version signed by another key keeps its
    signature (ConflictError) unless ``replace`` is set.
    """
    key_id = record.get("key_id")
    if not isinstance(key_id, str) or not key_id or not isinstance(record.get("signature"),
                                                                    str):
        raise InvalidInputError("a signature record needs a key_id and a signature")
    with store.writing() as conn:
        model = store._model_row(conn, name, lock=True)
        row = store._version_row(conn, model["id"], name, version)
        environment = dict(row["environment"] or {})
        current = environment.get(SIGNING_FIELD)
        current = current if isinstance(current, dict) else None
        if current is not None:
            if (current.get("key_id"), current.get("signature")) == (key_id,
                                                                     record["signature"]):
                return store._to_version(row, name)  # Ed25519 is deterministic: a re-run
            if not replace:
                raise ConflictError(
                    f"models:/{name}/{version} is already signed by key {current.get('key_id')};"
                    " pass --replace (replace=True) to replace its signature")
        environment[SIGNING_FIELD] = record
        conn.execute(sa.update(model_versions).where(model_versions.c.id == row["id"])
                     .values(environment=environment))
        audit.append(conn, actor=actor, action=audit.VERSION_SIGN, target=f"{name}/{version}",
                     model=name,
                     before=None if current is None else {"key_id": current.get("key_id")},
                     after={"key_id": key_id, "artifact_digest": row["artifact_digest"]})
    return store.get_version(name, version)


__all__ = ["set_signing"]
