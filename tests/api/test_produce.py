"""Produce: partitioning, formats, acks, errors, limits, idempotent producers, Idempotency-Key, NDJSON."""

from __future__ import annotations

import base64
import itertools
from typing import Any

import orjson
import pytest

from app.broker.partitioner import partition_for_key
from tests.api._records import assert_problem, create_topic, fetch


def produce(
    client: Any, topic: str, body: dict[str, Any], partition: int | None = None, **params: Any
) -> Any:
    path = (
        f"/v1/topics/{topic}/records"
        if partition is None
        else f"/v1/topics/{topic}/partitions/{partition}/records"
    )
    return client.post(path, json=body, params=params)


def test_results_come_in_request_order_with_offsets_and_timestamps(client: Any) -> None:
    create_topic(client, "orders", partitions=1)
    response = produce(client, "orders", {"records": [{"value": i, "timestamp": 1000 + i} for i in range(5)]})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results == [{"partition": 0, "offset": i, "timestamp": 1000 + i} for i in range(5)]
    again = produce(client, "orders", {"records": [{"value": "x"}]}).json()["results"]
    assert again[0]["offset"] == 5
    assert again[0]["timestamp"] > 1_600_000_000_000  # default: the broker's clock


def test_keyed_records_land_where_kafkas_java_client_puts_them(client: Any) -> None:
    create_topic(client, "keyed", partitions=7)
    keys = [f"user-{i}" for i in range(40)]
    response = produce(client, "keyed", {"records": [{"key": k, "value": k} for k in keys]})
    assert response.status_code == 200
    for key, result in zip(keys, response.json()["results"], strict=True):
        assert result["partition"] == partition_for_key(key.encode(), 7)
    # Every record with the same key is in one partition, in order.
    for p in range(7):
        values = [r["value"] for r in fetch(client, "keyed", p, max_records=100)["records"]]
        assert all(partition_for_key(v.encode(), 7) == p for v in values)


def test_null_keys_stick_to_one_partition_per_request_then_move(client: Any) -> None:
    create_topic(client, "sticky", partitions=4)
    chosen = []
    for _ in range(6):
        results = produce(client, "sticky", {"records": [{"value": i} for i in range(10)]}).json()["results"]
        partitions = {r["partition"] for r in results}
        assert len(partitions) == 1  # one batch, one partition
        chosen.append(partitions.pop())
    assert all(a != b for a, b in itertools.pairwise(chosen))


def test_explicit_partition_in_record_and_path(client: Any) -> None:
    create_topic(client, "explicit", partitions=3)
    results = produce(
        client, "explicit", {"records": [{"value": 1, "partition": 2}, {"value": 2, "partition": 1}]}
    )
    assert [r["partition"] for r in results.json()["results"]] == [2, 1]
    results = produce(client, "explicit", {"records": [{"key": "k", "value": 1}]}, partition=0)
    assert results.json()["results"][0]["partition"] == 0
    mismatch = produce(client, "explicit", {"records": [{"value": 1, "partition": 1}]}, partition=0)
    assert_problem(mismatch, 422, 42204)


