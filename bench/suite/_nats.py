"""NATS JetStream through nats-py: async publish, a pull consumer fetching batches, a push consumer.

Durability: the suite's streams use file storage with one replica. JetStream acknowledges a publish once
the message is in its file store (written to the OS, fsynced on a timer rather than per message), so a
PubAck corresponds to tidelog's acks=1: it survives the server process dying, not a power loss.

nats-py is asyncio-only, so the client runs on its own event loop in a background thread and the suite
hands it whole measurements (never single calls), keeping the hop out of the timed loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import nats
import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from ._events import Throughput
from ._latency import PRODUCER_WORKERS, LatencyRun

T = TypeVar("T")


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="nats-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


class JetStream:
    def __init__(self, url: str) -> None:
        self.url = url
        self.tag = uuid.uuid4().hex[:12]
        self._loop = _LoopThread()
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._streams: set[str] = set()

    def _context(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("not connected")
        return self._js

    def connect(self) -> str:
        """Connect and return the server's version; raises when NATS or JetStream does not answer."""

        async def connect() -> str:
            nc = await nats.connect(
                self.url, connect_timeout=2, max_reconnect_attempts=0, allow_reconnect=False
            )
            js = nc.jetstream(timeout=30)
            await js.account_info()  # fails unless JetStream is enabled
            self._nc, self._js = nc, js
            version = str(nc.connected_server_version).strip("<>").removeprefix("nats server ")
            return f"NATS {version} with JetStream (file storage, 1 replica)"

        return self._loop.run(connect(), timeout=15)

    def stream(self, name: str) -> str:
        """Create a fresh file-backed stream and return its subject."""
        stream_name = f"TIDELOG_BENCH_{self.tag}_{name}".upper()
        subject = f"tidelogbench.{self.tag}.{name}"

        async def add() -> None:
            await self._context().add_stream(
                StreamConfig(
                    name=stream_name,
                    subjects=[subject],
                    storage=StorageType.FILE,
                    num_replicas=1,
                    max_age=3600,  # should the suite die before close(), the shared server drops the data
                )
            )

        self._loop.run(add(), timeout=30)
        self._streams.add(stream_name)
        return subject

    def produce(
        self, subject: str, batch: Sequence[dict[str, Any]], *, total: int, time_cap_s: float
    ) -> Throughput:
        """publish_async ``len(batch)`` messages, then wait for all their PubAcks; repeat up to ``total``."""

        async def run() -> Throughput:
            js = self._context()
            value_bytes = sum(len(orjson.dumps(value)) for value in batch)
            sent = 0
            sent_bytes = 0
            started = time.perf_counter()
            deadline = started + time_cap_s
            while sent < total and time.perf_counter() < deadline:
                futures = [await js.publish_async(subject, orjson.dumps(value)) for value in batch]
                await asyncio.gather(*futures)
                sent += len(batch)
                sent_bytes += value_bytes
            return Throughput(sent, sent_bytes, time.perf_counter() - started)

        return self._loop.run(run(), timeout=time_cap_s + 120)

    def consume(
        self, subject: str, total: int, *, value_size: int, time_cap_s: float, count: int = 1000
    ) -> Throughput:
        """A pull consumer (no acks needed: AckPolicy.NONE) fetching ``count`` at a time from the start."""

        async def run() -> Throughput:
            js = self._context()
            subscription = await js.pull_subscribe(
                subject,
                config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL),
            )
            try:
                got = 0
                started = time.perf_counter()
                deadline = started + time_cap_s
                while got < total and time.perf_counter() < deadline:
                    messages = await subscription.fetch(min(count, total - got), timeout=10)
                    values = [orjson.loads(message.data) for message in messages]
                    got += len(values)
                return Throughput(got, got * value_size, time.perf_counter() - started)
            finally:
                await subscription.unsubscribe()

        return self._loop.run(run(), timeout=time_cap_s + 120)

    def latency(self, subject: str, *, rate: int, count: int, size: int, time_cap_s: float) -> LatencyRun:
        """Single-message publishes (each awaiting its PubAck) on a fixed schedule, taken by a push consumer.

        The schedule is shared by the same number of concurrent senders as the other systems' producers;
        latencies are milliseconds from the start of each publish call to the consumer's callback.
        """

        async def run() -> LatencyRun:
            js = self._context()
            latencies: list[float] = []
            done = asyncio.Event()

            async def on_message(message: Msg) -> None:
                received = time.perf_counter_ns()
                sent = orjson.loads(message.data)["sent_ns"]
                latencies.append((received - sent) / 1e6)
                if len(latencies) >= count:
                    done.set()

            # The stream is new and empty: ALL starts at the first message, with no race against it.
            subscription = await js.subscribe(subject, cb=on_message, deliver_policy=DeliverPolicy.ALL)
            try:
                pad = "x" * max(0, size - 40)
                started = time.perf_counter() + 0.05
                deadline = started + time_cap_s
                sent = [0] * PRODUCER_WORKERS
                acks_ms: list[float] = []

                async def sender(index: int) -> None:
                    for item in range(index, count, PRODUCER_WORKERS):
                        delay = started + item / rate - time.perf_counter()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        if time.perf_counter() > deadline:
                            return
                        called = time.perf_counter()
                        await js.publish(
                            subject, orjson.dumps({"sent_ns": time.perf_counter_ns(), "pad": pad})
                        )
                        acks_ms.append((time.perf_counter() - called) * 1000.0)
                        sent[index] += 1

                await asyncio.gather(*(sender(i) for i in range(PRODUCER_WORKERS)))
                seconds = time.perf_counter() - started
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), timeout=5)
                if len(latencies) < sum(sent):
                    raise RuntimeError(f"only {len(latencies)} of {sum(sent)} messages were delivered")
                return LatencyRun(latencies, sum(sent), seconds, acks_ms)
            finally:
                await subscription.unsubscribe()

        return self._loop.run(run(), timeout=time_cap_s + 60)

    def close(self) -> None:
        async def close() -> None:
            js = self._js
            if js is not None:
                for name in self._streams:
                    try:
                        await js.delete_stream(name)
                    except Exception as exc:  # cleanup goes on for the other streams
                        print(f"  could not delete JetStream stream {name}: {exc!r}", flush=True)
            if self._nc is not None:
                await self._nc.close()

        try:
            self._loop.run(close(), timeout=30)
        finally:
            self._streams.clear()
            self._loop.stop()
