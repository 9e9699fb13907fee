"""``Producer`` (and ``AsyncProducer``, in ``_async_producer``): batching, background sending,
idempotence, delivery futures.

How a record travels (the same for both, only threads versus tasks differ):

1. ``send()`` encodes key and value in the producer's formats, picks the partition on the client
   (``partition=`` if given; else Kafka's murmur2 of the key bytes; else the topic's sticky
   partition, KIP-480) and appends the record to that partition's open batch.
2. A batch is ready when it holds ``batch_size`` bytes or ``max_batch_records`` records, when its
   first record has waited ``linger_ms``, or on ``flush()``. The sender posts ready batches straight
   to their partition's endpoint, one batch in flight per partition (order is kept), up to
   ``max_in_flight`` partitions at once.
3. Idempotence (default with ``acks="all"``): the producer gets ``producer_id``/``producer_epoch``
   from ``POST /v1/producers`` and gives each batch the sequence of its first record. A batch sent
   again after a lost answer carries the same sequence, so the broker answers with the original
   offsets instead of appending it twice.
4. Retriable failures are retried with backoff until ``delivery_timeout_ms``; then, or on a fatal
   error, the batch's futures fail. ``flush()`` waits until every record sent so far is answered.
5. Clustered mode (docs/cluster.md): the topic's metadata, read before its first record and again
   after ``metadata_max_age_ms``, fills the client's leader cache (each partition's leader and the
   brokers' URLs from ``/v1/cluster``), so every batch goes straight to its partition's leader. A
   batch that finds its leader gone (50304 or a 307 to another broker, an unreachable or silent
   broker) is retried like any other, and before the retry the topic's metadata is read again,
   at most once per ``retry_backoff_ms``. The retry carries the same producer id and sequence, so a
   new leader that already has the batch (replicated before the old one died) answers with its
   original offsets instead of appending it twice.

Both are shells over ``tidelog._core.producer`` (the accumulator, in-flight bookkeeping, sequences,
partitioning and what a failed batch becomes); this one sends from a thread pool fed by one sender
thread.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from tidelog import _api
from tidelog._async_producer import AsyncProducer
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
from tidelog._errors import TimeoutError as ClientTimeoutError
from tidelog._future import DeliveryFuture, DeliverySignal
from tidelog._types import Headers, ProduceResult, TopicPartition

if TYPE_CHECKING:
    from tidelog._client import Client

__all__ = ["AsyncProducer", "DeliveryCallback", "Producer"]


def _sync_future(batch: Batch[DeliveryFuture]) -> DeliveryFuture:
    if batch.signal is None:
        batch.signal = DeliverySignal()
    return DeliveryFuture(batch.signal)


class Producer:
    """Sends records in batches from a background thread; ``send`` returns a ``DeliveryFuture``.

    >>> with client.producer(linger_ms=10) as producer:           # doctest: +SKIP
    ...     future = producer.send("orders", {"id": 1}, key="customer-7")
    ...     print(future.result().offset)
    """

    def __init__(
        self,
        client: Client,
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
        self._acc: Accumulator[DeliveryFuture] = Accumulator(
            batch_size, max_batch_records, linger_ms / 1000.0
        )
        self._cond = threading.Condition()
        self._flushing = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._init_lock = threading.Lock()
        self._metadata_lock = threading.Lock()

    @property
    def idempotent(self) -> bool:
        return self._core.idempotent

    @property
    def producer_id(self) -> int | None:
        return self._core.producer_id

    def partitions_for(self, topic: str) -> int:
        """Return the topic's partition count (cached for ``metadata_max_age_ms``, with the
        partitions' leaders)."""
        count = self._core.cached_partition_count(topic)
        if count is None:
            count = self._client.refresh_metadata(topic).partition_count
            with self._metadata_lock:
                self._core.metadata_read(topic, count)
        return count

    def _refresh_leaders(self, topic: str) -> None:
        """Read the topic's metadata again if a failure marked its leaders stale (docstring, 5)."""
        with self._metadata_lock:
            if not self._core.should_refresh(topic):
                return
            # Marked read before asking, so that concurrent senders do not all ask at once.
            self._core.metadata_read_at[topic] = time.monotonic()
        try:
            count = self._client.refresh_metadata(topic).partition_count
        except TidelogError:
            return  # the retry goes to the client's broker, which redirects to the leader
        with self._metadata_lock:
            self._core.metadata_read(topic, count)

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._init_lock:
            if self._thread is not None:
                return
            if self._core.idempotent and self._core.producer_id is None:
                self._core.reset_producer(*self._client.call(_api.init_producer()))
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=self._core.max_in_flight, thread_name_prefix="tidelog-producer-send"
            )
            self._thread = threading.Thread(target=self._run, name="tidelog-producer", daemon=True)
            self._thread.start()

    def send(
        self,
        topic: str,
        value: Any = None,
        *,
        key: Any = None,
        headers: Headers | None = None,
        partition: int | None = None,
        timestamp: int | None = None,
        callback: DeliveryCallback | None = None,
    ) -> DeliveryFuture:
        """Queue a record; the future gives its partition and offset once the broker has it.

        Raises at once for a value that does not fit the producer's format, an unknown topic or
        partition, or a closed producer. Blocks while ``max_pending_records`` are waiting.
        """
        if self._closed:
            raise ClientStateError("the producer is closed")
        record = self._core.encode(value, key, headers, timestamp)
        count = self.partitions_for(topic)
        if partition is not None and partition >= count:
            # The topic may have grown since the count was cached.
            self._core.partition_counts.pop(topic, None)
            count = self.partitions_for(topic)
        chosen = self._core.choose_partition(topic, key, partition, count)
        self._ensure_started()
        with self._cond:
            deadline = time.monotonic() + self._core.delivery_timeout_s
            while self._acc.pending_records >= self._core.max_pending_records and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ClientStateError("the producer's buffer stayed full for delivery_timeout_ms")
                self._cond.wait(remaining)
            future, wake = self._acc.append(
                TopicPartition(topic, chosen), record, _sync_future, callback, time.monotonic()
            )
            if wake:
                self._cond.notify_all()
        return future

    def flush(self, timeout: float | None = None) -> None:
        """Send everything queued now and wait until the broker answered for every record."""
        if self._thread is None:
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while not self._acc.idle:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise ClientTimeoutError("flush did not finish in time")
                    self._cond.wait(remaining if remaining is not None else 0.5)
            finally:
                self._flushing -= 1

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop the sender. Records sent after ``close`` raise ``ClientStateError``."""
        if self._closed:
            return
        try:
            self.flush(timeout)
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()
            if self._thread is not None:
                self._thread.join(timeout=5)
            if self._pool is not None:
                self._pool.shutdown(wait=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the sender thread ----------------------------------------------------------------------

    def _run(self) -> None:
        assert self._pool is not None
        while True:
            with self._cond:
                while True:
                    if self._closed and self._acc.idle:
                        return
                    now = time.monotonic()
                    flushing = self._flushing > 0 or self._closed
                    ready = self._acc.take_ready(now, flushing, self._core.max_in_flight)
                    if ready:
                        break
                    deadline = self._acc.next_wakeup()
                    wait = None if deadline is None else max(0.0, deadline - now)
                    self._cond.wait(wait if wait is not None else 1.0)
                for batch in ready:
                    self._core.on_drained(batch)
            for batch in ready:
                self._pool.submit(self._send_batch, batch)

    def _send_batch(self, batch: Batch[DeliveryFuture]) -> None:
        try:
            self._refresh_leaders(batch.tp.topic)
            result = self._client.call(self._core.request(batch), retries=0)
        except Exception as error:
            self._on_error(batch, error)
            return
        self._deliver(batch, result)

    def _on_error(self, batch: Batch[DeliveryFuture], error: Exception) -> None:
        with self._metadata_lock:
            self._core.note_failure(batch.tp.topic, error)
        action, retry_at = self._core.decide(batch, error, time.monotonic())
        if action is OnError.REINIT:
            # The broker forgot the producer id (expired state): get a new one and start sequences anew.
            with self._init_lock:
                if batch.producer_id == self._core.producer_id:
                    try:
                        self._core.reset_producer(*self._client.call(_api.init_producer()))
                    except Exception as init_error:
                        self._fail(batch, init_error)
                        return
            with self._cond:
                batch.base_sequence = None
                self._acc.requeue(batch)
                self._cond.notify_all()
        elif action is OnError.SPLIT:
            with self._cond:
                self._acc.replace(batch, self._core.split(batch))
                self._cond.notify_all()
        elif action is OnError.FAIL:
            self._fail(batch, error)
        else:
            with self._cond:
                self._acc.retry_later(batch, retry_at)
                self._cond.notify_all()

    def _fail(self, batch: Batch[DeliveryFuture], error: Exception) -> None:
        with self._cond:
            self._acc.finish(batch)
            self._cond.notify_all()
        for future, callback in zip(batch.futures, batch.callbacks, strict=True):
            future.set_exception(error)
            run_callback(callback, None, error)

    def _deliver(self, batch: Batch[DeliveryFuture], result: ProduceResult) -> None:
        with self._cond:
            self._acc.finish(batch)
            self._cond.notify_all()
        answered = outcomes(batch, result)
        for future, callback, outcome in zip(batch.futures, batch.callbacks, answered, strict=True):
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
                run_callback(callback, None, outcome)
            else:
                future.set_result(outcome)
                run_callback(callback, outcome, None)