def test_formats_round_trip_and_tombstones(client: Any) -> None:
    create_topic(client, "formats")
    raw = bytes(range(256))
    bodies = [
        {
            "key_format": "json",
            "value_format": "json",
            "records": [{"key": {"id": 1}, "value": {"a": [1, 2.5, None]}}],
        },
        {"key_format": "string", "value_format": "string", "records": [{"key": "ключ", "value": "zażółć"}]},
        {
            "key_format": "binary",
            "value_format": "binary",
            "records": [
                {"key": base64.b64encode(b"\x00\xff").decode(), "value": base64.b64encode(raw).decode()}
            ],
        },
        {"records": [{"key": "gone", "value": None}]},
        {"value_format": "json", "records": [{"value": "a json string"}, {"value": 12}, {"value": True}]},
    ]
    for body in bodies:
        assert produce(client, "formats", body).status_code == 200
    records = fetch(client, "formats", max_records=100)["records"]
    assert [(r["key"], r["value"]) for r in records] == [
        ({"id": 1}, {"a": [1, 2.5, None]}),
        ("ключ", "zażółć"),
        (base64.b64encode(b"\x00\xff").decode(), base64.b64encode(raw).decode()),
        ("gone", None),
        (None, "a json string"),
        (None, 12),
        (None, True),
    ]
    # Asked formats: the JSON value's stored bytes as a string and as base64.
    as_string = fetch(client, "formats", value_format="string", max_records=1)["records"][0]
    assert as_string["value"] == '{"a":[1,2.5,null]}'
    as_binary = fetch(client, "formats", key_format="binary", value_format="binary", max_records=1)[
        "records"
    ][0]
    assert base64.b64decode(as_binary["value"]) == b'{"a":[1,2.5,null]}'
    assert base64.b64decode(as_binary["key"]) == b'{"id":1}'
    # Binary bytes are not UTF-8: asking for them as a string names the offset instead of mangling them.
    bad = client.get(
        "/v1/topics/formats/partitions/0/records", params={"offset": 2, "value_format": "string"}
    )
    body = assert_problem(bad, 400, 40002)
    assert body["offset"] == 2


def test_headers_as_text_and_as_base64(client: Any) -> None:
    create_topic(client, "headers")
    produce(
        client,
        "headers",
        {
            "records": [
                {"value": 1, "headers": [{"key": "trace", "value": "abc"}, {"key": "n", "value": None}]}
            ]
        },
    )
    produce(
        client,
        "headers",
        {
            "header_format": "binary",
            "records": [
                {"value": 2, "headers": [{"key": "raw", "value": base64.b64encode(b"\xff\x00").decode()}]}
            ],
        },
    )
    records = fetch(client, "headers")["records"]
    assert records[0]["headers"] == [{"key": "trace", "value": "abc"}, {"key": "n", "value": None}]
    binary = fetch(client, "headers", offset=1, header_format="binary")["records"][0]
    assert binary["headers"] == [{"key": "raw", "value": base64.b64encode(b"\xff\x00").decode()}]
    text = fetch(client, "headers", offset=1)["records"][0]
    assert text["headers"][0]["value"] == "\ufffd\x00"  # not UTF-8: replaced, as documented


@pytest.mark.parametrize("acks", ["0", "1", "all", "-1"])
def test_every_acks_mode_appends(client: Any, acks: str) -> None:
    create_topic(client, "acks")
    response = produce(client, "acks", {"records": [{"value": i} for i in range(3)]}, acks=acks)
    assert response.status_code == 200
    results = response.json()["results"]
    if acks == "0":
        assert results == [{"partition": 0, "offset": -1, "timestamp": -1}] * 3
    else:
        assert [r["offset"] for r in results] == [0, 1, 2]
    follow = produce(client, "acks", {"records": [{"value": "after"}]}, acks="1").json()["results"][0]
    assert follow["offset"] == 3  # the acks=0 records were appended first, in order
    assert [r["value"] for r in fetch(client, "acks")["records"]] == [0, 1, 2, "after"]


def test_acks_all_waits_for_the_fsync_and_concurrent_requests_share_it(client: Any, app: Any) -> None:
    import asyncio
    import threading

    from app.broker import Acks
    from app.broker.produce import parse_produce_body

    create_topic(client, "durable")
    broker = app.state.broker
    handle = broker._topics["durable"].partitions[0]
    produce(client, "durable", {"records": [{"value": 1}]}, acks="1")
    assert handle._durable == 0  # acks=1: in the page cache only
    produce(client, "durable", {"records": [{"value": 2}]}, acks="all")
    assert handle._durable >= 2  # acks=all answered after a flush covering both

    calls: list[int | None] = []
    original = handle.log.flush
    gate = threading.Event()

    def slow_flush(up_to: int | None = None) -> None:
        calls.append(up_to)
        gate.wait(0.2)  # hold the first fsync so the others pile up behind it
        original(up_to)

    handle.log.flush = slow_flush

    async def burst() -> list[int]:
        bodies = [
            parse_produce_body({"records": [{"value": i}]}, max_records=10, now_ms=1) for i in range(20)
        ]
        outcomes = await asyncio.gather(*(broker.produce("durable", b, acks=Acks.ALL) for b in bodies))
        return [o.results[0].offset for o in outcomes]

    try:
        offsets = client.portal.call(burst)
    finally:
        handle.log.flush = original
    assert sorted(offsets) == list(range(2, 22))
    assert 1 <= len(calls) <= 5  # 20 acks=all requests, a few group commits (usually two), not 20
    assert handle._durable >= 22


