"""The producer's sans-I/O core: the accumulator of batches, the in-flight bookkeeping, sequences,
partitioning, and what a failed batch becomes. ``Producer`` (a sender thread and a pool) and
``AsyncProducer`` (a sender task) only wait, send and complete futures.

How a record travels is told in ``tidelog._producer``'s docstring; the rules written here:

- a partition's records go in order: one batch in flight per partition, up to ``max_in_flight``
  partitions at once; a batch drained once is sealed, so a retry sends exactly the same records;
- an idempotent batch gets the sequence of its first record when it first leaves and keeps it for
  every retry (the broker answers a duplicate with the original offsets); sequences are int32 and
  wrap;
- a batch refused as too large is halved, and its partition's sequence goes back to the batch's.
"""

from __future__ import annotations

import enum
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from tidelog import _api
from tidelog._errors import (
    BrokerError,
    NotLeaderError,
    OutOfOrderSequenceError,
    ProducerFencedError,
    ProtocolError,
    RecordTooLargeError,
    TidelogError,
    TransportError,
    UnknownPartitionError,
    UnknownProducerError,
    UnsupportedMediaTypeError,
)
from tidelog._future import DeliverySignal
from tidelog._partitioner import StickyPartitioner, partition_for_key
from tidelog._records import OutgoingRecord, check_format, encode_record, key_bytes
from tidelog._types import Headers, ProduceResult, RecordMetadata, TopicPartition

__all__ = [
    "Accumulator",
    "Batch",
    "DeliveryCallback",
    "OnError",
    "ProducerCore",
    "fatal",
    "outcomes",
    "run_callback",
]

log = logging.getLogger("tidelog.producer")
F = TypeVar("F")
DeliveryCallback = Callable[[RecordMetadata | None, Exception | None], None]


class OnError(enum.Enum):
    """What becomes of a batch whose request failed (``ProducerCore.decide``)."""

    REINIT = "get a new producer id, then send it again with a new sequence"
    SPLIT = "halve it and send both halves"
    FAIL = "fail its records"
    RETRY = "send it again after a backoff, with the same sequence"


@dataclass(slots=True)
class Batch(Generic[F]):
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


