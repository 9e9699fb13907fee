"""Sparse per-segment indexes: offset → file position, and timestamp → offset.

On disk (both big-endian, fixed width, append-only, binary-searchable; see docs/storage-format.md)::

    <base>.index      repeated 8-byte entries
        u32 relative_offset   base offset of an indexed batch minus the segment's base offset
        u32 position          byte position of that batch in <base>.log

    <base>.timeindex  repeated 12-byte entries
        i64 timestamp         largest batch max-timestamp of the segment up to and including the batch
        u32 relative_offset   base offset of that batch minus the segment's base offset

An entry is added for a batch when at least ``index.interval.bytes`` were appended since the last
entry (Kafka's rule), so both indexes stay sparse: about 8 bytes per 4 KiB of log. Entries are
strictly increasing in both columns. The indexes are only hints: a lookup gives a position at or
before the wanted batch and the caller scans batch headers from there, so a lost tail of entries
only costs a longer scan. A segment's indexes are persisted when it is rolled or the log is
flushed or closed, and rebuilt from the log when missing or inconsistent.

Concurrency: one writer appends; readers in other threads call ``lookup`` concurrently. A
truncation replaces the arrays instead of shrinking them, and an append extends the position
column before the key column, so a reader never indexes past either.
"""

from __future__ import annotations

import os
import struct
import sys
from array import array
from bisect import bisect_left, bisect_right
from pathlib import Path
from typing import ClassVar

from storage.fileops import OS_FILE_OPS, FileOps, write_all

__all__ = ["OFFSET_ENTRY", "TIME_ENTRY", "OffsetIndex", "TimeIndex"]

OFFSET_ENTRY = struct.Struct(">II")  # relative offset, position
TIME_ENTRY = struct.Struct(">qI")  # timestamp, relative offset

_SWAP = sys.byteorder == "little"


def _read_column_pairs(path: Path, width: int) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return b""
    return data[: len(data) - len(data) % width]


class _ColumnIndex:
    """Two parallel integer columns kept in memory and persisted as fixed-width entries.

    The state and file handling both indexes share; a subclass names its entry struct (whose
    fields are the two columns, in order), the columns' array typecodes, and how it loads.
    """

    __slots__ = ("_cols", "_ops", "_written", "base_offset", "path")

    _ENTRY: ClassVar[struct.Struct]
    _TYPECODES: ClassVar[tuple[str, str]]

    def __init__(
        self, path: Path, base_offset: int, *, load: bool = False, ops: FileOps = OS_FILE_OPS
    ) -> None:
        self.path = path
        self.base_offset = base_offset
        self._ops = ops
        self._cols: tuple[array[int], array[int]] | None = None
        self._written = 0  # entries already in the file
        if load:
            self._load()

    def _load(self) -> tuple[array[int], array[int]]:
        raise NotImplementedError

    def unload(self) -> None:
        """Drop the in-memory copy of a persisted, closed segment's index."""
        if self._cols is not None and self._written == len(self._cols[0]):
            self._cols = None

    def reset(self) -> None:
        """Forget every entry, in memory and on disk (before a rebuild)."""
        self._cols = (array(self._TYPECODES[0]), array(self._TYPECODES[1]))
        self._written = 0
        os.close(self._ops.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))

    def __len__(self) -> int:
        return len(self._load()[0])

    def persist(self, *, fsync: bool = False) -> None:
        """Write entries not yet on disk (and fsync the file when asked).

        A failed write (a full disk) cuts the file back to the entries it held before, so a later
        persist appends the same entries again instead of after a torn one.
        """
        cols = self._cols
        if cols is None:
            if fsync and self.path.exists():
                _fsync_path(self.path, self._ops)
            return
        first, second = cols
        n = len(first)
        if n > self._written or fsync or not self.path.exists():
            pack = self._ENTRY.pack
            buf = b"".join(pack(first[i], second[i]) for i in range(self._written, n))
            _append_file(self.path, buf, self._written * self._ENTRY.size, fsync=fsync, ops=self._ops)
            self._written = n

    def _keep_first(self, keep: int) -> None:
        """Keep only the first ``keep`` entries, in memory and on disk."""
        first, second = self._load()
        if keep >= len(first):
            return
        self._cols = (first[:keep], second[:keep])
        self._written = min(self._written, keep)
        _truncate_file(self.path, self._written * self._ENTRY.size, self._ops)


