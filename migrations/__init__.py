"""Alembic migrations of the catalog (applied by ``Catalog.migrate()`` and ``tidelog migrate``)."""
