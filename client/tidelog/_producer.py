"""``Producer`` and ``AsyncProducer``: batching, background sending, idempotence, delivery futures.

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
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

from tidelog import _api
from tidelog._errors import (
    BrokerError,
    ClientStateError,
    NotLeaderError,
    OutOfOrderSequenceError,
    ProducerFencedError,
    ProtocolError,
    RecordTooLargeError,
    TidelogError,
    TransportError,
    UnknownPartitionError,
    UnknownProducerError,
)
from tidelog._errors import TimeoutError as ClientTimeoutError
from tidelog._future import DeliveryFuture, DeliverySignal
from tidelog._partitioner import StickyPartitioner, partition_for_key
from tidelog._records import OutgoingRecord, check_format, encode_record, key_bytes
from tidelog._types import Headers, ProduceResult, RecordMetadata, TopicPartition

if TYPE_CHECKING:
    from tidelog._client import AsyncClient, Client

__all__ = ["AsyncProducer", "DeliveryCallback", "Producer"]

F = TypeVar("F")
DeliveryCallback = Callable[[RecordMetadata | None, Exception | None], None]


@dataclass(slots=True)
class _Batch(Generic[F]):
    tp: TopicPartition
    created: float
    records: list[OutgoingRecord] = field(default_factory=list)
    futures: list[F] = field(default_factory=list)
    callbacks: list[DeliveryCallback | None] = field(default_factory=list)
    size: int = 0
    base_sequence: int | None = None  # fixed on the first attempt, kept for every retry
    producer_id: int | None = None
    sealed: bool = False  # drained once: no record may join it, a retry must send the same records
    signal: DeliverySignal | None = None  # shared by the futures of a Producer's batch


class _Accumulator(Generic[F]):
    """Open and queued batches per partition; not thread-safe, callers hold the producer's lock."""

    def __init__(self, batch_size: int, max_batch_records: int, linger_s: float) -> None:
        self.batch_size = batch_size
        self.max_batch_records = max_batch_records
        self.linger_s = linger_s
        self.queues: dict[TopicPartition, deque[_Batch[F]]] = {}
        self.in_flight: set[TopicPartition] = set()
        self.pending_records = 0

    def append(
        self,
        tp: TopicPartition,
        record: OutgoingRecord,
        make_future: Callable[[_Batch[F]], F],
        callback: DeliveryCallback | None,
        now: float,
    ) -> tuple[F, bool]:
        """Add a record to its partition's open batch; return its future and whether the sender
        should look now (a new batch has a linger deadline, a full one is ready)."""
        queue = self.queues.setdefault(tp, deque())
        batch = queue[-1] if queue else None
        if (
            batch is None
            or batch.sealed
            or len(batch.records) >= self.max_batch_records
            or (batch.records and batch.size + record.size > self.batch_size)
        ):
            batch = _Batch(tp=tp, created=now)
            queue.append(batch)
        future = make_future(batch)
        batch.records.append(record)
        batch.futures.append(future)
        batch.callbacks.append(callback)
        batch.size += record.size
        self.pending_records += 1
        wake = (
            len(batch.records) == 1
            or batch.size >= self.batch_size
            or len(batch.records) >= self.max_batch_records
        )
        return future, wake

    def _is_ready(self, queue: deque[_Batch[F]], now: float, flushing: bool) -> bool:
        head = queue[0]
        return (
            flushing
            or head.sealed
            or len(queue) > 1
            or head.size >= self.batch_size
            or len(head.records) >= self.max_batch_records
            or now - head.created >= self.linger_s
        )

    def drain(self, now: float, flushing: bool, limit: int) -> list[_Batch[F]]:
        """Pop up to ``limit`` ready batches, at most one per partition not already in flight."""
        ready: list[_Batch[F]] = []
        for tp, queue in self.queues.items():
            if len(ready) >= limit:
                break
            if queue and tp not in self.in_flight and self._is_ready(queue, now, flushing):
                batch = queue.popleft()
                batch.sealed = True
                ready.append(batch)
                self.in_flight.add(tp)
        return ready

    def next_deadline(self) -> float | None:
        deadlines = [
            q[0].created + self.linger_s for tp, q in self.queues.items() if q and tp not in self.in_flight
        ]
        return min(deadlines) if deadlines else None

    def complete(self, batch: _Batch[F]) -> None:
        self.in_flight.discard(batch.tp)
        self.pending_records -= len(batch.records)

    def replace(self, batch: _Batch[F], parts: list[_Batch[F]]) -> None:
        """Put ``parts`` (a split ``batch``) back at the head of its queue, in order."""
        self.in_flight.discard(batch.tp)
        queue = self.queues.setdefault(batch.tp, deque())
        for part in reversed(parts):
            queue.appendleft(part)

    def requeue(self, batch: _Batch[F]) -> None:
        """Put a batch back at the head of its queue (retry after backoff keeps its sequence)."""
        self.in_flight.discard(batch.tp)
        self.queues.setdefault(batch.tp, deque()).appendleft(batch)

    @property
    def idle(self) -> bool:
        return self.pending_records == 0 and not self.in_flight


