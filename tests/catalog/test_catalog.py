"""The catalog on SQLite and PostgreSQL: migrations, topic rows, transactions, engine set-up."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from app.catalog import Catalog
from app.catalog import topics as catalog_topics
from app.catalog.db import MIGRATIONS_DIR, normalise_url


def _head() -> str:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    catalog = Catalog(url)
    catalog.migrate()
    yield catalog
    catalog.close()


def _create(catalog: Catalog, name: str = "orders", partitions: int = 3) -> None:
    with catalog.begin() as session:
        catalog_topics.create_topic(
            session, name=name, topic_uuid=f"uuid-{name}", partitions=partitions, replicas=[0],
            configs={"retention.ms": 1000, "cleanup.policy": "compact", "min.cleanable.dirty.ratio": 0.25},
            created_at_ms=1,
        )


def test_migrate_reaches_head_and_is_idempotent(catalog: Catalog) -> None:
    assert catalog.current_revision() == _head()
    catalog.migrate()  # a second broker starting on the same catalog
    assert catalog.current_revision() == _head()
    tables = set(inspect(catalog.engine).get_table_names())
    assert {"topics", "topic_configs", "partitions"} <= tables


def test_topic_round_trip(catalog: Catalog) -> None:
    _create(catalog)
    with catalog.read() as session:
        row = catalog_topics.get_topic(session, name="orders")
        assert row is not None
        assert row.topic_uuid == "uuid-orders"
        assert row.replication_factor == 1
        assert [p.partition for p in row.partitions] == [0, 1, 2]
        assert all(p.leader == 0 and p.replicas == [0] and p.isr == [0] and p.leader_epoch == 0
                   for p in row.partitions)
        # JSON keeps each value's type: ints stay ints, floats floats, strings strings.
        assert row.config_overrides == {"retention.ms": 1000, "cleanup.policy": "compact",
                                        "min.cleanable.dirty.ratio": 0.25}
        assert catalog_topics.get_topic(session, name="missing") is None


def test_add_partitions_and_set_configs(catalog: Catalog) -> None:
    _create(catalog, partitions=1)
    with catalog.begin() as session:
        row = catalog_topics.get_topic(session, name="orders")
        assert row is not None
        catalog_topics.add_partitions(session, topic=row, count=4, replicas=[0])
        overrides = {"retention.ms": 5, "segment.ms": 60000}
        catalog_topics.set_topic_configs(session, topic=row, overrides=overrides)
    with catalog.read() as session:
        row = catalog_topics.get_topic(session, name="orders")
        assert row is not None
        assert [p.partition for p in row.partitions] == [0, 1, 2, 3]
        assert row.config_overrides == {"retention.ms": 5, "segment.ms": 60000}


def test_delete_cascades_to_configs_and_partitions(catalog: Catalog) -> None:
    _create(catalog, "a")
    _create(catalog, "b")
    with catalog.begin() as session:
        row = catalog_topics.get_topic(session, name="a")
        assert row is not None
        catalog_topics.delete_topic(session, topic=row)
    with catalog.read() as session:
        assert [t.name for t in catalog_topics.list_topics(session)] == ["b"]
        assert session.execute(text("SELECT count(*) FROM partitions")).scalar_one() == 3
        assert session.execute(text("SELECT count(*) FROM topic_configs")).scalar_one() == 3


def test_duplicate_topic_name_is_refused(catalog: Catalog) -> None:
    _create(catalog)
    with pytest.raises(IntegrityError):
        _create(catalog)
    with catalog.read() as session:
        assert catalog_topics.count_topics(session) == 1


def test_a_failed_transaction_leaves_nothing(catalog: Catalog) -> None:
    with pytest.raises(RuntimeError), catalog.begin() as session:
        catalog_topics.create_topic(session, name="half", topic_uuid="u", partitions=2, replicas=[0],
                                    configs={}, created_at_ms=1)
        raise RuntimeError("boom")
    with catalog.read() as session:
        assert catalog_topics.list_topics(session) == []


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'sub' / 'catalog.db'}")  # creates the directory
    try:
        with catalog.read() as session:
            assert session.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert session.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
            assert session.execute(text("PRAGMA busy_timeout")).scalar_one() == 5000
    finally:
        catalog.close()


def test_two_processes_worth_of_writers_share_one_sqlite_file(tmp_path: Path) -> None:
    """Two Catalogs (as two broker processes would) writing at once: BEGIN IMMEDIATE serialises them
    instead of failing a read-then-write upgrade with SQLITE_BUSY."""
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    first, second = Catalog(url), Catalog(url)
    first.migrate()
    errors: list[BaseException] = []

    def writer(catalog: Catalog, prefix: str) -> None:
        try:
            for i in range(15):
                with catalog.begin() as session:
                    # Read first, then write: the pattern that fails under deferred transactions.
                    catalog_topics.count_topics(session)
                    catalog_topics.create_topic(session, name=f"{prefix}{i}", topic_uuid=f"u-{prefix}{i}",
                                                partitions=1, replicas=[0], configs={}, created_at_ms=1)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(c, p)) for c, p in ((first, "a"), (second, "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert errors == []
        with first.read() as session:
            assert catalog_topics.count_topics(session) == 30
    finally:
        first.close()
        second.close()


def test_postgres_urls_use_psycopg() -> None:
    assert normalise_url("postgresql://u@h:5432/db") == "postgresql+psycopg://u@h:5432/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


@pytest.mark.postgres
def test_postgres_schema_is_private(pg_url: str) -> None:
    catalog = Catalog(pg_url)
    try:
        catalog.migrate()
        with catalog.read() as session:
            schema = session.execute(text("SELECT current_schema()")).scalar_one()
        assert schema.startswith("tidelog_test_")
        assert catalog.dialect == "postgresql"
    finally:
        catalog.close()
