"""Binary produce and fetch (``application/vnd.tidelog.batch``): record batches v2 checked and kept as is."""

from __future__ import annotations

import struct
import time
from typing import Any

import crc32c
import orjson
import pytest

from storage.records import Compression, RecordIn, decode_records, encode_batch
from tests.api._records import assert_problem, create_topic, fetch

BATCH = "application/vnd.tidelog.batch"
JSON_VALUE = 2 << 2  # value format bits: json
STRING_KEY = 1


def now_ms() -> int:
    return int(time.time() * 1000)


def batch(values: list[bytes | None], *, keys: list[bytes | None] | None = None, **options: Any) -> bytes:
    ts = options.pop("timestamp", now_ms())
    attributes = options.pop("attributes", JSON_VALUE | STRING_KEY)
    keys = keys or [None] * len(values)
    records = [RecordIn(v, k, (), ts, attributes) for v, k in zip(values, keys, strict=True)]
    return encode_batch(records, base_offset=0, now_ms=ts, **options)


def recrc(data: bytes) -> bytes:
    """The batch with its CRC-32C recomputed (what a mutating fuzzer must do to get past the CRC)."""
    return data[:17] + struct.pack(">I", crc32c.crc32c(data[21:])) + data[21:]


def produce(client: Any, body: bytes, topic: str = "bin", partition: int = 0, **params: Any) -> Any:
    return client.post(
        f"/v1/topics/{topic}/partitions/{partition}/records",
        content=body,
        headers={"Content-Type": BATCH},
        params=params,
    )


def test_batches_are_appended_as_they_are_and_fetched_back_as_json_and_binary(client: Any) -> None:
    create_topic(client, "bin")
    body = batch([b'{"a":1}', b"2"], keys=[b"k1", b"k2"]) + batch([b'"x"'], compression=Compression.ZSTD)
    response = produce(client, body, acks="1")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "results": [],
        "batches": [
            {"base_offset": 0, "last_offset": 1, "log_append_time": -1, "duplicate": False},
            {"base_offset": 2, "last_offset": 2, "log_append_time": -1, "duplicate": False},
        ],
    }
    records = fetch(client, "bin")["records"]
    assert [(r["key"], r["value"]) for r in records] == [("k1", {"a": 1}), ("k2", 2), (None, "x")]
    raw = client.get("/v1/topics/bin/partitions/0/records", params={"offset": 1}, headers={"Accept": BATCH})
    assert raw.status_code == 200
    assert raw.headers["content-type"] == BATCH
    assert raw.headers["tidelog-next-offset"] == "3"
    assert raw.headers["tidelog-high-watermark"] == "3"
    assert raw.headers["tidelog-log-start-offset"] == "0"
    # The stored batches come back whole, from the one holding offset 1 (the client skips offset 0).
    decoded = decode_records(raw.content)
    assert [r.offset for r in decoded] == [0, 1, 2]
    assert [r.value for r in decode_records(raw.content, min_offset=1)] == [b"2", b'"x"']


def test_a_binary_fetch_at_the_high_watermark_is_empty(client: Any) -> None:
    create_topic(client, "bin")
    assert produce(client, batch([b"1"])).status_code == 200
    raw = client.get("/v1/topics/bin/partitions/0/records", params={"offset": 1}, headers={"Accept": BATCH})
    assert raw.status_code == 200 and raw.content == b""
    assert raw.headers["tidelog-next-offset"] == "1"


@pytest.mark.parametrize(
    ("mutate", "status", "code"),
    [
        (lambda b: b[:-1], 400, 40020),  # truncated
        (lambda b: b[:16] + b"\x01" + b[17:], 400, 40020),  # magic 1
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), 400, 40020),  # CRC mismatch
        (lambda b: recrc(b[:-1] + b"\x02"), 400, 40021),  # a header count where none fits
        (lambda b: recrc(b[:57] + struct.pack(">i", 3) + b[61:]), 400, 40020),  # count against the deltas
        # a count of 3 and last offset delta 2 over two records
        (
            lambda b: recrc(b[:23] + struct.pack(">i", 2) + b[27:57] + struct.pack(">i", 3) + b[61:]),
            400,
            40021,
        ),
        (lambda b: recrc(b[:64] + b"\x02" + b[65:]), 400, 40021),  # offset delta 1 first
    ],
)
def test_an_invalid_batch_refuses_the_whole_request_naming_it(
    client: Any, mutate: Any, status: int, code: int
) -> None:
    create_topic(client, "bin")
    good = batch([b"1", b"2"])
    problem = assert_problem(produce(client, good + mutate(batch([b"3", b"4"]))), status, code)
    assert problem["batch"] == 1 and problem["position"] == len(good)
    assert fetch(client, "bin")["records"] == []  # the good first batch was not appended either


def test_json_format_claims_are_checked(client: Any) -> None:
    create_topic(client, "bin")
    problem = assert_problem(produce(client, batch([b'{"a":'])), 400, 40021)
    assert "JSON" in problem["detail"]
    assert_problem(produce(client, batch([b'"\xff"'])), 400, 40021)
    assert_problem(produce(client, batch([b"\xff"], attributes=1 << 2)), 400, 40021)  # string, not UTF-8
    # The same bytes as binary values are fine.
    assert produce(client, batch([b'{"a":'], attributes=0)).status_code == 200


