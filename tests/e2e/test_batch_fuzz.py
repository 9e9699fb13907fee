"""Mutated binary produce batches, CRCs recomputed, against a real broker: never a 5xx, and whatever
was accepted reads back through a JSON fetch and an SSE stream that never fail."""

from __future__ import annotations

import json
import struct
import time

import crc32c
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.records import Compression, RecordIn, encode_batch
from tests.broker_process import BrokerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BATCH = "application/vnd.tidelog.batch"
TOPIC = "fuzz"

values = st.one_of(
    st.none(),
    st.sampled_from([b"1", b'{"a":[1,2]}', b'"text"', b"null", b'"\xc3\xa9"']),
    st.binary(max_size=24),
)
records = st.lists(
    st.tuples(values, st.one_of(st.none(), st.binary(max_size=8)), st.integers(0, 15)), min_size=1, max_size=5
)
mutations = st.lists(
    st.tuples(st.integers(0, 400), st.binary(min_size=1, max_size=4)), min_size=1, max_size=3
)


def _recrc(data: bytes) -> bytes:
    if len(data) < 21:
        return data
    return data[:17] + struct.pack(">I", crc32c.crc32c(data[21:])) + data[21:]


def _build(items: list[tuple[bytes | None, bytes | None, int]], codec: Compression) -> bytes:
    now = int(time.time() * 1000)
    return encode_batch(
        [RecordIn(v, k, [("h", b"\xff")] if a & 1 else (), now, a) for v, k, a in items],
        base_offset=0,
        now_ms=now,
        compression=codec,
    )


def test_mutated_batches_never_break_the_broker_or_its_readers(broker_process: BrokerProcess) -> None:
    client = httpx.Client(base_url=broker_process.url, timeout=30.0)
    assert client.post("/v1/topics", json={"name": TOPIC, "partitions": 1}).status_code == 201
    accepted = 0
    deadline = time.monotonic() + 120

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(
        items=records,
        codec=st.sampled_from([Compression.NONE, Compression.NONE, Compression.GZIP, Compression.ZSTD]),
        changes=mutations,
        recompute=st.booleans(),
    )
    def produce_mutated(
        items: list[tuple[bytes | None, bytes | None, int]],
        codec: Compression,
        changes: list[tuple[int, bytes]],
        recompute: bool,
    ) -> None:
        nonlocal accepted
        if time.monotonic() > deadline:
            return
        data = _build(items, codec)
        for at, garbage in changes:
            at = min(at, len(data))
            data = data[:at] + garbage + data[at + len(garbage) :]
        if recompute:
            data = _recrc(data)
        answer = client.post(
            f"/v1/topics/{TOPIC}/partitions/0/records", content=data, headers={"Content-Type": BATCH}
        )
        assert answer.status_code < 500, answer.text
        if answer.status_code == 200:
            accepted += sum(b["last_offset"] - b["base_offset"] + 1 for b in answer.json()["batches"])
        else:
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert isinstance(answer.json()["error_code"], int)

    produce_mutated()
    # A well-formed batch too, so both readers have something to read even if no mutant passed.
    good = client.post(
        f"/v1/topics/{TOPIC}/partitions/0/records",
        content=_build([(b'{"ok":true}', b"k", 9)], Compression.NONE),
        headers={"Content-Type": BATCH},
    )
    assert good.status_code == 200, good.text
    accepted += 1

    offset, fetched = 0, 0
    while True:
        page = client.get(f"/v1/topics/{TOPIC}/partitions/0/records", params={"offset": offset})
        assert page.status_code == 200, page.text
        body = json.loads(page.content)  # the spliced answer is JSON, every value in it
        fetched += len(body["records"])
        if body["next_offset"] >= body["high_watermark"]:
            break
        offset = body["next_offset"]
    assert fetched == accepted

    seen = 0
    with client.stream(
        "GET", f"/v1/topics/{TOPIC}/events", params={"from": "earliest"}, timeout=httpx.Timeout(30.0)
    ) as stream:
        assert stream.status_code == 200
        event = ""
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                assert event == "record", line  # no error event: every accepted record streams
                json.loads(line[5:])
                seen += 1
                if seen == accepted:
                    break
    assert seen == accepted
    client.close()
