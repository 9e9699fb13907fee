"""End-to-end latency at a steady rate of single-record produces: from the produce call to delivery.

The producers follow a fixed schedule (record i is due at `start + i / rate`) spread over a few worker
threads, each with its own connection, so that one slow answer delays neither the records after it nor
the rate (an open schedule, not one request after the other: no coordinated omission up to `workers`
requests in flight). The consumer runs in its own thread with its own connection, connected before the
first produce. Each record carries `time.perf_counter_ns()` taken just before its produce call, and the
consumer subtracts it from the clock when it has decoded the record: one process, so one clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import redis
from httpx_sse import connect_sse

from ._tidelog import BenchError, Tidelog

_JSON = {"content-type": "application/json"}
PRODUCER_WORKERS = 8

# A sender: (send one record, close the connection behind it); each producer worker makes its own.
Sender = tuple[Callable[[], None], Callable[[], None]]


@dataclass(frozen=True, slots=True)
class LatencyRun:
    latencies_ms: list[float]  # produce call to delivery
    sent: int
    seconds: float
    acks_ms: list[float]  # produce call to its acknowledgement, for telling the two halves apart

    @property
    def achieved_rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


def _pace(
    rate: int,
    count: int,
    time_cap_s: float,
    make_sender: Callable[[], Sender],
    workers: int = PRODUCER_WORKERS,
) -> tuple[int, float, list[float]]:
    """Send ``count`` records on the schedule; return (records sent, seconds, each send's duration in ms)."""
    senders = [make_sender() for _ in range(workers)]
    started = time.perf_counter() + 0.05
    deadline = started + time_cap_s
    sent = [0] * workers
    acks_ms: list[float] = []
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        send_one = senders[index][0]
        try:
            for item in range(index, count, workers):
                delay = started + item / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                if time.perf_counter() > deadline or errors:
                    return
                called = time.perf_counter()
                send_one()
                acks_ms.append((time.perf_counter() - called) * 1000.0)
                sent[index] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=time_cap_s + 60)
    finally:
        for _, close in senders:
            close()
    if errors:
        raise BenchError(f"produce failed: {errors[0]!r}")
    return sum(sent), time.perf_counter() - started, acks_ms


class _Collector:
    def __init__(self, count: int) -> None:
        self.count = count
        self.latencies: list[float] = []
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def add(self, value_json: object) -> None:
        if isinstance(value_json, dict) and "sent_ns" in value_json:
            self.latencies.append((time.perf_counter_ns() - int(value_json["sent_ns"])) / 1e6)

    @property
    def finished(self) -> bool:
        return self.stop.is_set() or len(self.latencies) >= self.count


def _run(
    collector: _Collector,
    consume: Callable[[_Collector], None],
    produce: Callable[[], tuple[int, float, list[float]]],
    grace_s: float = 5.0,
) -> LatencyRun:
    def guarded() -> None:
        try:
            consume(collector)
        except BaseException as exc:
            collector.error = exc
        finally:
            collector.ready.set()

    thread = threading.Thread(target=guarded, name="latency-consumer", daemon=True)
    thread.start()
    if not collector.ready.wait(timeout=30):
        collector.stop.set()
        raise BenchError("the consumer did not connect within 30 s")
    if collector.error is not None:
        raise BenchError(f"consumer failed: {collector.error!r}")
    sent, seconds, acks_ms = produce()
    waited = time.perf_counter() + grace_s
    while len(collector.latencies) < sent and time.perf_counter() < waited and thread.is_alive():
        time.sleep(0.01)
    collector.stop.set()
    thread.join(timeout=10)
    if collector.error is not None and len(collector.latencies) < sent:
        raise BenchError(f"consumer failed after {len(collector.latencies)} of {sent}: {collector.error!r}")
    if len(collector.latencies) < sent:
        raise BenchError(f"only {len(collector.latencies)} of {sent} records were delivered")
    return LatencyRun(collector.latencies, sent, seconds, acks_ms)


