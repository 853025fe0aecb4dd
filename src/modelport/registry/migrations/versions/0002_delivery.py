"""Delivery: deployments (desired state) and their events, rollouts, gate results,
pipeline runs, per-server traffic counters and leases.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
UTC = sa.DateTime(timezone=True)
ACTIVE = sa.text("status IN ('running', 'paused')")


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("stable", sa.Integer, nullable=True),
        sa.Column("candidate", sa.Integer, nullable=True),
        sa.Column("mode", sa.String(16), nullable=True),
        sa.Column("weight", sa.Float, nullable=False),
        sa.Column("sticky", sa.String(128), nullable=True),
        sa.Column("previous", sa.Integer, nullable=True),
        sa.Column("alias", sa.String(128), nullable=True),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deployments"),
        sa.UniqueConstraint("name", name="uq_deployments_name"),
    )
    op.create_table(
        "deployment_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deployment", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("rollout_id", sa.Integer, nullable=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("state", JSONType, nullable=False),
        sa.Column("metrics", JSONType, nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deployment_events"),
    )
    op.create_index("ix_deployment_events_deployment", "deployment_events",
                    ["deployment", "id"])
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deployment", sa.String(128), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("candidate", sa.Integer, nullable=False),
        sa.Column("stable", sa.Integer, nullable=True),
        sa.Column("strategy", sa.String(16), nullable=False),
        sa.Column("steps", JSONType, nullable=False),
        sa.Column("step_seconds", sa.Float, nullable=True),
        sa.Column("step_requests", sa.Integer, nullable=True),
        sa.Column("step_index", sa.Integer, nullable=False),
        sa.Column("step_started_at", UTC, nullable=True),
        sa.Column("baseline", JSONType, nullable=False),
        sa.Column("analysis", JSONType, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("require_gate", sa.Boolean, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rollouts"),
    )
    op.create_index("uq_rollouts_active", "rollouts", ["deployment"], unique=True,
                    sqlite_where=ACTIVE, postgresql_where=ACTIVE)
    op.create_table(
        "gate_results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("against", sa.Integer, nullable=True),
        sa.Column("report", JSONType, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gate_results"),
    )
    op.create_index("ix_gate_results_version", "gate_results", ["model_name", "version", "id"])
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("pipeline", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("git_commit", sa.String(64), nullable=True),
        sa.Column("steps", JSONType, nullable=False),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("finished_at", UTC, nullable=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pipeline_runs"),
    )
    op.create_index("ix_pipeline_runs_pipeline", "pipeline_runs", ["pipeline", "started_at"])
    op.create_table(
        "traffic_stats",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("server_id", sa.String(128), nullable=False),
        sa.Column("deployment", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("stats", JSONType, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_traffic_stats"),
        sa.UniqueConstraint("server_id", "deployment", "version",
                            name="uq_traffic_stats_server_deployment_version"),
    )
    op.create_index("ix_traffic_stats_deployment", "traffic_stats", ["deployment"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", UTC, nullable=False),
        sa.Column("acquired_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_index("ix_traffic_stats_deployment", table_name="traffic_stats")
    op.drop_table("traffic_stats")
    op.drop_index("ix_pipeline_runs_pipeline", table_name="pipeline_runs")
    op.drop_table("pipeline_runs")
    op.drop_index("ix_gate_results_version", table_name="gate_results")
    op.drop_table("gate_results")
    op.drop_index("uq_rollouts_active", table_name="rollouts")
    op.drop_table("rollouts")
    op.drop_index("ix_deployment_events_deployment", table_name="deployment_events")
    op.drop_table("deployment_events")
    op.drop_table("deployments")
