"""Alembic environment: runs on the connection ``Catalog.migrate()`` hands over, or on its own engine.

``alembic -c alembic.ini upgrade head`` works too: the URL then comes from ``TIDELOG_CATALOG_URL`` or
alembic.ini's ``sqlalchemy.url``. On PostgreSQL the migration holds a transaction-level advisory lock so
that brokers starting together apply it once.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, text

from app.catalog import Base
from app.catalog.db import normalise_url

# An arbitrary constant: the key of the advisory lock serialising migrations on PostgreSQL.
_MIGRATION_LOCK_KEY = 0x7469_6465  # "tide"

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = os.environ.get("TIDELOG_CATALOG_URL") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no catalog URL: set TIDELOG_CATALOG_URL or sqlalchemy.url in alembic.ini")
    from app.catalog.db import Catalog

    catalog = Catalog(normalise_url(url))
    try:
        with catalog.engine.connect() as own:
            _run(own)
            own.commit()
    finally:
        catalog.close()


def run_migrations_offline() -> None:
    url = os.environ.get("TIDELOG_CATALOG_URL") or context.config.get_main_option("sqlalchemy.url")
    context.configure(
        url=normalise_url(url or "sqlite://"), target_metadata=target_metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
