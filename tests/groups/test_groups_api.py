"""The Groups API through TestClient: membership, heartbeats, polling, commits, offsets, resets, errors."""

from __future__ import annotations

import time
from typing import Any

import pytest


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"group_min_session_timeout_ms": 100}


def _topic(client: Any, name: str, partitions: int, records: int = 0) -> None:
    assert client.post("/v1/topics", json={"name": name, "partitions": partitions}).status_code == 201
    for partition in range(partitions):
        if records:
            body = {"records": [{"value": {"p": partition, "i": i}} for i in range(records)]}
            answer = client.post(f"/v1/topics/{name}/partitions/{partition}/records", json=body)
            assert answer.status_code == 200, answer.text


def _join(client: Any, group: str, **body: Any) -> dict[str, Any]:
    body.setdefault("topics", ["t"])
    answer = client.post(f"/v1/groups/{group}/members", json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _problem(answer: Any, status: int, code: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert body["error_code"] == code, body
    assert {"type", "title", "status", "detail"} <= set(body)
    return dict(body)


def test_join_heartbeat_leave_rebalances(client: Any) -> None:
    _topic(client, "t", 4)
    first = _join(client, "g", assignor="range")
    assert first["member_id"] and first["generation"] == 1
    assert [a["partition"] for a in first["assignment"]] == [0, 1, 2, 3]
    assert first["heartbeat_interval_ms"] > 0
    second = _join(client, "g", assignor="range")
    assert second["generation"] == 2
    beat = client.post(f"/v1/groups/g/members/{first['member_id']}/heartbeat")
    assert beat.status_code == 200
    mine = {a["partition"] for a in beat.json()["assignment"]}
    theirs = {a["partition"] for a in second["assignment"]}
    assert mine and theirs and not mine & theirs and mine | theirs == {0, 1, 2, 3}
    assert beat.json()["generation"] == 2

    described = client.get("/v1/groups/g").json()
    assert described["protocol"] == "range" and len(described["members"]) == 2
    assert client.get("/v1/groups").json()["groups"][0]["group_id"] == "g"

    assert client.delete(f"/v1/groups/g/members/{second['member_id']}").status_code == 204
    beat = client.post(f"/v1/groups/g/members/{first['member_id']}/heartbeat").json()
    assert beat["generation"] == 3 and len(beat["assignment"]) == 4
    _problem(client.post(f"/v1/groups/g/members/{second['member_id']}/heartbeat"), 404, 40403)
    _problem(client.delete(f"/v1/groups/g/members/{second['member_id']}"), 404, 40403)


def test_poll_commit_and_offsets(client: Any) -> None:
    _topic(client, "t", 2, records=5)
    member = _join(client, "g", auto_offset_reset="earliest")
    mid, generation = member["member_id"], member["generation"]
    seen = []
    for _ in range(5):
        answer = client.get(
            f"/v1/groups/g/members/{mid}/records", params={"max_records": 3, "max_wait_ms": 0}
        )
        assert answer.status_code == 200, answer.text
        seen += [(r["partition"], r["value"]["i"]) for r in answer.json()["records"]]
    assert sorted(seen) == [(p, i) for p in range(2) for i in range(5)]
    # Positions live in the catalog: nothing is delivered twice.
    again = client.get(f"/v1/groups/g/members/{mid}/records", params={"max_wait_ms": 0}).json()
    assert again["records"] == []
    assert {(p["partition"], p["offset"]) for p in again["positions"]} == {(0, 5), (1, 5)}

    commit = {
        "member_id": mid,
        "generation": generation,
        "offsets": [{"topic": "t", "partition": 0, "offset": 4}],
    }
    assert client.post("/v1/groups/g/offsets", json=commit).status_code == 204
    offsets = client.get("/v1/groups/g/offsets").json()["offsets"]
    assert offsets == [
        {
            "topic": "t",
            "partition": 0,
            "offset": 4,
            "metadata": None,
            "committed_at_ms": offsets[0]["committed_at_ms"],
            "high_watermark": 5,
            "lag": 1,
        }
    ]
    assert client.get("/v1/groups/g").json()["total_lag"] == 1

    stale = {**commit, "generation": generation - 1}
    _problem(client.post("/v1/groups/g/offsets", json=stale), 409, 40902)
    unknown = {**commit, "member_id": "nobody"}
    _problem(client.post("/v1/groups/g/offsets", json=unknown), 404, 40403)
    _problem(client.post("/v1/groups/g/offsets", json={"offsets": commit["offsets"]}), 409, 40903)
    _problem(client.delete("/v1/groups/g"), 409, 40903)
    reset = {"topics": ["t"], "to": "earliest"}
    _problem(client.post("/v1/groups/g/offsets/reset", json=reset), 409, 40903)


def test_commit_of_unowned_partition_is_refused(client: Any) -> None:
    _topic(client, "t", 2)
    a = _join(client, "g")
    b = _join(client, "g")
    beat = client.post(f"/v1/groups/g/members/{a['member_id']}/heartbeat").json()
    owned_by_b = b["assignment"][0]["partition"]
    assert owned_by_b not in {x["partition"] for x in beat["assignment"]}
    body = {
        "member_id": a["member_id"],
        "generation": beat["generation"],
        "offsets": [{"topic": "t", "partition": owned_by_b, "offset": 1}],
    }
    _problem(client.post("/v1/groups/g/offsets", json=body), 409, 40902)


def test_seek(client: Any) -> None:
    _topic(client, "t", 1, records=10)
    mid = _join(client, "g", auto_offset_reset="earliest")["member_id"]
    answer = client.post(
        f"/v1/groups/g/members/{mid}/seek", json={"topic": "t", "partition": 0, "to": "offset", "value": 7}
    )
    assert answer.json() == {"topic": "t", "partition": 0, "position": 7}
    records = client.get(f"/v1/groups/g/members/{mid}/records", params={"max_wait_ms": 0}).json()["records"]
    assert [r["offset"] for r in records] == [7, 8, 9]
    client.post(f"/v1/groups/g/members/{mid}/seek", json={"topic": "t", "partition": 0, "to": "earliest"})
    records = client.get(f"/v1/groups/g/members/{mid}/records", params={"max_wait_ms": 0}).json()["records"]
    assert [r["offset"] for r in records] == list(range(10))
    seek = {"topic": "t", "partition": 0, "to": "offset", "value": 99}
    _problem(client.post(f"/v1/groups/g/members/{mid}/seek", json=seek), 416, 41601)
    _problem(client.post(f"/v1/groups/g/members/{mid}/seek", json={**seek, "partition": 3}), 404, 40402)


def test_empty_group_offsets_reset_and_delete(client: Any) -> None:
    _topic(client, "t", 2, records=10)
    commit = {
        "offsets": [{"topic": "t", "partition": 0, "offset": 3}, {"topic": "t", "partition": 1, "offset": 9}]
    }
    assert client.post("/v1/groups/idle/offsets", json=commit).status_code == 204
    assert client.get("/v1/groups/idle").json()["state"] == "Empty"

    plan = client.post(
        "/v1/groups/idle/offsets/reset", json={"topics": ["t"], "to": "shift_by", "value": 5, "dry_run": True}
    )
    assert plan.status_code == 200, plan.text
    assert [(e["previous_offset"], e["offset"]) for e in plan.json()["offsets"]] == [(3, 8), (9, 10)]
    assert [o["offset"] for o in client.get("/v1/groups/idle/offsets").json()["offsets"]] == [3, 9]
    applied = client.post(
        "/v1/groups/idle/offsets/reset", json={"topics": ["t"], "partitions": [1], "to": "earliest"}
    )
    assert applied.json()["dry_run"] is False
    assert [o["offset"] for o in client.get("/v1/groups/idle/offsets").json()["offsets"]] == [3, 0]

    # A member starts from the committed offsets.
    mid = _join(client, "idle", auto_offset_reset="none")["member_id"]
    records = client.get(f"/v1/groups/idle/members/{mid}/records", params={"max_wait_ms": 0}).json()[
        "records"
    ]
    assert sorted((r["partition"], r["offset"]) for r in records) == [(0, o) for o in range(3, 10)] + [
        (1, o) for o in range(10)
    ]
    assert client.delete(f"/v1/groups/idle/members/{mid}").status_code == 204
    assert client.delete("/v1/groups/idle").status_code == 204
    _problem(client.get("/v1/groups/idle"), 404, 40404)
    _problem(client.get("/v1/groups/idle/offsets"), 404, 40404)
    _problem(
        client.post(
            "/v1/groups/x/offsets", json={"offsets": [{"topic": "nope", "partition": 0, "offset": 1}]}
        ),
        404,
        40401,
    )


def test_auto_offset_reset_none_without_commit(client: Any) -> None:
    _topic(client, "t", 1, records=1)
    mid = _join(client, "g", auto_offset_reset="none")["member_id"]
    body = _problem(client.get(f"/v1/groups/g/members/{mid}/records", params={"max_wait_ms": 0}), 422, 42206)
    assert body["topic"] == "t" and body["partition"] == 0


def test_latest_position_is_pinned_at_first_poll(client: Any) -> None:
    _topic(client, "t", 1, records=3)
    mid = _join(client, "g")["member_id"]  # auto_offset_reset=latest
    assert (
        client.get(f"/v1/groups/g/members/{mid}/records", params={"max_wait_ms": 0}).json()["records"] == []
    )
    client.post("/v1/topics/t/partitions/0/records", json={"records": [{"value": "new"}]})
    records = client.get(f"/v1/groups/g/members/{mid}/records", params={"max_wait_ms": 0}).json()["records"]
    assert [(r["offset"], r["value"]) for r in records] == [(3, "new")]


def test_session_expiry_and_static_membership(client: Any) -> None:
    _topic(client, "t", 2)
    static = _join(client, "g", instance_id="worker-1", session_timeout_ms=400)
    other = _join(client, "g", session_timeout_ms=5000)
    before = client.get("/v1/groups/g").json()
    # The static member restarts within its session: same partitions, no rebalance, new member id.
    again = _join(client, "g", instance_id="worker-1", session_timeout_ms=400)
    assert again["member_id"] != static["member_id"]
    assert again["generation"] == before["generation"]
    old = next(m for m in before["members"] if m["member_id"] == static["member_id"])
    assert again["assignment"] == old["assignment"]
    _problem(client.post(f"/v1/groups/g/members/{static['member_id']}/heartbeat"), 404, 40403)
    # Its session then times out: it is removed and the other member takes everything.
    time.sleep(0.6)
    beat = client.post(f"/v1/groups/g/members/{other['member_id']}/heartbeat").json()
    assert len(beat["assignment"]) == 2 and beat["generation"] > before["generation"]
    _problem(client.post(f"/v1/groups/g/members/{again['member_id']}/heartbeat"), 404, 40403)


def test_cooperative_rebalance_revokes_before_assigning(client: Any) -> None:
    _topic(client, "t", 4)
    a = _join(client, "g", assignor="cooperative-sticky")
    b = _join(client, "g", assignor="cooperative-sticky")
    assert b["assignment"] == []  # nothing is free yet: a must let go first
    beat = client.post(f"/v1/groups/g/members/{a['member_id']}/heartbeat").json()
    assert len(beat["assignment"]) == 2 and len(beat["revoking"]) == 2
    assert client.get("/v1/groups/g").json()["state"] == "PreparingRebalance"
    # a acknowledges (its next heartbeat after hearing of the revocation): the partitions move.
    client.post(f"/v1/groups/g/members/{a['member_id']}/heartbeat", json={"generation": beat["generation"]})
    beat_b = client.post(f"/v1/groups/g/members/{b['member_id']}/heartbeat").json()
    assert len(beat_b["assignment"]) == 2
    assert {x["partition"] for x in beat_b["assignment"]} == {x["partition"] for x in beat["revoking"]}
    client.post(f"/v1/groups/g/members/{a['member_id']}/heartbeat")
    assert client.get("/v1/groups/g").json()["state"] == "Stable"
    mixed = client.post("/v1/groups/g/members", json={"topics": ["t"], "assignor": "range"})
    _problem(mixed, 422, 42204)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"topics": ["t"], "session_timeout_ms": 50}, 422, 42207),
        ({"topics": ["t"], "session_timeout_ms": 10_000_000}, 422, 42207),
        ({"topics": ["t"], "topic_pattern": "t.*"}, 422, 42204),
        ({"topic_pattern": "("}, 422, 42220),
        ({"topics": []}, 422, 42204),
        ({"topics": ["t"], "assignor": "sticky"}, 422, 42204),
        ({"topics": ["t"], "auto_offset_reset": "middle"}, 422, 42204),
        ({"topics": "t", "unknown": 1}, 422, 42204),
    ],
)
def test_join_errors(client: Any, body: dict[str, Any], status: int, code: int) -> None:
    _problem(client.post("/v1/groups/g/members", json=body), status, code)


