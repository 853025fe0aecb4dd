"""The registry's tables, as SQLAlchemy Core metadata shared by the store and Alembic.

The database guards the invariants itself: one row per ``(model, version)`` and per
``(model, alias)``, so a bug or a race in code can never create duplicates.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

class JSONType(sa.types.TypeDecorator[Any]):
    """JSON, stored as JSONB on PostgreSQL.

    A decorator rather than ``with_variant(JSONB())`` so the PostgreSQL dialect is only
    imported when a PostgreSQL database is used: it costs ~70 ms of every CLI start.
    """

    impl = sa.JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(sa.JSON())
UTCDateTime = sa.DateTime(timezone=True)

registered_models = sa.Table(
    "registered_models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("tags", JSONType(), nullable=False, default=dict),
    # Next version number to hand out; bumped inside the registering transaction so
    # numbers are gapless and never reused, even after deletes.
    sa.Column("next_version", sa.Integer, nullable=False, default=1),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("deleted_at", UTCDateTime, nullable=True),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "model_id", sa.Integer, sa.ForeignKey("registered_models.id"), nullable=False
    ),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("flavor", sa.String(32), nullable=False),
    sa.Column("artifact_digest", sa.String(71), nullable=False, index=True),
    sa.Column("artifact_size", sa.BigInteger, nullable=False),
    sa.Column("signature", JSONType(), nullable=True),
    sa.Column("metrics", JSONType(), nullable=False, default=dict),
    sa.Column("params", JSONType(), nullable=False, default=dict),
    sa.Column("tags", JSONType(), nullable=False, default=dict),
    sa.Column("training_data", JSONType(), nullable=True),
    sa.Column("environment", JSONType(), nullable=False, default=dict),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("deleted_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "model_id", sa.Integer, sa.ForeignKey("registered_models.id"), nullable=False
    ),
    sa.Column("alias", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("updated_by", sa.String(128), nullable=False),
    sa.UniqueConstraint("model_id", "alias", name="uq_model_aliases_model_alias"),
)

alias_events = sa.Table(
    "alias_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "model_id", sa.Integer, sa.ForeignKey("registered_models.id"), nullable=False
    ),
    sa.Column("alias", sa.String(128), nullable=False),
    sa.Column("from_version", sa.Integer, nullable=True),
    sa.Column("to_version", sa.Integer, nullable=True),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_alias_events_model_alias", "model_id", "alias", "id"),
)

# -- datasets: content-addressed versions of tabular data, and what models used them -----
# A dataset version's bytes live in the artifact store as a bundle (the data file as
# registered plus its profile); the row keeps what list/show/diff/lineage read without
# touching the store. ``(dataset, fingerprint)`` is unique: the same content registered
# twice under one name is one version, guarded by the database even under races.

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    # Next version number to hand out, bumped in the registering transaction (as models).
    sa.Column("next_version", sa.Integer, nullable=False, default=1),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

dataset_versions = sa.Table(
    "dataset_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("artifact_digest", sa.String(71), nullable=False, index=True),
    sa.Column("artifact_size", sa.BigInteger, nullable=False),
    # sha256 of the data file exactly as stored (``sha256sum FILE`` for a registered file).
    sa.Column("data_digest", sa.String(71), nullable=False),
    # sha256 over column names, dtypes and values (``datafiles.fingerprint``).
    sa.Column("fingerprint", sa.String(71), nullable=False),
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("schema", JSONType(), nullable=False),
    sa.Column("profile", JSONType(), nullable=False),
    sa.Column("source", sa.String(255), nullable=False, default=""),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_dataset_version"),
    sa.UniqueConstraint("dataset_id", "fingerprint",
                        name="uq_dataset_versions_dataset_fingerprint"),
    sa.Index("ix_dataset_versions_data_digest", "dataset_id", "data_digest"),
)

# Which dataset versions a model version was trained (``training``) or evaluated
# (``eval``) on; written in the model version's registering transaction.
model_datasets = sa.Table(
    "model_datasets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"),
              nullable=False),
    sa.Column("dataset_version_id", sa.Integer, sa.ForeignKey("dataset_versions.id"),
              nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("model_version_id", "role", "dataset_version_id",
                        name="uq_model_datasets_model_version_role_dataset"),
    sa.Index("ix_model_datasets_dataset_version", "dataset_version_id"),
)

# -- delivery: desired state, rollouts, gates, pipelines, traffic, leases ---------------
# Rollout and serving write these; the registry only stores and guards them.

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("model_name", sa.String(128), nullable=False),
    sa.Column("stable", sa.Integer, nullable=True),
    sa.Column("candidate", sa.Integer, nullable=True),
    sa.Column("mode", sa.String(16), nullable=True),
    sa.Column("weight", sa.Float, nullable=False, default=0.0),
    sa.Column("sticky", sa.String(128), nullable=True),
    sa.Column("previous", sa.Integer, nullable=True),
    sa.Column("alias", sa.String(128), nullable=True),
    # Bumped on every change: a server compares one integer to know it is up to date.
    sa.Column("generation", sa.Integer, nullable=False, default=1),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("updated_by", sa.String(128), nullable=False),
)

deployment_events = sa.Table(
    "deployment_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("deployment", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("rollout_id", sa.Integer, nullable=True),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("state", JSONType(), nullable=False, default=dict),
    sa.Column("metrics", JSONType(), nullable=False, default=dict),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_deployment_events_deployment", "deployment", "id"),
)

rollouts = sa.Table(
    "rollouts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("deployment", sa.String(128), nullable=False),
    sa.Column("model_name", sa.String(128), nullable=False),
    sa.Column("candidate", sa.Integer, nullable=False),
    sa.Column("stable", sa.Integer, nullable=True),
    sa.Column("strategy", sa.String(16), nullable=False),
    sa.Column("steps", JSONType(), nullable=False),
    sa.Column("step_seconds", sa.Float, nullable=True),
    sa.Column("step_requests", sa.Integer, nullable=True),
    sa.Column("step_index", sa.Integer, nullable=False, default=0),
    sa.Column("step_started_at", UTCDateTime, nullable=True),
    sa.Column("baseline", JSONType(), nullable=False, default=dict),
    sa.Column("analysis", JSONType(), nullable=False, default=dict),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("require_gate", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    # At most one active rollout per deployment, guarded by the database itself.
    sa.Index(
        "uq_rollouts_active", "deployment", unique=True,
        sqlite_where=sa.text("status IN ('running', 'paused')"),
        postgresql_where=sa.text("status IN ('running', 'paused')"),
    ),
)

gate_results = sa.Table(
    "gate_results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_name", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("against", sa.Integer, nullable=True),
    sa.Column("report", JSONType(), nullable=False, default=dict),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Index("ix_gate_results_version", "model_name", "version", "id"),
)

pipeline_runs = sa.Table(
    "pipeline_runs",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("pipeline", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("git_commit", sa.String(64), nullable=True),
    sa.Column("steps", JSONType(), nullable=False, default=list),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Index("ix_pipeline_runs_pipeline", "pipeline", "started_at"),
)

traffic_stats = sa.Table(
    "traffic_stats",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("server_id", sa.String(128), nullable=False),
    sa.Column("deployment", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("stats", JSONType(), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("server_id", "deployment", "version",
                        name="uq_traffic_stats_server_deployment_version"),
    sa.Index("ix_traffic_stats_deployment", "deployment"),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("acquired_at", UTCDateTime, nullable=False),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("endpoint", sa.String(128), nullable=False),
    sa.Column("rule", sa.String(128), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending | firing | resolved
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("expr", sa.Text, nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("message", sa.Text, nullable=False, default=""),
    sa.Column("action", sa.Text, nullable=False, default=""),  # what was done, if anything
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("fired_at", UTCDateTime, nullable=True),
    sa.Column("resolved_at", UTCDateTime, nullable=True),
    sa.Column("last_evaluated_at", UTCDateTime, nullable=False),
    # At most one open (pending or firing) alert per endpoint and rule.
    sa.Index(
        "uq_alerts_open", "endpoint", "rule", unique=True,
        sqlite_where=sa.text("state IN ('pending', 'firing')"),
        postgresql_where=sa.text("state IN ('pending', 'firing')"),
    ),
    sa.Index("ix_alerts_endpoint", "endpoint", "id"),
)

# The fleet's traffic counters per endpoint as the alert evaluator saw them (the JSON of
# ``registry.traffic.VersionStats``): its windows are "now minus the snapshot at the
# window's start", so they must outlive the process that took them.
counter_snapshots = sa.Table(
    "counter_snapshots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("endpoint", sa.String(128), nullable=False),
    sa.Column("taken_at", UTCDateTime, nullable=False),
    sa.Column("stats", JSONType(), nullable=False),
    sa.Index("ix_counter_snapshots_endpoint", "endpoint", "taken_at"),
)

# -- audit log: every mutation, hash-chained ---------------------------------------------
# ``before``/``after`` are canonical JSON text rather than a JSON column: the hash is over
# exact bytes, and JSONB would renormalise numbers and spacing on the way back.

audit_log = sa.Table(
    "audit_log",
    metadata,
    # Assigned by the appender (head count + 1) under the head row's lock, never by the
    # database: a sequence would leave gaps on rollback, and a gap means a deleted record.
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(300), nullable=False),
    sa.Column("model", sa.String(128), nullable=True),
    sa.Column("before", sa.Text, nullable=True),
    sa.Column("after", sa.Text, nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_log_model", "model", "seq"),
    sa.Index("ix_audit_log_target", "target", "seq"),
)

# One row (id 1): how many records the chain holds and the newest one's hash. Updated in
# the appending transaction, so deleting the last record (which leaves a valid chain
# behind it) still disagrees with the head; its row lock serialises appenders.
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

# -- API tokens ----------------------------------------------------------------------------
# A token is shown once, at creation, as ``mp_<lookup>_<secret>``; only a salted scrypt
# hash of the secret is stored. ``lookup`` (random, unique) finds the row in one indexed
# read, so verifying never scans or hashes more than one candidate.

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("lookup", sa.String(32), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),  # reader|predictor|deployer|admin
    sa.Column("models", sa.String(128), nullable=False),  # fnmatch glob over model names
    sa.Column("hash", sa.String(255), nullable=False),  # scrypt$n$r$p$salt$hash (base64)
    sa.Column("rate", sa.Float, nullable=True),  # requests per second; null: server default
    sa.Column("burst", sa.Integer, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Column("revoked_by", sa.String(128), nullable=True),
    sa.Column("last_used_at", UTCDateTime, nullable=True),
    # A name is unique among the tokens not revoked; a revoked one frees its name.
    sa.Index(
        "uq_tokens_live_name", "name", unique=True,
        sqlite_where=sa.text("revoked_at IS NULL"),
        postgresql_where=sa.text("revoked_at IS NULL"),
    ),
)
