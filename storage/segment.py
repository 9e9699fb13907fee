"""One segment of a partition log: ``<base>.log`` plus its offset and time indexes.

A segment's file is a concatenation of whole record batches (layout in ``storage/records.py`` and
docs/storage-format.md). The segment object owns one file descriptor, opened ``O_APPEND`` for the
writer; readers in other threads use ``os.pread`` on the same descriptor with a size read once
(``size`` only grows after the bytes are written), so they never see a torn batch.

The descriptor is closed explicitly by ``close()`` (log shutdown) or, for segments removed by
retention, compaction or truncation while a reader may still hold them, when the last reference
goes away (``_Fd.__del__``): a reader holding an old snapshot of the segment list keeps reading
the unlinked file's bytes safely, and a descriptor number is never reused under its feet.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
from collections.abc import Iterator
from pathlib import Path

from storage.errors import CorruptRecordError, LogReadOnlyError, StorageFullError, StorageWriteError
from storage.fileops import OS_FILE_OPS, FileOps, is_out_of_space, write_all
from storage.index import OffsetIndex, TimeIndex
from storage.records import BatchHeader, parse_header, validate_batch

__all__ = [
    "HEADER_SIZE",
    "LOG_OVERHEAD",
    "PREFIX",
    "LogSegment",
    "index_path",
    "log_path",
    "segment_name",
    "time_index_path",
]

log = logging.getLogger(__name__)

# The first 27 bytes of a batch header: enough to know a batch's offsets and size without
# parsing the rest (field meanings in storage/records.py).
PREFIX = struct.Struct(">qiibIhi")  # base offset, length, leader epoch, magic, crc, attrs, last delta
HEADER_SIZE = 61  # a record batch v2 header, offset and length fields included
LOG_OVERHEAD = 12  # base offset (8) + batch length (4): the bytes batch_length does not count

_SCAN_WINDOW = 8192  # header walks read this much at a time
_VALIDATE_WINDOW = 8 << 20  # recovery reads whole batches this much at a time


def segment_name(base_offset: int) -> str:
    """The 20-digit, zero-padded file stem of a segment (Kafka's naming)."""
    return f"{base_offset:020d}"


def log_path(directory: Path, base_offset: int) -> Path:
    return directory / f"{segment_name(base_offset)}.log"


def index_path(directory: Path, base_offset: int) -> Path:
    return directory / f"{segment_name(base_offset)}.index"


def time_index_path(directory: Path, base_offset: int) -> Path:
    return directory / f"{segment_name(base_offset)}.timeindex"


class _Fd:
    """An owned file descriptor, closed when the last holder lets go (or explicitly)."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        self.close()


class LogSegment:
    """A segment file and its sparse indexes."""

    __slots__ = (
        "_fd",
        "base_offset",
        "bytes_since_index",
        "created_ms",
        "directory",
        "first_batch_timestamp",
        "flushed_size",
        "index_interval_bytes",
        "max_timestamp",
        "needs_index_sync",
        "next_offset",
        "offset_index",
        "ops",
        "roll_jitter_ms",
        "size",
        "time_index",
    )

    def __init__(
        self,
        directory: Path,
        base_offset: int,
        *,
        index_interval_bytes: int,
        max_index_entries: int,
        create: bool = False,
        suffix: str = "",
        ops: FileOps = OS_FILE_OPS,
    ) -> None:
        self.directory = directory
        self.base_offset = base_offset
        self.index_interval_bytes = index_interval_bytes
        self.ops = ops
        flags = os.O_RDWR | os.O_APPEND | (os.O_CREAT if create else 0)
        path = Path(str(log_path(directory, base_offset)) + suffix)
        self._fd = _Fd(ops.open(path, flags, 0o644))
        self.size = os.fstat(self._fd.fd).st_size
        self.flushed_size = self.size if not create else 0
        self.offset_index = OffsetIndex(
            Path(str(index_path(directory, base_offset)) + suffix), base_offset, max_index_entries, ops=ops
        )
        self.time_index = TimeIndex(
            Path(str(time_index_path(directory, base_offset)) + suffix), base_offset, ops=ops
        )
        if create:
            try:
                self.offset_index.reset()
                self.time_index.reset()
            except OSError:
                # A full disk while rolling: leave no half-created segment behind.
                self._fd.close()
                for stray in (path, self.offset_index.path, self.time_index.path):
                    with contextlib.suppress(OSError):
                        stray.unlink()
                raise
        self.next_offset = base_offset  # offset after the last batch; unknown until loaded
        self.max_timestamp = -1
        self.first_batch_timestamp: int | None = None
        self.created_ms = 0  # set by the log from its clock
        self.roll_jitter_ms = 0  # segment.jitter.ms: drawn by the log for each new active segment
        self.bytes_since_index = 0
        self.needs_index_sync = False  # sealed, index files written but not yet fsynced

    # -- paths ----------------------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        return log_path(self.directory, self.base_offset)

    def paths(self) -> list[Path]:
        return [self.log_path, self.offset_index.path, self.time_index.path]

    def time_waited_for_roll(self, now_ms: int, incoming_max_timestamp: int) -> int:
        """How long this segment has been open for segment.ms (Kafka's ``LogSegment.timeWaitedForRoll``).

        In record time when the segment's first batch has a timestamp: the incoming batch's largest
        timestamp minus the first batch's largest; so a replay of history rolls by record time, and
        time retention and compaction act on it. Wall-clock time since the segment was created (or
        opened) when it has no timestamped batch yet.
        """
        first = self.first_batch_timestamp
        if first is not None and first >= 0:
            return incoming_max_timestamp - first
        return now_ms - self.created_ms

    # -- reads ------------------------------------------------------------------------------------

    def pread(self, size: int, position: int) -> bytes:
        return os.pread(self._fd.fd, size, position)

    def iter_headers(self, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
        """(position, base_offset, last_offset, batch_size) of whole batches in [start, end)."""
        pos = start
        unpack = PREFIX.unpack_from
        psize = PREFIX.size
        while pos + psize <= end:
            window = self.pread(min(_SCAN_WINDOW, end - pos), pos)
            off = 0
            wlen = len(window)
            while off + psize <= wlen:
                base, length, _e, magic, _c, _a, delta = unpack(window, off)
                size = length + LOG_OVERHEAD
                if length < HEADER_SIZE - LOG_OVERHEAD or pos + off + size > end or magic != 2:
                    return
                yield pos + off, base, base + delta, size
                off += size
            if off == 0:
                return
            pos += off

    def full_headers(self, start: int, end: int) -> Iterator[tuple[int, BatchHeader]]:
        """(position, header) of the whole batches in [start, end), parsed without CRC checks."""
        for pos, _base, _last, size in self.iter_headers(start, end):
            if size < HEADER_SIZE:
                return
            yield pos, parse_header(self.pread(HEADER_SIZE, pos))

    def find_batch(self, offset: int, end: int) -> tuple[int, int, int, int] | None:
        """The first batch (pos, base, last, size) whose last offset >= ``offset``, within ``end``.

        The index is a hint: when the batch at the indexed position is not the indexed one (a
        damaged index file), the segment is scanned from its start instead.
        """
        idx_offset, start = self.offset_index.lookup(offset)
        if start >= end:
            start = 0
        # Fast path: the indexed batch usually holds ``offset`` (one entry per batch once batches
        # exceed index.interval.bytes); read just its 27-byte prefix.
        head = self.pread(PREFIX.size, start)
        if len(head) == PREFIX.size:
            base, length, _e, magic, _c, _a, delta = PREFIX.unpack(head)
            size = length + LOG_OVERHEAD
            if (
                magic == 2
                and base == idx_offset
                and base + delta >= offset
                and length >= HEADER_SIZE - LOG_OVERHEAD
                and start + size <= end
            ):
                return start, base, base + delta, size
        first = True
        for entry in self.iter_headers(start, end):
            if first and start > 0 and entry[1] != idx_offset:
                log.warning("index entry %d -> %d of %s is wrong; scanning", idx_offset, start, self.log_path)
                return self._scan_for(offset, 0, end)
            first = False
            if entry[2] >= offset:
                return entry
        if first and start > 0:
            return self._scan_for(offset, 0, end)
        return None

    def _scan_for(self, offset: int, start: int, end: int) -> tuple[int, int, int, int] | None:
        for entry in self.iter_headers(start, end):
            if entry[2] >= offset:
                return entry
        return None

    def first_header(self) -> BatchHeader | None:
        if self.size < HEADER_SIZE:
            return None
        buf = self.pread(HEADER_SIZE, 0)
        if len(buf) < HEADER_SIZE:
            return None
        try:
            return parse_header(buf)
        except CorruptRecordError:
            return None

    # -- writes ------------------------------------------------------------------------------------

    def append(self, batch: bytes, base_offset: int, last_offset: int, max_timestamp: int) -> None:
        """Append one whole batch and index it when due; all of it, or nothing.

        A failed write (ENOSPC, EIO, a short write followed by a failure) is undone: the file is
        cut back to the size it had, and neither the index nor any in-memory state has changed,
        so the segment is exactly as before (``StorageFullError``/``StorageWriteError``). If even
        the cut fails, ``LogReadOnlyError``: the file's tail holds bytes the log cannot vouch for.
        The index entry is added only once the whole batch is in the file.
        """
        position = self.size
        try:
            write_all(self.ops, self._fd.fd, batch)
        except OSError as exc:
            try:
                self.ops.ftruncate(self._fd.fd, position)
            except OSError as undo:
                raise LogReadOnlyError(
                    f"a failed write to {self.log_path} ({exc.strerror}) could not be undone "
                    f"({undo.strerror}): the log is read-only until it is re-validated"
                ) from exc
            kind = StorageFullError if is_out_of_space(exc) else StorageWriteError
            raise kind(
                f"writing {len(batch)} bytes to {self.log_path} failed: {exc.strerror}; nothing was appended",
                errno_=exc.errno,
            ) from exc
        if self.bytes_since_index > self.index_interval_bytes:
            self.offset_index.append(base_offset, position)
            self.time_index.append(max(max_timestamp, self.max_timestamp), base_offset)
            self.bytes_since_index = 0
        self.bytes_since_index += len(batch)
        if self.first_batch_timestamp is None:
            self.first_batch_timestamp = max_timestamp
        if max_timestamp > self.max_timestamp:
            self.max_timestamp = max_timestamp
        self.next_offset = last_offset + 1
        self.size = position + len(batch)  # publish last: readers trust bytes below size

    def fsync(self) -> None:
        size = self.size
        self.ops.fsync(self._fd.fd)
        if size > self.flushed_size:
            self.flushed_size = size

    def rewrite_and_fsync(self) -> None:
        """Write every byte of the file again, then fsync it (re-validation after a failed fsync).

        After a failed fsync the kernel may have marked the pages clean without writing them, and
        a later fsync then succeeds without putting them on disk. Writing the same bytes again makes
        them dirty, so the fsync that follows really writes them, or fails again.
        """
        fd = self.ops.open(self.log_path, os.O_WRONLY)
        try:
            position = 0
            while position < self.size:
                chunk = memoryview(self.pread(min(_VALIDATE_WINDOW, self.size - position), position))
                if not chunk:
                    break
                while chunk:
                    written = self.ops.pwrite(fd, chunk, position)
                    if written <= 0:
                        raise OSError(28, "No space left on device")
                    chunk = chunk[written:]
                    position += written
            self.ops.fsync(fd)
        finally:
            os.close(fd)
        self.flushed_size = self.size

    def persist_indexes(self, *, fsync: bool) -> None:
        self.offset_index.persist(fsync=fsync)
        self.time_index.persist(fsync=fsync)

    def seal_indexes(self) -> None:
        """Prepare a segment being rolled: final time-index entry, index files written.

        The data and index files still need an fsync (``sync_index_files`` and ``fsync``), which
        the log's background flusher does before the recovery point moves past the segment.
        """
        if self.max_timestamp >= 0:
            last = self.time_index.last_entry()
            if last is None or last[0] < self.max_timestamp:
                _pos, base, _last, _size = self._last_batch()
                self.time_index.append(self.max_timestamp, base)
        self.persist_indexes(fsync=False)
        self.needs_index_sync = True
        self.offset_index.unload()
        self.time_index.unload()

    def sync_index_files(self) -> None:
        for path in (self.offset_index.path, self.time_index.path):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                self.ops.fsync(fd)
            finally:
                os.close(fd)
        self.needs_index_sync = False

    def _last_batch(self) -> tuple[int, int, int, int]:
        _o, start = self.offset_index.last_entry()
        last = (0, self.base_offset, self.base_offset - 1, 0)
        for entry in self.iter_headers(start, self.size):
            last = entry
        return last

    def truncate_to(self, offset: int) -> int | None:
        """Drop the batch containing ``offset`` and everything after it.

        Returns the base offset of the first batch removed, or None when none was.
        """
        found = self.find_batch(offset, self.size)
        if found is None:
            self.load_tail()
            return None
        position = found[0]
        self.ops.ftruncate(self._fd.fd, position)
        self.size = position
        self.flushed_size = min(self.flushed_size, position)
        self.offset_index.truncate_to_position(position)
        self.time_index.truncate_to_offset(found[1])
        self.load_tail()
        return found[1]

    def truncate_to_position(self, position: int) -> None:
        self.ops.ftruncate(self._fd.fd, position)
        self.size = position
        self.flushed_size = min(self.flushed_size, position)

    # -- loading and recovery ---------------------------------------------------------------------

    def load_tail(self) -> None:
        """Find next offset and max timestamp from the last index entries (bounded scan, no CRC)."""
        _o, start = self.offset_index.last_entry()
        if start > self.size:
            start = 0
        last_ts = self.time_index.last_entry()
        max_ts = last_ts[0] if last_ts is not None else -1
        next_offset = self.base_offset if start == 0 else self.next_offset
        bytes_since = 0
        for pos, header in self.full_headers(start, self.size):
            next_offset = header.last_offset + 1
            bytes_since = pos + header.size - start
            max_ts = max(max_ts, header.max_timestamp)
        self.next_offset = next_offset
        self.max_timestamp = max_ts
        self.bytes_since_index = bytes_since
        first = self.first_header()
        self.first_batch_timestamp = first.max_timestamp if first is not None else None

    def recover(self, next_expected: int, max_batch_bytes: int = 128 << 20) -> tuple[int, list[BatchHeader]]:
        """Validate every batch, truncate at the first invalid byte and rebuild both indexes.

        ``next_expected`` is the lowest base offset the first batch may have. Returns the number
        of bytes truncated and the headers of the valid batches (for producer-state rebuild).
        """
        self.offset_index.reset()
        self.time_index.reset()
        self.max_timestamp = -1
        self.first_batch_timestamp = None
        self.bytes_since_index = 0
        headers: list[BatchHeader] = []
        pos = 0
        end = os.fstat(self._fd.fd).st_size
        expected = max(next_expected, self.base_offset)
        reason: str | None = None
        while pos < end and reason is None:
            buf = self.pread(min(_VALIDATE_WINDOW, end - pos), pos)
            off = 0
            while off < len(buf):
                if len(buf) - off < HEADER_SIZE:
                    if off == 0:
                        reason = "truncated batch header"
                    break
                length = struct.unpack_from(">i", buf, off + 8)[0]
                size = length + LOG_OVERHEAD
                if length < HEADER_SIZE - LOG_OVERHEAD or size > max_batch_bytes:
                    reason = f"invalid batch length {length}"
                    break
                if off + size > len(buf):
                    if off == 0:
                        if pos + size > end:
                            reason = "truncated batch"
                        else:
                            buf = self.pread(size, pos)
                            continue
                    break
                try:
                    header = validate_batch(buf, off)
                except CorruptRecordError as exc:
                    reason = str(exc)
                    break
                if header.base_offset < expected or header.last_offset < header.base_offset:
                    reason = (
                        f"batch offsets {header.base_offset}..{header.last_offset} do not follow "
                        f"offset {expected - 1}"
                    )
                    break
                position = pos + off
                if self.bytes_since_index > self.index_interval_bytes:
                    self.offset_index.append(header.base_offset, position)
                    self.time_index.append(max(header.max_timestamp, self.max_timestamp), header.base_offset)
                    self.bytes_since_index = 0
                self.bytes_since_index += size
                if self.first_batch_timestamp is None:
                    self.first_batch_timestamp = header.max_timestamp
                self.max_timestamp = max(self.max_timestamp, header.max_timestamp)
                expected = header.last_offset + 1
                headers.append(header)
                off += size
            pos += off
            if off == 0:
                break
        self.next_offset = expected if headers else self.base_offset
        truncated = end - pos
        if truncated:
            log.warning(
                "truncating %s at byte %d (%d bytes dropped): %s",
                self.log_path,
                pos,
                truncated,
                reason or "trailing bytes",
            )
            self.truncate_to_position(pos)
        self.size = pos
        if self.max_timestamp >= 0 and headers:
            self.time_index.append(self.max_timestamp, headers[-1].base_offset)
        self.persist_indexes(fsync=False)
        return truncated, headers

    def rebuild_indexes(self) -> None:
        """Rebuild both indexes from the batch headers (for a trusted segment, no CRC check)."""
        self.offset_index.reset()
        self.time_index.reset()
        self.max_timestamp = -1
        self.bytes_since_index = 0
        last_base = self.base_offset
        for pos, header in self.full_headers(0, self.size):
            if self.bytes_since_index > self.index_interval_bytes:
                self.offset_index.append(header.base_offset, pos)
                self.time_index.append(max(header.max_timestamp, self.max_timestamp), header.base_offset)
                self.bytes_since_index = 0
            self.bytes_since_index += header.size
            self.max_timestamp = max(self.max_timestamp, header.max_timestamp)
            self.next_offset = header.last_offset + 1
            last_base = header.base_offset
        if self.max_timestamp >= 0:
            self.time_index.append(self.max_timestamp, last_base)
        self.persist_indexes(fsync=True)

    def closed_max_timestamp(self) -> int:
        """Largest timestamp of a sealed segment (from the time index's last entry, cached)."""
        if self.max_timestamp >= 0:
            return self.max_timestamp
        last = self.time_index.last_entry()
        if last is not None:
            self.max_timestamp = last[0]
        return self.max_timestamp

    # -- lifecycle ----------------------------------------------------------------------------------

    def close(self) -> None:
        self._fd.close()

    def unlink(self) -> None:
        """Remove the files (the descriptor stays valid for readers still holding the segment)."""
        for path in self.paths():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
