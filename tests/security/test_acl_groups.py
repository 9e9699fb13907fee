"""Consumer groups re-check TOPIC READ on every poll and heartbeat: a pattern subscription, or an ACL
removed after the member joined, never reads a topic the member may not read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.security.conftest import SUPER, acl

READER = "User:reader"


def _setup(client: Any, admin: dict[str, str]) -> None:
    for topic in ("a", "a.b"):
        assert client.post("/v1/topics", json={"name": topic}, headers=admin).status_code == 201
        assert client.post(f"/v1/topics/{topic}/records", json={"records": [{"value": topic}]},
                           headers=admin).status_code == 200
    bindings = [acl(READER, "TOPIC", "a", "READ"), acl(READER, "GROUP", "g", "READ")]
    assert client.post("/v1/acls", json={"acls": bindings}, headers=admin).status_code == 201


def _join(client: Any, headers: dict[str, str], **subscription: Any) -> str:
    answer = client.post("/v1/groups/g/members", headers=headers,
                         json={**subscription, "auto_offset_reset": "earliest"})
    assert answer.status_code == 201, answer.text
    member: str = answer.json()["member_id"]
    return member


def test_a_poll_stops_when_read_is_revoked(
    secured: Any, as_user: Callable[[str | None], dict[str, str]]
) -> None:
    admin, reader = as_user(SUPER), as_user(READER)
    _setup(secured, admin)
    member = _join(secured, reader, topics=["a"])
    polled = secured.get(f"/v1/groups/g/members/{member}/records", params={"max_wait_ms": 0}, headers=reader)
    assert polled.status_code == 200 and [r["value"] for r in polled.json()["records"]] == ["a"]
    removed = secured.delete("/v1/acls", params={"principal": READER, "resource_type": "TOPIC"},
                             headers=admin)
    assert len(removed.json()["acls"]) == 1
    refused = secured.get(f"/v1/groups/g/members/{member}/records", params={"max_wait_ms": 0}, headers=reader)
    assert refused.status_code == 404 and refused.json()["error_code"] == 40401


def test_a_pattern_cannot_reach_an_unreadable_topic(
    secured: Any, as_user: Callable[[str | None], dict[str, str]]
) -> None:
    admin, reader = as_user(SUPER), as_user(READER)
    _setup(secured, admin)
    member = _join(secured, reader, topic_pattern="a.*")  # matches a and a.b
    refused = secured.get(f"/v1/groups/g/members/{member}/records", params={"max_wait_ms": 0}, headers=reader)
    assert refused.status_code == 404, refused.text
    assert refused.json() == {**refused.json(), "error_code": 40401, "topic": "a.b"}
    # Nothing was consumed: the admin's view of the group's positions is unchanged (none committed).
    offsets = secured.get("/v1/groups/g/offsets", headers=admin).json()["offsets"]
    assert offsets == []


def test_an_event_stream_with_a_pattern_ends_with_an_error_event(
    secured: Any, as_user: Callable[[str | None], dict[str, str]]
) -> None:
    admin, reader = as_user(SUPER), as_user(READER)
    _setup(secured, admin)
    answer = secured.get("/v1/groups/g/events", headers=reader,
                         params={"topic_pattern": "a.*", "auto_offset_reset": "earliest"})
    assert answer.status_code == 200
    assert "event: error" in answer.text and "40401" in answer.text
    assert "event: record" not in answer.text
    refused = secured.get("/v1/groups/g/events", params={"topics": "a.b"}, headers=reader)
    assert refused.status_code == 404 and refused.json()["error_code"] == 40401


def test_committed_offsets_show_only_describable_topics(
    secured: Any, as_user: Callable[[str | None], dict[str, str]]
) -> None:
    admin, reader = as_user(SUPER), as_user(READER)
    _setup(secured, admin)
    commits = [{"topic": t, "partition": 0, "offset": 1} for t in ("a", "a.b")]
    assert secured.post("/v1/groups/g/offsets", json={"offsets": commits}, headers=admin).status_code == 204
    def topics(headers: dict[str, str]) -> list[str]:
        return [o["topic"] for o in secured.get("/v1/groups/g/offsets", headers=headers).json()["offsets"]]

    assert topics(admin) == ["a", "a.b"]
    assert topics(reader) == ["a"]
    described = secured.get("/v1/groups/g", headers=reader).json()
    assert [o["topic"] for o in described["offsets"]] == ["a"] and described["total_lag"] == 0
