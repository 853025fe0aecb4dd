"""What the registry hands out: frozen dataclasses, never database rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class ModelVersion:
    """One immutable, content-addressed version of a registered model."""

    name: str
    version: int
    flavor: str
    artifact_digest: str
    artifact_size: int
    signature: dict[str, Any] | None
    metrics: dict[str, float]
    params: dict[str, Any]
    tags: dict[str, str]
    training_data: dict[str, Any] | None
    environment: dict[str, Any]
    description: str
    created_at: datetime
    created_by: str
    deleted_at: datetime | None = None
    aliases: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        """The canonical URI, ``models:/NAME/VERSION``."""
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings)."""
        d = asdict(self)
        d["created_at"] = _iso(self.created_at)
        d["deleted_at"] = _iso(self.deleted_at)
        d["aliases"] = list(self.aliases)
        d["uri"] = self.uri
        return d


@dataclass(frozen=True)
class RegisteredModel:
    """A named model: the container of its versions and aliases."""

    name: str
    description: str
    tags: dict[str, str]
    created_at: datetime
    updated_at: datetime
    latest_version: int | None
    version_count: int
    aliases: dict[str, int] = field(default_factory=dict)
    deleted_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings)."""
        d = asdict(self)
        for key in ("created_at", "updated_at", "deleted_at"):
            d[key] = _iso(getattr(self, key))
        return d


@dataclass(frozen=True)
class AliasEvent:
    """One move of an alias: set (from None), moved, or removed (to None)."""

    id: int
    name: str
    alias: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings)."""
        d = asdict(self)
        d["at"] = _iso(self.at)
        return d
