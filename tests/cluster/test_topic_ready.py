"""A topic is usable the moment its creation (or partition increase) is answered: the first acks=all
produce through any broker succeeds at once, with no retry."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.harness import Cluster

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]


def test_first_produce_through_every_broker_succeeds_right_after_creation(
    tmp_path: Path, pg_url: str
) -> None:
    cluster = Cluster(tmp_path, pg_url, size=3)
    try:
        cluster.start()
        cluster.wait_alive({0, 1, 2})
        for round_ in range(3):
            topic = f"ready-{round_}"
            created = cluster.http.post(
                f"{cluster.url(round_)}/v1/topics",
                json={
                    "name": topic,
                    "partitions": 3,
                    "replication_factor": 3,
                    "configs": {"min.insync.replicas": 2},
                },
            )
            assert created.status_code == 201, created.text
            assert all(p["leader"] is not None and len(p["isr"]) >= 2 for p in created.json()["partitions"])
            for via in (0, 1, 2):
                for partition in range(3):
                    answer = cluster.produce(via, topic, partition, [f"{via}-{partition}"], acks="all")
                    assert answer.status_code == 200, (via, partition, answer.text)
            # Topic-level produce through a broker that did not create it, at once too.
            answer = cluster.http.post(
                f"{cluster.url((round_ + 1) % 3)}/v1/topics/{topic}/records",
                params={"acks": "all"},
                json={"records": [{"key": "k", "value": 1}]},
            )
            assert answer.status_code == 200, answer.text
        grown = cluster.http.patch(f"{cluster.url(1)}/v1/topics/ready-0", json={"partitions": 5})
        assert grown.status_code == 200, grown.text
        for via in (0, 2):
            answer = cluster.produce(via, "ready-0", 4, ["new"], acks="all")
            assert answer.status_code == 200, answer.text
        # A creation that cannot be ready in time (min.insync.replicas above the live brokers once one is
        # down) answers 202 with the partitions that are not ready.
        cluster.brokers[2].kill()
        late = cluster.http.post(
            f"{cluster.url(0)}/v1/topics",
            params={"timeout_ms": 1500},
            json={
                "name": "late",
                "partitions": 2,
                "replication_factor": 3,
                "configs": {"min.insync.replicas": 3},
            },
        )
        assert late.status_code == 202, late.text
        assert late.json()["not_ready_partitions"] == [0, 1]
    finally:
        cluster.stop()
