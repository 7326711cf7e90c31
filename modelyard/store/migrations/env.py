"""Alembic environment: runs on the connection `modelyard.store.database` hands it."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from modelyard.store.tables import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection: Connection | None = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("modelyard migrations run only through modelyard.store.database")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