def test_log_append_time_topic_answers_the_broker_time(client: Any) -> None:
    create_topic(client, "lat", message_timestamp_type="LogAppendTime")
    result = produce(client, "lat", {"records": [{"value": 1, "timestamp": 5}]}).json()["results"][0]
    assert result["timestamp"] > 1_600_000_000_000
    record = fetch(client, "lat")["records"][0]
    assert record["timestamp_type"] == "LogAppendTime"
    assert record["timestamp"] == result["timestamp"]


def test_unknown_topic_and_partition(client: Any) -> None:
    assert_problem(produce(client, "nope", {"records": [{"value": 1}]}), 404, 40401)
    create_topic(client, "two", partitions=2)
    assert_problem(produce(client, "two", {"records": [{"value": 1}]}, partition=2), 404, 40402)
    assert_problem(produce(client, "two", {"records": [{"value": 1, "partition": 5}]}), 404, 40402)
    # Refused as a whole: the valid record before the bad one was not appended.
    assert_problem(
        produce(client, "two", {"records": [{"value": 1, "partition": 0}, {"value": 2, "partition": 9}]}),
        404,
        40402,
    )
    assert fetch(client, "two", 0)["high_watermark"] == 0


@pytest.mark.parametrize(
    ("body", "status", "code", "fragment"),
    [
        ([1, 2], 400, 40001, "JSON object"),
        ({"records": "x"}, 400, 40001, "records must be an array"),
        ({"records": []}, 422, 42204, "at least one"),
        ({"records": [{"value": 1}], "extra": 1}, 400, 40001, "unknown field"),
        ({"records": [{"value": 1}, 5]}, 400, 40001, "records[1] must be an object"),
        ({"records": [{"value": 1, "vaule": 2}]}, 400, 40001, "records[0] has unknown field"),
        ({"records": [{"key": "k"}]}, 400, 40001, "records[0].value is required"),
        ({"records": [{"key": 5, "value": 1}]}, 400, 40002, "records[0].key must be a string"),
        (
            {"value_format": "binary", "records": [{"value": "%%%"}]},
            400,
            40002,
            "records[0].value is not valid base64",
        ),
        ({"value_format": "xml", "records": [{"value": 1}]}, 422, 42204, "value_format"),
        ({"records": [{"value": 1, "timestamp": -5}]}, 422, 42204, "records[0].timestamp"),
        (
            {"records": [{"value": 1, "timestamp": "now"}]},
            400,
            40001,
            "records[0].timestamp must be an integer",
        ),
        (
            {"records": [{"value": 1, "partition": True}]},
            400,
            40001,
            "records[0].partition must be an integer",
        ),
        (
            {"records": [{"value": 1, "headers": {"a": "b"}}]},
            400,
            40001,
            "records[0].headers must be an array",
        ),
        ({"records": [{"value": 1, "headers": [{"key": 1, "value": "b"}]}]}, 400, 40001, "headers[0].key"),
        ({"records": [{"value": 1}], "producer_id": 1}, 400, 40001, "go together"),
        ({"records": [{"value": 1}], "header_format": "hex"}, 422, 42204, "header_format"),
    ],
)
def test_bad_bodies_get_clear_errors_naming_the_record(
    client: Any, body: object, status: int, code: int, fragment: str
) -> None:
    create_topic(client, "bad")
    response = client.post(
        "/v1/topics/bad/records", content=orjson.dumps(body), headers={"content-type": "application/json"}
    )
    problem = assert_problem(response, status, code)
    assert fragment in problem["detail"]
    assert fetch(client, "bad")["high_watermark"] == 0