def test_request_errors(client: Any) -> None:
    _topic(client, "t", 1)
    mid = _join(client, "g")["member_id"]
    _problem(client.get(f"/v1/groups/g/members/{mid}/records", params={"max_records": 0}), 422, 42204)
    _problem(client.get(f"/v1/groups/g/members/{mid}/records", params={"max_wait_ms": 10**9}), 422, 42204)
    _problem(client.get("/v1/groups/g/members/nobody/records"), 404, 40403)
    _problem(
        client.post("/v1/groups/g/offsets", content=b"{", headers={"content-type": "application/json"}),
        400,
        40001,
    )
    _problem(
        client.post("/v1/groups/g/offsets", content=b"x", headers={"content-type": "text/plain"}), 415, 41501
    )
    commit = {"member_id": mid, "offsets": [{"topic": "t", "partition": 0, "offset": 1}]}
    _problem(client.post("/v1/groups/g/offsets", json=commit), 422, 42204)
    _problem(client.get("/v1/groups/nothing"), 404, 40404)
    _problem(client.delete("/v1/groups/nothing"), 404, 40404)
    _problem(
        client.post("/v1/groups/g/offsets/reset", json={"topics": ["nope"], "to": "latest", "dry_run": True}),
        404,
        40401,
    )


def test_pattern_subscription_follows_new_topics(client: Any) -> None:
    _topic(client, "logs.a", 1)
    mid = _join(client, "g", topics=None, topic_pattern=r"logs\..*")["member_id"]
    _topic(client, "logs.b", 2)
    _topic(client, "other", 1)
    beat = client.post(f"/v1/groups/g/members/{mid}/heartbeat").json()
    assert sorted((a["topic"], a["partition"]) for a in beat["assignment"]) == [
        ("logs.a", 0),
        ("logs.b", 0),
        ("logs.b", 1),
    ]


