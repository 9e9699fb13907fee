"""The partition log: an append-only sequence of segments with indexes, recovery, retention,
compaction and idempotent-producer state (the on-disk layout is in docs/storage-format.md).

Concurrency — one writer, many readers:

* Mutations (``append_*``, ``truncate_to``, ``truncate_fully_and_start_at``, ``enforce_retention``,
  the swap step of ``compact``, ``assign_epoch``, ``update_config``, ``close``) take the log's
  lock, so callers in different threads are serialised; the broker additionally keeps one
  writer per partition.
* Readers (``read``, ``read_records``, ``offset_for_timestamp`` and the properties) take no lock.
  They read the immutable tuple of segments once (a roll, retention or compaction publishes a new
  tuple; it never mutates the old one) and each segment's size once; a segment's size grows only
  after its bytes are written, and reads use ``os.pread``. A reader therefore never sees a torn
  batch, and a segment deleted under it stays readable through its still-open descriptor (closed
  when the last reference goes away). ``truncate_to`` (a follower's operation) is the exception:
  a read racing it may return fewer batches than existed a moment before, never a partial one.
* ``flush`` is a group commit: concurrent callers share one fsync (see there). A rolled segment is
  fsynced by a background flusher thread so the writer never waits for a full segment's fsync.

Durability: an append returns once its batch is in the page cache (one ``write``). It is on disk
after ``flush(up_to)`` returns for an ``up_to`` past it — the acks=all path — or when the
``flush.messages`` / ``flush.ms`` policy triggers a flush. The recovery point (the offset below
which everything is fsynced, segment indexes included) is checkpointed in
``recovery-point-offset-checkpoint``; an unclean start re-validates only from the segment that
contains it.

A full or failing disk (see docs/durability.md): an append whose write fails (ENOSPC, EIO, a short
write) leaves the log exactly as it was — the segment is cut back to its known size, no index entry,
no offset used — and raises ``StorageFullError``/``StorageWriteError``; the next append simply tries
again. A failed fsync is never retried as if it had succeeded: the log becomes read-only
(``LogReadOnlyError`` for every write and flush) until ``revalidate`` has re-opened it from disk,
recovered it from its recovery point, written the unflushed tail again and fsynced it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import random
import shutil
import struct
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from storage.checkpoint import fsync_dir, read_offset_checkpoint, write_atomic, write_offset_checkpoint
from storage.config import LogConfig
from storage.epoch import LeaderEpochCache
from storage.errors import (
    InvalidRecordError,
    LogClosedError,
    LogReadOnlyError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    StorageError,
    StorageFullError,
    StorageWriteError,
)
from storage.fileops import OS_FILE_OPS, FileOps, is_out_of_space
from storage.flush import BackgroundFlusher, GroupCommit
from storage.producer_state import ProducerStateManager
from storage.records import (
    Compression,
    Record,
    RecordIn,
    TimestampType,
    decode_batch,
    decode_records,
    encode_batch,
    iter_batches,
    parse_header,
    validate_batch,
    with_base_offset,
    with_log_append_time,
)
from storage.recovery import RecoveryStats, load_segments
from storage.segment import LOG_OVERHEAD, LogSegment

if TYPE_CHECKING:
    from storage.cleaner import CompactionStats

__all__ = [
    "CLEAN_SHUTDOWN_FILE",
    "EARLIEST_TIMESTAMP",
    "LATEST_TIMESTAMP",
    "LOG_START_OFFSET_FILE",
    "RECOVERY_POINT_FILE",
    "AppendResult",
    "PartitionLog",
    "ReadResult",
]

log = logging.getLogger(__name__)

CLEAN_SHUTDOWN_FILE = ".clean_shutdown"
LOCK_FILE = ".lock"
RECOVERY_POINT_FILE = "recovery-point-offset-checkpoint"
LOG_START_OFFSET_FILE = "log-start-offset-checkpoint"
LATEST_TIMESTAMP = -1  # ListOffsets' "latest": offset_for_timestamp answers the log end offset
EARLIEST_TIMESTAMP = -2  # ListOffsets' "earliest": the log start offset

_INT32_MAX = 2**31 - 1
_OFFSET_AND_LENGTH = struct.Struct(">qi")
_CHECKPOINT_INTERVAL_S = 1.0  # the recovery point is checkpointed at most this often on flush


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Where an append landed. ``log_append_time`` is -1 unless the topic uses LogAppendTime."""

    base_offset: int
    last_offset: int
    log_append_time: int
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class ReadResult:
    """Raw bytes of whole batches plus the log's offsets at the time of the read."""

    data: bytes
    high_watermark: int
    log_start_offset: int
    log_end_offset: int


@dataclass(frozen=True, slots=True)
class _View:
    """An immutable snapshot of the segment list (replaced, never mutated)."""

    segments: tuple[LogSegment, ...]
    bases: tuple[int, ...]

    @staticmethod
    def of(segments: Sequence[LogSegment]) -> _View:
        segs = tuple(segments)
        return _View(segs, tuple(s.base_offset for s in segs))

    def index_for(self, offset: int) -> int:
        return max(0, bisect_right(self.bases, offset) - 1)