def test_malformed_json_unsupported_media_type_and_bad_acks(client: Any) -> None:
    create_topic(client, "m")
    response = client.post(
        "/v1/topics/m/records", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, 40001)
    response = client.post(
        "/v1/topics/m/records", content=b"<x/>", headers={"content-type": "application/xml"}
    )
    assert_problem(response, 415, 41501)
    assert_problem(produce(client, "m", {"records": [{"value": 1}]}, acks="2"), 422, 42204)
    assert_problem(produce(client, "m", {"records": [{"value": 1}]}, value_format="json"), 422, 42204)


@pytest.mark.parametrize("settings_overrides", [{"max_records_per_request": 10}])
def test_records_per_request_limit(client: Any) -> None:
    create_topic(client, "limit")
    assert produce(client, "limit", {"records": [{"value": i} for i in range(10)]}).status_code == 200
    problem = assert_problem(
        produce(client, "limit", {"records": [{"value": i} for i in range(11)]}), 422, 42204
    )
    assert "max_records_per_request" in problem["detail"]


@pytest.mark.parametrize("settings_overrides", [{"max_request_bytes": 4096}])
def test_request_body_limit(client: Any) -> None:
    create_topic(client, "big")
    response = produce(client, "big", {"records": [{"value": "x" * 5000}]})
    assert_problem(response, 413, 41302)


def test_record_over_max_message_bytes_is_413_and_big_requests_are_split_into_batches(client: Any) -> None:
    create_topic(client, "small", partitions=2, max_message_bytes=2000)
    assert_problem(produce(client, "small", {"records": [{"value": "x" * 3000}]}, partition=0), 413, 41301)
    # 50 records of 200 bytes do not fit one 2,000-byte batch: the broker cuts them into several.
    response = produce(client, "small", {"records": [{"value": "y" * 200} for _ in range(50)]}, partition=1)
    assert response.status_code == 200
    assert [r["offset"] for r in response.json()["results"]] == list(range(50))
    assert len(fetch(client, "small", 1, max_records=100)["records"]) == 50


def test_partial_failure_is_207_with_per_record_errors(client: Any) -> None:
    create_topic(client, "partial", partitions=2, max_message_bytes=2000)
    body = {
        "records": [
            {"value": 1, "partition": 0},
            {"value": "z" * 3000, "partition": 1},
            {"value": 2, "partition": 0},
        ]
    }
    response = produce(client, "partial", body)
    assert response.status_code == 207, response.text
    results = response.json()["results"]
    assert results[0] == {"partition": 0, "offset": 0, "timestamp": results[0]["timestamp"]}
    assert results[1]["partition"] == 1 and results[1]["error_code"] == 41301 and results[1]["message"]
    assert results[2]["offset"] == 1
    assert fetch(client, "partial", 1)["high_watermark"] == 0


def test_compacted_topic_refuses_null_keys(client: Any) -> None:
    create_topic(client, "compacted", cleanup_policy="compact")
    problem = assert_problem(produce(client, "compacted", {"records": [{"value": 1}]}), 400, 40002)
    assert "compacted" in problem["detail"]
    assert produce(client, "compacted", {"records": [{"key": "k", "value": 1}]}).status_code == 200
    on_partition = produce(
        client, "compacted", {"records": [{"key": "k", "value": 1}, {"value": 2}]}, partition=0
    )
    assert "records[1] has no key" in assert_problem(on_partition, 400, 40002)["detail"]
    assert (
        produce(client, "compacted", {"records": [{"key": "k", "value": 3}]}, partition=0).status_code == 200
    )


# ------------------------------------------------------------------------------ idempotent producers


