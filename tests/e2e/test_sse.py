"""Topic event streams against a real broker process, read with a real SSE client (httpx-sse).

Delivery in order per partition with cursor ids, exact resume by ``Last-Event-ID`` (no gap, no
duplicate) on the same process and across a SIGKILL and restart, ``: ping`` heartbeats on idle
streams, and errors answered before the stream starts.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from tests.broker_process import BrokerProcess

pytestmark = pytest.mark.e2e
TIMEOUT = httpx.Timeout(10.0, read=15.0)


def _create(broker: BrokerProcess, topic: str, partitions: int) -> None:
    with broker.client() as client:
        answer = client.post("/v1/topics", json={"name": topic, "partitions": partitions})
        assert answer.status_code == 201, answer.text


def _produce(broker: BrokerProcess, topic: str, partition: int, values: list[Any]) -> None:
    with broker.client() as client:
        body = {"records": [{"value": v} for v in values]}
        answer = client.post(f"/v1/topics/{topic}/partitions/{partition}/records", json=body)
        assert answer.status_code == 200, answer.text


async def _read(
    url: str, count: int, *, params: dict[str, str] | None = None, last_event_id: str | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """The first ``count`` record events of a stream as (id, record)."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    out: list[tuple[str, dict[str, Any]]] = []
    async with (
        httpx.AsyncClient(timeout=TIMEOUT) as client,
        aconnect_sse(client, "GET", url, params=params, headers=headers) as source,
    ):
        assert source.response.headers["content-type"].startswith("text/event-stream")
        events = source.aiter_sse()
        while len(out) < count:
            event = await asyncio.wait_for(events.__anext__(), 10)
            if not event.data:
                continue  # the opening ``retry:`` field: browsers dispatch no event for it
            assert event.event == "record", event
            out.append((event.id, json.loads(event.data)))
    return out


def _cursor(event_id: str) -> dict[int, int]:
    return {int(p[1:]): int(o) for p, o in (entry.split(":") for entry in event_id.split(","))}


async def test_delivery_and_exact_resume(broker_process: BrokerProcess) -> None:
    _create(broker_process, "s", 2)
    for partition in range(2):
        _produce(broker_process, "s", partition, [{"p": partition, "i": i} for i in range(10)])
    url = f"{broker_process.url}/v1/topics/s/events"

    first = await _read(url, 7, params={"from": "earliest"})
    for event_id, record in first:
        assert set(record) == {
            "topic",
            "partition",
            "offset",
            "timestamp",
            "timestamp_type",
            "key",
            "value",
            "headers",
        }
        assert _cursor(event_id)[record["partition"]] == record["offset"] + 1
    per_partition: dict[int, list[int]] = {}
    for _, record in first:
        per_partition.setdefault(record["partition"], []).append(record["offset"])
    for offsets in per_partition.values():
        assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))

    # More records arrive while the client is away; it resumes exactly after its last event.
    for partition in range(2):
        _produce(broker_process, "s", partition, [{"p": partition, "i": i} for i in range(10, 15)])
    rest = await _read(url, 30 - 7, last_event_id=first[-1][0])
    delivered = [(r["partition"], r["offset"]) for _, r in first + rest]
    assert sorted(delivered) == [(p, o) for p in range(2) for o in range(15)]
    assert len(set(delivered)) == len(delivered)

    # The cursor may also come as a query parameter (EventSource cannot set headers on a first load).
    tail = await _read(url, 1, params={"last_event_id": "p0:14,p1:15"})
    assert (tail[0][1]["partition"], tail[0][1]["offset"]) == (0, 14)


async def test_resume_across_a_broker_crash(broker_process: BrokerProcess) -> None:
    _create(broker_process, "crash", 1)
    _produce(broker_process, "crash", 0, list(range(20)))  # acks=all: durable before the answer
    url = f"{broker_process.url}/v1/topics/crash/events"
    first = await _read(url, 12, params={"from": "earliest"})
    broker_process.kill()
    broker_process.start()
    rest = await _read(url, 8, last_event_id=first[-1][0])
    assert [r["value"] for _, r in first + rest] == list(range(20))
    assert rest[-1][0] == "p0:20"


