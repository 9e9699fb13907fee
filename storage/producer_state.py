"""Idempotent-producer state of a partition: Kafka's ProducerStateManager, reduced to what
tidelog needs (no transactions).

For every producer id the log remembers its epoch and the metadata of its last five batches
(first sequence, last sequence, base offset, last offset, max timestamp). An append from a producer
is checked against that (``check``): a batch equal to a cached one is a duplicate (the original
offsets are returned and nothing is written), a gap in sequences is out of order, an older epoch is
fenced, and a newer epoch must start at sequence 0.

Snapshot file ``<20-digit offset>.snapshot`` (the state after every batch below that offset),
big-endian::

    u32 crc32c of everything after this field
    i16 version (1)
    i32 producer count
    per producer:
        i64 producer id
        i16 producer epoch
        i64 last timestamp
        u8  cached batch count (<= 5)
        per batch: i32 first sequence, i32 last sequence, i64 base offset, i64 last offset

A snapshot is written when a segment rolls and when the log closes; on open the newest snapshot
at or below the log end is loaded and the batches after it are replayed from their headers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import crc32c

from storage.checkpoint import write_atomic
from storage.errors import OutOfOrderSequenceError, ProducerFencedError, UnknownProducerIdError
from storage.fileops import OS_FILE_OPS, FileOps

__all__ = [
    "MAX_CACHED_BATCHES",
    "PRODUCER_ID_EXPIRATION_MS",
    "BatchMetadata",
    "ProducerEntry",
    "ProducerStateManager",
    "snapshot_path",
]

log = logging.getLogger(__name__)

MAX_CACHED_BATCHES = 5
PRODUCER_ID_EXPIRATION_MS = 86_400_000  # Kafka's producer.id.expiration.ms default (1 day)
_INT32_MAX = 2**31 - 1

_SNAP_HEAD = struct.Struct(">Ihi")  # crc, version, producer count
_SNAP_PRODUCER = struct.Struct(">qhqB")  # producer id, epoch, last timestamp, batch count
_SNAP_BATCH = struct.Struct(">iiqq")  # first seq, last seq, base offset, last offset
_VERSION = 1


def snapshot_path(directory: Path, offset: int) -> Path:
    return directory / f"{offset:020d}.snapshot"


@dataclass(frozen=True, slots=True)
class BatchMetadata:
    first_seq: int
    last_seq: int
    base_offset: int
    last_offset: int


@dataclass(slots=True)
class ProducerEntry:
    epoch: int
    batches: deque[BatchMetadata] = field(default_factory=lambda: deque(maxlen=MAX_CACHED_BATCHES))
    last_timestamp: int = -1


def _next_seq(seq: int) -> int:
    return 0 if seq == _INT32_MAX else seq + 1


class ProducerStateManager:
    """Producer id → epoch and recent batches, with snapshots on disk."""

    def __init__(self, directory: Path, ops: FileOps = OS_FILE_OPS) -> None:
        self.directory = directory
        self._ops = ops
        self.producers: dict[int, ProducerEntry] = {}

    # -- checks and updates ---------------------------------------------------------------------

    def check(self, producer_id: int, epoch: int, first_seq: int, last_seq: int) -> BatchMetadata | None:
        """Validate an idempotent batch; returns the cached original for a duplicate, else None.

        Raises ProducerFencedError, OutOfOrderSequenceError or UnknownProducerIdError.
        """
        entry = self.producers.get(producer_id)
        if entry is None:
            if first_seq != 0:
                raise UnknownProducerIdError(
                    f"producer {producer_id} is unknown to this partition and its first batch "
                    f"starts at sequence {first_seq}, not 0"
                )
            return None
        if epoch < entry.epoch:
            raise ProducerFencedError(
                f"producer {producer_id} epoch {epoch} is older than the current epoch {entry.epoch}"
            )
        if epoch > entry.epoch:
            if first_seq != 0:
                raise OutOfOrderSequenceError(
                    f"producer {producer_id} bumped its epoch to {epoch}; the first batch of a new "
                    f"epoch must start at sequence 0, got {first_seq}"
                )
            return None
        for cached in entry.batches:
            if cached.first_seq == first_seq and cached.last_seq == last_seq:
                return cached
        if entry.batches:
            expected = _next_seq(entry.batches[-1].last_seq)
            if first_seq != expected:
                raise OutOfOrderSequenceError(
                    f"producer {producer_id} epoch {epoch}: expected sequence {expected}, got {first_seq}"
                )
        elif first_seq != 0:
            raise OutOfOrderSequenceError(
                f"producer {producer_id} epoch {epoch}: expected sequence 0, got {first_seq}"
            )
        return None

    def update(
        self,
        producer_id: int,
        epoch: int,
        first_seq: int,
        last_seq: int,
        base_offset: int,
        last_offset: int,
        timestamp: int,
    ) -> None:
        """Record an appended batch of an idempotent producer."""
        entry = self.producers.get(producer_id)
        if entry is None or epoch != entry.epoch:
            if entry is not None and epoch < entry.epoch:
                return
            entry = ProducerEntry(epoch=epoch)
            self.producers[producer_id] = entry
        entry.batches.append(BatchMetadata(first_seq, last_seq, base_offset, last_offset))
        entry.last_timestamp = max(entry.last_timestamp, timestamp)

    def replay(self, headers: Iterable[tuple[int, int, int, int, int, int, int]]) -> None:
        """Apply (pid, epoch, first seq, last seq, base offset, last offset, ts) of batches in order."""
        for pid, epoch, first_seq, last_seq, base, last, ts in headers:
            if pid >= 0 and first_seq >= 0:
                self.update(pid, epoch, first_seq, last_seq, base, last, ts)

    def expire(self, now_ms: int, expiration_ms: int = PRODUCER_ID_EXPIRATION_MS) -> int:
        """Forget producers idle for ``expiration_ms`` (by their last batch's time); returns how many.

        A forgotten producer's next batch must start a new sequence at 0, as in Kafka.
        """
        idle = [pid for pid, e in self.producers.items() if now_ms - e.last_timestamp >= expiration_ms]
        for pid in idle:
            del self.producers[pid]
        return len(idle)

    # -- snapshots ------------------------------------------------------------------------------

    def snapshot_offsets(self) -> list[int]:
        out = []
        for p in self.directory.glob("*.snapshot"):
            try:
                out.append(int(p.stem))
            except ValueError:
                continue
        return sorted(out)

    def write_snapshot(self, offset: int, *, fsync: bool = True) -> None:
        parts = []
        for pid, entry in self.producers.items():
            parts.append(_SNAP_PRODUCER.pack(pid, entry.epoch, entry.last_timestamp, len(entry.batches)))
            for b in entry.batches:
                parts.append(_SNAP_BATCH.pack(b.first_seq, b.last_seq, b.base_offset, b.last_offset))
        body = struct.pack(">hi", _VERSION, len(self.producers)) + b"".join(parts)
        write_atomic(
            snapshot_path(self.directory, offset), struct.pack(">I", crc32c.crc32c(body)) + body, fsync=fsync,
            ops=self._ops,
        )

    def load_latest_snapshot(self, max_offset: int) -> int | None:
        """Load the newest valid snapshot at or below ``max_offset``; returns its offset."""
        for offset in reversed(self.snapshot_offsets()):
            if offset > max_offset:
                continue
            state = _read_snapshot(snapshot_path(self.directory, offset))
            if state is not None:
                self.producers = state
                return offset
        self.producers = {}
        return None

    def delete_snapshots_after(self, offset: int) -> None:
        for snap in self.snapshot_offsets():
            if snap > offset:
                _unlink(snapshot_path(self.directory, snap))

    def delete_old_snapshots(self, keep: int = 2) -> None:
        offsets = self.snapshot_offsets()
        for snap in offsets[: max(0, len(offsets) - keep)]:
            _unlink(snapshot_path(self.directory, snap))


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _read_snapshot(path: Path) -> dict[int, ProducerEntry] | None:
    try:
        data = path.read_bytes()
    except OSError as exc:
        log.warning("ignoring unreadable producer snapshot %s: %s", path, exc)
        return None
    try:
        crc, version, count = _SNAP_HEAD.unpack_from(data, 0)
        if crc != crc32c.crc32c(data[4:]) or version != _VERSION:
            raise ValueError("checksum or version mismatch")
        pos = _SNAP_HEAD.size
        out: dict[int, ProducerEntry] = {}
        for _ in range(count):
            pid, epoch, last_ts, n = _SNAP_PRODUCER.unpack_from(data, pos)
            pos += _SNAP_PRODUCER.size
            entry = ProducerEntry(epoch=epoch, last_timestamp=last_ts)
            for _ in range(n):
                entry.batches.append(BatchMetadata(*_SNAP_BATCH.unpack_from(data, pos)))
                pos += _SNAP_BATCH.size
            out[pid] = entry
        if pos != len(data):
            raise ValueError("trailing bytes")
        return out
    except (struct.error, ValueError) as exc:
        log.warning("ignoring corrupt producer snapshot %s: %s", path, exc)
        return None