def test_producer_ids_are_unique_and_epochs_bump(client: Any) -> None:
    first = client.post("/v1/producers")
    second = client.post("/v1/producers", json={})
    assert first.status_code == second.status_code == 201
    assert first.json()["producer_id"] != second.json()["producer_id"]
    assert first.json()["producer_epoch"] == 0
    pid = first.json()["producer_id"]
    bumped = client.post("/v1/producers", json={"producer_id": pid, "producer_epoch": 0})
    assert bumped.json() == {"producer_id": pid, "producer_epoch": 1}
    assert_problem(client.post("/v1/producers", json={"producer_id": pid, "producer_epoch": 0}), 409, 40905)
    assert_problem(client.post("/v1/producers", json={"producer_id": 10**9}), 404, 40405)
    assert_problem(client.post("/v1/producers", json={"producer_id": -1}), 422, 42204)


def test_idempotent_retry_returns_the_original_offsets(client: Any) -> None:
    create_topic(client, "idem")
    producer = client.post("/v1/producers").json()
    body = {"records": [{"value": "a"}, {"value": "b"}], **producer, "sequence": 0}
    first = produce(client, "idem", body, partition=0)
    assert [r["offset"] for r in first.json()["results"]] == [0, 1]
    produce(client, "idem", {"records": [{"value": "other"}]}, partition=0)  # someone else appends
    retry = produce(client, "idem", body, partition=0)
    assert retry.status_code == 200
    assert [r["offset"] for r in retry.json()["results"]] == [0, 1]
    nxt = produce(client, "idem", {"records": [{"value": "c"}], **producer, "sequence": 2}, partition=0)
    assert nxt.json()["results"][0]["offset"] == 3
    assert [r["value"] for r in fetch(client, "idem")["records"]] == ["a", "b", "other", "c"]


def test_sequence_gap_is_409_40906_and_old_epoch_is_40905(client: Any) -> None:
    create_topic(client, "seq")
    producer = client.post("/v1/producers").json()
    assert (
        produce(
            client, "seq", {"records": [{"value": 0}], **producer, "sequence": 0}, partition=0
        ).status_code
        == 200
    )
    gap = produce(client, "seq", {"records": [{"value": 5}], **producer, "sequence": 5}, partition=0)
    assert_problem(gap, 409, 40906)
    bumped = client.post("/v1/producers", json=producer).json()
    assert bumped["producer_epoch"] == producer["producer_epoch"] + 1
    assert (
        produce(
            client, "seq", {"records": [{"value": "new"}], **bumped, "sequence": 0}, partition=0
        ).status_code
        == 200
    )
    zombie = produce(client, "seq", {"records": [{"value": "old"}], **producer, "sequence": 1}, partition=0)
    assert_problem(zombie, 409, 40905)
    # Fenced even on a partition the new epoch never wrote to.
    create_topic(client, "seq2")
    zombie2 = produce(client, "seq2", {"records": [{"value": "old"}], **producer, "sequence": 0}, partition=0)
    assert_problem(zombie2, 409, 40905)
    assert [r["value"] for r in fetch(client, "seq")["records"]] == [0, "new"]


def test_idempotent_produce_needs_a_partition_path(client: Any) -> None:
    create_topic(client, "idem-topic")
    producer = client.post("/v1/producers").json()
    response = produce(client, "idem-topic", {"records": [{"value": 1}], **producer, "sequence": 0})
    assert_problem(response, 422, 42204)


# ------------------------------------------------------------------------------------ Idempotency-Key


def test_idempotency_key_replays_the_first_answer(client: Any) -> None:
    create_topic(client, "ik", partitions=3)
    body = {"records": [{"value": i} for i in range(4)]}
    headers = {"Idempotency-Key": "order-42"}
    first = client.post("/v1/topics/ik/records", json=body, headers=headers)
    assert first.status_code == 200
    assert "idempotent-replayed" not in first.headers
    retry = client.post("/v1/topics/ik/records", json=body, headers=headers)
    assert retry.status_code == 200
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.content == first.content
    total = sum(fetch(client, "ik", p)["high_watermark"] for p in range(3))
    assert total == 4  # appended once
    reused = client.post("/v1/topics/ik/records", json={"records": [{"value": "different"}]}, headers=headers)
    assert_problem(reused, 409, 40907)
    # A key is scoped to its path: the same key on a partition path is a new request.
    other = client.post("/v1/topics/ik/partitions/0/records", json=body, headers=headers)
    assert other.status_code == 200 and "idempotent-replayed" not in other.headers