def test_json_values_every_reader_can_read_are_the_only_ones_taken(client: Any) -> None:
    """The rules of a JSON produce (app/broker/json_limits.py) hold for binary batches too."""
    create_topic(client, "bin")
    assert_problem(produce(client, batch([b"9" * 10_000])), 400, 40021)  # beyond 64 bits
    assert_problem(produce(client, batch([b"-9223372036854775809"])), 400, 40021)
    assert_problem(produce(client, batch([b"[" * 65 + b"]" * 65])), 400, 40021)  # max_json_depth 64
    assert_problem(produce(client, batch([b"1e400"])), 400, 40021)  # infinite as a double
    edges = [b"9223372036854775807", b"-9223372036854775808", b"18446744073709551615", b"[" * 64 + b"]" * 64]
    assert produce(client, batch(edges)).status_code == 200
    values = [r["value"] for r in fetch(client, "bin")["records"]]
    assert values[:3] == [2**63 - 1, -(2**63), 2**64 - 1]


def test_timestamps_keys_and_offsets_are_checked(client: Any) -> None:
    create_topic(client, "bin", cleanup_policy="compact")
    assert_problem(produce(client, batch([b"1"])), 400, 40021)  # no key on a compacted topic
    future = now_ms() + 10 * 86_400_000
    assert_problem(produce(client, batch([b"1"], keys=[b"k"], timestamp=future)), 400, 40021)
    assert produce(client, batch([b"1"], keys=[b"k"])).status_code == 200


def test_a_compression_bomb_is_refused(client: Any, settings: Any) -> None:
    create_topic(client, "bin")
    limit = settings.batch_max_decompressed_bytes
    bomb = batch([b"0" * (limit // 4)] * 5, compression=Compression.ZSTD, attributes=0)
    problem = assert_problem(produce(client, bomb), 413, 41303)
    assert problem["limit"] == limit


def test_idempotent_batches_are_deduplicated(client: Any) -> None:
    create_topic(client, "bin")
    identity = client.post("/v1/producers").json()
    pid, epoch = identity["producer_id"], identity["producer_epoch"]
    first = batch([b"1", b"2"], producer_id=pid, producer_epoch=epoch, base_sequence=0)
    second = batch([b"3"], producer_id=pid, producer_epoch=epoch, base_sequence=2)
    answer = produce(client, first + second).json()["batches"]
    assert [(b["base_offset"], b["duplicate"]) for b in answer] == [(0, False), (2, False)]
    again = produce(client, second).json()["batches"]
    assert again == [{"base_offset": 2, "last_offset": 2, "log_append_time": -1, "duplicate": True}]
    gap = batch([b"5"], producer_id=pid, producer_epoch=epoch, base_sequence=9)
    assert_problem(produce(client, gap), 409, 40906)
    # A request's batches must be consecutive.
    skip = batch([b"4"], producer_id=pid, producer_epoch=epoch, base_sequence=3)
    assert_problem(produce(client, skip + gap), 400, 40020)
    assert len(fetch(client, "bin")["records"]) == 3


def test_binary_produce_goes_to_a_partition_and_takes_no_formats(client: Any) -> None:
    create_topic(client, "bin")
    response = client.post("/v1/topics/bin/records", content=batch([b"1"]), headers={"Content-Type": BATCH})
    assert_problem(response, 415, 41501)
    assert_problem(produce(client, batch([b"1"]), value_format="json"), 422, 42204)
    assert_problem(produce(client, b""), 400, 40020)


def test_log_append_time_topics_stamp_the_batch(client: Any) -> None:
    create_topic(client, "bin", message_timestamp_type="LogAppendTime")
    before = now_ms()
    answer = produce(client, batch([b"1"], timestamp=5)).json()["batches"][0]
    assert answer["log_append_time"] >= before
    record = fetch(client, "bin")["records"][0]
    assert record["timestamp"] == answer["log_append_time"]
    assert record["timestamp_type"] == "LogAppendTime"


def test_binary_fetch_refuses_format_parameters(client: Any) -> None:
    create_topic(client, "bin")
    response = client.get(
        "/v1/topics/bin/partitions/0/records", params={"value_format": "binary"}, headers={"Accept": BATCH}
    )
    assert_problem(response, 422, 42204)
    out_of_range = client.get(
        "/v1/topics/bin/partitions/0/records", params={"offset": 5}, headers={"Accept": BATCH}
    )
    assert_problem(out_of_range, 416, 41601)
    assert orjson.loads(out_of_range.content)["high_watermark"] == 0


def test_the_documented_test_vector_is_what_the_codec_builds_and_the_broker_takes(client: Any) -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "records.md").read_text()
    section = doc.split("**Test vector.**", 1)[1].split("```", 2)[1]
    vector = bytes.fromhex(section.replace("\n", " "))
    built = encode_batch(
        [RecordIn(b'{"n":1}', b"k", [("h", b"v")], 1_700_000_000_000, JSON_VALUE | STRING_KEY)],
        base_offset=0,
        now_ms=1_700_000_000_000,
    )
    assert vector == built
    create_topic(client, "vector", message_timestamp_before_max_ms=2**62)
    assert produce(client, vector, topic="vector").status_code == 200
    record = fetch(client, "vector")["records"][0]
    assert (record["key"], record["value"]) == ("k", {"n": 1})
    assert record["headers"] == [{"key": "h", "value": "v"}]