class Accumulator(Generic[F]):
    """Open and queued batches per partition; not thread-safe, callers hold the producer's lock."""

    def __init__(self, batch_size: int, max_batch_records: int, linger_s: float) -> None:
        self.batch_size = batch_size
        self.max_batch_records = max_batch_records
        self.linger_s = linger_s
        self.queues: dict[TopicPartition, deque[Batch[F]]] = {}
        self.in_flight: set[TopicPartition] = set()
        self.pending_records = 0
        self.retry_at: dict[TopicPartition, float] = {}  # a partition's batch waits for its backoff

    def append(
        self,
        tp: TopicPartition,
        record: OutgoingRecord,
        make_future: Callable[[Batch[F]], F],
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
            batch = Batch(tp=tp, created=now)
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

    def _is_ready(self, queue: deque[Batch[F]], now: float, flushing: bool) -> bool:
        head = queue[0]
        return (
            flushing
            or head.sealed
            or len(queue) > 1
            or head.size >= self.batch_size
            or len(head.records) >= self.max_batch_records
            or now - head.created >= self.linger_s
        )

    def drain(self, now: float, flushing: bool, limit: int) -> list[Batch[F]]:
        """Pop up to ``limit`` ready batches, at most one per partition not already in flight."""
        ready: list[Batch[F]] = []
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

    def complete(self, batch: Batch[F]) -> None:
        self.in_flight.discard(batch.tp)
        self.pending_records -= len(batch.records)

    def replace(self, batch: Batch[F], parts: list[Batch[F]]) -> None:
        """Put ``parts`` (a split ``batch``) back at the head of its queue, in order."""
        self.in_flight.discard(batch.tp)
        queue = self.queues.setdefault(batch.tp, deque())
        for part in reversed(parts):
            queue.appendleft(part)

    def requeue(self, batch: Batch[F]) -> None:
        """Put a batch back at the head of its queue (retry after backoff keeps its sequence)."""
        self.in_flight.discard(batch.tp)
        self.queues.setdefault(batch.tp, deque()).appendleft(batch)

    @property
    def idle(self) -> bool:
        return self.pending_records == 0 and not self.in_flight

    def take_ready(self, now: float, flushing: bool, max_in_flight: int) -> list[Batch[F]]:
        """The batches to send now: ready, one per partition, within ``max_in_flight``, and past
        their partition's retry backoff (a batch still waiting goes back to the head of its queue)."""
        slots = max_in_flight - len(self.in_flight)
        ready = self.drain(now, flushing, slots) if slots > 0 else []
        waiting = [b for b in ready if self.retry_at.get(b.tp, 0.0) > now]
        for batch in waiting:
            self.requeue(batch)
        return [b for b in ready if b not in waiting]

    def next_wakeup(self) -> float | None:
        """When the sender should look again: the first linger deadline or retry backoff to end."""
        deadline = self.next_deadline()
        if self.retry_at:
            deadline = min([*self.retry_at.values(), *([deadline] if deadline else [])])
        return deadline

    def retry_later(self, batch: Batch[F], at: float) -> None:
        """Send ``batch`` again, not before ``at`` (it keeps its sequence)."""
        self.retry_at[batch.tp] = at
        self.requeue(batch)

    def finish(self, batch: Batch[F]) -> None:
        """``batch`` was answered (delivered or failed for good): its partition may send the next."""
        self.retry_at.pop(batch.tp, None)
        self.complete(batch)


class ProducerCore:
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
        batch_format: bool = False,
    ) -> None:
        self.acks = _api.normalize_acks(acks)
        # Batches go as record batches v2 (docs/records.md) until a broker answers 415 for them.
        self.batch_format = batch_format
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

    def assign_sequence(self, batch: Batch[Any]) -> None:
        if not self.idempotent or batch.base_sequence is not None:
            return
        seq = self.next_sequence.get(batch.tp, 0)
        batch.base_sequence = seq
        batch.producer_id = self.producer_id
        # Kafka's sequences are int32 and wrap around.
        self.next_sequence[batch.tp] = (seq + len(batch.records)) % (1 << 31)

    def on_drained(self, batch: Batch[Any]) -> None:
        """A batch leaves for the broker: fix its sequence and move the topic's sticky partition on."""
        self.assign_sequence(batch)
        counts = self.partition_counts.get(batch.tp.topic)
        if counts is not None:
            self.sticky.on_new_batch(batch.tp.topic, counts[0], batch.tp.partition)

    def request(self, batch: Batch[Any]) -> _api.Call[ProduceResult]:
        if self.batch_format:
            return _api.produce_batch(
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

    def split(self, batch: Batch[F]) -> list[Batch[F]]:
        """Halve a batch the broker refused as too large (Kafka's splitAndReenqueue).

        Nothing of it was appended and it was the partition's only batch in flight, so the partition's
        sequence goes back to the batch's and the halves get theirs when they are sent.
        """
        if batch.base_sequence is not None and self.idempotent:
            self.next_sequence[batch.tp] = batch.base_sequence
        half = len(batch.records) // 2
        parts: list[Batch[F]] = []
        for lo, hi in ((0, half), (half, len(batch.records))):
            parts.append(
                Batch(
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

    def decide(self, batch: Batch[Any], error: Exception, now: float) -> tuple[OnError, float]:
        """What to do with ``batch`` after ``error``, and (for ``RETRY``) when to send it again.

        A forgotten producer id gets a new one (its sequences start anew); a batch too large for
        the broker is halved (Kafka's splitAndReenqueue); a fatal error, or a batch older than
        ``delivery_timeout_ms``, fails its records; anything else is retried after the answer's
        ``Retry-After`` or ``retry_backoff_ms``, with the same sequence.
        """
        expired = now - batch.created >= self.delivery_timeout_s
        if isinstance(error, UnsupportedMediaTypeError) and self.batch_format:
            # A broker without the binary format: nothing was appended, send it again as JSON.
            self.batch_format = False
            return OnError.RETRY, now
        if isinstance(error, UnknownProducerError) and not expired:
            return OnError.REINIT, now
        if isinstance(error, RecordTooLargeError) and len(batch.records) > 1:
            return OnError.SPLIT, now
        if fatal(error) or expired:
            return OnError.FAIL, now
        backoff = error.retry_after if isinstance(error, BrokerError) and error.retry_after else None
        return OnError.RETRY, now + (backoff or self.retry_backoff_s)


def fatal(error: Exception) -> bool:
    return isinstance(error, ProducerFencedError | OutOfOrderSequenceError) or not (
        isinstance(error, TidelogError) and error.retriable
    )


def run_callback(
    callback: DeliveryCallback | None, meta: RecordMetadata | None, error: Exception | None
) -> None:
    if callback is None:
        return
    try:
        callback(meta, error)
    except Exception:
        log.exception("delivery callback raised")


def outcomes(batch: Batch[Any], result: ProduceResult) -> list[RecordMetadata | Exception]:
    results = list(result.results)
    if len(results) != len(batch.records):
        error = ProtocolError(f"produce answered {len(results)} results for {len(batch.records)} records")
        return [error] * len(batch.records)
    return results
