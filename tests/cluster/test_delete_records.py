"""DeleteRecords in a cluster: the leader moves its log start, the followers follow on their next fetch,
and a request through a follower is redirected to the leader (nothing done there)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.cluster.harness import Cluster

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]


def test_followers_move_their_log_start_with_the_leader(tmp_path: Path, pg_url: str) -> None:
    cluster = Cluster(tmp_path, pg_url, size=3)
    try:
        cluster.start()
        cluster.wait_alive({0, 1, 2})
        assert cluster.create_topic("dr", 1, 3, min_insync_replicas=2).status_code in (201, 202)
        state = cluster.wait_partition("dr", 0, lambda p: p["leader"] is not None and len(p["isr"]) == 3)
        leader = state["leader"]
        deadline = time.monotonic() + 20
        while cluster.produce(leader, "dr", 0, [f"v{i}" for i in range(20)]).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        follower = next(b for b in (0, 1, 2) if b != leader)
        # Through a follower: redirected to the leader, which deletes.
        answer = cluster.http.post(
            f"{cluster.url(follower)}/v1/topics/dr/partitions/0/delete-records",
            json={"offset": 12},
            follow_redirects=True,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["low_watermark"] == 12

        def starts() -> dict[int, int]:
            return {
                b: cluster.http.get(
                    f"{cluster.url(b)}/v1/topics/dr/partitions/0/offsets", params={"replica": "any"}
                ).json()["log_start_offset"]
                for b in (0, 1, 2)
            }

        deadline = time.monotonic() + 20
        while set(starts().values()) != {12}:
            assert time.monotonic() < deadline, starts()
            time.sleep(0.2)
        # Every replica still serves exactly the records from 12 on.
        for broker_id in (0, 1, 2):
            answer = cluster.http.get(
                f"{cluster.url(broker_id)}/v1/topics/dr/partitions/0/records",
                params={"offset": 12, "replica": "any"},
                follow_redirects=True,
            )
            assert [r["value"] for r in answer.json()["records"]] == [f"v{i}" for i in range(12, 20)]
    finally:
        cluster.stop()
