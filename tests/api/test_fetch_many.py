"""``POST /v1/fetch``: many partitions in one fetch, per-partition errors, min_bytes/max_wait_ms, formats."""

from __future__ import annotations

import struct
import time
from typing import Any

import orjson

from storage.records import decode_records
from tests.api._records import assert_problem, create_topic

BATCH = "application/vnd.tidelog.batch"
NDJSON = "application/x-ndjson"


def produce(client: Any, topic: str, partition: int, values: list[Any]) -> None:
    response = client.post(
        f"/v1/topics/{topic}/partitions/{partition}/records",
        json={"records": [{"value": v} for v in values]},
    )
    assert response.status_code == 200, response.text


def fetch_many(client: Any, body: dict[str, Any], accept: str | None = None) -> Any:
    headers = {"Accept": accept} if accept else {}
    return client.post("/v1/fetch", json=body, headers=headers)


def test_many_partitions_of_many_topics_in_one_answer_in_request_order(client: Any) -> None:
    create_topic(client, "a", partitions=2)
    create_topic(client, "b")
    produce(client, "a", 0, [1, 2, 3])
    produce(client, "a", 1, [10])
    produce(client, "b", 0, ["x", "y"])
    body = {
        "partitions": [
            {"topic": "b", "partition": 0, "offset": 1},
            {"topic": "a", "partition": 0, "offset": 0},
            {"topic": "a", "partition": 1, "offset": 1},
        ]
    }
    answer = fetch_many(client, body)
    assert answer.status_code == 200, answer.text
    parts = answer.json()["partitions"]
    assert [(p["topic"], p["partition"]) for p in parts] == [("b", 0), ("a", 0), ("a", 1)]
    assert [r["value"] for r in parts[0]["records"]] == ["y"]
    assert [r["value"] for r in parts[1]["records"]] == [1, 2, 3]
    assert parts[2]["records"] == []
    assert [(p["next_offset"], p["high_watermark"], p["log_start_offset"]) for p in parts] == [
        (2, 2, 0),
        (3, 3, 0),
        (1, 1, 0),
    ]


def test_a_partition_that_cannot_be_read_gets_its_own_error(client: Any) -> None:
    create_topic(client, "a")
    produce(client, "a", 0, [1])
    body = {
        "partitions": [
            {"topic": "a", "partition": 0, "offset": 0},
            {"topic": "missing", "partition": 0, "offset": 0},
            {"topic": "a", "partition": 7, "offset": 0},
            {"topic": "a", "partition": 0, "offset": 99},
        ],
        "max_wait_ms": 5000,
        "min_bytes": 10**6,
    }
    started = time.monotonic()
    parts = fetch_many(client, body).json()["partitions"]
    assert time.monotonic() - started < 4  # an error answers at once, min_bytes or not
    assert [r["value"] for r in parts[0]["records"]] == [1]
    assert [p.get("error_code") for p in parts] == [None, 40401, 40402, 41601]
    assert parts[3]["log_start_offset"] == 0 and parts[3]["high_watermark"] == 1
    assert all(p["message"] for p in parts[1:])


def test_the_answer_waits_for_min_bytes_until_max_wait_ms(client: Any) -> None:
    create_topic(client, "a", partitions=2)
    produce(client, "a", 1, [1])
    wanted = [{"topic": "a", "partition": p, "offset": 0} for p in range(2)]
    started = time.monotonic()
    parts = fetch_many(client, {"partitions": wanted, "min_bytes": 10**6, "max_wait_ms": 300}).json()[
        "partitions"
    ]
    assert time.monotonic() - started >= 0.29
    assert [len(p["records"]) for p in parts] == [0, 1]  # what there was when the wait ended
    started = time.monotonic()
    fetch_many(client, {"partitions": wanted, "min_bytes": 1, "max_wait_ms": 5000})
    assert time.monotonic() - started < 4  # min_bytes there already: no wait


