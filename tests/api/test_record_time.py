"""segment.ms, retention.ms and compaction in record time; KIP-937 timestamp bounds on produce."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.api._records import assert_problem, create_topic

HOUR_MS = 3_600_000


def _produce(client: Any, topic: str, records: list[dict[str, Any]]) -> Any:
    return client.post(f"/v1/topics/{topic}/partitions/0/records", json={"records": records})


def _values(client: Any, topic: str) -> list[tuple[Any, Any]]:
    body = client.get(
        f"/v1/topics/{topic}/partitions/0/records", params={"offset": 0, "max_records": 1000}
    ).json()
    return [(r["key"], r["value"]) for r in body["records"]]


def test_hour_old_records_are_deleted_by_the_next_retention_check(client: Any, app: Any) -> None:
    create_topic(client, "history", segment_ms=1000, retention_ms=60_000)
    old = int(time.time() * 1000) - HOUR_MS
    for i in range(5):  # a replay of history: rounds 10 s apart in record time, appended at once
        assert _produce(client, "history", [{"value": i, "timestamp": old + i * 10_000}]).status_code == 200
    log = app.state.broker._topics["history"].partitions[0].log
    assert log.segment_count == 5
    stats = app.state.broker.enforce_retention()
    assert stats.segments_deleted == 4  # every closed segment; never the active one
    assert client.get("/v1/topics/history/partitions/0/offsets").json()["log_start_offset"] == 4


def test_a_compacted_replay_is_compacted_to_the_latest_value_per_key(client: Any, app: Any) -> None:
    create_topic(client, "replay", cleanup_policy="compact", segment_ms=1000, min_cleanable_dirty_ratio=0)
    old = int(time.time() * 1000) - HOUR_MS
    for round_ in range(5):
        records = [{"key": f"k{k}", "value": round_, "timestamp": old + round_ * 10_000} for k in range(4)]
        assert _produce(client, "replay", records).status_code == 200
    # One more batch later in record time closes the last round's segment.
    assert (
        _produce(client, "replay", [{"key": "z", "value": 0, "timestamp": old + 60_000}]).status_code == 200
    )
    app.state.broker.enforce_retention()
    assert _values(client, "replay") == [(f"k{k}", 4) for k in range(4)] + [("z", 0)]


def test_timestamps_beyond_kip_937_bounds_are_refused_naming_the_record(client: Any) -> None:
    create_topic(client, "bounded", message_timestamp_before_max_ms=HOUR_MS)
    now = int(time.time() * 1000)
    future = _produce(client, "bounded", [{"value": 1}, {"value": 2, "timestamp": now + 2 * HOUR_MS}])
    body = assert_problem(future, 422, 42210)
    assert body["index"] == 1 and "records[1]" in body["detail"] and "after" in body["detail"]
    past = _produce(client, "bounded", [{"value": 1, "timestamp": now - 2 * HOUR_MS}])
    assert assert_problem(past, 422, 42210)["index"] == 0
    assert (
        client.get("/v1/topics/bounded/partitions/0/offsets").json()["log_end_offset"] == 0
    )  # nothing appended
    assert _produce(client, "bounded", [{"value": 1, "timestamp": now - HOUR_MS // 2}]).status_code == 200
    # LogAppendTime topics are stamped by the broker: any producer timestamp is accepted.
    create_topic(client, "stamped", message_timestamp_type="LogAppendTime")
    assert _produce(client, "stamped", [{"value": 1, "timestamp": now + 10 * HOUR_MS}]).status_code == 200


@pytest.mark.parametrize("name", ["segment.jitter.ms", "message.timestamp.after.max.ms"])
def test_the_new_configs_are_validated(client: Any, name: str) -> None:
    answer = client.post("/v1/topics", json={"name": "cfg", "partitions": 1, "configs": {name: -1}})
    assert assert_problem(answer, 422, 42201)["config"] == name


def test_ndjson_refuses_only_the_line_with_a_bad_timestamp(client: Any) -> None:
    create_topic(client, "nd-bounded")
    now = int(time.time() * 1000)
    lines = [{"value": 1}, {"value": 2, "timestamp": now + 10 * HOUR_MS}, {"value": 3}]
    body = "\n".join(json.dumps(line) for line in lines) + "\n"
    answer = client.post(
        "/v1/topics/nd-bounded/partitions/0/records",
        content=body,
        headers={"content-type": "application/x-ndjson"},
    )
    assert answer.status_code == 200, answer.text
    out = [json.loads(line) for line in answer.text.splitlines() if line]
    by_line = {o["line"]: o for o in out if "line" in o}
    assert by_line[1]["offset"] == 0 and by_line[3]["offset"] == 1
    assert by_line[2]["error_code"] == 42210 and "line 2" in by_line[2]["message"]
