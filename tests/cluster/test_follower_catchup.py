"""A follower that was down while retention at the leader deleted what it still lacked restarts its
log at the leader's log start (Kafka's truncateFullyAndStartAt), catches up and rejoins the ISR."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.harness import Cluster

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

TOPIC = "catchup"


@pytest.fixture
def fast_retention_cluster(tmp_path: Path, pg_url: str) -> Iterator[Cluster]:
    started = Cluster(tmp_path, pg_url, size=3, log_retention_check_interval_ms=200)
    try:
        started.start()
        started.wait_alive({0, 1, 2})
        yield started
    finally:
        started.stop()


def _offsets(cluster: Cluster, broker_id: int) -> dict[str, Any]:
    """The partition's offsets in broker ``broker_id``'s own log."""
    answer = cluster.http.get(f"{cluster.url(broker_id)}/v1/topics/{TOPIC}/partitions/0/offsets")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def _wait(what: str, predicate: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _produce(cluster: Cluster, via: int, values: list[str]) -> None:
    deadline = time.monotonic() + 15
    while True:
        answer = cluster.produce(via, TOPIC, 0, values, acks="1")
        if answer.status_code == 200:
            return
        assert answer.status_code == 503, answer.text
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.1)


def _records_from(cluster: Cluster, broker_id: int, offset: int) -> list[tuple[int, str]]:
    """(offset, value) of every record from ``offset`` to the high watermark, read from one broker."""
    out: list[tuple[int, str]] = []
    while True:
        answer = cluster.http.get(
            f"{cluster.url(broker_id)}/v1/topics/{TOPIC}/partitions/0/records",
            params={"offset": offset, "max_records": 10_000, "max_wait_ms": 0, "replica": "any"},
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        out += [(r["offset"], r["value"]) for r in body["records"]]
        if not body["records"] or body["next_offset"] >= body["high_watermark"]:
            return out
        offset = body["next_offset"]


def test_follower_below_the_leaders_log_start_restarts_there_and_rejoins_the_isr(
    fast_retention_cluster: Cluster,
) -> None:
    cluster = fast_retention_cluster
    started = time.monotonic()
    answer = cluster.create_topic(
        TOPIC, partitions=1, replication_factor=3, segment_bytes=1024, retention_bytes=3000
    )
    assert answer.status_code == 201, answer.text
    partition = answer.json()["partitions"][0]
    leader = partition["leader"]
    follower = next(b for b in partition["replicas"] if b != leader)
    padding = "x" * 150

    _produce(cluster, leader, [f"early-{i}-{padding}" for i in range(5)])
    _wait("the follower to replicate the first records",
          lambda: _offsets(cluster, follower)["log_end_offset"] == 5, 10)
    cluster.brokers[follower].kill()
    follower_end = 5

    # Enough to roll many 1 KiB segments; retention.bytes then deletes past the follower's end.
    for round_ in range(20):
        _produce(cluster, leader, [f"r{round_}-{i}-{padding}" for i in range(6)])
    _wait("retention at the leader to pass the follower's log end",
          lambda: _offsets(cluster, leader)["log_start_offset"] > follower_end, 10)
    assert cluster.partition(TOPIC, 0)["leader"] == leader

    cluster.brokers[follower].start()

    def caught_up() -> bool:
        mine, theirs = _offsets(cluster, follower), _offsets(cluster, leader)
        in_isr = follower in cluster.partition(TOPIC, 0)["isr"]
        keys = ("log_start_offset", "log_end_offset", "high_watermark")
        return in_isr and all(mine[k] == theirs[k] for k in keys) and mine["high_watermark"] == 125

    # the follower learns the high watermark on its next fetch, so wait for that too before reading
    _wait("the restarted follower to catch up and rejoin the ISR", caught_up, 20)
    mine = _offsets(cluster, follower)
    assert mine["log_start_offset"] > follower_end
    assert mine["log_end_offset"] == 5 + 20 * 6
    start = mine["log_start_offset"]
    from_follower = _records_from(cluster, follower, start)
    assert from_follower == _records_from(cluster, leader, start)
    assert [o for o, _ in from_follower] == list(range(start, 125))
    assert time.monotonic() - started < 45