def test_idempotency_key_of_a_refused_request_can_be_used_again(client: Any) -> None:
    create_topic(client, "ik2")
    headers = {"Idempotency-Key": "k-1"}
    bad = client.post("/v1/topics/ik2/records", json={"records": [{"key": 1, "value": 1}]}, headers=headers)
    assert_problem(bad, 400, 40002)
    good = client.post("/v1/topics/ik2/records", json={"records": [{"value": 1}]}, headers=headers)
    assert good.status_code == 200
    assert_problem(
        client.post(
            "/v1/topics/ik2/records",
            json={"records": [{"value": 1}]},
            headers={"Idempotency-Key": "has space"},
        ),
        422,
        42204,
    )


@pytest.mark.parametrize("settings_overrides", [{"idempotency_key_window_ms": 1}])
def test_idempotency_key_expires_after_the_window(client: Any) -> None:
    import time

    create_topic(client, "ik3")
    headers = {"Idempotency-Key": "short"}
    client.post("/v1/topics/ik3/records", json={"records": [{"value": 1}]}, headers=headers)
    time.sleep(0.01)
    again = client.post("/v1/topics/ik3/records", json={"records": [{"value": 1}]}, headers=headers)
    assert again.status_code == 200 and "idempotent-replayed" not in again.headers
    assert fetch(client, "ik3")["high_watermark"] == 2


# ------------------------------------------------------------------------------------------- NDJSON