class OffsetIndex(_ColumnIndex):
    """Relative offset → position of a batch, for one segment."""

    __slots__ = ("max_entries",)

    _ENTRY = OFFSET_ENTRY
    _TYPECODES = ("I", "I")

    def __init__(
        self,
        path: Path,
        base_offset: int,
        max_entries: int,
        *,
        load: bool = False,
        ops: FileOps = OS_FILE_OPS,
    ) -> None:
        self.max_entries = max_entries
        super().__init__(path, base_offset, load=load, ops=ops)

    # -- loading ------------------------------------------------------------------------------

    def _load(self) -> tuple[array[int], array[int]]:
        cols = self._cols
        if cols is not None:
            return cols
        raw = array("I", _read_column_pairs(self.path, OFFSET_ENTRY.size))
        if _SWAP:
            raw.byteswap()
        cols = (raw[0::2], raw[1::2])
        self._written = len(cols[0])
        self._cols = cols
        return cols

    # -- queries ------------------------------------------------------------------------------

    @property
    def is_full(self) -> bool:
        return len(self._load()[0]) >= self.max_entries

    def lookup(self, offset: int) -> tuple[int, int]:
        """(offset, position) of the last entry with offset <= ``offset``; (base, 0) if none."""
        rel_col, pos_col = self._load()
        i = bisect_right(rel_col, offset - self.base_offset) - 1
        if i < 0:
            return self.base_offset, 0
        return self.base_offset + rel_col[i], pos_col[i]

    def last_entry(self) -> tuple[int, int]:
        """The last entry, or (base, 0) when the index is empty."""
        rel_col, pos_col = self._load()
        n = len(rel_col)
        if n == 0:
            return self.base_offset, 0
        return self.base_offset + rel_col[n - 1], pos_col[n - 1]

    def is_consistent(self, log_size: int) -> bool:
        """Cheap check of the file: whole entries, increasing, last position inside the log."""
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return False
        if size % OFFSET_ENTRY.size:
            return False
        if size == 0:
            return True
        with open(self.path, "rb") as f:
            if size >= 2 * OFFSET_ENTRY.size:
                f.seek(size - 2 * OFFSET_ENTRY.size)
                r1, p1, r2, p2 = (int(x) for x in struct.unpack(">IIII", f.read(16)))
                return r1 < r2 and p1 < p2 < log_size
            _r, p2 = (int(x) for x in OFFSET_ENTRY.unpack(f.read(8)))
            return p2 < log_size

    # -- writes -------------------------------------------------------------------------------

    def append(self, offset: int, position: int) -> None:
        rel_col, pos_col = self._load()
        rel = offset - self.base_offset
        if rel_col and rel <= rel_col[-1]:
            return
        pos_col.append(position)
        rel_col.append(rel)

    def truncate_to_position(self, position: int) -> None:
        """Drop entries pointing at or past ``position``."""
        self._keep_first(bisect_left(self._load()[1], position))


class TimeIndex(_ColumnIndex):
    """Timestamp → relative offset, for one segment (entries strictly increasing in both)."""

    __slots__ = ()

    _ENTRY = TIME_ENTRY
    _TYPECODES = ("q", "I")

    def _load(self) -> tuple[array[int], array[int]]:
        cols = self._cols
        if cols is not None:
            return cols
        data = _read_column_pairs(self.path, TIME_ENTRY.size)
        ts_col: array[int] = array("q")
        rel_col: array[int] = array("I")
        for ts, rel in TIME_ENTRY.iter_unpack(data):
            if (ts_col and ts <= ts_col[-1]) or (rel_col and rel <= rel_col[-1]):
                break  # not increasing: keep the consistent prefix only
            rel_col.append(rel)
            ts_col.append(ts)
        self._written = len(data) // TIME_ENTRY.size
        if len(ts_col) != self._written:
            self._written = len(ts_col)
            _truncate_file(self.path, self._written * TIME_ENTRY.size, self._ops)
        cols = (ts_col, rel_col)
        self._cols = cols
        return cols

    def is_consistent(self) -> bool:
        """Cheap check of the file: present and made of whole entries."""
        try:
            return os.stat(self.path).st_size % TIME_ENTRY.size == 0
        except FileNotFoundError:
            return False

    def last_entry(self) -> tuple[int, int] | None:
        """(timestamp, offset) of the last entry, read from the file's tail when not loaded."""
        cols = self._cols
        if cols is None:
            try:
                size = os.stat(self.path).st_size
            except FileNotFoundError:
                return None
            size -= size % TIME_ENTRY.size
            if size == 0:
                return None
            with open(self.path, "rb") as f:
                f.seek(size - TIME_ENTRY.size)
                ts, rel = TIME_ENTRY.unpack(f.read(TIME_ENTRY.size))
            return ts, self.base_offset + rel
        ts_col, rel_col = cols
        n = len(ts_col)
        if n == 0:
            return None
        return ts_col[n - 1], self.base_offset + rel_col[n - 1]

    def scan_start(self, timestamp: int) -> int:
        """An offset from which to scan for the first batch with max-timestamp >= ``timestamp``.

        Every batch up to and including the returned entry's batch has timestamps below the
        target, so scanning from it (inclusive) never skips the answer.
        """
        ts_col, rel_col = self._load()
        i = bisect_left(ts_col, timestamp) - 1
        if i < 0:
            return self.base_offset
        return self.base_offset + rel_col[i]

    def append(self, timestamp: int, offset: int) -> None:
        ts_col, rel_col = self._load()
        rel = offset - self.base_offset
        if ts_col and (timestamp <= ts_col[-1] or rel <= rel_col[-1]):
            return
        rel_col.append(rel)
        ts_col.append(timestamp)

    def truncate_to_offset(self, offset: int) -> None:
        """Drop entries for batches at or past ``offset``."""
        self._keep_first(bisect_left(self._load()[1], offset - self.base_offset))


def _append_file(path: Path, data: bytes, known_size: int, *, fsync: bool, ops: FileOps) -> None:
    fd = ops.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        try:
            write_all(ops, fd, data)
        except OSError:
            ops.ftruncate(fd, known_size)  # no torn entry stays behind
            raise
        if fsync:
            ops.fsync(fd)
    finally:
        os.close(fd)


def _truncate_file(path: Path, size: int, ops: FileOps) -> None:
    fd = ops.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        ops.ftruncate(fd, size)
    finally:
        os.close(fd)


def _fsync_path(path: Path, ops: FileOps) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        ops.fsync(fd)
    finally:
        os.close(fd)