class _ProducerCore:
    """What both producers share: options, partitioning, sequences, and reading a batch's answer."""

    def __init__(
        self,
        *,
        acks: int | str,
        linger_ms: int,
        batch_size: int,
        max_batch_records: int,
        idempotent: bool | None,
        key_format: str,
        value_format: str,
        delivery_timeout_ms: int,
        max_in_flight: int,
        max_pending_records: int,
        metadata_max_age_ms: int,
        retry_backoff_ms: int,
    ) -> None:
        self.acks = _api.normalize_acks(acks)
        if idempotent is None:
            idempotent = self.acks == "all"
        if idempotent and self.acks != "all":
            # As in Kafka (enable.idempotence needs acks=all): without it a lost answer cannot be told
            # apart from a lost write.
            raise ValueError("an idempotent producer needs acks='all'")
        if linger_ms < 0 or batch_size < 1 or max_batch_records < 1 or max_in_flight < 1:
            raise ValueError("linger_ms must be >= 0 and batch_size, max_batch_records, max_in_flight >= 1")
        self.idempotent = idempotent
        self.key_format = check_format(key_format, "key_format")
        self.value_format = check_format(value_format, "value_format")
        self.delivery_timeout_s = delivery_timeout_ms / 1000.0
        self.max_in_flight = max_in_flight
        self.max_pending_records = max_pending_records
        self.metadata_max_age_s = metadata_max_age_ms / 1000.0
        self.retry_backoff_s = retry_backoff_ms / 1000.0
        self.sticky = StickyPartitioner()
        self.partition_counts: dict[str, tuple[int, float]] = {}
        self.producer_id: int | None = None
        self.producer_epoch: int | None = None
        self.next_sequence: dict[TopicPartition, int] = {}
        self.linger_s = linger_ms / 1000.0
        self.batch_size = batch_size
        self.max_batch_records = max_batch_records
        # Topics whose leaders may have moved (module docstring, point 5), and when each topic's
        # metadata was last read.
        self.stale_topics: set[str] = set()
        self.metadata_read_at: dict[str, float] = {}

    def metadata_read(self, topic: str, partition_count: int) -> None:
        now = time.monotonic()
        self.partition_counts[topic] = (partition_count, now)
        self.metadata_read_at[topic] = now
        self.stale_topics.discard(topic)

    def note_failure(self, topic: str, error: Exception) -> None:
        """Mark the topic's leaders stale when ``error`` says its partition's leader moved."""
        if isinstance(error, NotLeaderError) or (
            isinstance(error, TransportError) and not isinstance(error, ProtocolError)
        ):
            self.stale_topics.add(topic)

    def should_refresh(self, topic: str) -> bool:
        return (
            topic in self.stale_topics
            and time.monotonic() - self.metadata_read_at.get(topic, 0.0) >= self.retry_backoff_s
        )

    def cached_partition_count(self, topic: str) -> int | None:
        entry = self.partition_counts.get(topic)
        if entry is None or time.monotonic() - entry[1] > self.metadata_max_age_s:
            return None
        return entry[0]

    def encode(self, value: Any, key: Any, headers: Headers | None, timestamp: int | None) -> OutgoingRecord:
        return encode_record(
            key=key,
            value=value,
            headers=headers,
            timestamp=timestamp,
            key_format=self.key_format,
            value_format=self.value_format,
        )

    def choose_partition(self, topic: str, key: Any, partition: int | None, count: int) -> int:
        if partition is not None:
            if not 0 <= partition < count:
                raise UnknownPartitionError(
                    f"topic {topic!r} has {count} partitions, there is no partition {partition}",
                    status=404,
                    error_code=40402,
                )
            return partition
        if key is not None:
            return partition_for_key(key_bytes(key, self.key_format), count)
        return self.sticky.partition(topic, count)

    def assign_sequence(self, batch: _Batch[Any]) -> None:
        if not self.idempotent or batch.base_sequence is not None:
            return
        seq = self.next_sequence.get(batch.tp, 0)
        batch.base_sequence = seq
        batch.producer_id = self.producer_id
        # Kafka's sequences are int32 and wrap around.
        self.next_sequence[batch.tp] = (seq + len(batch.records)) % (1 << 31)

    def on_drained(self, batch: _Batch[Any]) -> None:
        """A batch leaves for the broker: fix its sequence and move the topic's sticky partition on."""
        self.assign_sequence(batch)
        counts = self.partition_counts.get(batch.tp.topic)
        if counts is not None:
            self.sticky.on_new_batch(batch.tp.topic, counts[0], batch.tp.partition)

    def request(self, batch: _Batch[Any]) -> _api.Call[ProduceResult]:
        return _api.produce(
            batch.tp.topic,
            batch.records,
            partition=batch.tp.partition,
            acks=self.acks,
            key_format=self.key_format,
            value_format=self.value_format,
            producer_id=self.producer_id if self.idempotent else None,
            producer_epoch=self.producer_epoch if self.idempotent else None,
            sequence=batch.base_sequence if self.idempotent else None,
        )

    def split(self, batch: _Batch[F]) -> list[_Batch[F]]:
        """Halve a batch the broker refused as too large (Kafka's splitAndReenqueue).

        Nothing of it was appended and it was the partition's only batch in flight, so the partition's
        sequence goes back to the batch's and the halves get theirs when they are sent.
        """
        if batch.base_sequence is not None and self.idempotent:
            self.next_sequence[batch.tp] = batch.base_sequence
        half = len(batch.records) // 2
        parts: list[_Batch[F]] = []
        for lo, hi in ((0, half), (half, len(batch.records))):
            parts.append(
                _Batch(
                    tp=batch.tp,
                    created=batch.created,
                    records=batch.records[lo:hi],
                    futures=batch.futures[lo:hi],
                    callbacks=batch.callbacks[lo:hi],
                    size=sum(r.size for r in batch.records[lo:hi]),
                    sealed=True,
                    signal=batch.signal,
                )
            )
        return parts

    def reset_producer(self, producer_id: int, epoch: int) -> None:
        self.producer_id, self.producer_epoch = producer_id, epoch
        self.next_sequence.clear()


