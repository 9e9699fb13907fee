"""``POST /v1/topics/{t}/partitions/{p}/delete-records``: Kafka's DeleteRecords."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api._records import assert_problem, create_topic


def _produce(client: Any, topic: str, n: int) -> None:
    for i in range(n):  # one request each: one batch each, so small segments roll often
        answer = client.post(f"/v1/topics/{topic}/partitions/0/records", json={"records": [{"value": i}]})
        assert answer.status_code == 200, answer.text


def _offsets(client: Any, topic: str) -> dict[str, int]:
    return client.get(f"/v1/topics/{topic}/partitions/0/offsets").json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("settings_overrides", [{"log_segment_bytes": 120}])
def test_delete_records_moves_the_log_start_and_drops_whole_segments(client: Any, app: Any) -> None:
    create_topic(client, "dr")
    _produce(client, "dr", 20)
    log = app.state.broker._topics["dr"].partitions[0].log
    segments_before = log.segment_count
    answer = client.post("/v1/topics/dr/partitions/0/delete-records", json={"offset": 12})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"topic": "dr", "partition": 0, "low_watermark": 12}
    assert _offsets(client, "dr")["log_start_offset"] == 12
    assert log.segment_count < segments_before
    body = assert_problem(client.get("/v1/topics/dr/partitions/0/records", params={"offset": 5}), 416, 41601)
    assert body["log_start_offset"] == 12
    records = client.get("/v1/topics/dr/partitions/0/records", params={"offset": 12}).json()["records"]
    assert [r["value"] for r in records] == list(range(12, 20))
    # The log start never moves back; -1 means the high watermark.
    assert (
        client.post("/v1/topics/dr/partitions/0/delete-records", json={"offset": 3}).json()["low_watermark"]
        == 12
    )
    assert (
        client.post("/v1/topics/dr/partitions/0/delete-records", json={"offset": -1}).json()["low_watermark"]
        == 20
    )


def test_delete_records_refuses_offsets_past_the_high_watermark_and_bad_input(client: Any) -> None:
    create_topic(client, "dr2")
    _produce(client, "dr2", 3)
    body = assert_problem(
        client.post("/v1/topics/dr2/partitions/0/delete-records", json={"offset": 4}), 416, 41601
    )
    assert body["high_watermark"] == 3 and body["log_start_offset"] == 0
    assert_problem(client.post("/v1/topics/dr2/partitions/0/delete-records", json={"offset": -2}), 422, 42204)
    assert_problem(client.post("/v1/topics/dr2/partitions/0/delete-records", json={}), 422, 42204)
    assert_problem(client.post("/v1/topics/nope/partitions/0/delete-records", json={"offset": 0}), 404, 40401)
    assert_problem(client.post("/v1/topics/dr2/partitions/7/delete-records", json={"offset": 0}), 404, 40402)
    assert _offsets(client, "dr2")["log_start_offset"] == 0
