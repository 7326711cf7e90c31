"""Shared fixtures: a metadata database on SQLite and on PostgreSQL, and a server home.

PostgreSQL tests use a database created for this test session (dropped at the end)
on the server at MODELYARD_TEST_PG_ADMIN_URL (default: postgres on 127.0.0.1:5432);
tables are emptied between tests. PostgreSQL being unreachable fails those tests: CI
starts it, and a missing database must not pass as a green run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from modelyard.store.database import Database
from modelyard.store.tables import Base

PG_ADMIN_URL = os.environ.get(
    "MODELYARD_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    name = f"modelyard_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty metadata database: each test runs once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'meta.db'}"
        return
    url: str = request.getfixturevalue("pg_database_url")
    db = Database(url)
    db.migrate()
    with db.writer.begin() as connection:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    db.dispose()
    yield url


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    db.migrate()
    yield db
    db.dispose()
