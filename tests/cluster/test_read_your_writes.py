"""Read-your-writes through any broker: after an acks=all produce is acknowledged, a fetch, a group
poll and an SSE stream through any broker return the record; follower reads are an opt-in."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.cluster.harness import Cluster

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]


def test_acknowledged_records_are_read_through_every_broker(tmp_path: Path, pg_url: str) -> None:
    # A slow follower fetch loop makes a follower's own high watermark lag for long enough to see.
    cluster = Cluster(tmp_path, pg_url, size=3, replica_fetch_wait_max_ms=2000)
    try:
        cluster.start()
        cluster.wait_alive({0, 1, 2})
        assert cluster.create_topic("ryw", 1, 3, min_insync_replicas=2).status_code == 201
        leader = int(cluster.partition("ryw", 0)["leader"])
        followers = [b for b in (0, 1, 2) if b != leader]
        redirected = 0
        with httpx.Client(timeout=10, follow_redirects=True) as http:
            for i in range(20):
                answer = cluster.produce(leader, "ryw", 0, [f"v{i}"], acks="all")
                assert answer.status_code == 200, answer.text
                offset = answer.json()["results"][0]["offset"]
                for via in followers:
                    url = f"{cluster.url(via)}/v1/topics/ryw/partitions/0/records"
                    got = http.get(url, params={"offset": offset})
                    assert got.status_code == 200, got.text
                    assert [r["value"] for r in got.json()["records"]][:1] == [f"v{i}"]
                    redirected += len(got.history)
            assert redirected == 2 * 20, "a follower sends partition reads to the leader"
            # replica=any: the follower answers itself, from its own log (it may lag).
            own = http.get(
                f"{cluster.url(followers[0])}/v1/topics/ryw/partitions/0/records",
                params={"offset": 0, "replica": "any"},
            )
            assert own.status_code == 200 and not own.history
            # A group poll through a follower sees every acknowledged record (ReadIndex).
            joined = http.post(
                f"{cluster.url(followers[1])}/v1/groups/g/members",
                json={"topics": ["ryw"], "auto_offset_reset": "earliest"},
            ).json()
            member = joined["member_id"]
            seen: list[str] = []
            deadline = time.monotonic() + 20
            while len(seen) < 20 and time.monotonic() < deadline:
                polled = http.get(
                    f"{cluster.url(followers[1])}/v1/groups/g/members/{member}/records",
                    params={"max_wait_ms": 500},
                )
                assert polled.status_code == 200, polled.text
                seen += [r["value"] for r in polled.json()["records"]]
            assert seen == [f"v{i}" for i in range(20)]
            # Produce once more and poll at once through the follower: the record is there.
            assert cluster.produce(leader, "ryw", 0, ["last"], acks="all").status_code == 200
            polled = http.get(
                f"{cluster.url(followers[1])}/v1/groups/g/members/{member}/records", params={"max_wait_ms": 0}
            )
            assert [r["value"] for r in polled.json()["records"]] == ["last"]
    finally:
        cluster.stop()
