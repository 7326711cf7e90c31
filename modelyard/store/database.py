"""Engines, sessions and migrations for SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode so readers never wait for the writer. Write transactions
start with BEGIN IMMEDIATE: a deferred transaction that reads and then writes can
fail at once with "database is locked" when another writer got there first, while
an immediate one waits (busy_timeout) for its turn. Reads use a second engine with
ordinary deferred transactions so they never queue behind writers.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

_MIGRATIONS = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 0x6D6F64656C  # "model": one server migrates at a time


class Database:
    """The metadata store's connection pools; one per process."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self._prepare_sqlite_dir(url)
            self.writer = _sqlite_engine(url, immediate=True)
            self.reader = _sqlite_engine(url, immediate=False)
        else:
            self.writer = create_engine(
                url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
            )
            self.reader = self.writer
        # SQLite's busy handler sleeps and retries with growing sleeps, so under many
        # writers in one process some wait far longer than others (p99 ≈ 20x p50). A
        # process-wide lock queues this process's writers fairly; busy_timeout still
        # arbitrates between processes.
        self.write_lock: threading.Lock | None = threading.Lock() if self.is_sqlite else None
        self._write_sessions = sessionmaker(self.writer, expire_on_commit=False)
        self._read_sessions = sessionmaker(self.reader, expire_on_commit=False)

    def session(self, *, write: bool) -> Session:
        return (self._write_sessions if write else self._read_sessions)()

    def migrate(self) -> None:
        """Bring the schema to the newest revision; safe when several servers start."""
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with self.writer.connect() as connection:
            if not self.is_sqlite:
                connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                connection.commit()
            try:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                connection.commit()
            finally:
                if not self.is_sqlite:
                    connection.execute(
                        text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK}
                    )
                    connection.commit()

    def dispose(self) -> None:
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()

    @staticmethod
    def _prepare_sqlite_dir(url: str) -> None:
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