def test_ndjson_produce_acknowledges_one_line_per_record(client: Any) -> None:
    create_topic(client, "nd")
    lines = [orjson.dumps({"key": f"k{i}", "value": {"i": i}}) for i in range(2500)]
    body = b"\n".join(lines[:3]) + b"\n\n" + b"not json\n" + b"\n".join(lines[3:])  # no final newline
    response = client.post(
        "/v1/topics/nd/records",
        content=body,
        headers={"content-type": "application/x-ndjson"},
        params={"acks": "1"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    *acks, summary = [orjson.loads(line) for line in response.content.splitlines()]
    assert summary == {"summary": {"lines": 2502, "produced": 2500, "failed": 1}}
    assert len(acks) == 2501
    assert acks[3] == {"line": 5, "error_code": 40001, "message": acks[3]["message"]}
    good = [a for a in acks if "offset" in a]
    assert [a["offset"] for a in good] == list(range(2500))
    assert good[0]["line"] == 1 and good[3]["line"] == 6
    records = fetch(client, "nd", max_records=3000)["records"]
    assert [r["value"]["i"] for r in records] == list(range(2500))


def test_ndjson_produce_formats_from_the_query_and_404_before_streaming(client: Any) -> None:
    create_topic(client, "nd2")
    body = b'{"value": "plain text", "key": "k"}\n{"value": 5}\n'
    response = client.post(
        "/v1/topics/nd2/partitions/0/records",
        content=body,
        headers={"content-type": "application/x-ndjson"},
        params={"value_format": "string"},
    )
    acks = [orjson.loads(line) for line in response.content.splitlines()]
    assert acks[0]["offset"] == 0
    assert acks[1]["error_code"] == 40002
    assert fetch(client, "nd2")["records"][0]["value"] == "plain text"
    missing = client.post(
        "/v1/topics/none/records", content=body, headers={"content-type": "application/x-ndjson"}
    )
    assert_problem(missing, 404, 40401)


def test_metrics_count_produced_and_fetched_records(client: Any) -> None:
    create_topic(client, "counted")
    produce(client, "counted", {"records": [{"value": i} for i in range(7)]})
    fetch(client, "counted")
    text = client.get("/metrics").text
    assert 'tidelog_produced_records_total{topic="counted"} 7.0' in text
    assert 'tidelog_fetched_records_total{topic="counted"} 7.0' in text


def test_flush_ms_fsyncs_a_partition_that_went_quiet(client: Any, app: Any) -> None:
    import time

    create_topic(client, "flushms", flush_ms=100)
    log = app.state.broker._topics["flushms"].partitions[0].log
    produce(client, "flushms", {"records": [{"value": 1}]}, acks="1")
    deadline = time.monotonic() + 5
    while log.recovery_point < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.recovery_point >= 1  # flushed by the broker's tick, with no further append


def test_idempotency_key_in_progress_is_409_and_an_abandoned_claim_is_taken_over(
    client: Any, app: Any
) -> None:
    import time

    from app.broker.idempotency import request_hash
    from app.catalog import producers as catalog_producers

    create_topic(client, "ik4")
    body = orjson.dumps({"records": [{"value": 1}]})
    digest = request_hash("POST", "ik4", "application/json", "all", body)
    now_ms = int(time.time() * 1000)
    with app.state.catalog.begin() as session:
        catalog_producers.claim_idempotency_key(
            session,
            scope="ik4",
            key="pending",
            request_hash=digest,
            now_ms=now_ms,
            expires_at_ms=now_ms + 10**6,
        )
    headers = {"Idempotency-Key": "pending", "content-type": "application/json"}
    busy = client.post("/v1/topics/ik4/records", content=body, headers=headers)
    assert "still being served" in assert_problem(busy, 409, 40907)["detail"]
    other = client.post("/v1/topics/ik4/records", json={"records": [{"value": 2}]}, headers=headers)
    assert "different request" in assert_problem(other, 409, 40907)["detail"]
    with app.state.catalog.begin() as session:
        row = catalog_producers.get_idempotency_key(session, scope="ik4", key="pending")
        assert row is not None
        row.created_at_ms = now_ms - 120_000  # its broker died mid-request two minutes ago
    taken = client.post("/v1/topics/ik4/records", content=body, headers=headers)
    assert taken.status_code == 200
    replay = client.post("/v1/topics/ik4/records", content=body, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true"


def _fail_after_append(monkeypatch: pytest.MonkeyPatch, times: int = 1) -> list[int]:
    """The next ``times`` acks=all waits raise 50305 after the records were appended (a lost ack)."""
    from app.broker.partitions import PartitionHandle
    from app.cluster.errors import NotEnoughReplicasAfterAppendError

    original = PartitionHandle.wait_durable
    failed: list[int] = []

    async def wait_durable(self: PartitionHandle, up_to: int) -> None:
        await original(self, up_to)
        if len(failed) < times:
            failed.append(up_to)
            raise NotEnoughReplicasAfterAppendError(
                "injected: appended but not acknowledged", leader_id=None, leader_url=None
            )

    monkeypatch.setattr(PartitionHandle, "wait_durable", wait_durable)
    return failed


@pytest.mark.parametrize("path", ["/v1/topics/ik5/records", "/v1/topics/ik5/partitions/1/records"])
def test_idempotency_key_retry_after_an_append_that_was_not_acknowledged_appends_nothing(
    client: Any, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    create_topic(client, "ik5", partitions=3)
    records = [{"value": i} for i in range(4)] + [{"key": f"k{i}", "value": i} for i in range(6)]
    if path.endswith("partitions/1/records"):
        records = [{"value": i} for i in range(5)]
    failed = _fail_after_append(monkeypatch)
    headers = {"Idempotency-Key": "lost-ack"}
    first = client.post(path, json={"records": records}, headers=headers)
    assert failed, "the injected failure did not happen"
    if first.status_code == 503:
        assert_problem(first, 503, 50305)
    else:  # topic-level: the partition whose ack was lost fails, the others are answered
        assert first.status_code == 207
        codes = {r.get("error_code") for r in first.json()["results"]}
        assert 50305 in codes
    ends_before = _log_ends(client, "ik5")
    retry = client.post(path, json={"records": records}, headers=headers)
    assert retry.status_code == 200, retry.text
    assert "idempotent-replayed" not in retry.headers  # re-run: the log recognised the batches
    assert _log_ends(client, "ik5") == ends_before  # nothing appended again
    results = retry.json()["results"]
    assert len(results) == len(records)
    for partition in range(3):
        offsets = sorted(r["offset"] for r in results if r["partition"] == partition)
        assert offsets == list(range(len(offsets)))  # the original offsets, each record once
        assert len(fetch(client, "ik5", partition)["records"]) == len(offsets)
    replay = client.post(path, json={"records": records}, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true" and replay.json() == retry.json()


def test_idempotency_key_refused_request_releases_its_key_and_producer_fields_conflict(
    client: Any,
) -> None:
    create_topic(client, "ik6")
    headers = {"Idempotency-Key": "k1"}
    refused = {"records": [{"value": 1, "partition": 9}]}
    bad = client.post("/v1/topics/ik6/records", json=refused, headers=headers)
    assert bad.status_code == 404
    good = client.post("/v1/topics/ik6/records", json={"records": [{"value": 1}]}, headers=headers)
    assert good.status_code == 200  # the refused request released the key
    both = client.post(
        "/v1/topics/ik6/partitions/0/records",
        json={"records": [{"value": 1}], "producer_id": 1, "producer_epoch": 0, "sequence": 0},
        headers={"Idempotency-Key": "k2"},
    )
    assert "one or the other" in assert_problem(both, 422, 42204)["detail"]


def _log_ends(client: Any, topic: str) -> list[int]:
    described = client.get(f"/v1/topics/{topic}").json()
    return [p["high_watermark"] for p in described["partitions"]]


def test_ndjson_refuses_idempotency_key_and_takes_binary_headers(client: Any) -> None:
    create_topic(client, "nd3")
    line = orjson.dumps({"value": 1, "headers": [{"key": "h", "value": base64.b64encode(b"\x01").decode()}]})
    refused = client.post(
        "/v1/topics/nd3/records",
        content=line + b"\n",
        headers={"content-type": "application/x-ndjson", "Idempotency-Key": "k"},
    )
    assert_problem(refused, 422, 42204)
    accepted = client.post(
        "/v1/topics/nd3/records",
        content=line + b"\n",
        headers={"content-type": "application/x-ndjson"},
        params={"header_format": "binary"},
    )
    assert orjson.loads(accepted.content.splitlines()[0])["offset"] == 0
    record = fetch(client, "nd3", header_format="binary")["records"][0]
    assert record["headers"] == [{"key": "h", "value": base64.b64encode(b"\x01").decode()}]


def test_a_cancelled_request_neither_stops_its_append_nor_frees_the_partition_early(
    client: Any, app: Any
) -> None:
    import asyncio
    import threading
    import time

    from app.broker import Acks
    from app.broker.produce import parse_produce_body

    create_topic(client, "cancel")
    broker = app.state.broker
    log = broker._topics["cancel"].partitions[0].log
    original = log.append_records
    active = threading.Semaphore(1)
    overlaps: list[int] = []

    def slow_append(*args: Any, **kwargs: Any) -> Any:
        if not active.acquire(blocking=False):
            overlaps.append(1)  # two appends at once: the single-writer rule broken
            active.acquire()
        try:
            time.sleep(0.3)
            return original(*args, **kwargs)
        finally:
            active.release()

    log.append_records = slow_append

    async def scenario() -> list[int]:
        big = parse_produce_body({"records": [{"value": i} for i in range(100)]}, max_records=1000, now_ms=1)
        first = asyncio.ensure_future(broker.produce("cancel", big, acks=Acks.LEADER, partition=0))
        await asyncio.sleep(0.05)
        first.cancel()
        second_body = parse_produce_body({"records": [{"value": "after"}] * 100}, max_records=1000, now_ms=1)
        second = await broker.produce("cancel", second_body, acks=Acks.LEADER, partition=0)
        return [r.offset for r in second.results]

    try:
        offsets = client.portal.call(scenario)
    finally:
        log.append_records = original
    assert overlaps == []
    assert offsets == list(range(100, 200))  # the cancelled request's batch was appended first, whole
    assert fetch(client, "cancel", max_records=1000)["high_watermark"] == 200
