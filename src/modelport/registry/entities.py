"""What the registry hands out: frozen dataclasses, never database rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

# The key of a version's ``environment`` that holds its signature record. Set when the
# version is registered or by ``registry.signatures.set_signing`` (the one change a
# version allows); nothing else writes ``environment`` after registration.
SIGNING_FIELD = "signing"


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

    @property
    def signing(self) -> dict[str, Any] | None:
        """The version's signature record (``environment["signing"]``: key id, base64
        Ed25519 signature, who signed when), or None if it is unsigned."""
        record = self.environment.get(SIGNING_FIELD)
        return record if isinstance(record, dict) else None

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


# -- delivery ---------------------------------------------------------------------------


class Mode(StrEnum):
    """How a deployment's candidate takes part in traffic."""

    SHADOW = "shadow"  # gets a copy of each request; its answer is compared, never returned
    CANARY = "canary"  # answers ``weight`` percent of requests
    BLUEGREEN = "bluegreen"  # warm beside stable; ``weight`` is 0 or 100 (instant switch)


class RolloutStatus(StrEnum):
    """Where a rollout is. ``RUNNING`` and ``PAUSED`` are active; the rest are final."""

    RUNNING = "running"
    PAUSED = "paused"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        """Whether the rollout still holds its deployment."""
        return self in (RolloutStatus.RUNNING, RolloutStatus.PAUSED)


def _dump(obj: Any, *times: str) -> dict[str, Any]:
    d = asdict(obj)
    for key in times:
        d[key] = _iso(getattr(obj, key))
    return d


@dataclass(frozen=True)
class Deployment:
    """The desired state of one endpoint: what every server serving it must converge to.

    ``stable`` answers all traffic unless a ``candidate`` with a ``mode`` takes part:
    a copy of each request (shadow) or ``weight`` percent of them (canary, blue-green).
    ``sticky`` names a request header whose value pins a client to one side.
    ``alias``, when set, is moved to ``stable`` on promotion and rollback.
    """

    name: str
    model_name: str
    stable: int | None
    candidate: int | None
    mode: Mode | None
    weight: float
    sticky: str | None
    previous: int | None
    alias: str | None
    generation: int
    created_at: datetime
    updated_at: datetime
    updated_by: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings)."""
        return _dump(self, "created_at", "updated_at")

    def state(self) -> dict[str, Any]:
        """The traffic-relevant fields, as recorded in each event."""
        return {"stable": self.stable, "candidate": self.candidate,
                "mode": self.mode.value if self.mode else None, "weight": self.weight,
                "sticky": self.sticky, "previous": self.previous,
                "generation": self.generation}


@dataclass(frozen=True)
class DeploymentEvent:
    """One move of a deployment: who, when, what (``kind`` + resulting state), why, and
    the metrics that decided it."""

    id: int
    deployment: str
    kind: str
    rollout_id: int | None
    actor: str
    reason: str
    state: dict[str, Any]
    metrics: dict[str, Any]
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings)."""
        return _dump(self, "at")


@dataclass(frozen=True)
class Rollout:
    """A candidate's way from zero traffic to stable, one step at a time.

    ``steps`` are candidate traffic percentages ending at 100 (shadow: ``[0]``); a step
    is held ``step_seconds`` and/or until ``step_requests`` candidate requests.
    ``baseline`` is the aggregated traffic counters at the step's start, so a controller
    that restarts judges the same window. ``analysis`` holds the thresholds.
    """

    id: int
    deployment: str
    model_name: str
    candidate: int
    stable: int | None
    strategy: str
    steps: list[float]
    step_seconds: float | None
    step_requests: int | None
    step_index: int
    step_started_at: datetime | None
    baseline: dict[str, Any]
    analysis: dict[str, Any]
    status: RolloutStatus
    reason: str
    require_gate: bool
    created_at: datetime
    updated_at: datetime
    created_by: str

    @property
    def weight(self) -> float:
        """The candidate's traffic share at the current step."""
        return float(self.steps[min(self.step_index, len(self.steps) - 1)])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings)."""
        return _dump(self, "step_started_at", "created_at", "updated_at")


@dataclass(frozen=True)
class GateResult:
    """The outcome of a quality gate on one version; ``report`` holds every check."""

    id: int
    model_name: str
    version: int
    passed: bool
    against: int | None
    report: dict[str, Any]
    created_at: datetime
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings)."""
        return _dump(self, "created_at")


@dataclass(frozen=True)
class PipelineRun:
    """One run of a ``modelport.yaml`` pipeline; ``steps`` lists each step's outcome
    (``name``, ``kind``, ``status``, ``seconds``, ``message``)."""

    id: str
    pipeline: str
    status: str
    git_commit: str | None
    steps: list[dict[str, Any]]
    started_at: datetime
    finished_at: datetime | None
    actor: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings)."""
        return _dump(self, "started_at", "finished_at")


@dataclass(frozen=True)
class TrafficReport:
    """One server's cumulative counters for one version of one deployment."""

    server_id: str
    deployment: str
    version: int
    stats: dict[str, Any]
    updated_at: datetime


@dataclass(frozen=True)
class AuditRecord:
    """One mutation as the audit log holds it: who did what to which target, when, why,
    the state before and after, and the hash that chains it to the record before."""

    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    model: str | None
    before: Any
    after: Any
    reason: str
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings)."""
        return _dump(self, "at")


# -- datasets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable, content-addressed version of a dataset.

    ``artifact_digest`` is the bundle (the data file as stored, its profile, a manifest);
    ``data_digest`` is the sha256 of the data file itself and ``fingerprint`` the sha256
    over its column names, dtypes and values. ``schema`` lists ``{"name", "dtype"}`` per
    column; ``profile`` is the per-feature profile drift uses, without its raw samples.
    """

    name: str
    version: int
    artifact_digest: str
    artifact_size: int
    data_digest: str
    fingerprint: str
    format: str  # how the data file is stored: csv | parquet
    rows: int
    schema: list[dict[str, str]]
    profile: dict[str, Any]
    source: str  # the registered file's name, or "dataframe"
    description: str
    created_at: datetime
    created_by: str

    @property
    def uri(self) -> str:
        """The canonical URI, ``datasets:/NAME/VERSION``."""
        return f"datasets:/{self.name}/{self.version}"

    @property
    def columns(self) -> list[str]:
        """Column names in order."""
        return [c["name"] for c in self.schema]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings)."""
        return {**_dump(self, "created_at"), "uri": self.uri}


@dataclass(frozen=True)
class Dataset:
    """A named dataset: the container of its versions."""

    name: str
    latest_version: int | None
    version_count: int
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings)."""
        return _dump(self, "created_at", "updated_at")


@dataclass(frozen=True)
class DatasetLink:
    """A model version trained (``training``) or evaluated (``eval``) on a dataset
    version."""

    model: str
    model_version: int
    role: str
    dataset: str
    dataset_version: int
    created_at: datetime

    @property
    def model_uri(self) -> str:
        """``models:/NAME/VERSION`` of the model side."""
        return f"models:/{self.model}/{self.model_version}"

    @property
    def dataset_uri(self) -> str:
        """``datasets:/NAME/VERSION`` of the dataset side."""
        return f"datasets:/{self.dataset}/{self.dataset_version}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with both URIs)."""
        return {**_dump(self, "created_at"), "model_uri": self.model_uri,
                "dataset_uri": self.dataset_uri}
