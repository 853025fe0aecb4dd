"""Counter snapshots: the fleet's traffic counters as the alert evaluator saw them, so
that an alert window survives a restart or a takeover by another evaluator.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "counter_snapshots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.String(128), nullable=False),
        sa.Column("taken_at", UTC, nullable=False),
        sa.Column("stats", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_counter_snapshots"),
    )
    op.create_index("ix_counter_snapshots_endpoint", "counter_snapshots",
                    ["endpoint", "taken_at"])


def downgrade() -> None:
    op.drop_index("ix_counter_snapshots_endpoint", table_name="counter_snapshots")
    op.drop_table("counter_snapshots")
