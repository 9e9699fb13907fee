"""``AsyncProducer``: the asyncio shell over ``tidelog._core.producer``, one sender task.

How a record travels is ``tidelog._producer``'s docstring: the same for both producers, only threads
versus tasks differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from tidelog import _api
from tidelog._core.producer import (
    Accumulator,
    Batch,
    DeliveryCallback,
    OnError,
    ProducerCore,
    outcomes,
    run_callback,
)
from tidelog._errors import ClientStateError, TidelogError
from tidelog._types import Headers, RecordMetadata, TopicPartition

if TYPE_CHECKING:
    from tidelog._client import AsyncClient

__all__ = ["AsyncProducer"]


class AsyncProducer:
    """The asyncio producer: ``await producer.send(...)`` queues and returns an ``asyncio.Future``.

    >>> async with client.producer() as producer:                 # doctest: +SKIP
    ...     meta = await producer.send_and_wait("orders", {"id": 1})
    """

    def __init__(
        self,
        client: AsyncClient,
        *,
        acks: int | str = "all",
        linger_ms: int = 5,
        batch_size: int = 64 * 1024,
        max_batch_records: int = 10_000,
        idempotent: bool | None = None,
        key_format: str = "string",
        value_format: str = "json",
        delivery_timeout_ms: int = 120_000,
        max_in_flight: int = 5,
        max_pending_records: int = 200_000,
        metadata_max_age_ms: int = 300_000,
        retry_backoff_ms: int = 100,
    ) -> None:
        self._client = client
        self._core = ProducerCore(
            acks=acks,
            linger_ms=linger_ms,
            batch_size=batch_size,
            max_batch_records=max_batch_records,
            idempotent=idempotent,
            key_format=key_format,
            value_format=value_format,
            delivery_timeout_ms=delivery_timeout_ms,
            max_in_flight=max_in_flight,
            max_pending_records=max_pending_records,
            metadata_max_age_ms=metadata_max_age_ms,
            retry_backoff_ms=retry_backoff_ms,
            batch_format=client.batch_format,
        )
        self._acc: Accumulator[asyncio.Future[RecordMetadata]] = Accumulator(
            batch_size, max_batch_records, linger_ms / 1000.0
        )
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._flushing = 0
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self._init_lock = asyncio.Lock()

    @property
    def idempotent(self) -> bool:
        return self._core.idempotent

    @property
    def producer_id(self) -> int | None:
        return self._core.producer_id

    async def partitions_for(self, topic: str) -> int:
        """Return the topic's partition count (see ``Producer.partitions_for``)."""
        count = self._core.cached_partition_count(topic)
        if count is None:
            count = (await self._client.refresh_metadata(topic)).partition_count
            self._core.metadata_read(topic, count)
        return count

    async def _refresh_leaders(self, topic: str) -> None:
        if not self._core.should_refresh(topic):
            return
        self._core.metadata_read_at[topic] = time.monotonic()
        try:
            count = (await self._client.refresh_metadata(topic)).partition_count
        except TidelogError:
            return
        self._core.metadata_read(topic, count)

    async def start(self) -> None:
        """Get a producer id (when idempotent) and start the sender task; ``send`` calls it if needed."""
        async with self._init_lock:
            if self._task is not None:
                return
            if self._core.idempotent and self._core.producer_id is None:
                self._core.reset_producer(*await self._client.call(_api.init_producer()))
            self._task = asyncio.create_task(self._run(), name="tidelog-producer")

    async def send(
        self,
        topic: str,
        value: Any = None,
        *,
        key: Any = None,
        headers: Headers | None = None,
        partition: int | None = None,
        timestamp: int | None = None,
        callback: DeliveryCallback | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Queue a record and return the future of its metadata (await it for delivery)."""
        if self._closed:
            raise ClientStateError("the producer is closed")
        record = self._core.encode(value, key, headers, timestamp)
        count = await self.partitions_for(topic)
        if partition is not None and partition >= count:
            self._core.partition_counts.pop(topic, None)
            count = await self.partitions_for(topic)
        chosen = self._core.choose_partition(topic, key, partition, count)
        if self._task is None:
            await self.start()
        deadline = time.monotonic() + self._core.delivery_timeout_s
        while self._acc.pending_records >= self._core.max_pending_records:
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ClientStateError("the producer's buffer stayed full for delivery_timeout_ms")
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue
        loop = asyncio.get_running_loop()
        future, wake = self._acc.append(
            TopicPartition(topic, chosen),
            record,
            lambda _batch: loop.create_future(),
            callback,
            time.monotonic(),
        )
        if wake:
            self._wake.set()
        return future

    async def send_and_wait(self, topic: str, value: Any = None, **kwargs: Any) -> RecordMetadata:
        """Send one record and wait for its metadata."""
        return await (await self.send(topic, value, **kwargs))

    async def flush(self, timeout: float | None = None) -> None:
        """Send everything queued and wait until the broker answered for every record."""
        if self._task is None:
            return
        self._flushing += 1
        self._wake.set()
        try:
            async with asyncio.timeout(timeout):
                while not self._acc.idle:
                    self._changed.clear()
                    await self._changed.wait()
        finally:
            self._flushing -= 1

    async def close(self, timeout: float | None = None) -> None:
        if self._closed:
            return
        try:
            await self.flush(timeout)
        finally:
            self._closed = True
            self._wake.set()
            if self._task is not None:
                # The sender returns by itself once closed and idle. No cancel(): in Python 3.11
                # wait_for() can swallow a cancellation that races with the event it waits for.
                done, _ = await asyncio.wait({self._task}, timeout=10)
                if not done:
                    self._task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._task
            if self._sends:
                await asyncio.gather(*self._sends, return_exceptions=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _run(self) -> None:
        while True:
            if self._closed and self._acc.idle:
                return
            now = time.monotonic()
            flushing = self._flushing > 0 or self._closed
            ready = self._acc.take_ready(now, flushing, self._core.max_in_flight)
            for batch in ready:
                self._core.on_drained(batch)
                task = asyncio.create_task(self._send_batch(batch))
                self._sends.add(task)
                task.add_done_callback(self._sends.discard)
            if ready:
                continue
            deadline = self._acc.next_wakeup()
            self._wake.clear()
            wait = 1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    def _finish(self, batch: Batch[asyncio.Future[RecordMetadata]]) -> None:
        self._acc.finish(batch)
        self._changed.set()
        self._wake.set()

    async def _send_batch(self, batch: Batch[asyncio.Future[RecordMetadata]]) -> None:
        try:
            await self._refresh_leaders(batch.tp.topic)
            result = await self._client.call(self._core.request(batch), retries=0)
        except Exception as error:
            await self._on_error(batch, error)
            return
        self._finish(batch)
        for future, callback, outcome in zip(
            batch.futures, batch.callbacks, outcomes(batch, result), strict=True
        ):
            if isinstance(outcome, Exception):
                if not future.done():
                    future.set_exception(outcome)
                run_callback(callback, None, outcome)
            else:
                if not future.done():
                    future.set_result(outcome)
                run_callback(callback, outcome, None)

    async def _on_error(self, batch: Batch[asyncio.Future[RecordMetadata]], error: Exception) -> None:
        self._core.note_failure(batch.tp.topic, error)
        action, retry_at = self._core.decide(batch, error, time.monotonic())
        if action is OnError.REINIT:
            async with self._init_lock:
                if batch.producer_id == self._core.producer_id:
                    try:
                        self._core.reset_producer(*await self._client.call(_api.init_producer()))
                    except Exception as init_error:
                        self._fail(batch, init_error)
                        return
            batch.base_sequence = None
            self._acc.requeue(batch)
        elif action is OnError.SPLIT:
            self._acc.replace(batch, self._core.split(batch))
        elif action is OnError.FAIL:
            self._fail(batch, error)
            return
        else:
            self._acc.retry_later(batch, retry_at)
        self._wake.set()

    def _fail(self, batch: Batch[asyncio.Future[RecordMetadata]], error: Exception) -> None:
        self._finish(batch)
        for future, callback in zip(batch.futures, batch.callbacks, strict=True):
            if not future.done():
                future.set_exception(error)
            run_callback(callback, None, error)