def _tidelog_producer(
    tidelog: Tidelog, topic: str, rate: int, count: int, size: int, cap: float
) -> Callable[[], tuple[int, float, list[float]]]:
    pad = "x" * max(0, size - 40)
    path = f"/v1/topics/{topic}/partitions/0/records"

    def make_sender() -> Sender:
        http = tidelog.client()

        def send_one() -> None:
            body = orjson.dumps({"records": [{"value": {"sent_ns": time.perf_counter_ns(), "pad": pad}}]})
            response = http.post(path, content=body, params={"acks": "1"}, headers=_JSON)
            if response.status_code != 200:
                raise BenchError(f"produce: HTTP {response.status_code}: {response.text[:200]}")

        return send_one, http.close

    return lambda: _pace(rate, count, cap, make_sender)


def tidelog_sse(
    tidelog: Tidelog, topic: str, *, rate: int, count: int, size: int, time_cap_s: float
) -> LatencyRun:
    """tidelog produce (acks=1) → `GET /v1/topics/{topic}/events` (Server-Sent Events).

    The topic is new and empty, so `from=earliest` starts at the first record produced, with no race
    between the stream's start and the first produce.
    """

    def consume(collector: _Collector) -> None:
        timeout = httpx.Timeout(10.0, read=2.0)
        with (
            httpx.Client(base_url=tidelog.url, timeout=timeout) as http,
            connect_sse(http, "GET", f"/v1/topics/{topic}/events", params={"from": "earliest"}) as source,
        ):
            if source.response.status_code != 200:
                raise BenchError(f"events: HTTP {source.response.status_code}")
            collector.ready.set()
            try:
                for sse in source.iter_sse():
                    if sse.event == "record":
                        collector.add(orjson.loads(sse.data).get("value"))
                    if collector.finished:
                        return
            except httpx.ReadTimeout:
                if not collector.finished:
                    raise

    producer = _tidelog_producer(tidelog, topic, rate, count, size, time_cap_s)
    return _run(_Collector(count), consume, producer)


def tidelog_long_poll(
    tidelog: Tidelog, topic: str, *, rate: int, count: int, size: int, time_cap_s: float
) -> LatencyRun:
    """tidelog produce (acks=1) → long-poll fetch (`max_wait_ms=1000`, `min_bytes=1`) from the end."""
    start_offset = tidelog.high_watermark(topic)

    def consume(collector: _Collector) -> None:
        offset = start_offset
        with tidelog.client() as http:
            collector.ready.set()
            while not collector.finished:
                response = http.get(
                    f"/v1/topics/{topic}/partitions/0/records",
                    params={"offset": offset, "max_wait_ms": 1000, "min_bytes": 1, "max_records": 1000},
                )
                if response.status_code != 200:
                    raise BenchError(f"fetch: HTTP {response.status_code}: {response.text[:200]}")
                body = orjson.loads(response.content)
                for record in body["records"]:
                    collector.add(record["value"])
                offset = body["next_offset"]

    producer = _tidelog_producer(tidelog, topic, rate, count, size, time_cap_s)
    return _run(_Collector(count), consume, producer)


def redis_xread_block(
    url: str, key: str, *, rate: int, count: int, size: int, time_cap_s: float
) -> LatencyRun:
    """XADD (one entry per call) → XREAD BLOCK 1000 from the entry before the first."""
    pad = "x" * max(0, size - 40)
    with redis.Redis.from_url(url, socket_timeout=30) as setup:
        start_id = setup.xadd(key, {"v": b"{}"})
        setup.expire(key, 3600)  # the shared server outlives the suite

    def consume(collector: _Collector) -> None:
        client = redis.Redis.from_url(url, socket_timeout=30)
        try:
            last_id = start_id
            collector.ready.set()
            while not collector.finished:
                answer: Any = client.xread({key: last_id}, count=1000, block=1000)
                if not answer:
                    continue
                for entry_id, fields in answer[0][1]:
                    collector.add(orjson.loads(fields[b"v"]))
                    last_id = entry_id
        finally:
            client.close()

    def make_sender() -> Sender:
        client = redis.Redis.from_url(url, socket_timeout=30)

        def send_one() -> None:
            client.xadd(key, {"v": orjson.dumps({"sent_ns": time.perf_counter_ns(), "pad": pad})})

        return send_one, client.close

    return _run(_Collector(count), consume, lambda: _pace(rate, count, time_cap_s, make_sender))
