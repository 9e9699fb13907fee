"""The data path against a real ``tidelog serve`` process: crash and restart, long-poll, streaming."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.broker_process import BrokerProcess

pytestmark = pytest.mark.e2e


def _create(http: httpx.Client, name: str, partitions: int) -> None:
    response = http.post("/v1/topics", json={"name": name, "partitions": partitions})
    assert response.status_code == 201, response.text


def _all_records(http: httpx.Client, topic: str, partitions: int) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for p in range(partitions):
        body = http.get(
            f"/v1/topics/{topic}/partitions/{p}/records", params={"offset": 0, "max_records": 10_000}
        )
        assert body.status_code == 200, body.text
        out[p] = [(r["offset"], r["key"], r["value"]) for r in body.json()["records"]]
    return out


def test_acks_all_data_survives_sigkill_and_offsets_continue(broker_process: BrokerProcess) -> None:
    with broker_process.client(timeout=30) as http:
        _create(http, "crash", 3)
        acked: list[dict[str, Any]] = []
        for batch in range(20):
            records = [{"key": f"k{i % 11}", "value": {"batch": batch, "i": i}} for i in range(50)]
            response = http.post(
                "/v1/topics/crash/records", params={"acks": "all"}, json={"records": records}
            )
            assert response.status_code == 200
            acked.extend(response.json()["results"])
        before = _all_records(http, "crash", 3)
    assert sum(len(v) for v in before.values()) == 1000

    broker_process.kill()  # SIGKILL: no flush, no clean-shutdown marker
    broker_process.start()

    with broker_process.client(timeout=30) as http:
        after = _all_records(http, "crash", 3)
        assert after == before  # every acknowledged record, same offsets, keys and values
        for result in acked:
            assert any(offset == result["offset"] for offset, _, _ in after[result["partition"]])
        response = http.post("/v1/topics/crash/partitions/0/records", json={"records": [{"value": "next"}]})
        assert response.json()["results"][0]["offset"] == len(before[0])


def test_sigterm_restart_keeps_data_and_idempotent_state(broker_process: BrokerProcess) -> None:
    with broker_process.client(timeout=30) as http:
        _create(http, "clean", 1)
        producer = http.post("/v1/producers").json()
        body = {"records": [{"value": "a"}, {"value": "b"}], **producer, "sequence": 0}
        first = http.post("/v1/topics/clean/partitions/0/records", json=body, params={"acks": "1"})
        assert [r["offset"] for r in first.json()["results"]] == [0, 1]

    # uvicorn re-raises SIGTERM after its clean shutdown, so the exit status is "killed by SIGTERM".
    assert broker_process.stop() == -signal.SIGTERM
    broker_process.start()
    second_start = broker_process.log_text().rsplit("--- start 2:", 1)[1]
    assert "unclean" not in second_start  # closed cleanly: no recovery scan

    with broker_process.client(timeout=30) as http:
        # The retried batch is recognised after the restart: original offsets, nothing appended.
        retry = http.post("/v1/topics/clean/partitions/0/records", json=body)
        assert [r["offset"] for r in retry.json()["results"]] == [0, 1]
        offsets = http.get("/v1/topics/clean/partitions/0/offsets").json()
        assert offsets == {"log_start_offset": 0, "high_watermark": 2, "log_end_offset": 2}
        # Producer ids stay unique across restarts (they come from the catalog).
        assert http.post("/v1/producers").json()["producer_id"] != producer["producer_id"]


def test_long_poll_over_http_wakes_on_produce(broker_process: BrokerProcess) -> None:
    with broker_process.client(timeout=30) as http:
        _create(http, "poll", 1)
    answer: dict[str, Any] = {}

    def poll() -> None:
        with broker_process.client(timeout=30) as http:
            started = time.monotonic()
            response = http.get(
                "/v1/topics/poll/partitions/0/records", params={"offset": 0, "max_wait_ms": 10_000}
            )
            answer["elapsed"] = time.monotonic() - started
            answer["body"] = response.json()

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.3)
    with broker_process.client(timeout=30) as http:
        produced_at = time.monotonic()
        http.post("/v1/topics/poll/records", json={"records": [{"value": "wake"}]}, params={"acks": "1"})
    thread.join(15)
    assert not thread.is_alive()
    assert [r["value"] for r in answer["body"]["records"]] == ["wake"]
    assert 0.2 <= answer["elapsed"] < 3.0  # it waited for the produce, then answered at once
    assert time.monotonic() - produced_at < 3.0

    with broker_process.client(timeout=30) as http:
        started = time.monotonic()
        empty = http.get("/v1/topics/poll/partitions/0/records", params={"offset": 1, "max_wait_ms": 400})
        assert empty.json()["records"] == []
        assert 0.38 <= time.monotonic() - started < 3.0


def test_ndjson_streams_in_and_acks_stream_out(broker_process: BrokerProcess) -> None:
    with broker_process.client(timeout=30) as http:
        _create(http, "stream", 1)

        def body() -> Iterator[bytes]:
            for chunk in range(5):
                yield b"".join(orjson.dumps({"value": chunk * 100 + i}) + b"\n" for i in range(100))
                time.sleep(0.02)

        with http.stream(
            "POST",
            "/v1/topics/stream/records",
            content=body(),
            headers={"content-type": "application/x-ndjson"},
            params={"acks": "all"},
        ) as response:
            assert response.status_code == 200
            *acks, summary = [orjson.loads(line) for line in response.iter_lines() if line]
        assert summary == {"summary": {"lines": 500, "produced": 500, "failed": 0}}
        assert [a["offset"] for a in acks] == list(range(500))
        assert [a["line"] for a in acks] == list(range(1, 501))
        fetched = http.get(
            "/v1/topics/stream/partitions/0/records",
            params={"offset": 0, "max_records": 1000},
            headers={"accept": "application/x-ndjson"},
        )
        assert fetched.status_code == 200, fetched.text
        values = [orjson.loads(line)["value"] for line in fetched.content.splitlines()]
        assert values == list(range(500))
