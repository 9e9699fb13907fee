"""``POST /v1/fetch`` in a cluster: a partition led by another broker gets its own not-leader error
naming the leader (KIP-951), the partitions this broker leads are answered, nothing is redirected."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.cluster.harness import Cluster

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]


def test_partitions_led_elsewhere_get_a_not_leader_error_naming_the_leader(
    tmp_path: Path, pg_url: str
) -> None:
    cluster = Cluster(tmp_path, pg_url, size=2)
    try:
        cluster.start()
        cluster.wait_alive({0, 1})
        assert cluster.create_topic("many", 4, 1).status_code == 201
        leaders = {
            p: int(cluster.wait_partition("many", p, lambda s: s.get("leader") is not None)["leader"])
            for p in range(4)
        }
        assert set(leaders.values()) == {0, 1}, leaders  # placement spreads the leaders
        for p, leader in leaders.items():
            assert cluster.produce(leader, "many", p, [f"v{p}"], acks="all").status_code == 200
        body = {"partitions": [{"topic": "many", "partition": p, "offset": 0} for p in range(4)]}
        with httpx.Client(timeout=10) as http:
            answer = http.post(f"{cluster.url(0)}/v1/fetch", json=body)
        assert answer.status_code == 200 and not answer.history, answer.text
        for p, part in enumerate(answer.json()["partitions"]):
            if leaders[p] == 0:
                assert [r["value"] for r in part["records"]] == [f"v{p}"]
            else:
                assert part["error_code"] == 50304, part
                assert part["leader_id"] == 1
                assert part["leader_url"] == cluster.url(1)
    finally:
        cluster.stop()
