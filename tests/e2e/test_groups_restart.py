"""Group positions and committed offsets survive a broker restart (SIGTERM and SIGKILL)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.broker_process import BrokerProcess

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
def test_positions_and_commits_survive_a_restart(
    broker_factory: Callable[..., BrokerProcess], kill: bool
) -> None:
    broker = broker_factory("restart")
    with broker.client() as client:
        assert client.post("/v1/topics", json={"name": "t", "partitions": 2}).status_code == 201
        for partition in range(2):
            body = {"records": [{"value": i} for i in range(10)]}
            assert client.post(f"/v1/topics/t/partitions/{partition}/records", json=body).status_code == 200
        joined = client.post(
            "/v1/groups/g/members",
            json={"topics": ["t"], "auto_offset_reset": "earliest", "session_timeout_ms": 60_000},
        ).json()
        member, generation = joined["member_id"], joined["generation"]
        first = client.get(
            f"/v1/groups/g/members/{member}/records", params={"max_records": 6, "max_wait_ms": 0}
        )
        seen = [(r["partition"], r["offset"]) for r in first.json()["records"]]
        assert len(seen) == 6
        commit = {
            "member_id": member,
            "generation": generation,
            "offsets": [{"topic": "t", "partition": 1, "offset": 3}],
        }
        assert client.post("/v1/groups/g/offsets", json=commit).status_code == 204
    broker.restart(kill=kill)
    with broker.client() as client:
        # The member's session (60 s) outlives the restart: it carries on where its positions say.
        while len(seen) < 20:
            answer = client.get(f"/v1/groups/g/members/{member}/records", params={"max_wait_ms": 0})
            assert answer.status_code == 200, answer.text
            batch = [(r["partition"], r["offset"]) for r in answer.json()["records"]]
            assert batch, f"records missing after the restart; seen {sorted(seen)}"
            seen += batch
        assert sorted(seen) == [(p, o) for p in range(2) for o in range(10)]
        offsets = client.get("/v1/groups/g/offsets").json()["offsets"]
        assert [(o["partition"], o["offset"], o["lag"]) for o in offsets] == [(1, 3, 7)]
