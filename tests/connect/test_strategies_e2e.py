"""The three failure strategies with poison records, against a real broker and a real HTTP target.

fast-fail (errors.tolerance=none), ignore (all), requeue (all + dead-letter topic); outages are retried
within errors.retry.timeout and then fail the task, never reaching the dead-letter topic.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.broker_process import BrokerProcess
from tests.connect.conftest import await_for, read_topic

pytestmark = pytest.mark.e2e


class Target:
    """An HTTP server whose answer to each request ``respond(body, count)`` decides."""

    def __init__(self) -> None:
        self.received: list[Any] = []
        self.attempts = 0
        self.respond: Callable[[Any, int], int] = lambda body, n: 200
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                target.attempts += 1
                status = target.respond(body, target.attempts)
                if status == 200:
                    target.received.append(body)
                self.send_response(status)
                if status == 503:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ingest"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.server.shutdown()
    t.server.server_close()


def _produce(url: str, topic: str, values: list[Any]) -> None:
    httpx.post(f"{url}/v1/topics", json={"name": topic, "partitions": 1}, timeout=10)
    answer = httpx.post(
        f"{url}/v1/topics/{topic}/records",
        json={
            "records": [
                {"value": v, "key": f"k{i}", "headers": [{"key": "origin", "value": "test"}]}
                for i, v in enumerate(values)
            ]
        },
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def _create(url: str, name: str, config: dict[str, Any]) -> None:
    answer = httpx.post(f"{url}/v1/connectors", json={"name": name, "config": config}, timeout=10)
    assert answer.status_code == 201, answer.text


def _task(url: str, name: str) -> dict[str, Any]:
    tasks = httpx.get(f"{url}/v1/connectors/{name}/status", timeout=10).json()["tasks"]
    return dict(tasks[0]) if tasks else {}


def _headers(record: dict[str, Any]) -> dict[str, Any]:
    headers = record.get("headers") or []
    if isinstance(headers, dict):
        return headers
    return {h["key"]: h["value"] for h in headers}


async def test_flaky_target_503_twice_then_200_is_delivered_once(
    broker_process: BrokerProcess, worker: Any, target: Target
) -> None:
    url = broker_process.url
    target.respond = lambda body, n: 503 if n <= 2 else 200
    _produce(url, "flaky", [{"n": 1}])
    _create(
        url,
        "h",
        {
            "connector.class": "http-sink",
            "topics": "flaky",
            "http.url": target.url,
            "errors.retry.timeout": "30000",
            "errors.retry.delay.max.ms": "200",
        },
    )
    await await_for(lambda: target.received, 60)
    await await_for(lambda: httpx.get(f"{url}/v1/connectors/h/offsets").json()["offsets"], 30)
    assert target.received == [{"n": 1}]
    assert target.attempts == 3
    assert _task(url, "h")["state"] == "RUNNING"


async def test_requeue_dead_letters_exactly_the_poison_records_with_context_headers(
    broker_process: BrokerProcess, worker: Any, target: Target
) -> None:
    url = broker_process.url
    target.respond = lambda body, n: 422 if any(v.get("poison") for v in body) else 200
    values = [{"n": 0}, {"n": 1, "poison": True}, {"n": 2}, {"n": 3, "poison": True}, {"n": 4}]
    _produce(url, "orders", values)
    _create(
        url,
        "dlq",
        {
            "connector.class": "http-sink",
            "topics": "orders",
            "http.url": target.url,
            "batch.max.records": "5",
            "errors.tolerance": "all",
            "errors.deadletterqueue.topic.name": "orders-dlq",
            "errors.deadletterqueue.context.headers.enable": "true",
        },
    )
    dead = await await_for(
        lambda: len(read_topic(url, "orders-dlq")) >= 2 and read_topic(url, "orders-dlq"), 60
    )
    await await_for(lambda: httpx.get(f"{url}/v1/connectors/dlq/offsets").json()["offsets"], 30)
    assert [r["value"] for r in dead] == [values[1], values[3]]
    assert [r["key"] for r in dead] == ["k1", "k3"]
    first = _headers(dead[0])
    assert first["origin"] == "test"
    assert first["__connect.errors.topic"] == "orders"
    assert first["__connect.errors.partition"] == "0"
    assert first["__connect.errors.offset"] == "1"
    assert first["__connect.errors.connector.name"] == "dlq"
    assert first["__connect.errors.task.id"] == "0"
    assert first["__connect.errors.stage"] == "TASK_PUT"
    assert first["__connect.errors.class.name"] == "HttpSinkTask"
    assert first["__connect.errors.exception.class.name"] == "tidelog.connect.api.DataError"
    assert "HTTP 422" in first["__connect.errors.exception.message"]
    assert _headers(dead[1])["__connect.errors.offset"] == "3"
    # the batch was bisected: every good record delivered exactly once
    assert sorted(v["n"] for batch in target.received for v in batch) == [0, 2, 4]
    offsets = httpx.get(f"{url}/v1/connectors/dlq/offsets").json()["offsets"]
    assert offsets == [
        {"partition": {"kafka_topic": "orders", "kafka_partition": 0}, "offset": {"kafka_offset": 5}}
    ]


async def test_ignore_skips_poison_records_without_a_dead_letter_topic(
    broker_process: BrokerProcess, worker: Any, tmp_path: Path
) -> None:
    url = broker_process.url
    source = tmp_path / "in.ndjson"
    source.write_text('{"n": 0}\nnot json\n{"n": 2}\n')
    _create(
        url,
        "ign",
        {
            "connector.class": "file-source",
            "file": str(source),
            "topic": "ign",
            "format": "ndjson",
            "errors.tolerance": "all",
            "errors.log.enable": "true",
        },
    )

    def stored() -> Any:
        offsets = httpx.get(f"{url}/v1/connectors/ign/offsets").json()["offsets"]
        return offsets and offsets[0]["offset"]["position"] == source.stat().st_size

    await await_for(stored, 60)
    assert [r["value"] for r in read_topic(url, "ign")] == [{"n": 0}, {"n": 2}]


async def test_fast_fail_stops_before_the_poison_record_and_requeue_covers_sources(
    broker_process: BrokerProcess, worker: Any, tmp_path: Path
) -> None:
    url = broker_process.url
    source = tmp_path / "in.ndjson"
    source.write_text('{"n": 0}\nnot json\n{"n": 2}\n')
    _create(
        url, "ff", {"connector.class": "file-source", "file": str(source), "topic": "ff", "format": "ndjson"}
    )
    failed = await await_for(lambda: _task(url, "ff").get("state") == "FAILED" and _task(url, "ff"), 60)
    assert "VALUE_CONVERTER" in failed["trace"] or "not JSON" in failed["trace"]
    offsets = httpx.get(f"{url}/v1/connectors/ff/offsets").json()["offsets"]
    # offsets stop before the failed record: at most the first line is stored
    assert offsets in (
        [],
        [{"partition": {"filename": str(source)}, "offset": {"position": len('{"n": 0}\n')}}],
    )
    # requeue on a source: the bad line as read goes to the dead-letter topic, the rest goes on
    _create(
        url,
        "rq",
        {
            "connector.class": "file-source",
            "file": str(source),
            "topic": "rq",
            "format": "ndjson",
            "errors.tolerance": "all",
            "errors.deadletterqueue.topic.name": "rq-dlq",
            "errors.deadletterqueue.context.headers.enable": "true",
        },
    )
    dead = await await_for(lambda: read_topic(url, "rq-dlq"), 60)
    assert [r["value"] for r in dead] == ["not json"]
    assert _headers(dead[0])["__connect.errors.stage"] == "VALUE_CONVERTER"
    await await_for(lambda: len(read_topic(url, "rq")) == 2, 30)
    assert [r["value"] for r in read_topic(url, "rq")] == [{"n": 0}, {"n": 2}]


async def test_an_outage_beyond_the_retry_timeout_fails_the_task_and_dead_letters_nothing_then_restarts(
    broker_process: BrokerProcess, worker: Any, target: Target
) -> None:
    url = broker_process.url
    down = {"yes": True}
    target.respond = lambda body, n: 503 if down["yes"] else 200
    _produce(url, "out", [{"n": 1}])
    _create(
        url,
        "o",
        {
            "connector.class": "http-sink",
            "topics": "out",
            "http.url": target.url,
            "errors.retry.timeout": "1500",
            "errors.retry.delay.max.ms": "300",
            "errors.tolerance": "all",
            "errors.deadletterqueue.topic.name": "out-dlq",
            "tasks.restart.max": "5",
            "tasks.restart.backoff.ms": "2000",
        },
    )
    failed = await await_for(lambda: _task(url, "o").get("state") == "FAILED" and _task(url, "o"), 60)
    assert "HTTP 503" in failed["trace"]
    assert read_topic(url, "out-dlq") == []
    assert target.received == []
    down["yes"] = False  # the target comes back: the automatic restart delivers
    await await_for(lambda: target.received, 60)
    assert target.received == [{"n": 1}]
    await await_for(lambda: _task(url, "o").get("state") == "RUNNING", 30)
    assert read_topic(url, "out-dlq") == []
