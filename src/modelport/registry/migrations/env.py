"""Alembic environment: always run with a connection handed in by modelport."""

from __future__ import annotations

from alembic import context

from modelport.registry.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable when someone runs alembic by hand
    raise RuntimeError("run migrations through `modelport db upgrade`, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=False,
)
context.run_migrations()