def test_polls_rotate_across_partitions(client: Any) -> None:
    _topic(client, "t", 3, records=50)
    mid = _join(client, "g", auto_offset_reset="earliest")["member_id"]
    firsts = []
    for _ in range(3):
        records = client.get(
            f"/v1/groups/g/members/{mid}/records", params={"max_records": 10, "max_wait_ms": 0}
        )
        body = records.json()["records"]
        assert len(body) == 10
        firsts.append(body[0]["partition"])
    # A busy partition cannot starve the others: each poll starts from the next partition.
    assert sorted(firsts) == [0, 1, 2]


def test_periodic_sweep_expires_silent_members(client: Any) -> None:
    _topic(client, "t", 1)
    _join(client, "g", session_timeout_ms=150)
    assert client.get("/v1/groups").json()["groups"][0]["members"] == 1
    # The list reads the catalog as the sweeps left it (it settles nothing itself): only the
    # broker's periodic sweep can have removed the member.
    deadline = time.monotonic() + 5
    while client.get("/v1/groups").json()["groups"][0]["members"] and time.monotonic() < deadline:
        time.sleep(0.1)
    summary = client.get("/v1/groups").json()["groups"][0]
    assert summary["members"] == 0 and summary["state"] == "Empty"


def test_deleted_topic_leaves_the_assignment(client: Any) -> None:
    _topic(client, "t", 2, records=1)
    _topic(client, "u", 1, records=1)
    mid = _join(client, "g", topics=["t", "u"], auto_offset_reset="earliest")["member_id"]
    assert client.delete("/v1/topics/t").status_code == 204
    answer = client.get(f"/v1/groups/g/members/{mid}/records", params={"max_wait_ms": 0})
    assert answer.status_code == 200, answer.text
    assert answer.json()["assignment"] == [{"topic": "u", "partition": 0}]
    assert [(r["topic"], r["offset"]) for r in answer.json()["records"]] == [("u", 0)]


