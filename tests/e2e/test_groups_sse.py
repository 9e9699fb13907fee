"""Group event streams against a real broker process with a real SSE client (httpx-sse).

A stream joins on connect (``member`` then ``assignment``), rebalances when a second stream joins and
when one disconnects (the server notices the disconnect and removes the member), and a reconnect with
``Last-Event-ID`` commits the cursor's offsets and resumes right after them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse

from tests.broker_process import BrokerProcess

pytestmark = pytest.mark.e2e
TIMEOUT = httpx.Timeout(10.0, read=20.0)


@pytest.fixture
def broker(broker_factory: Callable[..., BrokerProcess]) -> BrokerProcess:
    return broker_factory("groups-sse", group_min_session_timeout_ms=100)


def _setup(broker: BrokerProcess, topic: str, partitions: int, per_partition: int) -> None:
    with broker.client() as client:
        assert client.post("/v1/topics", json={"name": topic, "partitions": partitions}).status_code == 201
        for partition in range(partitions):
            body = {"records": [{"value": {"p": partition, "i": i}} for i in range(per_partition)]}
            answer = client.post(f"/v1/topics/{topic}/partitions/{partition}/records", json=body)
            assert answer.status_code == 200, answer.text


class Stream:
    """One group event stream read in the background into ``events``."""

    def __init__(self, url: str, params: dict[str, str], last_event_id: str | None = None) -> None:
        self.url = url
        self.params = params
        self.headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        self.events: list[ServerSentEvent] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with (
            httpx.AsyncClient(timeout=TIMEOUT) as client,
            aconnect_sse(client, "GET", self.url, params=self.params, headers=self.headers) as source,
        ):
            assert source.response.status_code == 200, await source.response.aread()
            async for event in source.aiter_sse():
                if event.data:
                    self.events.append(event)

    async def __aenter__(self) -> Stream:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [json.loads(e.data) for e in self.events if e.event == kind]

    async def until(self, predicate: Callable[[Stream], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if self._task is not None and self._task.done():
                self._task.result()  # surfaces the stream's failure
                raise AssertionError("the stream ended")
            assert time.monotonic() < deadline, f"timed out; events so far: {self.events}"
            await asyncio.sleep(0.05)

    def assignment(self) -> set[int]:
        latest = self.of("assignment")
        return {a["partition"] for a in latest[-1]["assignment"]} if latest else set()


async def _members(broker: BrokerProcess, group: str) -> int:
    async with httpx.AsyncClient(base_url=broker.url, timeout=TIMEOUT) as client:
        return len((await client.get(f"/v1/groups/{group}")).json()["members"])


@contextlib.asynccontextmanager
async def _stream(broker: BrokerProcess, group: str, **params: str) -> AsyncIterator[Stream]:
    last_event_id = params.pop("last_event_id", None)
    values = {"topics": "t", "session_timeout_ms": "1000", "heartbeat_ms": "500", **params}
    async with Stream(f"{broker.url}/v1/groups/{group}/events", values, last_event_id) as stream:
        yield stream


async def test_group_streams_rebalance_on_join_and_disconnect(broker: BrokerProcess) -> None:
    _setup(broker, "t", 4, 5)
    async with _stream(broker, "g", auto_offset_reset="earliest") as a:
        await a.until(lambda s: len(s.of("record")) == 20)
        assert a.events[0].event == "member"
        member = a.of("member")[0]
        assert member["member_id"].startswith("sse-") and member["generation"] == 1
        assert a.assignment() == {0, 1, 2, 3}
        assert {(r["partition"], r["offset"]) for r in a.of("record")} == {
            (p, o) for p in range(4) for o in range(5)
        }

        b = Stream(f"{broker.url}/v1/groups/g/events", {"topics": "t", "session_timeout_ms": "1000"})
        async with b:
            await b.until(lambda s: bool(s.assignment()))
            await a.until(lambda s: len(s.assignment()) == 2)
            assert a.assignment().isdisjoint(b.assignment())
            assert a.assignment() | b.assignment() == {0, 1, 2, 3}
            assert await _members(broker, "g") == 2
        # b disconnected: the broker notices, b leaves, a takes every partition back.
        await a.until(lambda s: len(s.assignment()) == 4)
        assert await _members(broker, "g") == 1
    deadline = time.monotonic() + 10
    while await _members(broker, "g") and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert await _members(broker, "g") == 0


async def test_reconnect_commits_last_event_id_and_resumes(broker: BrokerProcess) -> None:
    _setup(broker, "t", 2, 10)
    async with _stream(broker, "r", auto_offset_reset="earliest") as first:
        await first.until(lambda s: len(s.of("record")) == 20)
    records = [e for e in first.events if e.event == "record"]
    cursor = records[12].id  # the client processed 13 records, then the connection dropped
    acknowledged = {
        (int(entry.split("/p")[1].split(":")[0]), int(entry.split(":")[1])) for entry in cursor.split(",")
    }
    async with _stream(broker, "r", auto_offset_reset="earliest", last_event_id=cursor) as second:
        await second.until(lambda s: len(s.of("record")) == 20 - 13)
        await asyncio.sleep(0.5)
        resumed = [(r["partition"], r["offset"]) for r in second.of("record")]
    async with httpx.AsyncClient(base_url=broker.url, timeout=TIMEOUT) as client:
        committed = (await client.get("/v1/groups/r/offsets")).json()["offsets"]
    assert {(o["partition"], o["offset"]) for o in committed} == acknowledged
    first_part = [(json.loads(e.data)["partition"], json.loads(e.data)["offset"]) for e in records[:13]]
    assert sorted(first_part + resumed) == [(p, o) for p in range(2) for o in range(10)]


async def test_group_stream_errors(broker: BrokerProcess) -> None:
    async with httpx.AsyncClient(base_url=broker.url, timeout=TIMEOUT) as client:
        for params, code in [
            ({"topics": "t", "session_timeout_ms": "10"}, 42207),
            ({"topics": "t", "assignor": "sticky"}, 42204),
            ({}, 42204),
            ({"topics": "t", "last_event_id": "t/p0"}, 42204),
        ]:
            answer = await client.get("/v1/groups/e/events", params=params)
            assert answer.status_code == 422, (params, answer.text)
            assert answer.json()["error_code"] == code


async def test_static_stream_member_survives_a_reconnect(broker: BrokerProcess) -> None:
    _setup(broker, "t", 2, 1)
    params = {"instance_id": "browser-1", "session_timeout_ms": "5000", "auto_offset_reset": "earliest"}
    async with _stream(broker, "s", **params) as first:
        await first.until(lambda s: len(s.of("record")) == 2)
        generation = first.of("assignment")[-1]["generation"]
    await asyncio.sleep(0.5)
    assert await _members(broker, "s") == 1  # a static member stays for its session timeout
    async with _stream(broker, "s", **params) as second:
        await second.until(lambda s: bool(s.of("assignment")))
        assert second.of("assignment")[-1]["generation"] == generation  # no rebalance
        assert second.assignment() == {0, 1}
        assert second.of("member")[0]["member_id"] != first.of("member")[0]["member_id"]
        assert await _members(broker, "s") == 1


async def test_stream_without_usable_offset_ends_with_an_error_event(broker: BrokerProcess) -> None:
    _setup(broker, "t", 1, 1)
    async with _stream(broker, "n", auto_offset_reset="none") as stream:
        await stream.until(lambda s: bool(s.of("error")))
        assert stream.of("error")[0]["error_code"] == 42206
    deadline = time.monotonic() + 10
    while await _members(broker, "n") and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert await _members(broker, "n") == 0  # the failed stream left its group