async def test_live_records_heartbeats_and_partition_filter(broker_process: BrokerProcess) -> None:
    _create(broker_process, "live", 3)
    _produce(broker_process, "live", 1, ["old"])
    url = f"{broker_process.url}/v1/topics/live/events"
    lines: list[str] = []
    async with (
        httpx.AsyncClient(timeout=TIMEOUT) as client,
        client.stream("GET", url, params={"partitions": "1,2", "heartbeat_ms": "200"}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-cache"
        iterator = response.aiter_lines()

        async def until(predicate: Callable[[str], bool]) -> None:
            while True:
                line = await asyncio.wait_for(iterator.__anext__(), 10)
                lines.append(line)
                if predicate(line):
                    return

        await until(lambda line: line == ": ping")  # idle: comment heartbeats, no records
        await asyncio.to_thread(_produce, broker_process, "live", 0, ["not in this stream"])
        await asyncio.to_thread(_produce, broker_process, "live", 2, ["new"])
        await until(lambda line: line.startswith("data: "))
        record = json.loads(lines[-1].removeprefix("data: "))
        assert (record["partition"], record["value"]) == (2, "new")
        assert "id: p1:1,p2:1" in lines  # from=latest: the old record of partition 1 is not sent
        assert not any("old" in line or "not in this stream" in line for line in lines)


async def test_errors_before_the_stream(broker_process: BrokerProcess) -> None:
    _create(broker_process, "e", 1)
    async with httpx.AsyncClient(base_url=broker_process.url, timeout=TIMEOUT) as client:
        for path, params, status, code in [
            ("/v1/topics/missing/events", {}, 404, 40401),
            ("/v1/topics/e/events", {"partitions": "5"}, 404, 40402),
            ("/v1/topics/e/events", {"partitions": "x"}, 422, 42204),
            ("/v1/topics/e/events", {"from": "yesterday"}, 422, 42204),
            ("/v1/topics/e/events", {"last_event_id": "garbage"}, 422, 42204),
            ("/v1/topics/e/events", {"heartbeat_ms": "1"}, 422, 42204),
        ]:
            answer = await client.get(path, params=params)
            assert answer.status_code == status, (path, params, answer.text)
            assert answer.json()["error_code"] == code


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def test_a_client_that_does_not_read_holds_one_batch(broker_process: BrokerProcess) -> None:
    _create(broker_process, "big", 1)
    value = "v" * 1000
    for _ in range(30):  # about 30 MB of record JSON once rendered
        _produce(broker_process, "big", 0, [value] * 1000)
    await asyncio.sleep(1.0)
    before = _rss_bytes(broker_process.pid)
    reader, writer = await asyncio.open_connection("127.0.0.1", broker_process.port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    writer.write(b"GET /v1/topics/big/events?from=earliest HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert b" 200 " in head.split(b"\r\n", 1)[0], head
    await asyncio.sleep(3.0)  # the client reads nothing: the broker must stop, not buffer 30 MB
    grown = _rss_bytes(broker_process.pid) - before
    assert grown < 12 * 1024 * 1024, f"the broker's RSS grew by {grown / 2**20:.1f} MB"
    # The stream is intact: reading resumes where the socket stopped, in order.
    buffer = b""
    expected = 0
    while expected < 2000:
        size = int((await asyncio.wait_for(reader.readuntil(b"\r\n"), 10)).strip(), 16)
        buffer += await asyncio.wait_for(reader.readexactly(size + 2), 10)
        buffer = buffer[:-2]  # the chunk's trailing CRLF
        *events, buffer = buffer.split(b"\n\n")
        for event in events:
            if event.startswith(b"event: record"):
                assert json.loads(event.split(b"data: ", 1)[1])["offset"] == expected
                expected += 1
    writer.close()


async def test_a_deleted_topic_ends_its_stream_with_an_error_event(broker_process: BrokerProcess) -> None:
    _create(broker_process, "gone", 1)
    async with (
        httpx.AsyncClient(timeout=TIMEOUT) as client,
        aconnect_sse(client, "GET", f"{broker_process.url}/v1/topics/gone/events") as source,
    ):
        events = source.aiter_sse()
        first = await asyncio.wait_for(events.__anext__(), 10)  # the opening retry field
        assert first.retry == 1000
        async with httpx.AsyncClient(base_url=broker_process.url, timeout=TIMEOUT) as admin:
            assert (await admin.delete("/v1/topics/gone")).status_code == 204
        event = await asyncio.wait_for(events.__anext__(), 10)
        assert event.event == "error"
        assert json.loads(event.data)["error_code"] in (40401, 50302)
