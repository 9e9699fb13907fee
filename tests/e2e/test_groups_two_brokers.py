"""Two real broker processes sharing one catalog serve one group's requests alternately.

This is what a load balancer in front of several brokers does: a member joins through one process,
heartbeats, polls and commits through whichever process gets the request. Group state (members,
generations, assignments, positions, commits) lives only in the shared catalog, so every request
works on either process. Runs on a shared SQLite file and on PostgreSQL.

Each process has its own data directory; the test produces the same records to both, so their logs
hold identical records at identical offsets (what replication gives a cluster).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.broker_process import BrokerProcess

pytestmark = pytest.mark.e2e
PARTITIONS = 4
PER_PARTITION = 25


def _run(brokers: list[BrokerProcess]) -> None:
    clients = [httpx.Client(base_url=broker.url, timeout=15.0) for broker in brokers]
    try:
        _scenario(clients)
    finally:
        for client in clients:
            client.close()


def _scenario(clients: list[httpx.Client]) -> None:
    first, second = clients
    for client in clients:  # identical records at identical offsets on both brokers
        for partition in range(PARTITIONS):
            body = {"records": [{"value": {"p": partition, "i": i}} for i in range(PER_PARTITION)]}
            answer = client.post(f"/v1/topics/t/partitions/{partition}/records", json=body)
            assert answer.status_code == 200, answer.text

    join = {"topics": ["t"], "auto_offset_reset": "earliest", "session_timeout_ms": 3000}
    m1 = first.post("/v1/groups/lb/members", json=join).json()
    m2 = second.post("/v1/groups/lb/members", json=join).json()
    assert m2["generation"] == m1["generation"] + 1  # one generation sequence across both processes
    members = [m1["member_id"], m2["member_id"]]

    # Each member follows the rebalance by heartbeating through the *other* process.
    assignments = {}
    for index, member in enumerate(members):
        beat = clients[1 - index].post(f"/v1/groups/lb/members/{member}/heartbeat")
        assert beat.status_code == 200, beat.text
        assignments[member] = {a["partition"] for a in beat.json()["assignment"]}
    assert assignments[members[0]].isdisjoint(assignments[members[1]])
    assert assignments[members[0]] | assignments[members[1]] == set(range(PARTITIONS))

    # Polls alternate between the processes; positions live in the catalog, so nothing is lost or
    # delivered twice although consecutive polls of a member land on different processes.
    seen: dict[str, list[tuple[int, int]]] = {member: [] for member in members}
    for turn in range(24):
        member = members[turn % 2]
        client = clients[(turn // 2) % 2]
        answer = client.get(
            f"/v1/groups/lb/members/{member}/records", params={"max_records": 7, "max_wait_ms": 0}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        seen[member] += [(r["partition"], r["offset"]) for r in body["records"]]
        assert {r["partition"] for r in body["records"]} <= assignments[member]
    everything = seen[members[0]] + seen[members[1]]
    assert sorted(everything) == [(p, o) for p in range(PARTITIONS) for o in range(PER_PARTITION)]
    assert len(set(everything)) == len(everything)

    # Commit through one process, read the offsets and lag through the other.
    beat = first.post(f"/v1/groups/lb/members/{members[0]}/heartbeat").json()
    owned = sorted(assignments[members[0]])
    commit = {
        "member_id": members[0],
        "generation": beat["generation"],
        "offsets": [{"topic": "t", "partition": p, "offset": PER_PARTITION} for p in owned],
    }
    assert second.post("/v1/groups/lb/offsets", json=commit).status_code == 204
    offsets = first.get("/v1/groups/lb/offsets").json()["offsets"]
    assert {(o["partition"], o["offset"], o["lag"]) for o in offsets} == {
        (p, PER_PARTITION, 0) for p in owned
    }
    stale = {**commit, "generation": beat["generation"] - 1}
    assert first.post("/v1/groups/lb/offsets", json=stale).json()["error_code"] == 40902

    # A member that joins through one process and goes silent is expired by the other.
    silent = first.post("/v1/groups/lb/members", json={**join, "session_timeout_ms": 300}).json()
    time.sleep(0.6)
    beat = second.post(f"/v1/groups/lb/members/{members[0]}/heartbeat").json()
    gone = first.post(f"/v1/groups/lb/members/{silent['member_id']}/heartbeat")
    assert gone.status_code == 404 and gone.json()["error_code"] == 40403

    # Leaving through one process hands everything to the remaining member on the other.
    assert first.delete(f"/v1/groups/lb/members/{members[1]}").status_code == 204
    beat = second.post(f"/v1/groups/lb/members/{members[0]}/heartbeat").json()
    assert {a["partition"] for a in beat["assignment"]} == set(range(PARTITIONS))
    described = [client.get("/v1/groups/lb").json() for client in clients]
    assert described[0]["generation"] == described[1]["generation"]
    assert [m["member_id"] for m in described[1]["members"]] == [members[0]]


def _start_pair(factory: Callable[..., BrokerProcess], catalog_url: str) -> list[BrokerProcess]:
    settings: dict[str, Any] = {"catalog_url": catalog_url, "group_min_session_timeout_ms": 100}
    a = factory("a", **settings)
    with a.client() as client:  # created once in the shared catalog; b opens it at start-up
        assert client.post("/v1/topics", json={"name": "t", "partitions": PARTITIONS}).status_code == 201
    b = factory("b", broker_id=1, **settings)
    return [a, b]


def test_two_brokers_sqlite(broker_factory: Callable[..., BrokerProcess], tmp_path: Path) -> None:
    _run(_start_pair(broker_factory, f"sqlite:///{tmp_path / 'shared-catalog.db'}"))


@pytest.mark.postgres
def test_two_brokers_postgres(broker_factory: Callable[..., BrokerProcess], pg_url: str) -> None:
    _run(_start_pair(broker_factory, pg_url))