def _next_sequence(base_sequence: int, increment: int) -> int:
    """Kafka's DefaultRecordBatch.incrementSequence: sequences wrap from int32 max to 0."""
    if base_sequence > _INT32_MAX - increment:
        return base_sequence - (_INT32_MAX - increment) - 1
    return base_sequence + increment


def _lock_directory(directory: Path) -> int:
    """Take an exclusive ``flock`` on ``<dir>/.lock`` so two logs never share a directory."""
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StorageError(
            f"the log directory {directory} is in use by another open PartitionLog (this process or another)"
        ) from None
    return fd


class PartitionLog:
    """One partition's log on disk. Build it with ``PartitionLog.open``."""

    def __init__(
        self, directory: Path, config: LogConfig, clock: Callable[[], float], file_ops: FileOps = OS_FILE_OPS
    ) -> None:
        self._dir = directory
        self._ops = file_ops
        #: Why the log refuses writes (a failed fsync), or None while it is writable.
        self._read_only: str | None = None
        self._config = config
        self._clock = clock
        self._lock = threading.RLock()
        self._closed = False
        self._view = _View.of(())
        self._log_start = 0
        self._log_end = 0
        self._hw = 0
        # durability: the group commit's durable offset is the recovery point
        self._commit = GroupCommit()
        self._roll_flusher = BackgroundFlusher(f"flush-{directory.name}", self.flush)
        self._unflushed_messages = 0
        self._last_flush_ms = 0
        self._last_checkpoint_s = 0.0
        self._dir_dirty = False  # a segment file was created and the directory not fsynced since
        self._producers = ProducerStateManager(directory, file_ops)
        self._epochs: LeaderEpochCache
        self._dir_lock = -1
        self.recovery: RecoveryStats

    # ------------------------------------------------------------------------------------ open

    @classmethod
    def open(
        cls,
        directory: Path,
        config: LogConfig,
        *,
        clock: Callable[[], float] = time.time,
        file_ops: FileOps = OS_FILE_OPS,
    ) -> PartitionLog:
        """Open (creating if needed) the log in ``directory``, recovering it after a crash.

        ``file_ops`` makes the write path's system calls (tests hand a faulty one).
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self = cls(directory, config, clock, file_ops)
        self._dir_lock = _lock_directory(directory)
        try:
            self._load()
        except BaseException:
            self._release()
            raise
        return self

    def _load(self) -> None:
        from storage.cleaner import recover_interrupted_compaction

        directory = self._dir
        recover_interrupted_compaction(directory)
        for tmp in directory.glob("*.tmp"):
            tmp.unlink()
        marker = directory / CLEAN_SHUTDOWN_FILE
        clean = marker.exists()
        log_start = read_offset_checkpoint(directory / LOG_START_OFFSET_FILE) or 0
        recovery_point = read_offset_checkpoint(directory / RECOVERY_POINT_FILE) or 0
        segments, stats = load_segments(
            directory, self._config, log_start=log_start, recovery_point=recovery_point, clean=clean,
            ops=self._ops,
        )
        # Nothing was on disk (no segment, nothing truncated or deleted): a new log, not a recovery.
        fresh = not segments and stats == RecoveryStats(clean=False)
        if not segments:
            segments = [self._new_segment(log_start)]
        active = segments[-1]
        active.created_ms = self._now_ms()
        self._log_end = max(active.next_offset, active.base_offset)
        self._log_start = min(max(log_start, segments[0].base_offset), self._log_end)
        self._view = _View.of(segments)
        self._commit = GroupCommit(min(recovery_point, self._log_end) if not clean else self._log_end)
        self._hw = self._log_end
        self._epochs = LeaderEpochCache(directory, self._ops)
        self._epochs.truncate_from_end(self._log_end)
        self._epochs.truncate_from_start(self._log_start)
        self._rebuild_producer_state()
        self._producers.delete_snapshots_after(self._log_end)
        self._last_flush_ms = self._now_ms()
        self._last_checkpoint_s = time.monotonic()
        self.recovery = stats
        if clean:
            marker.unlink()
            fsync_dir(directory)  # a crash from now on must not look clean
            log.info("opened %s cleanly at offsets [%d, %d)", directory, self._log_start, self._log_end)
        elif fresh:
            log.debug("created the log %s", directory)
        else:
            log.info(
                "recovered %s after an unclean shutdown: scanned %d bytes in %d segments, truncated %d "
                "bytes; offsets [%d, %d)",
                directory,
                stats.scanned_bytes,
                stats.scanned_segments,
                stats.truncated_bytes,
                self._log_start,
                self._log_end,
            )

    def _rebuild_producer_state(self) -> None:
        """Load the newest producer snapshot at or below the log end and replay the batches after it."""
        snap = self._producers.load_latest_snapshot(self._log_end)
        start = self._log_start if snap is None else snap
        if start >= self._log_end:
            return
        view = self._view
        entries = []
        for seg in view.segments[view.index_for(start) :]:
            _o, pos = seg.offset_index.lookup(start)
            for _pos, header in seg.full_headers(pos, seg.size):
                if header.last_offset < start or header.producer_id < 0 or header.base_sequence < 0:
                    continue
                entries.append(
                    (
                        header.producer_id,
                        header.producer_epoch,
                        header.base_sequence,
                        _next_sequence(header.base_sequence, header.last_offset_delta),
                        header.base_offset,
                        header.last_offset,
                        header.max_timestamp,
                    )
                )
        self._producers.replay(entries)

    def _new_segment(self, base_offset: int) -> LogSegment:
        seg = LogSegment(
            self._dir,
            base_offset,
            index_interval_bytes=self._config.index_interval_bytes,
            max_index_entries=max(1, self._config.segment_index_bytes // 8),
            create=True,
            ops=self._ops,
        )
        seg.next_offset = base_offset
        seg.created_ms = self._now_ms()
        jitter = min(self._config.segment_jitter_ms, self._config.segment_ms)
        if jitter > 0:
            # Kafka draws a random jitter per segment so that segments of many partitions do not all
            # roll at the same moment (segment.jitter.ms).
            seg.roll_jitter_ms = random.randrange(jitter)
        self._dir_dirty = True
        return seg

    # ------------------------------------------------------------------------------ properties

    @property
    def directory(self) -> Path:
        return self._dir

    @property
    def config(self) -> LogConfig:
        return self._config

    @property
    def log_start_offset(self) -> int:
        return self._log_start

    @property
    def log_end_offset(self) -> int:
        return self._log_end

    @property
    def high_watermark(self) -> int:
        return self._hw

    @property
    def recovery_point(self) -> int:
        """Offset below which every batch (and every closed segment's index) is fsynced."""
        return self._commit.durable_offset

    @property
    def recovered_cleanly(self) -> bool:
        """True when the last open found the clean-shutdown marker (no recovery scan ran)."""
        return self.recovery.clean

    @property
    def size_bytes(self) -> int:
        return sum(s.size for s in self._view.segments)

    @property
    def segment_count(self) -> int:
        return len(self._view.segments)

    @property
    def latest_epoch(self) -> int:
        return self._epochs.latest_epoch

    @property
    def closed(self) -> bool:
        return self._closed

    def segment_base_offsets(self) -> list[int]:
        return list(self._view.bases)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError(f"the log in {self._dir} is closed")

    @property
    def read_only(self) -> bool:
        """True after a failed fsync, until ``revalidate`` succeeds."""
        return self._read_only is not None

    def _check_writable(self) -> None:
        self._check_open()
        if self._read_only is not None:
            raise LogReadOnlyError(self._read_only)

    def _go_read_only(self, reason: str) -> LogReadOnlyError:
        if self._read_only is None:
            self._read_only = reason
            log.error("%s is read-only until it is re-validated: %s", self._dir, reason)
        return LogReadOnlyError(reason)

    def _write_failed(self, exc: OSError, what: str) -> StorageWriteError:
        """The storage error for an ``OSError`` of the write path (the log itself is unchanged)."""
        kind = StorageFullError if is_out_of_space(exc) else StorageWriteError
        return kind(f"{what} in {self._dir} failed: {exc.strerror}; nothing was appended", errno_=exc.errno)

    def update_config(self, config: LogConfig) -> None:
        """Apply a new topic configuration (takes effect for the next append, roll and cleanup)."""
        with self._lock:
            self._check_open()
            self._config = config

    def update_high_watermark(self, offset: int) -> int:
        """Move the high watermark forward (clamped to [log start, log end]); returns it."""
        with self._lock:
            new = min(max(offset, self._log_start), self._log_end)
            if new > self._hw:
                self._hw = new
            return self._hw

    # ---------------------------------------------------------------------------------- append

    def append_records(
        self,
        records: Sequence[RecordIn],
        *,
        producer_id: int = -1,
        producer_epoch: int = -1,
        base_sequence: int = -1,
        compression: Compression = Compression.NONE,
        leader_epoch: int | None = None,
    ) -> AppendResult:
        """Encode ``records`` into one batch and append it at the log end."""
        if not records:
            raise InvalidRecordError("an append needs at least one record")
        now = self._now_ms()
        config = self._config
        with self._lock:
            self._check_writable()
            idempotent = producer_id >= 0 and base_sequence >= 0
            if idempotent:
                last_seq = _next_sequence(base_sequence, len(records) - 1)
                dup = self._producers.check(producer_id, producer_epoch, base_sequence, last_seq)
                if dup is not None:
                    return AppendResult(dup.base_offset, dup.last_offset, -1, duplicate=True)
            base = self._log_end
            epoch = leader_epoch if leader_epoch is not None else self._epochs.latest_epoch
            ts_type = config.message_timestamp_type
            batch = encode_batch(
                records,
                base_offset=base,
                now_ms=now,
                compression=compression,
                timestamp_type=ts_type,
                producer_id=producer_id,
                producer_epoch=producer_epoch,
                base_sequence=base_sequence,
                partition_leader_epoch=epoch,
            )
            if len(batch) > config.max_message_bytes:
                raise RecordTooLargeError(len(batch), config.max_message_bytes)
            header = parse_header(batch)
            last = base + len(records) - 1
            if leader_epoch is not None and leader_epoch > self._epochs.latest_epoch:
                # before the batch: a failure here leaves the log unchanged (an epoch starting at the
                # log end with no batch yet is valid)
                self._assign_epoch_for_append(leader_epoch, base)
            self._append_locked(batch, base, last, header.max_timestamp, now, len(records))
            if idempotent:
                self._producers.update(
                    producer_id,
                    producer_epoch,
                    base_sequence,
                    last_seq,
                    base,
                    last,
                    max(header.max_timestamp, now),
                )
            log_append_time = now if ts_type == TimestampType.LOG_APPEND_TIME else -1
        self._maybe_flush(now)
        return AppendResult(base, last, log_append_time)

    def append_batch(
        self, batch: bytes, *, assign_offsets: bool = True, records_checked: bool = False
    ) -> AppendResult:
        """Append one pre-encoded batch (CRC checked).

        ``records_checked``: the caller has already run ``scan_batch`` over it (the broker's binary
        produce: frame, CRC and records), so neither the CRC nor the records are checked again here.

        With ``assign_offsets`` (a leader) the batch gets offsets from the log end, the latest
        leader epoch and, for LogAppendTime topics, the append time; idempotent batches are checked.
        Without it (a follower) the batch keeps its offsets, which must not go below the log end.
        """
        # A leader decodes a foreign batch's records too (Kafka's LogValidator): a correct CRC over
        # malformed records must not reach the log. A follower copies what its leader validated.
        # Checked batches (``scan_batch`` ran over them, CRC included) are not checksummed twice.
        if records_checked:
            header = parse_header(batch)
        else:
            header = validate_batch(batch, check_records=assign_offsets)
        if header.size != len(batch):
            raise InvalidRecordError(
                f"expected exactly one record batch of {header.size} bytes, got {len(batch)} bytes"
            )
        config = self._config
        if len(batch) > config.max_message_bytes:
            raise RecordTooLargeError(len(batch), config.max_message_bytes)
        if header.is_control or header.is_transactional:
            raise InvalidRecordError("transactional and control batches are not supported")
        now = self._now_ms()
        with self._lock:
            self._check_writable()
            pid, pepoch, bseq = header.producer_id, header.producer_epoch, header.base_sequence
            idempotent = pid >= 0 and bseq >= 0
            last_seq = _next_sequence(bseq, header.last_offset_delta) if idempotent else -1
            log_append_time = -1
            if assign_offsets:
                if header.record_count < 1 or header.last_offset_delta != header.record_count - 1:
                    raise InvalidRecordError(
                        f"a produced batch must hold dense offsets: {header.record_count} records, "
                        f"last offset delta {header.last_offset_delta}"
                    )
                if idempotent:
                    dup = self._producers.check(pid, pepoch, bseq, last_seq)
                    if dup is not None:
                        return AppendResult(dup.base_offset, dup.last_offset, -1, duplicate=True)
                base = self._log_end
                epoch = self._epochs.latest_epoch
                batch = with_base_offset(batch, base, epoch if epoch >= 0 else None)
                max_ts = header.max_timestamp
                if config.message_timestamp_type == TimestampType.LOG_APPEND_TIME:
                    batch = with_log_append_time(batch, now)
                    max_ts = log_append_time = now
            else:
                base = header.base_offset
                if base < self._log_end:
                    raise InvalidRecordError(
                        f"batch base offset {base} is below the log end offset {self._log_end}"
                    )
                max_ts = header.max_timestamp
                if header.partition_leader_epoch > self._epochs.latest_epoch:
                    self._assign_epoch_for_append(header.partition_leader_epoch, base)
            last = base + header.last_offset_delta
            self._append_locked(batch, base, last, max_ts, now, header.record_count)
            if idempotent:
                self._producers.update(pid, pepoch, bseq, last_seq, base, last, max(max_ts, now))
        self._maybe_flush(now)
        return AppendResult(base, last, log_append_time)

    def append_batches(self, data: bytes) -> AppendResult:
        """Append the batches a follower fetched from its leader, with their offsets and epochs.

        ``data`` must be whole batches (what ``read`` returns); each is CRC-checked and must not go
        below the log end. Returns the first base offset and the last offset appended.
        """
        batches = [(pos, header.size) for pos, header in iter_batches(data)]
        if not batches or sum(size for _p, size in batches) != len(data):
            raise InvalidRecordError("expected whole record batches, got a partial or empty buffer")
        view = memoryview(data)
        with self._lock:
            first = last = -1
            for pos, size in batches:
                result = self.append_batch(bytes(view[pos : pos + size]), assign_offsets=False)
                if first < 0:
                    first = result.base_offset
                last = result.last_offset
        return AppendResult(first, last, -1)

    def _assign_epoch_for_append(self, epoch: int, start_offset: int) -> None:
        try:
            self._epochs.assign(epoch, start_offset)
        except OSError as exc:
            raise self._write_failed(exc, "writing the leader-epoch checkpoint") from exc

    def _append_locked(self, batch: bytes, base: int, last: int, max_ts: int, now: int, count: int) -> None:
        """Write one batch at the log end (rolling first when due): all of it or nothing.

        Nothing in memory changes until the batch is whole in the file: a failed roll or write
        raises with the log end, the indexes and the producer state as they were.
        """
        seg = self._view.segments[-1]
        config = self._config
        try:
            if seg.size > 0 and (
                seg.size + len(batch) > config.segment_bytes
                or seg.offset_index.is_full
                or last - seg.base_offset > _INT32_MAX
                or seg.time_waited_for_roll(now, max_ts) > config.segment_ms - seg.roll_jitter_ms
            ):
                seg = self._roll(base)
            seg.append(batch, base, last, max_ts)
        except LogReadOnlyError as exc:
            raise self._go_read_only(str(exc)) from exc
        except OSError as exc:  # the roll's index or segment files
            raise self._write_failed(exc, "rolling a new segment") from exc
        self._log_end = last + 1
        self._unflushed_messages += count

    def _roll(self, new_base: int) -> LogSegment:
        """Start a new active segment; the old one is sealed and fsynced in the background."""
        view = self._view
        old = view.segments[-1]
        old.seal_indexes()
        seg = self._new_segment(new_base)
        self._view = _View.of((*view.segments, seg))
        try:
            self._producers.write_snapshot(new_base, fsync=False)
        except OSError as exc:
            # A snapshot only shortens the replay at the next open: a full disk must not fail the roll.
            log.warning("no producer snapshot at offset %d of %s: %s", new_base, self._dir, exc.strerror)
        self._producers.delete_old_snapshots()
        self._roll_flusher.schedule(new_base)
        log.debug("rolled %s to a new segment at offset %d", self._dir, new_base)
        return seg

    def roll(self) -> None:
        """Force a new active segment (when the current one is not empty)."""
        with self._lock:
            self._check_writable()
            if self._view.segments[-1].size > 0:
                try:
                    self._roll(self._log_end)
                except OSError as exc:
                    raise self._write_failed(exc, "rolling a new segment") from exc

    # ------------------------------------------------------------------------------------ read

    def read(self, offset: int, max_bytes: int, *, max_offset: int | None = None) -> ReadResult:
        """Raw whole batches from the batch containing ``offset``, below ``max_offset`` (default HW).

        Returns at least one whole batch when one is readable, even if it exceeds ``max_bytes``.
        """
        # Offsets first, then the segment list: a roll publishes the new list before the log end
        # moves past it, so the list read second always holds every offset below ``log_end``.
        log_start, log_end, hw = self._log_start, self._log_end, self._hw
        view = self._view
        if self._closed:
            raise LogClosedError(f"the log in {self._dir} is closed")
        if offset < log_start or offset > log_end:
            raise OffsetOutOfRangeError(offset, log_start, log_end)
        limit = hw if max_offset is None else max_offset
        data = b""
        if offset < limit and offset < log_end:
            data = self._read_from(view, offset, max_bytes, limit)
        return ReadResult(data, hw, log_start, log_end)

    def _read_from(self, view: _View, offset: int, max_bytes: int, limit: int) -> bytes:
        segments = view.segments
        for i in range(view.index_for(offset), len(segments)):
            seg = segments[i]
            end = seg.size
            found = seg.find_batch(offset, end)
            if found is None:
                continue
            pos, base, _last, size = found
            if base >= limit:
                return b""
            data = seg.pread(min(max(max_bytes, size), end - pos), pos)
            unpack = _OFFSET_AND_LENGTH.unpack_from
            p = 0
            n = len(data)
            while p + LOG_OVERHEAD <= n:
                b, length = unpack(data, p)
                s = length + LOG_OVERHEAD
                if p + s > n or b >= limit:
                    break
                p += s
            return data if p == n else data[:p]
        return b""

    def read_records(
        self, offset: int, *, max_records: int, max_bytes: int, max_offset: int | None = None
    ) -> list[Record]:
        """Decoded records with ``offset <= record.offset < max_offset`` (default HW), at most
        ``max_records`` of them from at most about ``max_bytes`` of batches (at least one batch)."""
        out: list[Record] = []
        limit = self._hw if max_offset is None else max_offset
        position = offset
        budget = max_bytes
        # One read stops at a segment's end; keep going while records and bytes are wanted. A
        # compacted batch may also keep an offset range whose records are gone, which decodes to
        # nothing: keep going past it as well.
        while len(out) < max_records:
            result = self.read(position, budget, max_offset=limit)
            if not result.data:
                break
            out += decode_records(result.data, min_offset=position, max_offset=limit)
            position = _end_of_batches(result.data)
            budget -= len(result.data)
            if (budget <= 0 and out) or position >= min(limit, result.log_end_offset):
                break
            budget = max(budget, 1)
        return out[:max_records] if len(out) > max_records else out

    def offset_for_timestamp(self, ts_ms: int) -> int | None:
        """The earliest offset whose record timestamp is >= ``ts_ms`` (None if there is none).

        ``LATEST_TIMESTAMP`` (-1) answers the log end and ``EARLIEST_TIMESTAMP`` (-2) the log start,
        like Kafka's ListOffsets.
        """
        if ts_ms == LATEST_TIMESTAMP:
            return self._log_end
        if ts_ms == EARLIEST_TIMESTAMP:
            return self._log_start
        view = self._view
        log_start = self._log_start
        if self._closed:
            raise LogClosedError(f"the log in {self._dir} is closed")
        active = view.segments[-1]
        for seg in view.segments:
            seg_max = seg.max_timestamp if seg is active else seg.closed_max_timestamp()
            if seg_max < ts_ms:
                continue
            start = max(seg.time_index.scan_start(ts_ms), log_start)
            _o, pos = seg.offset_index.lookup(start)
            for p, header in seg.full_headers(pos, seg.size):
                if header.last_offset < start or header.max_timestamp < ts_ms:
                    continue
                for record in decode_batch(seg.pread(header.size, p)):
                    if record.offset >= log_start and record.timestamp >= ts_ms:
                        return record.offset
        return None

    # ------------------------------------------------------------------------------ durability

    def flush(self, up_to: int | None = None) -> None:
        """Return once every offset below ``up_to`` (default: the log end) is fsynced.

        Group commit: whoever finds no fsync in flight does one for everybody, up to the log end
        at that moment; callers arriving meanwhile wait on the condition and are usually served
        by that fsync or the next one.
        """
        wanted = self._log_end if up_to is None else min(up_to, self._log_end)
        self._commit.flush(wanted, self._fsync_to_end)

    def _fsync_to_end(self) -> tuple[int, int]:
        with self._lock:
            if self._closed:
                raise LogClosedError(f"the log in {self._dir} is closed")
            if self._read_only is not None:
                raise LogReadOnlyError(self._read_only)
            generation = self._commit.generation
            target = self._log_end
            view = self._view
            self._unflushed_messages = 0
            self._last_flush_ms = self._now_ms()
        dirty: list[LogSegment] = []
        sealed = False
        segments = view.segments
        for i in range(len(segments) - 1, -1, -1):
            seg = segments[i]
            if seg.needs_index_sync:
                sealed = True
            elif seg.flushed_size >= seg.size and i < len(segments) - 1:
                break
            dirty.append(seg)
        try:
            for seg in reversed(dirty):
                if seg.needs_index_sync:
                    seg.sync_index_files()
                if seg.flushed_size < seg.size:
                    seg.fsync()
            if self._dir_dirty:
                # a segment created since the last flush: its directory entry must be durable too
                self._dir_dirty = False
                fsync_dir(self._dir, self._ops)
        except OSError as exc:
            # Never retried as if it had worked: the kernel may have dropped the dirty pages, and a
            # second fsync would report success for data that is not on disk (fsyncgate).
            raise self._go_read_only(f"fsync failed: {exc.strerror}") from exc
        now_s = time.monotonic()
        if sealed or now_s - self._last_checkpoint_s >= _CHECKPOINT_INTERVAL_S:
            with self._lock:
                if not self._closed and generation == self._commit.generation:
                    try:
                        write_offset_checkpoint(self._dir / RECOVERY_POINT_FILE, target, ops=self._ops)
                        self._last_checkpoint_s = now_s
                    except OSError as exc:
                        # The data is durable; a stale recovery point only lengthens the next recovery.
                        log.warning("recovery point of %s not checkpointed: %s", self._dir, exc.strerror)
        return target, generation

    def _maybe_flush(self, now_ms: int) -> None:
        config = self._config
        if (config.flush_messages is not None and self._unflushed_messages >= config.flush_messages) or (
            config.flush_ms is not None and now_ms - self._last_flush_ms >= config.flush_ms
        ):
            self.flush()

    def flush_if_due(self) -> bool:
        """Apply the flush.ms policy from a periodic task; returns True when it flushed."""
        config = self._config
        if config.flush_ms is None or self._unflushed_messages == 0:
            return False
        if self._now_ms() - self._last_flush_ms < config.flush_ms:
            return False
        self.flush()
        return True

    # ------------------------------------------------------------------------------- truncation

    def truncate_to(self, offset: int) -> None:
        """Remove every batch at or past ``offset`` (a batch containing it goes too).

        Below the log start the log is emptied and restarts at ``offset``.
        """
        self._roll_flusher.wait_idle()
        with self._lock:
            self._check_writable()
            if offset >= self._log_end:
                return
            segments = list(self._view.segments)
            if offset < self._log_start or offset <= segments[0].base_offset:
                restart = max(offset, 0)
                removed = segments
                segments = [self._new_segment_replacing(restart, removed)]
                self._log_start = restart
                write_offset_checkpoint(self._dir / LOG_START_OFFSET_FILE, restart)
                self._log_end = restart
            else:
                i = _View.of(segments).index_for(offset)
                removed = segments[i + 1 :]
                segments = segments[: i + 1]
                seg = segments[-1]
                seg.truncate_to(offset)
                seg.needs_index_sync = False
                # The log end becomes the end of the last batch kept: ``offset`` at a batch
                # boundary, the base of a batch straddling it, and (after compaction) the end of
                # the last surviving batch below it — the same value a reopen computes.
                self._log_end = max(seg.next_offset, seg.base_offset)
                for dead in removed:
                    dead.unlink()
            self._view = _View.of(segments)
            self._hw = min(self._hw, self._log_end)
            self._commit.truncated(self._log_end)
            write_offset_checkpoint(self._dir / RECOVERY_POINT_FILE, self._commit.durable_offset)
            self._epochs.truncate_from_end(self._log_end)
            self._producers.delete_snapshots_after(self._log_end)
            self._rebuild_producer_state()
            from storage.cleaner import clamp_cleaner_checkpoint

            clamp_cleaner_checkpoint(self._dir, self._log_end)
            fsync_dir(self._dir)

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Delete every segment and restart the log, empty, at ``offset`` (Kafka's
        ``truncateFullyAndStartAt``).

        A follower does this when its log end is below the leader's log start offset (retention or
        compaction removed what it still needs): log start, log end and high watermark become
        ``offset``; producer state and the leader-epoch cache are cleared.

        Crash safety — every step leaves a log that opens in a valid state:

        1. the log-start checkpoint is written first: a crash from here on opens with nothing below
           ``offset`` readable (recovery drops segments wholly below the checkpointed log start);
        2. producer snapshots and epoch entries of the old log go next, so none describes the new one;
        3. the new empty segment is created before the old ones are deleted when its base is past
           every old segment's (recovery then keeps only the new one); otherwise the old ones go
           first and a reopen with no segment starts one at the checkpointed log start.
        """
        if offset < 0:
            raise ValueError(f"a log cannot start at a negative offset ({offset})")
        self._roll_flusher.wait_idle()
        with self._lock:
            self._check_writable()
            old = list(self._view.segments)
            write_offset_checkpoint(self._dir / LOG_START_OFFSET_FILE, offset)
            self._producers.delete_snapshots_after(-1)
            self._producers.producers = {}
            self._epochs.clear()
            if old and offset > old[-1].base_offset:
                segment = self._new_segment(offset)
                fsync_dir(self._dir)
                for dead in old:
                    dead.unlink()
            else:
                segment = self._new_segment_replacing(offset, old)
            self._view = _View.of([segment])
            self._log_start = self._log_end = self._hw = offset
            self._unflushed_messages = 0
            self._commit.truncated(offset)
            write_offset_checkpoint(self._dir / RECOVERY_POINT_FILE, self._commit.durable_offset)
            from storage.cleaner import clamp_cleaner_checkpoint

            clamp_cleaner_checkpoint(self._dir, offset)
            fsync_dir(self._dir)
            self._dir_dirty = False
        log.info("%s emptied: the log restarts at offset %d", self._dir, offset)

    def _new_segment_replacing(self, base_offset: int, removed: Sequence[LogSegment]) -> LogSegment:
        for dead in removed:
            dead.unlink()
        return self._new_segment(base_offset)

    # -------------------------------------------------------------------------------- epochs

    def assign_epoch(self, epoch: int, start_offset: int) -> None:
        """Record that leader ``epoch`` starts at ``start_offset``."""
        with self._lock:
            self._check_open()
            self._epochs.assign(epoch, start_offset)

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """(epoch, end offset) for a follower's OffsetsForLeaderEpoch request; (-1, -1) if unknown."""
        return self._epochs.end_offset_for(epoch, self._log_end)

    # ------------------------------------------------------------------------ retention, cleaning

    def enforce_retention(self, now_ms: int | None = None) -> int:
        """Delete closed segments past retention.ms / retention.bytes; returns how many.

        Also forgets idempotent producers idle for longer than producer.id.expiration.ms (1 day).
        """
        from storage.retention import segments_to_delete

        now = self._now_ms() if now_ms is None else now_ms
        with self._lock:
            self._check_open()
            self._producers.expire(now)
            config = self._config
            if not config.delete:
                return 0
            segments = self._view.segments
            count = segments_to_delete(segments, config, now, self.size_bytes)
            if count == 0:
                return 0
            self._delete_prefix(count)
            return count

    def delete_records(self, offset: int) -> int:
        """Move the log start up to ``offset`` (Kafka's DeleteRecords); return the new log start.

        ``offset`` may be at most the high watermark (``OffsetOutOfRangeError`` beyond it); an
        offset at or below the current log start changes nothing (the log start only moves forward).
        The new log start is checkpointed first, so a crash right after leaves it in force; then the
        whole segments below it are deleted (never the active one). Records of the segment holding
        the new start stay on disk until retention takes the segment, but are no longer readable.
        """
        with self._lock:
            self._check_open()
            if offset > self._hw:
                raise OffsetOutOfRangeError(offset, self._log_start, self._hw)
            if offset <= self._log_start:
                return self._log_start
            write_offset_checkpoint(self._dir / LOG_START_OFFSET_FILE, offset)
            self._log_start = offset
            segments = self._view.segments
            count = 0
            while count < len(segments) - 1 and segments[count + 1].base_offset <= offset:
                count += 1
            if count:
                doomed, kept = segments[:count], segments[count:]
                self._view = _View.of(kept)
                for seg in doomed:
                    seg.unlink()
            self._epochs.truncate_from_start(offset)
            fsync_dir(self._dir)
            log.info("deleted records below %d of %s (%d segments)", offset, self._dir, count)
            return offset

    def _delete_prefix(self, count: int) -> None:
        segments = self._view.segments
        doomed, kept = segments[:count], segments[count:]
        new_start = max(self._log_start, kept[0].base_offset)
        write_offset_checkpoint(self._dir / LOG_START_OFFSET_FILE, new_start)
        self._log_start = new_start
        self._view = _View.of(kept)
        self._hw = max(self._hw, min(new_start, self._log_end))
        for seg in doomed:
            seg.unlink()
        self._epochs.truncate_from_start(new_start)
        fsync_dir(self._dir)
        log.info("retention deleted %d segments of %s; log start offset is %d", count, self._dir, new_start)

    def compact(self, now_ms: int | None = None, *, max_offset: int | None = None) -> CompactionStats | None:
        """Compact the closed segments when cleanup.policy has compact and enough is dirty.

        Only segments ending at or below ``max_offset`` (when given) are cleaned. Returns what the
        pass did, or None when nothing was cleanable.
        """
        from storage.cleaner import compact_log

        now = self._now_ms() if now_ms is None else now_ms
        self._check_open()
        if not self._config.compact:
            return None
        return compact_log(self, now, max_offset)

    # ------------------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Flush everything, snapshot producer state, write the clean-shutdown marker.

        A log that cannot be closed cleanly (read-only, or a disk too full for the checkpoints) is
        let go without the marker, so the next open recovers it from its recovery point.
        """
        if self._closed:
            return
        self._roll_flusher.wait_idle()
        try:
            self.flush()
            self._close_cleanly()
        except (OSError, StorageError) as exc:
            self.abandon()
            if isinstance(exc, StorageError):
                raise
            raise self._write_failed(exc, "closing the log cleanly") from exc

    def _close_cleanly(self) -> None:
        with self._lock:
            if self._closed:
                return
            view = self._view
            for seg in view.segments[:-1]:
                if seg.needs_index_sync:  # normally synced already by the flush above
                    seg.sync_index_files()
            active = view.segments[-1]
            active.seal_indexes()  # final time-index entry; written and kept loaded
            active.sync_index_files()
            active.fsync()
            write_offset_checkpoint(self._dir / RECOVERY_POINT_FILE, self._log_end)
            self._producers.write_snapshot(self._log_end)
            self._producers.delete_old_snapshots()
            write_atomic(self._dir / CLEAN_SHUTDOWN_FILE, b"")
            self._release()

    def revalidate(self) -> None:
        """Make a read-only log writable again (after a failed fsync), or raise ``LogReadOnlyError``.

        The log is re-opened from disk as after a crash: every batch from the segment holding the
        recovery point on is checked (CRC, offsets) and the files are cut at the first invalid byte.
        Those segments are then written again and fsynced, so bytes the kernel may have marked
        clean without writing reach the disk now; only when that fsync succeeds does the log take
        writes again. Readers keep reading the old segment objects meanwhile. A writable log is
        left alone.
        """
        self._roll_flusher.wait_idle()
        with self._lock:
            self._check_open()
            if self._read_only is None:
                return
            recovery_point = self._commit.durable_offset
            try:
                segments, _stats = load_segments(
                    self._dir, self._config, log_start=self._log_start, recovery_point=recovery_point,
                    clean=False, ops=self._ops,
                )
                if not segments:
                    segments = [self._new_segment(self._log_start)]
                for seg in segments:
                    if seg.flushed_size < seg.size or seg.needs_index_sync:
                        seg.rewrite_and_fsync()
                        seg.sync_index_files()
                fsync_dir(self._dir, self._ops)
            except OSError as exc:
                raise LogReadOnlyError(
                    f"{self._read_only}; re-validation failed too: {exc.strerror}"
                ) from exc
            active = segments[-1]
            active.created_ms = self._now_ms()
            before = self._log_end
            self._log_end = max(active.next_offset, active.base_offset)
            self._view = _View.of(segments)
            self._hw = min(self._hw, self._log_end)
            self._commit.reset(self._log_end)
            self._epochs.truncate_from_end(self._log_end)
            self._rebuild_producer_state()
            self._unflushed_messages = 0
            self._dir_dirty = False
            reason, self._read_only = self._read_only, None
        lost = before - self._log_end
        log.warning(
            "%s re-validated after %r: writable again at log end %d (%d offsets past the recovery point "
            "were invalid and dropped)", self._dir, reason, self._log_end, lost,
        )

    def abandon(self) -> None:
        """Let go of the log without flushing or marking a clean shutdown (as a crash would)."""
        self._roll_flusher.wait_idle()
        with self._lock:
            if not self._closed:
                self._release()

    def delete(self) -> None:
        """Close the log and remove its directory."""
        self._roll_flusher.wait_idle()
        with self._lock:
            if not self._closed:
                self._release()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _release(self) -> None:
        # Segment descriptors close when the last reference goes: at once, unless a reader in
        # another thread is still inside a read, which then finishes on a valid descriptor.
        self._closed = True
        self._view = _View.of(())
        os.close(self._dir_lock)

    def __repr__(self) -> str:
        return (
            f"PartitionLog({str(self._dir)!r}, start={self._log_start}, end={self._log_end}, "
            f"hw={self._hw}, segments={len(self._view.segments)})"
        )


def _end_of_batches(data: bytes) -> int:
    """The offset after the last whole batch in ``data``."""
    end = 0
    pos = 0
    while pos + 27 <= len(data):
        base, length = _OFFSET_AND_LENGTH.unpack_from(data, pos)
        (delta,) = struct.unpack_from(">i", data, pos + 23)
        end = base + delta + 1
        pos += length + LOG_OVERHEAD
    return end
