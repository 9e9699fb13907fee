"""Fetch: shape, offsets, limits, NDJSON, long-poll, out-of-range answers, wait_for_data."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest

from app.broker.produce import parse_produce_body
from tests.api._records import assert_problem, create_topic, fetch


def produce_values(client: Any, topic: str, values: list[Any], partition: int = 0, **extra: Any) -> None:
    body = {"records": [{"value": v, **extra} for v in values]}
    response = client.post(f"/v1/topics/{topic}/partitions/{partition}/records", json=body)
    assert response.status_code == 200, response.text


def test_fetch_answer_shape_and_next_offset(client: Any) -> None:
    create_topic(client, "f")
    produce_values(client, "f", list(range(10)))
    body = fetch(client, "f", offset=3, max_records=4)
    assert [r["offset"] for r in body["records"]] == [3, 4, 5, 6]
    assert body["next_offset"] == 7
    assert body["high_watermark"] == 10
    assert body["log_start_offset"] == 0
    record = body["records"][0]
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
    assert record["topic"] == "f" and record["partition"] == 0 and record["timestamp_type"] == "CreateTime"
    # Default offset: the log start. At the high watermark: nothing yet, come back at the same offset.
    response = client.get("/v1/topics/f/partitions/0/records")
    assert response.json()["records"][0]["offset"] == 0
    at_end = fetch(client, "f", offset=10)
    assert at_end["records"] == [] and at_end["next_offset"] == 10


def test_max_bytes_returns_at_least_one_batch_and_bounds_the_rest(client: Any) -> None:
    create_topic(client, "mb")
    for i in range(5):
        produce_values(client, "mb", [f"{i}-{j}" * 20 for j in range(10)])  # five batches of ten
    one = fetch(client, "mb", offset=0, max_bytes=1, max_records=1000)
    assert [r["offset"] for r in one["records"]] == list(range(10))  # the whole first batch
    assert one["next_offset"] == 10
    mid = fetch(client, "mb", offset=15, max_bytes=1, max_records=1000)
    assert [r["offset"] for r in mid["records"]] == list(range(15, 20))
    everything = fetch(client, "mb", offset=0, max_records=1000)
    assert len(everything["records"]) == 50 and everything["next_offset"] == 50


def test_ndjson_fetch_is_one_record_per_line_with_offsets_in_headers(client: Any) -> None:
    create_topic(client, "ndf")
    produce_values(client, "ndf", [{"n": i} for i in range(3)])
    response = client.get(
        "/v1/topics/ndf/partitions/0/records",
        params={"offset": 1},
        headers={"accept": "application/x-ndjson"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in response.content.splitlines()]
    assert [line["value"] for line in lines] == [{"n": 1}, {"n": 2}]
    assert response.headers["tidelog-next-offset"] == "3"
    assert response.headers["tidelog-high-watermark"] == "3"
    assert response.headers["tidelog-log-start-offset"] == "0"


def test_offset_above_the_log_end_is_416_with_the_range(client: Any) -> None:
    create_topic(client, "oor")
    produce_values(client, "oor", [1, 2])
    response = client.get("/v1/topics/oor/partitions/0/records", params={"offset": 3})
    body = assert_problem(response, 416, 41601)
    assert body["log_start_offset"] == 0 and body["high_watermark"] == 2 and body["offset"] == 3
    huge = client.get("/v1/topics/oor/partitions/0/records", params={"offset": 2**62})
    assert_problem(huge, 416, 41601)


@pytest.mark.parametrize("settings_overrides", [{"log_segment_bytes": 300, "log_retention_bytes": 400}])
def test_offset_below_the_log_start_after_retention_is_416(client: Any, app: Any) -> None:
    create_topic(client, "ret")
    for i in range(10):
        produce_values(client, "ret", [f"record-{i}" * 5])
    stats = app.state.broker.enforce_retention()
    assert stats.segments_deleted > 0
    start = client.get("/v1/topics/ret/partitions/0/offsets").json()["log_start_offset"]
    assert start > 0
    body = assert_problem(client.get("/v1/topics/ret/partitions/0/records", params={"offset": 0}), 416, 41601)
    assert body["log_start_offset"] == start and body["high_watermark"] == 10
    assert fetch(client, "ret", offset=start)["records"][0]["offset"] == start
    # No offset given: start from the log start.
    assert client.get("/v1/topics/ret/partitions/0/records").json()["records"][0]["offset"] == start


@pytest.mark.parametrize(
    "settings_overrides", [{"fetch_max_records": 100, "fetch_max_wait_ms": 1000, "fetch_max_bytes": 4096}]
)
@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"max_records": 101}, 422, 42204),
        ({"max_records": 0}, 422, 42204),
        ({"max_wait_ms": 1001}, 422, 42204),
        ({"max_bytes": 4097}, 422, 42204),
        ({"min_bytes": 5000}, 422, 42204),
        ({"offset": -1}, 422, 42204),
        ({"offset": "abc"}, 422, 42204),
        ({"value_format": "xml"}, 422, 42204),
    ],
)
def test_fetch_limits(client: Any, params: dict[str, Any], status: int, code: int) -> None:
    create_topic(client, "lim")
    response = client.get("/v1/topics/lim/partitions/0/records", params=params)
    assert_problem(response, status, code)


def test_unknown_topic_and_partition(client: Any) -> None:
    assert_problem(client.get("/v1/topics/none/partitions/0/records"), 404, 40401)
    create_topic(client, "one")
    assert_problem(client.get("/v1/topics/one/partitions/1/records"), 404, 40402)
    assert_problem(client.get("/v1/topics/one/partitions/-1/records"), 422, 42204)


def test_long_poll_without_data_answers_after_max_wait(client: Any) -> None:
    create_topic(client, "lp")
    started = time.monotonic()
    body = fetch(client, "lp", offset=0, max_wait_ms=300)
    elapsed = time.monotonic() - started
    assert body["records"] == []
    assert 0.28 <= elapsed < 3.0


def test_long_poll_answers_as_soon_as_data_arrives(client: Any, app: Any) -> None:
    create_topic(client, "lp2")
    broker = app.state.broker

    async def scenario() -> tuple[float, list[Any]]:
        started = time.monotonic()
        waiting = asyncio.ensure_future(
            broker.fetch("lp2", 0, 0, max_records=10, max_bytes=1 << 20, max_wait_ms=10_000)
        )
        await asyncio.sleep(0.2)
        assert not waiting.done()
        parsed = parse_produce_body({"records": [{"value": "hi"}]}, max_records=10, now_ms=1)
        await broker.produce("lp2", parsed)
        result = await waiting
        return time.monotonic() - started, result.records

    elapsed, records = client.portal.call(scenario)
    assert [r.value for r in records] == [b'"hi"']
    assert 0.2 <= elapsed < 2.0  # woken by the append, not by the 10 s timeout


def test_min_bytes_waits_for_enough_data(client: Any, app: Any) -> None:
    create_topic(client, "minb")
    produce_values(client, "minb", ["small"])
    started = time.monotonic()
    body = fetch(client, "minb", offset=0, min_bytes=100_000, max_wait_ms=300)
    assert time.monotonic() - started >= 0.28
    assert len(body["records"]) == 1  # what there was, after max_wait_ms
    started = time.monotonic()
    assert len(fetch(client, "minb", offset=0, min_bytes=1, max_wait_ms=5000)["records"]) == 1
    assert time.monotonic() - started < 2.0


def test_wait_for_data_over_many_partitions(client: Any, app: Any) -> None:
    create_topic(client, "w", partitions=3)
    produce_values(client, "w", ["old"], partition=1)
    broker = app.state.broker

    async def scenario() -> tuple[bool, bool, bool, float]:
        already = await broker.wait_for_data({("w", 0): 0, ("w", 1): 0}, 5.0)
        timed_out = await broker.wait_for_data({("w", 0): 0, ("w", 1): 1}, 0.2)
        started = time.monotonic()
        waiter = asyncio.ensure_future(broker.wait_for_data({("w", 0): 0, ("w", 2): 0}, 10.0))
        await asyncio.sleep(0.1)
        await broker.produce(
            "w", parse_produce_body({"records": [{"value": 1}]}, max_records=1, now_ms=1), partition=2
        )
        woke = await waiter
        return already, timed_out, woke, time.monotonic() - started

    already, timed_out, woke, elapsed = client.portal.call(scenario)
    assert already is True
    assert timed_out is False
    assert woke is True and elapsed < 2.0


def test_deleting_a_topic_wakes_its_long_polls_with_404(client: Any, app: Any) -> None:
    create_topic(client, "gone")
    broker = app.state.broker

    async def scenario() -> BaseException | None:
        waiting = asyncio.ensure_future(
            broker.fetch("gone", 0, 0, max_records=10, max_bytes=1024, max_wait_ms=10_000)
        )
        await asyncio.sleep(0.1)
        broker.delete_topic("gone")
        try:
            await asyncio.wait_for(waiting, 3.0)
        except Exception as exc:
            return exc
        return None

    error = client.portal.call(scenario)
    assert error is not None and getattr(error, "code", None) == 40401


@pytest.mark.parametrize("settings_overrides", [{"log_segment_bytes": 400}])
def test_fetch_after_compaction_keeps_offsets_and_the_last_value_per_key(client: Any, app: Any) -> None:
    create_topic(client, "cmp", cleanup_policy="compact", min_cleanable_dirty_ratio=0.01)
    for round_ in range(4):
        body = {"records": [{"key": f"k{k}", "value": {"round": round_}} for k in range(3)]}
        assert client.post("/v1/topics/cmp/partitions/0/records", json=body).status_code == 200
    stats = app.state.broker.enforce_retention()
    assert stats.partitions_compacted == 1
    body = fetch(client, "cmp", offset=0, max_records=100)
    records = [(r["offset"], r["key"], r["value"]) for r in body["records"]]
    # Rounds 0 and 1 were superseded in closed segments and are gone; the records that remain keep
    # their offsets, and the fetch reads on across segments up to the high watermark.
    assert records[0][0] > 0
    assert [r[0] for r in records] == sorted({r[0] for r in records})
    assert [r[:2] for r in records[-3:]] == [(9, "k0"), (10, "k1"), (11, "k2")]
    assert all(r[2] == {"round": 3} for r in records[-3:])
    assert len(records) < 12
    assert body["next_offset"] == 12 and body["high_watermark"] == 12
    # Reading from a compacted-away offset gives the next surviving record.
    assert fetch(client, "cmp", offset=1, max_records=1)["records"][0]["offset"] == records[0][0]


def test_out_of_range_is_also_the_storage_engines_error(client: Any, app: Any) -> None:
    from storage import errors as storage_errors

    create_topic(client, "oor2")
    broker = app.state.broker

    async def scenario() -> BaseException | None:
        try:
            await broker.fetch("oor2", 0, 7, max_records=1, max_bytes=1024, max_wait_ms=0)
        except storage_errors.OffsetOutOfRangeError as exc:  # what a consumer resetting its position catches
            return exc
        return None

    error = client.portal.call(scenario)
    assert error is not None
    assert (error.offset, error.log_start_offset, error.log_end_offset) == (7, 0, 0)  # type: ignore[attr-defined]


def test_close_ends_long_polls_at_once(client: Any, app: Any) -> None:
    create_topic(client, "closing")
    broker = app.state.broker

    async def scenario() -> tuple[float, int, bool]:
        started = time.monotonic()
        waiting = asyncio.ensure_future(
            broker.fetch("closing", 0, 0, max_records=10, max_bytes=1024, max_wait_ms=10_000)
        )
        waiting_many = asyncio.ensure_future(broker.wait_for_data({("closing", 0): 0}, 10.0))
        await asyncio.sleep(0.1)
        await broker.close()
        result = await asyncio.wait_for(waiting, 3.0)
        woke = await asyncio.wait_for(waiting_many, 3.0)
        return time.monotonic() - started, len(result.records), woke

    elapsed, count, woke = client.portal.call(scenario)
    assert count == 0 and woke is False
    assert elapsed < 3.0


def test_wait_for_data_wakes_when_a_topic_is_deleted(client: Any, app: Any) -> None:
    create_topic(client, "wgone")
    broker = app.state.broker

    async def scenario() -> tuple[bool, float]:
        started = time.monotonic()
        waiter = asyncio.ensure_future(broker.wait_for_data({("wgone", 0): 0}, 10.0))
        await asyncio.sleep(0.1)
        broker.delete_topic("wgone")
        woke = await asyncio.wait_for(waiter, 3.0)
        return woke, time.monotonic() - started

    woke, elapsed = client.portal.call(scenario)
    assert woke is True and elapsed < 3.0