def test_seek_and_reset_by_timestamp_offset_and_latest(client: Any) -> None:
    assert client.post("/v1/topics", json={"name": "t", "partitions": 1}).status_code == 201
    records = [{"value": i, "timestamp": 1_000 * (i + 1)} for i in range(5)]  # 1000, 2000, … 5000
    assert client.post("/v1/topics/t/partitions/0/records", json={"records": records}).status_code == 200
    mid = _join(client, "g", auto_offset_reset="earliest")["member_id"]
    seek = {"topic": "t", "partition": 0, "to": "timestamp", "value": 2_500}
    assert client.post(f"/v1/groups/g/members/{mid}/seek", json=seek).json()["position"] == 2
    seek = {"topic": "t", "partition": 0, "to": "latest"}
    assert client.post(f"/v1/groups/g/members/{mid}/seek", json=seek).json()["position"] == 5
    client.delete(f"/v1/groups/g/members/{mid}")
    for to, value, expected in [
        ("timestamp", 3_000, 2),
        ("offset", 4, 4),
        ("offset", 99, 5),
        ("latest", None, 5),
    ]:
        body = {"topics": ["t"], "to": to, "value": value}
        plan = client.post("/v1/groups/g/offsets/reset", json=body)
        assert plan.status_code == 200, plan.text
        assert plan.json()["offsets"][0]["offset"] == expected, (to, value)
    _problem(client.post("/v1/groups/g/offsets/reset", json={"topics": ["t"], "to": "offset"}), 422, 42204)