def test_the_request_budget_and_per_partition_budgets(client: Any) -> None:
    create_topic(client, "a", partitions=2)
    for _ in range(3):
        produce(client, "a", 0, ["v" * 500] * 4)
        produce(client, "a", 1, ["w" * 500] * 4)
    wanted = [{"topic": "a", "partition": p, "offset": 0, "max_bytes": 1} for p in range(2)]
    parts = fetch_many(client, {"partitions": wanted, "max_records": 100}).json()["partitions"]
    # At least one whole batch per partition, however small its budget.
    assert [len(p["records"]) for p in parts] == [4, 4]
    wanted = [{"topic": "a", "partition": p, "offset": 0} for p in range(2)]
    parts = fetch_many(client, {"partitions": wanted, "max_bytes": 100, "max_records": 100}).json()[
        "partitions"
    ]
    assert [len(p["records"]) for p in parts] == [4, 0]  # the first gets a batch, the budget is spent


def test_ndjson_and_binary_answers(client: Any) -> None:
    create_topic(client, "a", partitions=2)
    produce(client, "a", 0, [1, 2])
    produce(client, "a", 1, [3])
    wanted = [
        {"topic": "a", "partition": 0, "offset": 1},
        {"topic": "a", "partition": 1, "offset": 0},
        {"topic": "nope", "partition": 0, "offset": 0},
    ]
    lines = fetch_many(client, {"partitions": wanted}, NDJSON).content.splitlines()
    objects = [orjson.loads(line) for line in lines]
    assert [len(o.get("records", [])) for o in objects] == [1, 1, 0]
    assert objects[2]["error_code"] == 40401

    raw = fetch_many(client, {"partitions": wanted}, BATCH)
    assert raw.headers["content-type"] == BATCH
    data, pos, frames = raw.content, 0, []
    while pos < len(data):
        (n,) = struct.unpack_from(">h", data, pos)
        topic = data[pos + 2 : pos + 2 + n].decode()
        pos += 2 + n
        partition, code, hw, log_start, next_offset, length = struct.unpack_from(">iiqqqi", data, pos)
        pos += struct.calcsize(">iiqqqi")  # 36
        frames.append((topic, partition, code, hw, log_start, next_offset, data[pos : pos + length]))
        pos += length
    assert [f[:6] for f in frames[:2]] == [("a", 0, 0, 2, 0, 2), ("a", 1, 0, 1, 0, 1)]
    # The stored batch, from its start: offset 0 is there for the client to skip.
    assert [r.value for r in decode_records(frames[0][6])] == [b"1", b"2"]
    assert frames[2][2] == 40401 and orjson.loads(frames[2][6])["error_code"] == 40401


def test_limits_and_bad_bodies(client: Any, settings: Any) -> None:
    create_topic(client, "a")
    wanted = [{"topic": "a", "partition": 0, "offset": 0}]
    assert_problem(fetch_many(client, {"partitions": []}), 422, 42204)
    assert_problem(
        fetch_many(client, {"partitions": [{"topic": "a", "partition": -1, "offset": 0}]}), 422, 42204
    )
    too_long = settings.fetch_max_wait_ms + 1
    assert_problem(fetch_many(client, {"partitions": wanted, "max_wait_ms": too_long}), 422, 42204)
    assert_problem(fetch_many(client, {"partitions": wanted, "value_format": "binary"}, BATCH), 422, 42204)
    response = client.post("/v1/fetch", content=b"{", headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 422)
    assert response.headers["content-type"].startswith("application/problem+json")


def test_ten_thousand_missing_partitions_cost_one_lookup_per_topic(client: Any) -> None:
    """One request naming a missing topic, or missing partitions, thousands of times must not hold
    the broker for seconds (each used to re-read the catalog): asked once per topic."""
    create_topic(client, "few", partitions=1)
    for wanted in (
        [{"topic": "nowhere", "partition": 0, "offset": 0}] * 10_000,
        [{"topic": "few", "partition": p, "offset": 0} for p in range(1, 10_001)],
    ):
        started = time.monotonic()
        answer = client.post("/v1/fetch", json={"partitions": wanted})
        assert answer.status_code == 200
        codes = {p["error_code"] for p in answer.json()["partitions"]}
        assert codes == {40401} or codes == {40402}
        assert time.monotonic() - started < 5.0  # was 16 s for the missing partitions
