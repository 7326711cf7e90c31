"""Migrations run on both backends and are safe to run twice."""

from __future__ import annotations

from sqlalchemy import inspect

from modelyard.store.database import Database


def test_migrations_create_every_table_and_are_idempotent(database: Database) -> None:
    database.migrate()
    tables = set(inspect(database.writer).get_table_names())
    assert {"accounts", "models", "model_tags", "manifests", "tokens", "uploads"} <= tables
    assert "alembic_version" in tables
