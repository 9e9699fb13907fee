"""Event streams whose clients do not read: bounded memory, given back, and a cut-off client that
resumes exactly with Last-Event-ID. Real broker processes and raw sockets with small receive
buffers, so the broker, not the test's kernel, has to hold what is not read."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from tests.broker_process import BrokerProcess

pytestmark = pytest.mark.e2e

VALUE = "x" * 4000  # ~4 KB per record


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _fill(broker: BrokerProcess, topic: str, records: int) -> None:
    with broker.client(timeout=60) as client:
        answer = client.post("/v1/topics", json={"name": topic, "partitions": 1})
        assert answer.status_code == 201, answer.text
        for start in range(0, records, 200):
            body = {"records": [{"value": {"i": i, "pad": VALUE}} for i in range(start, start + 200)]}
            answer = client.post(f"/v1/topics/{topic}/partitions/0/records", json=body)
            assert answer.status_code == 200, answer.text


def _open_stream(broker: BrokerProcess, topic: str, rcvbuf: int = 4096) -> socket.socket:
    """A connection asking for the topic's events from the start, with a small receive buffer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", broker.port))
    request = f"GET /v1/topics/{topic}/events?from=earliest HTTP/1.1\r\nHost: t\r\n\r\n"
    sock.sendall(request.encode())
    return sock


def _rss_settles(pid: int, seconds: float) -> int:
    """The highest RSS seen over ``seconds``."""
    peak = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        peak = max(peak, _rss_bytes(pid))
        time.sleep(0.2)
    return peak


@pytest.mark.slow
def test_non_reading_streams_hold_bounded_memory_and_give_it_back(
    broker_factory: Callable[..., BrokerProcess],
) -> None:
    broker = broker_factory(
        sse_max_buffer_bytes=64 * 1024,
        sse_send_timeout_ms=120_000,  # the streams stay stuck while memory is measured
        max_sse_streams_per_client=1000,
    )
    _fill(broker, "wide", 2_000)  # ~8 MB of records: far more than any stream may hold
    with httpx.Client(base_url=broker.url, timeout=30) as client:  # warm the fetch path up once
        assert client.get("/v1/topics/wide/partitions/0/records", params={"offset": 0}).status_code == 200
    baseline = _rss_settles(broker.pid, 1.0)
    streams = [_open_stream(broker, "wide") for _ in range(200)]
    try:
        peak = _rss_settles(broker.pid, 8.0)
        with httpx.Client(base_url=broker.url, timeout=10) as client:  # the broker still answers
            started = time.monotonic()
            answer = client.post("/v1/topics/wide/partitions/0/records", json={"records": [{"value": 1}]})
            assert answer.status_code == 200, answer.text
            assert time.monotonic() - started < 5.0
    finally:
        for sock in streams:
            sock.close()
    grown = peak - baseline
    # Unbounded, each stream held a fetch of 1 MiB of batches, rendered, and more (200 MB and more
    # for 200 of them); bounded, one 64 KiB chunk, its records and the write buffer (~55 MB).
    assert grown < 100 * 1024 * 1024, f"RSS grew by {grown >> 20} MiB for 200 non-reading streams"
    deadline = time.monotonic() + 20
    after = _rss_bytes(broker.pid)
    while time.monotonic() < deadline and after > baseline + 40 * 1024 * 1024:
        time.sleep(0.5)
        after = _rss_bytes(broker.pid)
    assert after <= baseline + 40 * 1024 * 1024, (
        f"RSS after the streams left: {after >> 20} MiB, baseline {baseline >> 20} MiB, peak {peak >> 20} MiB"
    )


def _dechunk(raw: bytes) -> bytes:
    """The body bytes of a chunked HTTP/1.1 answer received so far (an incomplete chunk: what arrived)."""
    _head, _, rest = raw.partition(b"\r\n\r\n")
    body = bytearray()
    while rest:
        size_line, sep, rest = rest.partition(b"\r\n")
        if not sep:
            break
        size = int(size_line, 16)
        if size == 0:
            break
        body += rest[:size]
        rest = rest[size + 2 :]
    return bytes(body)


