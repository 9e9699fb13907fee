"""A ``FileOps`` that fails on command: the storage fault-injection seam of the tests.

``FaultyFileOps`` counts every ``write``/``pwrite`` the log makes and can fail the n-th one with
ENOSPC or EIO, or write only part of the buffer there (a full disk typically writes what fits and
fails the next call). ``full`` makes every write fail with ENOSPC until it is cleared, ``fsync_error``
every fsync, ``ftruncate_error`` every ftruncate. Everything is deterministic: the same sequence of
operations meets the same fault at the same call.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from storage.fileops import FileOps

__all__ = ["EIO", "ENOSPC", "SHORT_ONLY", "SHORT_THEN_ENOSPC", "FaultyFileOps", "WriteFault"]


@dataclass(frozen=True, slots=True)
class WriteFault:
    """What happens at the faulty write: ``errno`` raised, or a short write of ``short`` bytes
    followed (with ``then_full``) by ENOSPC on every later write."""

    errno: int | None = None
    short: int | None = None
    then_full: bool = False


ENOSPC = WriteFault(errno=errno.ENOSPC)
EIO = WriteFault(errno=errno.EIO)
SHORT_THEN_ENOSPC = WriteFault(short=7, then_full=True)
SHORT_ONLY = WriteFault(short=7)


class FaultyFileOps(FileOps):
    __slots__ = ("_fault_at", "fault", "fsync_error", "fsyncs", "ftruncate_error", "full", "writes")

    def __init__(self) -> None:
        self.writes = 0  # write and pwrite calls so far
        self.fsyncs = 0
        self._fault_at = -1
        self.fault = WriteFault()
        self.full = False
        self.fsync_error: int | None = None
        self.ftruncate_error: int | None = None

    def fail_write(self, index: int, fault: WriteFault) -> None:
        """Apply ``fault`` at the ``index``-th write from now (0: the next one)."""
        self._fault_at = self.writes + index
        self.fault = fault

    def heal(self) -> None:
        """Space is back and the disk works again."""
        self._fault_at = -1
        self.full = False
        self.fsync_error = None
        self.ftruncate_error = None

    def _before_write(self, size: int) -> int | None:
        """None to write everything, or how many bytes to write; raises for an error."""
        call = self.writes
        self.writes += 1
        if self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if call != self._fault_at:
            return None
        fault = self.fault
        if fault.errno is not None:
            raise OSError(fault.errno, os.strerror(fault.errno))
        if fault.then_full:
            self.full = True
        return min(size - 1, fault.short or 0) if size > 1 else None

    def write(self, fd: int, data: memoryview) -> int:
        limit = self._before_write(len(data))
        return os.write(fd, data if limit is None else data[:limit])

    def pwrite(self, fd: int, data: memoryview, offset: int) -> int:
        limit = self._before_write(len(data))
        return os.pwrite(fd, data if limit is None else data[:limit], offset)

    def fsync(self, fd: int) -> None:
        self.fsyncs += 1
        if self.fsync_error is not None:
            raise OSError(self.fsync_error, os.strerror(self.fsync_error))
        os.fsync(fd)

    def ftruncate(self, fd: int, length: int) -> None:
        if self.ftruncate_error is not None:
            raise OSError(self.ftruncate_error, os.strerror(self.ftruncate_error))
        os.ftruncate(fd, length)
