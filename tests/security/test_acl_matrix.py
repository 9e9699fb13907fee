"""The ACL matrix: every route by the principals of the issue, against a table written by hand.

The callers and their ACLs (topics ``a``, ``a.b``, ``b``, ``pub``; group ``g``):

- ``User:admin``: a super user, no ACL;
- ``User:reader``: LITERAL READ on topic ``a`` (and READ on group ``g``, to consume with it);
- ``User:writer``: PREFIXED WRITE on topics ``a.``;
- ``User:mixed``: PREFIXED DENY ALL on ``a.``, LITERAL ALLOW ALL on ``a.b`` (the DENY wins);
- ``User:someone``: nothing of its own, only what ``User:*`` has: LITERAL READ on topic ``pub``;
- anonymous (``User:ANONYMOUS``): the same ``User:*`` binding applies;
- ``User:split``: READ on topic ``a`` and ALTER_CONFIGS on topic ``b``.

``ALLOWED`` below is what each caller may do to each topic, written from the rules of the issue
(implied DESCRIBE for READ/WRITE/DELETE/ALTER, DESCRIBE_CONFIGS for ALTER_CONFIGS, DENY first), not
from the code. An answer is "ok" (the operation ran; any status but a refusal), "403" (40311/40312/
40313: the caller may describe the resource but not do this) or "404" (40401/40404: exactly as if
the resource did not exist).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.security.conftest import acl

ADMIN, READER, WRITER, MIXED, SOMEONE, ANON, SPLIT = (
    "User:admin", "User:reader", "User:writer", "User:mixed", "User:someone", None, "User:split"
)
PRINCIPALS = [ADMIN, READER, WRITER, MIXED, SOMEONE, ANON, SPLIT]
TOPICS = ["a", "a.b", "b", "pub"]
EVERYTHING = {"READ", "WRITE", "DELETE", "ALTER", "DESCRIBE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS"}
PUBLIC = {"pub": {"READ", "DESCRIBE"}}

#: caller → topic → the operations it may do there (missing topic: none).
ALLOWED: dict[str | None, dict[str, set[str]]] = {
    ADMIN: {t: EVERYTHING for t in TOPICS},
    READER: {"a": {"READ", "DESCRIBE"}, **PUBLIC},
    WRITER: {"a.b": {"WRITE", "DESCRIBE"}, **PUBLIC},
    MIXED: {**PUBLIC},
    SOMEONE: {**PUBLIC},
    ANON: {**PUBLIC},
    SPLIT: {"a": {"READ", "DESCRIBE"}, "b": {"ALTER_CONFIGS", "DESCRIBE_CONFIGS"}, **PUBLIC},
}

#: caller → the topics ``GET /v1/topics`` lists.
LISTED = {ADMIN: TOPICS, READER: ["a", "pub"], WRITER: ["a.b", "pub"], MIXED: ["pub"],
          SOMEONE: ["pub"], ANON: ["pub"], SPLIT: ["a", "pub"]}

#: The topic routes, each with the one operation it needs; destructive ones last.
TOPIC_ROUTES: list[tuple[str, str, str, Any]] = [
    ("DESCRIBE", "GET", "/v1/topics/{t}", None),
    ("DESCRIBE_CONFIGS", "GET", "/v1/topics/{t}/configs", None),
    ("DESCRIBE", "GET", "/v1/topics/{t}/partitions/0/offsets", None),
    ("READ", "GET", "/v1/topics/{t}/partitions/0/records?offset=0", None),
    ("WRITE", "POST", "/v1/topics/{t}/records", {"records": [{"value": "x"}]}),
    ("WRITE", "POST", "/v1/topics/{t}/partitions/0/records", {"records": [{"value": "y"}]}),
    ("ALTER_CONFIGS", "PUT", "/v1/topics/{t}/configs", {"configs": {"retention.ms": 3_600_000}}),
    ("ALTER", "PATCH", "/v1/topics/{t}", {"partitions": 2}),
    ("DELETE", "POST", "/v1/topics/{t}/partitions/0/delete-records", {"offset": 0}),
    ("DELETE", "DELETE", "/v1/topics/{t}", None),
]

#: Routes on the group and the cluster: caller → expected answer.
ONLY_ADMIN = {p: "403" for p in PRINCIPALS} | {ADMIN: "ok"}
HIDDEN_GROUP = {p: "404" for p in PRINCIPALS} | {ADMIN: "ok"}
OTHER_ROUTES: list[tuple[str, str, Any, dict[str | None, str]]] = [
    ("GET", "/v1/cluster", None, {p: "ok" for p in PRINCIPALS}),
    ("GET", "/v1/log-dirs", None, ONLY_ADMIN),
    ("GET", "/v1/acls", None, ONLY_ADMIN),
    ("GET", "/v1/quotas", None, ONLY_ADMIN),
    ("POST", "/v1/topics", {"name": "a.new"}, ONLY_ADMIN),  # nobody but the admin may CREATE
    ("POST", "/v1/producers", None, ONLY_ADMIN | {WRITER: "ok"}),  # WRITE on some topic (KIP-679)
    ("POST", "/v1/topics/a/partitions/0/reassign", {"replicas": [0]}, ONLY_ADMIN),
    ("GET", "/internal/v1/replication/a/0?replica_id=1&leader_epoch=0&offset=0", None, ONLY_ADMIN),
    ("GET", "/v1/groups/g", None, HIDDEN_GROUP | {READER: "ok"}),
    ("GET", "/v1/groups/g/offsets", None, HIDDEN_GROUP | {READER: "ok"}),
    ("POST", "/v1/groups/g/offsets", {"offsets": [{"topic": "a", "partition": 0, "offset": 1}]},
     HIDDEN_GROUP | {READER: "ok"}),
    ("POST", "/v1/groups/g/offsets", {"offsets": [{"topic": "b", "partition": 0, "offset": 1}]},
     HIDDEN_GROUP | {READER: "404"}),  # READ on the group, not on topic b
    ("POST", "/v1/groups/g/members/m-1/heartbeat", None, HIDDEN_GROUP | {READER: "ok"}),
    ("POST", "/v1/groups/g/members", {"topics": ["a.b"]}, HIDDEN_GROUP | {READER: "404"}),
    ("DELETE", "/v1/groups/g", None, HIDDEN_GROUP | {READER: "403"}),
    ("POST", "/v1/acls", {"acls": [acl("User:x", "TOPIC", "x", "READ")]}, ONLY_ADMIN),
    ("DELETE", "/v1/acls?principal=User:x", None, ONLY_ADMIN),
]

SETUP_ACLS = [
    acl(READER, "TOPIC", "a", "READ"), acl(READER, "GROUP", "g", "READ"),
    acl(WRITER, "TOPIC", "a.", "WRITE", pattern="PREFIXED"),
    acl(MIXED, "TOPIC", "a.", "ALL", pattern="PREFIXED", permission="DENY"),
    acl(MIXED, "TOPIC", "a.b", "ALL"),
    acl("User:*", "TOPIC", "pub", "READ"),
    acl(SPLIT, "TOPIC", "a", "READ"), acl(SPLIT, "TOPIC", "b", "ALTER_CONFIGS"),
]


def expected(principal: str | None, operation: str, topic: str) -> str:
    ops = ALLOWED[principal].get(topic, set())
    if operation in ops:
        return "ok"
    return "403" if "DESCRIBE" in ops else "404"


def outcome(answer: Any) -> str:
    if answer.status_code in (403, 404) and answer.headers.get("content-type", "").startswith(
        "application/problem+json"
    ):
        code = answer.json()["error_code"]
        if code in (40311, 40312, 40313):
            return "403"
        if code in (40401, 40404):
            return "404"
    assert answer.status_code < 500, answer.text
    return "ok"


@pytest.fixture
def world(secured: Any, as_user: Callable[[str | None], dict[str, str]]) -> Any:
    admin = as_user(ADMIN)
    for topic in TOPICS:
        assert secured.post("/v1/topics", json={"name": topic}, headers=admin).status_code == 201
    assert secured.post("/v1/groups/g/offsets", headers=admin,
                        json={"offsets": [{"topic": "a", "partition": 0, "offset": 0}]}).status_code == 204
    assert secured.post("/v1/acls", json={"acls": SETUP_ACLS}, headers=admin).status_code == 201
    return secured


def _call(client: Any, headers: dict[str, str], method: str, path: str, body: Any) -> Any:
    return client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("principal", PRINCIPALS, ids=lambda p: p or "anonymous")
def test_topic_routes(
    world: Any, as_user: Callable[[str | None], dict[str, str]], principal: str | None
) -> None:
    headers = as_user(principal)
    got, want = {}, {}
    for operation, method, template, body in TOPIC_ROUTES:
        for topic in TOPICS:
            key = f"{method} {template.format(t=topic)}"
            got[key] = outcome(_call(world, headers, method, template.format(t=topic), body))
            want[key] = expected(principal, operation, topic)
    assert got == want


@pytest.mark.parametrize("principal", PRINCIPALS, ids=lambda p: p or "anonymous")
def test_group_and_cluster_routes(
    world: Any, as_user: Callable[[str | None], dict[str, str]], principal: str | None
) -> None:
    headers = as_user(principal)
    got = {f"{m} {p} {b}": outcome(_call(world, headers, m, p, b)) for m, p, b, _ in OTHER_ROUTES}
    want = {f"{m} {p} {b}": e[principal] for m, p, b, e in OTHER_ROUTES}
    assert got == want


@pytest.mark.parametrize("principal", PRINCIPALS, ids=lambda p: p or "anonymous")
def test_lists_show_only_what_the_caller_may_describe(
    world: Any, as_user: Callable[[str | None], dict[str, str]], principal: str | None
) -> None:
    headers = as_user(principal)
    topics = [t["name"] for t in world.get("/v1/topics", headers=headers).json()["topics"]]
    assert topics == LISTED[principal]
    groups = [g["group_id"] for g in world.get("/v1/groups", headers=headers).json()["groups"]]
    assert groups == (["g"] if principal in (ADMIN, READER) else [])


def test_a_hidden_topic_answers_exactly_like_a_missing_one(
    world: Any, as_user: Callable[[str | None], dict[str, str]]
) -> None:
    hidden = world.get("/v1/topics/b", headers=as_user(READER))
    missing = world.get("/v1/topics/nope", headers=as_user(ADMIN))
    assert hidden.status_code == missing.status_code == 404
    blank = {"detail": None, "topic": None}
    assert {**hidden.json(), **blank} == {**missing.json(), **blank}
    assert hidden.json()["detail"] == "topic 'b' does not exist"


def test_read_on_a_and_alter_configs_on_b_never_alters_a(
    world: Any, as_user: Callable[[str | None], dict[str, str]]
) -> None:
    split, admin = as_user(SPLIT), as_user(ADMIN)
    before = world.get("/v1/topics/a/configs", headers=admin).json()["configs"]["retention.ms"]
    refused = world.put("/v1/topics/a/configs", json={"configs": {"retention.ms": 1000}}, headers=split)
    assert refused.status_code == 403 and refused.json()["error_code"] == 40311
    assert world.get("/v1/topics/a/configs", headers=admin).json()["configs"]["retention.ms"] == before
    changed = world.put("/v1/topics/b/configs", json={"configs": {"retention.ms": 1000}}, headers=split)
    assert changed.status_code == 200
    assert world.get("/v1/topics/b/configs", headers=admin).json()["configs"]["retention.ms"] == 1000


def test_authorized_operations_on_request(
    world: Any, as_user: Callable[[str | None], dict[str, str]]
) -> None:
    reader = as_user(READER)
    topic = world.get("/v1/topics/a?include_authorized_operations=true", headers=reader).json()
    assert topic["authorized_operations"] == ["READ", "DESCRIBE"]
    assert world.get("/v1/topics/a", headers=reader).json().get("authorized_operations") is None
    group = world.get("/v1/groups/g?include_authorized_operations=true", headers=reader).json()
    assert group["authorized_operations"] == ["READ", "DESCRIBE"]
    cluster = world.get("/v1/cluster?include_authorized_operations=true", headers=reader).json()
    assert cluster["authorized_operations"] == []
    admin = world.get("/v1/cluster?include_authorized_operations=true", headers=as_user(ADMIN)).json()
    assert {"CREATE", "ALTER", "DESCRIBE"} <= set(admin["authorized_operations"])
