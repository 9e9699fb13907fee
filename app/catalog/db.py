"""The catalog database: engine set-up for SQLite and PostgreSQL, transactions, migrations.

SQLite runs in WAL mode with foreign keys on and a 5 s busy timeout. pysqlite's own transaction
handling is switched off so that SQLAlchemy's ``begin`` emits the statement we choose: writes take
``BEGIN IMMEDIATE`` (the write lock up front, so two processes sharing the file never fail a
read-then-write upgrade with SQLITE_BUSY), read-only sessions a deferred ``BEGIN``. On PostgreSQL a
plain ``postgresql://`` URL is served by psycopg 3; migrations take an advisory lock so brokers
starting together do not race.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["Catalog", "normalise_url", "sqlite_directory"]

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent.parent / "migrations"
_READ_ONLY = "tidelog_read_only"


def normalise_url(url: str) -> str:
    """The URL with ``postgresql://``/``postgres://`` rewritten to the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def sqlite_directory(url: str) -> Path | None:
    """The directory of a SQLite catalog's file (None for other databases and in-memory SQLite)."""
    parsed = make_url(normalise_url(url))
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        database = database[len("file:") :].split("?", 1)[0]
    return Path(database).resolve().parent


class Catalog:
    """One catalog database: ``with catalog.begin() as session:`` is one committed transaction."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalise_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.dialect == "sqlite":
            database = parsed.database
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 5.0}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine)
        self._sessions = sessionmaker(bind=self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            bind=self.engine.execution_options(**{_READ_ONLY: True}), expire_on_commit=False
        )

    @contextlib.contextmanager
    def begin(self) -> Iterator[Session]:
        """A session in one write transaction: committed on exit, rolled back on an exception."""
        with self._sessions.begin() as session:
            yield session

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A session in one read-only transaction (deferred on SQLite: it takes no write lock)."""
        with self._read_sessions.begin() as session:
            yield session

    def migrate(self, revision: str = "head") -> None:
        """Apply the Alembic migrations in ``migrations/`` up to ``revision``."""
        from alembic import command

        with self.engine.connect() as connection:
            command.upgrade(self._alembic_config(connection), revision)
            connection.commit()

    def current_revision(self) -> str | None:
        """The Alembic revision the database is at (None when it has never been migrated)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def _alembic_config(self, connection: Any) -> Any:
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        config.attributes["connection"] = connection
        return config


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite: SQLAlchemy's "begin" event emits BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=5000")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(_READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
