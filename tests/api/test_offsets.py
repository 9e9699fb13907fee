"""Offsets: log start, high watermark, log end, and the offset of a timestamp."""

from __future__ import annotations

from typing import Any

from tests.api._records import assert_problem, create_topic


def test_offsets_of_an_empty_and_a_filled_partition(client: Any) -> None:
    create_topic(client, "o", partitions=2)
    empty = client.get("/v1/topics/o/partitions/1/offsets")
    assert empty.status_code == 200
    assert empty.json() == {"log_start_offset": 0, "high_watermark": 0, "log_end_offset": 0}
    body = {"records": [{"value": i, "timestamp": ts} for i, ts in enumerate([1000, 2000, 2000, 3000])]}
    assert client.post("/v1/topics/o/partitions/1/records", json=body).status_code == 200
    assert client.get("/v1/topics/o/partitions/1/offsets").json() == {
        "log_start_offset": 0,
        "high_watermark": 4,
        "log_end_offset": 4,
    }


def test_offset_for_timestamp(client: Any) -> None:
    create_topic(client, "ts")
    body = {"records": [{"value": i, "timestamp": ts} for i, ts in enumerate([1000, 2000, 2000, 3000])]}
    client.post("/v1/topics/ts/partitions/0/records", json=body)

    def offset(ts: int) -> Any:
        response = client.get("/v1/topics/ts/partitions/0/offsets", params={"timestamp": ts})
        assert response.status_code == 200, response.text
        return response.json()["offset"]

    assert offset(0) == 0
    assert offset(1000) == 0
    assert offset(1500) == 1
    assert offset(2000) == 1
    assert offset(2001) == 3
    assert offset(3000) == 3
    assert offset(3001) is None  # none that late: null, present in the body
    assert offset(-1) == 4  # Kafka's LATEST
    assert offset(-2) == 0  # Kafka's EARLIEST


def test_offsets_errors(client: Any) -> None:
    assert_problem(client.get("/v1/topics/nope/partitions/0/offsets"), 404, 40401)
    create_topic(client, "e")
    assert_problem(client.get("/v1/topics/e/partitions/3/offsets"), 404, 40402)
    assert_problem(client.get("/v1/topics/e/partitions/0/offsets", params={"timestamp": -3}), 422, 42204)
    assert_problem(client.get("/v1/topics/e/partitions/0/offsets", params={"timestamp": "x"}), 422, 42204)