def _fatal(error: Exception) -> bool:
    return isinstance(error, ProducerFencedError | OutOfOrderSequenceError) or not (
        isinstance(error, TidelogError) and error.retriable
    )


def _run_callback(
    callback: DeliveryCallback | None, meta: RecordMetadata | None, error: Exception | None
) -> None:
    if callback is None:
        return
    try:
        callback(meta, error)
    except Exception:
        import logging

        logging.getLogger("tidelog.producer").exception("delivery callback raised")


def _sync_future(batch: _Batch[DeliveryFuture]) -> DeliveryFuture:
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
        self._core = _ProducerCore(
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
        )
        self._acc: _Accumulator[DeliveryFuture] = _Accumulator(
            batch_size, max_batch_records, linger_ms / 1000.0
        )
        self._cond = threading.Condition()
        self._flushing = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._init_lock = threading.Lock()
        self._metadata_lock = threading.Lock()
        self._retry_at: dict[TopicPartition, float] = {}

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
                    slots = self._core.max_in_flight - len(self._acc.in_flight)
                    ready = (
                        self._acc.drain(now, self._flushing > 0 or self._closed, slots) if slots > 0 else []
                    )
                    # A batch waiting for its retry backoff goes back until its time comes.
                    waiting = [b for b in ready if self._retry_at.get(b.tp, 0.0) > now]
                    for batch in waiting:
                        self._acc.requeue(batch)
                    ready = [b for b in ready if b not in waiting]
                    if ready:
                        break
                    deadline = self._acc.next_deadline()
                    if self._retry_at:
                        deadline = min([*self._retry_at.values(), *([deadline] if deadline else [])])
                    wait = None if deadline is None else max(0.0, deadline - now)
                    self._cond.wait(wait if wait is not None else 1.0)
                for batch in ready:
                    self._core.on_drained(batch)
            for batch in ready:
                self._pool.submit(self._send_batch, batch)

    def _send_batch(self, batch: _Batch[DeliveryFuture]) -> None:
        try:
            self._refresh_leaders(batch.tp.topic)
            result = self._client.call(self._core.request(batch), retries=0)
        except Exception as error:
            self._on_error(batch, error)
            return
        self._deliver(batch, result)

    def _on_error(self, batch: _Batch[DeliveryFuture], error: Exception) -> None:
        expired = time.monotonic() - batch.created >= self._core.delivery_timeout_s
        with self._metadata_lock:
            self._core.note_failure(batch.tp.topic, error)
        if isinstance(error, UnknownProducerError) and not expired:
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
            return
        if isinstance(error, RecordTooLargeError) and len(batch.records) > 1:
            with self._cond:
                self._acc.replace(batch, self._core.split(batch))
                self._cond.notify_all()
            return
        if _fatal(error) or expired:
            self._fail(batch, error)
            return
        with self._cond:
            backoff = error.retry_after if isinstance(error, BrokerError) and error.retry_after else None
            self._retry_at[batch.tp] = time.monotonic() + (backoff or self._core.retry_backoff_s)
            self._acc.requeue(batch)
            self._cond.notify_all()

    def _fail(self, batch: _Batch[DeliveryFuture], error: Exception) -> None:
        with self._cond:
            self._retry_at.pop(batch.tp, None)
            self._acc.complete(batch)
            self._cond.notify_all()
        for future, callback in zip(batch.futures, batch.callbacks, strict=True):
            future.set_exception(error)
            _run_callback(callback, None, error)

    def _deliver(self, batch: _Batch[DeliveryFuture], result: ProduceResult) -> None:
        with self._cond:
            self._retry_at.pop(batch.tp, None)
            self._acc.complete(batch)
            self._cond.notify_all()
        outcomes = _outcomes(batch, result)
        for future, callback, outcome in zip(batch.futures, batch.callbacks, outcomes, strict=True):
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
                _run_callback(callback, None, outcome)
            else:
                future.set_result(outcome)
                _run_callback(callback, outcome, None)


