"""One open partition: its log, its single writer, its durability waiters and its data notifications.

Concurrency (see also ``docs/durability.md``):

- **One writer.** Every append to a partition happens while its ``write_lock`` (an ``asyncio.Lock``)
  is held; the lock is taken on the event loop in request arrival order (asyncio locks are FIFO).
  The append itself (encode, one ``write``) runs in a worker thread for batches of more than 64
  records, so a large batch does not stall the loop, and on the loop for small ones (the thread
  hop would cost more than the append). At most one thread ever appends to a given ``PartitionLog``.
- **Many readers.** Fetches read with ``PartitionLog.read`` (``pread`` on an immutable snapshot of
  the segment list), on the loop or in worker threads, concurrently with the writer.
- **High watermark.** On a single node the high watermark is the log end after each append; it is
  moved on the event loop right after the append returns, then every waiter of the partition is
  woken (long-poll fetches, SSE streams, ``Broker.wait_for_data``).
- **Group commit.** ``wait_durable(up_to)`` makes sure every offset below ``up_to`` is fsynced. At
  most one flush per partition is in flight: it covers everything appended when it started, and
  every acks=all request waiting meanwhile shares it (or the next one).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from storage import PartitionLog

__all__ = ["PartitionHandle", "PartitionState"]


@dataclass(frozen=True, slots=True)
class PartitionState:
    """A snapshot of a partition's offsets and size."""

    topic: str
    partition: int
    log_start_offset: int
    high_watermark: int
    log_end_offset: int
    size_bytes: int
    segment_count: int


class PartitionHandle:
    """A partition log opened by the broker, with its writer lock and its waiters."""

    __slots__ = (
        "_durable", "_flush_task", "_waiters", "directory", "log", "partition", "topic", "write_lock"
    )

    def __init__(self, topic: str, partition: int, directory: Path, log: PartitionLog) -> None:
        self.topic = topic
        self.partition = partition
        self.directory = directory
        self.log = log
        self.write_lock = asyncio.Lock()
        self._waiters: set[asyncio.Event] = set()
        self._flush_task: asyncio.Task[None] | None = None
        # Offsets below this one are known to be on disk. After a crash the tail the log recovered
        # may still be only in the page cache, so start from the log's recovery point, not its end.
        self._durable = log.recovery_point

    # -- offsets ------------------------------------------------------------------------------------

    @property
    def high_watermark(self) -> int:
        return self.log.high_watermark

    def state(self) -> PartitionState:
        log = self.log
        return PartitionState(
            topic=self.topic,
            partition=self.partition,
            log_start_offset=log.log_start_offset,
            high_watermark=log.high_watermark,
            log_end_offset=log.log_end_offset,
            size_bytes=log.size_bytes,
            segment_count=log.segment_count,
        )

    def advance_high_watermark(self) -> None:
        """HW = log end (single node), then wake every waiter. Event loop only."""
        log = self.log
        before = log.high_watermark
        log.update_high_watermark(log.log_end_offset)
        if log.high_watermark != before:
            self.notify()

    # -- notifications ------------------------------------------------------------------------------

    def add_waiter(self, event: asyncio.Event) -> None:
        self._waiters.add(event)

    def remove_waiter(self, event: asyncio.Event) -> None:
        self._waiters.discard(event)

    def notify(self) -> None:
        """Wake everything waiting for data on this partition. Event loop only."""
        for event in self._waiters:
            event.set()

    # -- durability ---------------------------------------------------------------------------------

    async def wait_durable(self, up_to: int) -> None:
        """Return once every offset below ``up_to`` is fsynced (sharing flushes with other callers)."""
        while self._durable < up_to:
            task = self._flush_task
            if task is None:
                task = asyncio.get_running_loop().create_task(self._flush(self.log.log_end_offset))
                self._flush_task = task
            # shield: a cancelled request (client gone) must not cancel a flush others wait for.
            await asyncio.shield(task)

    async def _flush(self, target: int) -> None:
        try:
            await asyncio.to_thread(self.log.flush, target)
            self._durable = max(self._durable, target)
        finally:
            self._flush_task = None
