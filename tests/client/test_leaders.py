"""The client's leader routing (tidelog/_leaders.py) against scripted brokers (``httpx.MockTransport``):
307s followed with method and body, leaders remembered and forgotten, redirects bounded, and a
retry that moves on to another broker when the client's own is down."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest

from tidelog import AsyncClient, Client, NotLeaderError
from tidelog._client import MAX_REDIRECTS
from tidelog._leaders import LeaderCache

A, B, C = "http://a:1", "http://b:2", "http://c:3"
PRODUCE = "/v1/topics/t/partitions/0/records"
OK = {"results": [{"partition": 0, "offset": 7, "timestamp": 1}]}
CLUSTER = {
    "broker_id": 0,
    "controller_id": 0,
    "brokers": [
        {"broker_id": 0, "url": A, "state": "alive"},
        {"broker_id": 1, "url": B, "state": "alive"},
        {"broker_id": 2, "url": C, "state": "fenced"},
    ],
    "under_replicated_partitions": [],
}


def redirect(request: httpx.Request, to: str, leader_id: int = 1) -> httpx.Response:
    location = to + request.url.raw_path.decode()
    body = {"type": "about:blank", "title": "Not Leader", "status": 307, "detail": "led elsewhere",
            "error_code": 50304, "leader_id": leader_id, "leader_url": to}
    return httpx.Response(307, headers={"Location": location}, json=body)


class Script:
    """A transport that answers from ``handler`` and logs (origin, method, path+query, body)."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.handler = handler
        self.seen: list[tuple[str, str, str, bytes]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        origin = f"{request.url.scheme}://{request.url.host}:{request.url.port}"
        self.seen.append((origin, request.method, request.url.raw_path.decode(), request.content))
        return self.handler(request)


def test_a_307_is_followed_with_its_body_and_the_leader_remembered() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "a":
            return redirect(request, B)
        return httpx.Response(200, json=OK)

    script = Script(handler)
    with Client(A, transport=httpx.MockTransport(script)) as client:
        result = client.produce("t", [{"value": "v"}], partition=0)
        assert result.results[0].offset == 7  # type: ignore[union-attr]
        assert client.leaders.leader_url("t", 0) == B
        client.produce("t", [{"value": "w"}], partition=0)
    (o1, m1, p1, b1), (o2, m2, p2, b2), (o3, _, _, b3) = script.seen
    assert (o1, o2, o3) == (A, B, B), "the second produce goes straight to the leader"
    assert m1 == m2 == "POST" and p1 == p2 and "acks=all" in p2
    assert b1 == b2 and json.loads(b2)["records"][0]["value"] == "v"
    assert json.loads(b3)["records"][0]["value"] == "w"


def test_redirects_are_bounded_and_end_in_a_retriable_not_leader_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return redirect(request, B if request.url.host == "a" else A, leader_id=0)

    script = Script(handler)
    with Client(A, transport=httpx.MockTransport(script), retries=0) as client:
        with pytest.raises(NotLeaderError) as raised:
            client.fetch("t", 0, 0)
        assert raised.value.retriable and raised.value.body["leader_url"] in (A, B)
        assert client.leaders.leader_url("t", 0) is None, "a leader that redirects is forgotten"
    assert len(script.seen) == MAX_REDIRECTS + 1


def test_only_partition_requests_follow_redirects() -> None:
    script = Script(lambda request: redirect(request, B))
    with Client(A, transport=httpx.MockTransport(script), retries=0) as client, pytest.raises(NotLeaderError):
        client.admin.list_topics()
    assert len(script.seen) == 1


def test_an_unreachable_leader_is_forgotten_and_the_retry_asks_the_clients_broker() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "b":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json=OK)

    script = Script(handler)
    with Client(A, transport=httpx.MockTransport(script), backoff_ms=1) as client:
        client.leaders.learn("t", 0, B, 1)
        client.leaders.learn("t", 1, B, 1)
        client.produce("t", ["v"], partition=0)
        assert client.leaders.leader_url("t", 0) is None
        assert client.leaders.leader_url("t", 1) is None, "every partition of the dead broker"
    assert [origin for origin, *_ in script.seen] == [B, A]


def test_metadata_fills_the_cache_skipping_fenced_leaders_and_single_brokers() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/cluster":
            return httpx.Response(200, json=CLUSTER)
        parts = [{"partition": p, "leader": p, "replicas": [0, 1, 2], "isr": [0, 1, 2]} for p in range(3)]
        return httpx.Response(200, json={"name": "t", "partition_count": 3, "partitions": parts})

    with Client(A, transport=httpx.MockTransport(handler)) as client:
        client.refresh_metadata("t")
        assert [client.leaders.leader_url("t", p) for p in range(3)] == [A, B, None]
        assert client.leaders.alive_broker_urls() == [A, B]

    single = LeaderCache()
    single.update_brokers({"brokers": [{"broker_id": 0, "url": "http://elsewhere:9", "state": "alive"}]})
    single.update_topic("t", [(0, 0)])
    assert single.leader_url("t", 0) is None and single.broker_urls() == {}


def test_a_retry_moves_on_to_another_alive_broker_when_the_clients_own_is_down() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "a":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"topics": [{"name": "t", "partition_count": 1}]})

    script = Script(handler)
    with Client(A, transport=httpx.MockTransport(script), backoff_ms=1) as client:
        client.leaders.update_brokers(CLUSTER)
        assert [t.name for t in client.admin.list_topics()] == ["t"]
    assert [origin for origin, *_ in script.seen] == [A, B]


def test_the_async_client_follows_and_remembers_too() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "a":
            return redirect(request, B)
        return httpx.Response(200, json=OK)

    script = Script(handler)

    async def run() -> str | None:
        async with AsyncClient(A, transport=httpx.MockTransport(script)) as client:
            await client.produce("t", ["v"], partition=0)
            await client.produce("t", ["w"], partition=0)
            return client.leaders.leader_url("t", 0)

    assert asyncio.run(run()) == B
    assert [origin for origin, *_ in script.seen] == [A, B, B]
    assert script.seen[0][3] == script.seen[1][3]
