"""Catalog functions of clustered mode on PostgreSQL: registration, heartbeats, fencing, the
controller lease and compare-and-set of partition leadership; and the settings that switch it on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from app.catalog import Catalog
from app.catalog import cluster as cc
from app.catalog import topics as topics_catalog
from app.config import Settings


@pytest.fixture
def catalog(pg_url: str) -> Iterator[Catalog]:
    opened = Catalog(pg_url)
    opened.migrate()
    yield opened
    opened.close()


@pytest.mark.postgres
def test_registration_heartbeat_and_fencing(catalog: Catalog) -> None:
    with catalog.begin() as s:
        assert cc.register_broker(s, broker_id=1, url="http://a") == 1
        assert cc.register_broker(s, broker_id=2, url="http://b") == 1
    with catalog.begin() as s:
        assert cc.heartbeat(s, broker_id=1, incarnation=1) is True  # starts fenced
        cc.unfence_returned(s, broker_ids=[1, 2])
        assert cc.heartbeat(s, broker_id=1, incarnation=1) is False
    with catalog.begin() as s:
        # A restart registers a new incarnation: the old process's heartbeats are refused.
        assert cc.register_broker(s, broker_id=1, url="http://a2") == 2
        assert cc.heartbeat(s, broker_id=1, incarnation=1) is None
        assert cc.heartbeat(s, broker_id=1, incarnation=2) is True
    with catalog.begin() as s:
        s.execute(text("UPDATE brokers SET last_heartbeat_ms = 0 WHERE broker_id = 2"))
        assert cc.fence_expired(s, session_timeout_ms=1000) == [2]
        assert cc.fence_expired(s, session_timeout_ms=1000) == []
        rows = {b.broker_id: b for b in cc.list_brokers(s)}
        assert rows[1].url == "http://a2" and rows[1].incarnation == 2 and rows[2].fenced


@pytest.mark.postgres
def test_controller_lease_is_exclusive_until_it_expires(catalog: Catalog) -> None:
    with catalog.begin() as s:
        assert cc.acquire_controller(s, broker_id=1, lease_ms=60_000) == 1
    with catalog.begin() as s:
        assert cc.acquire_controller(s, broker_id=2, lease_ms=60_000) is None
        assert cc.acquire_controller(s, broker_id=1, lease_ms=60_000) == 1  # renewal keeps the epoch
        assert cc.current_controller(s) == 1
    with catalog.begin() as s:
        s.execute(text("UPDATE controller_lease SET expires_at_ms = 0"))
        assert cc.current_controller(s) is None
        assert cc.acquire_controller(s, broker_id=2, lease_ms=60_000) == 2  # a new holder, a new epoch


@pytest.mark.postgres
def test_partition_changes_are_compare_and_set_on_the_partition_epoch(catalog: Catalog) -> None:
    with catalog.begin() as s:
        topics_catalog.create_topic(
            s, name="t", topic_uuid="u", partitions=1, replicas=[0, 1, 2], configs={"min.insync.replicas": 2},
            created_at_ms=0,
        )
    with catalog.begin() as s:
        (p,) = cc.list_partitions(s)
        assert (p.leader, p.isr, p.leader_epoch, p.partition_epoch) == (0, (0, 1, 2), 0, 0)
        assert cc.min_insync_overrides(s) == {"t": 2}
        assert cc.cas_partition(s, topic_id=p.topic_id, partition=0, expected_partition_epoch=0, leader=0,
                                isr=(0, 1), leader_epoch=0)
        # A second writer acting on the same (now stale) read changes nothing.
        assert not cc.cas_partition(s, topic_id=p.topic_id, partition=0, expected_partition_epoch=0,
                                    leader=1, isr=(1, 2), leader_epoch=1)
        (after,) = cc.list_partitions(s)
        assert (after.leader, after.isr, after.leader_epoch, after.partition_epoch) == (0, (0, 1), 0, 1)


def test_cluster_mode_needs_a_postgresql_catalog(tmp_path: object) -> None:
    with pytest.raises(ValidationError, match="PostgreSQL"):
        Settings(cluster=True)
    with pytest.raises(ValidationError, match="heartbeat"):
        Settings(cluster=True, catalog_url="postgresql://x/y", broker_heartbeat_interval_ms=5000,
                 broker_session_timeout_ms=5000)
    assert Settings(cluster=True, catalog_url="postgresql://x/y").cluster
    assert not Settings().cluster  # single node by default


def test_reassignment_needs_clustered_mode(client: Any) -> None:
    assert client.post("/v1/topics", json={"name": "t"}).status_code == 201
    answer = client.post("/v1/topics/t/partitions/0/reassign", json={"replicas": [0]})
    assert answer.status_code == 422 and answer.json()["error_code"] == 42205
