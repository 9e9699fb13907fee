"""A broker whose disk is full gives up its leaderships and leaves its ISRs until writes work again
(Kafka's offline log directory, KIP-112), and then rejoins with every record (issue 11, item 1).

Broker 1's data directory is a small tmpfs, filled up with a file once the topic exists.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cluster.harness import Cluster, log_files
from tests.tmpfs import fill, mounted_tmpfs

pytestmark = [pytest.mark.postgres, pytest.mark.e2e, pytest.mark.slow]

PARTITIONS = 3


@pytest.fixture
def cluster_with_small_disk(tmp_path: Path, pg_url: str) -> Iterator[tuple[Cluster, Path]]:
    cluster = Cluster(tmp_path, pg_url, size=3)
    small = cluster.brokers[1]
    small.log_path = tmp_path / "b1.log"  # not on the small disk
    with mounted_tmpfs(small.data_dir, "16m") as disk:
        try:
            cluster.start()
            cluster.wait_alive({0, 1, 2})
            yield cluster, disk
        finally:
            cluster.stop()


def _produce(cluster: Cluster, via: int, partition: int, values: list[str], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            answer = cluster.produce(via, "offline", partition, values)
            if answer.status_code == 200:
                return
            assert answer.status_code in (503, 507), answer.text
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"produce to partition {partition} never succeeded"
        time.sleep(0.2)


def test_a_full_disk_moves_leadership_away_and_the_broker_rejoins(
    cluster_with_small_disk: tuple[Cluster, Path],
) -> None:
    cluster, disk = cluster_with_small_disk
    assert cluster.create_topic("offline", partitions=PARTITIONS, replication_factor=3).status_code == 201
    expected: dict[int, list[str]] = {p: [f"before-{p}-{i}" for i in range(20)] for p in range(PARTITIONS)}
    for p in range(PARTITIONS):
        _produce(cluster, 0, p, expected[p])
    led_by_1 = next(p for p in range(PARTITIONS) if cluster.partition("offline", p)["leader"] == 1)

    fill(disk / "filler")
    # bigger than what is left of the segment's last page: the write needs a new one
    answer = cluster.produce(1, "offline", led_by_1, ["while-full-" + "x" * 20_000])
    assert answer.status_code == 507, answer.text
    assert answer.json()["error_code"] == 50701 and "retry-after" in answer.headers
    # broker 1 gives up every leadership and leaves every ISR
    for p in range(PARTITIONS):
        cluster.wait_partition("offline", p, lambda s: s["leader"] not in (None, 1) and 1 not in s["isr"],
                               timeout_s=20)
    # the others keep taking writes for every partition, the one broker 1 led included
    for p in range(PARTITIONS):
        values = [f"during-{p}-{i}" for i in range(10)]
        _produce(cluster, 0, p, values)
        expected[p] += values

    (disk / "filler").unlink()  # space returns: broker 1 catches up and rejoins every ISR
    for p in range(PARTITIONS):
        cluster.wait_partition("offline", p, lambda s: 1 in s["isr"], timeout_s=40)
    for p in range(PARTITIONS):
        deadline = time.monotonic() + 20
        while True:
            try:
                if cluster.read_all(1, "offline", p) == expected[p]:
                    break
            except AssertionError:
                pass
            assert time.monotonic() < deadline, f"broker 1 partition {p}"
            time.sleep(0.2)
        leader = cluster.partition("offline", p)["leader"]
        assert log_files(cluster.brokers[1].data_dir, "offline", p) == log_files(
            cluster.brokers[leader].data_dir, "offline", p
        )