def _complete_events(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """The record events whose blank-line terminator arrived, as an SSE parser delivers them."""
    out = []
    *complete, _partial = body.split(b"\n\n")
    for block in complete:
        lines = [line for line in block.split(b"\n") if b": " in line and line[:1] != b":"]
        fields = dict(line.split(b": ", 1) for line in lines)
        if fields.get(b"event") == b"record":
            out.append((fields[b"id"].decode(), json.loads(fields[b"data"])))
    return out


async def _resume(url: str, last_event_id: str, until: int) -> list[int]:
    offsets: list[int] = []
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=30.0)) as client,
        aconnect_sse(client, "GET", url, headers={"Last-Event-ID": last_event_id}) as source,
    ):
        events = source.aiter_sse()
        while not offsets or offsets[-1] < until:
            event = await asyncio.wait_for(events.__anext__(), 30)
            if event.event == "record":
                offsets.append(json.loads(event.data)["offset"])
    return offsets


def test_a_client_that_stops_reading_is_cut_off_and_resumes_exactly(
    broker_factory: Callable[..., BrokerProcess],
) -> None:
    broker = broker_factory(sse_max_buffer_bytes=16 * 1024, sse_send_timeout_ms=1_500)
    _fill(broker, "slow", 1_000)
    sock = _open_stream(broker, "slow")
    received = bytearray()
    sock.settimeout(10)
    while len(received) < 100_000:  # read a little of it ...
        received += sock.recv(16_384)
    time.sleep(6)  # ... then nothing, for longer than sse_send_timeout_ms
    cut_off_at = time.monotonic()
    try:
        while True:
            data = sock.recv(65_536)
            if not data:
                break
            received += data
    except ConnectionResetError:
        pass  # aborted: what the kernel still held may be lost, as with any reset
    finally:
        sock.close()
    assert time.monotonic() - cut_off_at < 10, "the connection was not cut off"
    events = _complete_events(_dechunk(bytes(received)))
    seen = [record["offset"] for _id, record in events]
    assert seen == list(range(len(seen))) and 0 < len(seen) < 1_000, seen[-5:]
    last_id = events[-1][0]
    assert last_id == f"p0:{seen[-1] + 1}"
    rest = asyncio.run(_resume(f"{broker.url}/v1/topics/slow/events", last_id, until=999))
    assert rest == list(range(seen[-1] + 1, 1_000))  # no gap, no duplicate
    assert "read nothing for 1500 ms" in broker.log_text()


async def _first_events(
    url: str, headers: dict[str, str], count: int, out: list[tuple[str, dict[str, Any]]]
) -> None:
    """Append the first ``count`` events with data to ``out`` (what came, when cancelled)."""
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=30.0)) as client,
        aconnect_sse(client, "GET", url, headers=headers) as source,
    ):
        events = source.aiter_sse()
        while len(out) < count:
            event = await events.__anext__()
            if event.data:
                out.append((event.event, json.loads(event.data)))


def test_a_cursor_past_the_high_watermark_is_reported_not_silently_reset(
    broker_process: BrokerProcess,
) -> None:
    with broker_process.client() as client:
        assert client.post("/v1/topics", json={"name": "short"}).status_code == 201
        body = {"records": [{"value": i} for i in range(3)]}
        assert client.post("/v1/topics/short/partitions/0/records", json=body).status_code == 200

        events: list[tuple[str, dict[str, Any]]] = []

        async def read() -> None:
            url = f"{broker_process.url}/v1/topics/short/events"
            reader = asyncio.create_task(_first_events(url, {"Last-Event-ID": "p0:100"}, 2, events))
            await asyncio.sleep(1.0)  # the stream is open, at the high watermark
            more = {"records": [{"value": "next"}]}
            await asyncio.to_thread(client.post, "/v1/topics/short/partitions/0/records", json=more)
            with contextlib.suppress(TimeoutError):  # asserted below: what came within 20 s
                await asyncio.wait_for(reader, 20)

        asyncio.run(read())
    assert len(events) == 2, events
    (kind, reset), (record_kind, record) = events
    assert kind == "cursor_reset"
    assert reset["error_code"] == 41601
    assert (reset["partition"], reset["requested_offset"], reset["offset"]) == (0, 100, 3)
    assert reset["high_watermark"] == 3
    assert record_kind == "record" and record["offset"] == 3 and record["value"] == "next"
