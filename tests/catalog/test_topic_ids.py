"""Migration 0006: every topic id is a canonical UUID, unique across topics."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app.catalog import Catalog
from app.catalog import topics as catalog_topics


def test_0006_normalises_and_deduplicates_topic_ids(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    try:
        catalog.migrate("0005")
        good = uuid.uuid4()
        with catalog.engine.begin() as connection:
            for name, value in (("a", str(good).upper()), ("b", str(good)), ("c", "not-a-uuid"), ("d", "")):
                connection.execute(
                    text("INSERT INTO topics (name, topic_uuid, replication_factor, created_at_ms) "
                         "VALUES (:n, :u, 1, 1)"),
                    {"n": name, "u": value},
                )
        catalog.migrate()
        assert catalog.current_revision() is not None
        with catalog.read() as session:
            ids = {t.name: t.topic_uuid for t in catalog_topics.list_topics(session)}
        assert ids["a"] == str(good)  # the first keeps its id, in canonical form
        assert len(set(ids.values())) == 4
        assert all(str(uuid.UUID(v)) == v for v in ids.values())
        with pytest.raises(IntegrityError), catalog.begin() as session:
            catalog_topics.create_topic(session, name="e", topic_uuid=ids["a"], partitions=1, replicas=[0],
                                        configs={}, created_at_ms=1)
    finally:
        catalog.close()