def _outcomes(batch: _Batch[Any], result: ProduceResult) -> list[RecordMetadata | Exception]:
    results = list(result.results)
    if len(results) != len(batch.records):
        from tidelog._errors import ProtocolError

        error = ProtocolError(f"produce answered {len(results)} results for {len(batch.records)} records")
        return [error] * len(batch.records)
    return results


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
        self._core = _ProducerCore(
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
        )
        self._acc: _Accumulator[asyncio.Future[RecordMetadata]] = _Accumulator(
            batch_size, max_batch_records, linger_ms / 1000.0
        )
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._flushing = 0
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self._init_lock = asyncio.Lock()
        self._retry_at: dict[TopicPartition, float] = {}

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
            slots = self._core.max_in_flight - len(self._acc.in_flight)
            ready = self._acc.drain(now, self._flushing > 0, slots) if slots > 0 else []
            waiting = [b for b in ready if self._retry_at.get(b.tp, 0.0) > now]
            for batch in waiting:
                self._acc.requeue(batch)
            ready = [b for b in ready if b not in waiting]
            for batch in ready:
                self._core.on_drained(batch)
                task = asyncio.create_task(self._send_batch(batch))
                self._sends.add(task)
                task.add_done_callback(self._sends.discard)
            if ready:
                continue
            deadline = self._acc.next_deadline()
            if self._retry_at:
                deadline = min([*self._retry_at.values(), *([deadline] if deadline else [])])
            self._wake.clear()
            wait = 1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    def _finish(self, batch: _Batch[asyncio.Future[RecordMetadata]]) -> None:
        self._retry_at.pop(batch.tp, None)
        self._acc.complete(batch)
        self._changed.set()
        self._wake.set()

    async def _send_batch(self, batch: _Batch[asyncio.Future[RecordMetadata]]) -> None:
        try:
            await self._refresh_leaders(batch.tp.topic)
            result = await self._client.call(self._core.request(batch), retries=0)
        except Exception as error:
            await self._on_error(batch, error)
            return
        self._finish(batch)
        for future, callback, outcome in zip(
            batch.futures, batch.callbacks, _outcomes(batch, result), strict=True
        ):
            if isinstance(outcome, Exception):
                if not future.done():
                    future.set_exception(outcome)
                _run_callback(callback, None, outcome)
            else:
                if not future.done():
                    future.set_result(outcome)
                _run_callback(callback, outcome, None)

    async def _on_error(self, batch: _Batch[asyncio.Future[RecordMetadata]], error: Exception) -> None:
        expired = time.monotonic() - batch.created >= self._core.delivery_timeout_s
        self._core.note_failure(batch.tp.topic, error)
        if isinstance(error, UnknownProducerError) and not expired:
            async with self._init_lock:
                if batch.producer_id == self._core.producer_id:
                    try:
                        self._core.reset_producer(*await self._client.call(_api.init_producer()))
                    except Exception as init_error:
                        self._fail(batch, init_error)
                        return
            batch.base_sequence = None
            self._acc.requeue(batch)
            self._wake.set()
            return
        if isinstance(error, RecordTooLargeError) and len(batch.records) > 1:
            self._acc.replace(batch, self._core.split(batch))
            self._wake.set()
            return
        if _fatal(error) or expired:
            self._fail(batch, error)
            return
        backoff = error.retry_after if isinstance(error, BrokerError) and error.retry_after else None
        self._retry_at[batch.tp] = time.monotonic() + (backoff or self._core.retry_backoff_s)
        self._acc.requeue(batch)
        self._wake.set()

    def _fail(self, batch: _Batch[asyncio.Future[RecordMetadata]], error: Exception) -> None:
        self._finish(batch)
        for future, callback in zip(batch.futures, batch.callbacks, strict=True):
            if not future.done():
                future.set_exception(error)
            _run_callback(callback, None, error)
