"""A broker that was down while its topic was deleted and re-created comes back with only the new
records (issue 11, item 3): its old directory carries the old topic id in ``partition.metadata``, so
it is removed at start instead of being opened as the new topic's log."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from storage.layout import read_topic_id
from tests.cluster.harness import Cluster, log_files

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

# Long enough that broker 2, killed, is still a live replica when the topic is re-created (the
# replication factor counts live brokers), so it is a replica of the new topic too.
SESSION_TIMEOUT_MS = 8000


@pytest.fixture
def slow_fencing_cluster(tmp_path: Path, pg_url: str) -> Iterator[Cluster]:
    started = Cluster(tmp_path, pg_url, size=3, broker_session_timeout_ms=SESSION_TIMEOUT_MS)
    try:
        started.start()
        started.wait_alive({0, 1, 2})
        yield started
    finally:
        started.stop()


def _produce(cluster: Cluster, via: int, values: list[str], timeout_s: float = 40.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            answer = cluster.produce(via, "reborn", 0, values)
        except httpx.ConnectError:  # redirected to the killed leader before its leadership moved
            assert time.monotonic() < deadline
            time.sleep(0.2)
            continue
        if answer.status_code == 200:
            return
        assert answer.status_code == 503, answer.text
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.2)


def _wait_values(cluster: Cluster, broker_id: int, expected: list[str], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    seen: object = None
    while True:
        try:
            seen = cluster.read_all(broker_id, "reborn", 0)
            if seen == expected:
                return
        except AssertionError as exc:  # not servable yet (a redirect while it catches up)
            seen = exc
        assert time.monotonic() < deadline, f"broker {broker_id} serves {seen!r}, not {expected!r}"
        time.sleep(0.2)


def test_a_broker_down_during_delete_and_recreate_serves_only_the_new_records(
    slow_fencing_cluster: Cluster,
) -> None:
    cluster = slow_fencing_cluster
    assert cluster.create_topic("reborn", partitions=1, replication_factor=3).status_code == 201
    old = [f"old-{i}" for i in range(8)]
    _produce(cluster, 0, old)
    for b in range(3):
        _wait_values(cluster, b, old)

    cluster.brokers[2].kill()
    assert cluster.http.delete(f"{cluster.url(0)}/v1/topics/reborn").status_code == 204
    time.sleep(1.0)  # brokers 0 and 1 notice the deletion on their next metadata read
    created = cluster.create_topic("reborn", partitions=1, replication_factor=3)
    assert created.status_code == 201, created.text
    topic_id = created.json()["topic_id"]
    assert sorted(created.json()["partitions"][0]["replicas"]) == [0, 1, 2]
    new = ["new-1", "new-2", "new-3"]
    _produce(cluster, 0, new)

    cluster.brokers[2].start()
    cluster.wait_alive({0, 1, 2}, timeout_s=40)
    cluster.wait_partition("reborn", 0, lambda s: sorted(s["isr"]) == [0, 1, 2], timeout_s=40)
    for b in range(3):
        _wait_values(cluster, b, new)
    assert read_topic_id(cluster.brokers[2].data_dir / "reborn-0") == topic_id
    leader = cluster.partition("reborn", 0)["leader"]
    assert log_files(cluster.brokers[2].data_dir, "reborn", 0) == log_files(
        cluster.brokers[leader].data_dir, "reborn", 0
    )
    more = ["new-4"]
    _produce(cluster, 1, more)
    _wait_values(cluster, 2, new + more)
