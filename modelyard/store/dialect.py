"""The few statements whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignore(session: Session, table: Any) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING, on either backend."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def upsert_module(session: Session) -> Any:
    """The dialect module whose `insert` supports `on_conflict_do_update`."""
    return postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
