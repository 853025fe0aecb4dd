"""Datasets: content-addressed versions of tabular data, and the model versions that
were trained or evaluated on them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("next_version", sa.Integer, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_datasets"),
        sa.UniqueConstraint("name", name="uq_datasets_name"),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dataset_id", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("artifact_digest", sa.String(71), nullable=False),
        sa.Column("artifact_size", sa.BigInteger, nullable=False),
        sa.Column("data_digest", sa.String(71), nullable=False),
        sa.Column("fingerprint", sa.String(71), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("schema", JSONType, nullable=False),
        sa.Column("profile", JSONType, nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_versions"),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"],
                                name="fk_dataset_versions_dataset_id_datasets"),
        sa.UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_dataset_version"),
        sa.UniqueConstraint("dataset_id", "fingerprint",
                            name="uq_dataset_versions_dataset_fingerprint"),
    )
    op.create_index("ix_dataset_versions_artifact_digest", "dataset_versions",
                    ["artifact_digest"])
    op.create_index("ix_dataset_versions_data_digest", "dataset_versions",
                    ["dataset_id", "data_digest"])
    op.create_table(
        "model_datasets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_version_id", sa.Integer, nullable=False),
        sa.Column("dataset_version_id", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_datasets"),
        sa.ForeignKeyConstraint(["model_version_id"], ["model_versions.id"],
                                name="fk_model_datasets_model_version_id_model_versions"),
        sa.ForeignKeyConstraint(["dataset_version_id"], ["dataset_versions.id"],
                                name="fk_model_datasets_dataset_version_id_dataset_versions"),
        sa.UniqueConstraint("model_version_id", "role", "dataset_version_id",
                            name="uq_model_datasets_model_version_role_dataset"),
    )
    op.create_index("ix_model_datasets_dataset_version", "model_datasets",
                    ["dataset_version_id"])


def downgrade() -> None:
    op.drop_index("ix_model_datasets_dataset_version", table_name="model_datasets")
    op.drop_table("model_datasets")
    op.drop_index("ix_dataset_versions_data_digest", table_name="dataset_versions")
    op.drop_index("ix_dataset_versions_artifact_digest", table_name="dataset_versions")
    op.drop_table("dataset_versions")
    op.drop_table("datasets")
