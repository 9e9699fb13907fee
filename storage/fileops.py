"""The system calls of the log's write path, as one object handed to the log at construction.

``PartitionLog.open(..., file_ops=...)`` passes it to every segment, index and checkpoint of the
partition, so every byte an append, a roll or a flush writes goes through ``FileOps.write`` and
every fsync through ``FileOps.fsync``. The default, ``OS_FILE_OPS``, is the ``os`` module itself; a
test hands a subclass that fails the n-th call with ENOSPC or EIO, or writes only part of a buffer
(``tests/storage/faults.py``), which is how the engine's behaviour on a full or failing disk is
tested deterministically on any machine.

Reads (``os.pread``, index loads) do not go through it: a read cannot leave the log changed.
"""

from __future__ import annotations

import errno
import os

__all__ = ["OS_FILE_OPS", "FileOps", "is_out_of_space", "write_all"]


class FileOps:
    """``os.open``/``write``/``pwrite``/``fsync``/``ftruncate``/``replace``, overridable one by one."""

    __slots__ = ()

    def open(self, path: os.PathLike[str] | str, flags: int, mode: int = 0o644) -> int:
        return os.open(path, flags, mode)

    def write(self, fd: int, data: memoryview) -> int:
        """Write some of ``data``; returns how many bytes were written (a short write is allowed)."""
        return os.write(fd, data)

    def pwrite(self, fd: int, data: memoryview, offset: int) -> int:
        return os.pwrite(fd, data, offset)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def ftruncate(self, fd: int, length: int) -> None:
        os.ftruncate(fd, length)

    def replace(self, src: os.PathLike[str] | str, dst: os.PathLike[str] | str) -> None:
        os.replace(src, dst)


OS_FILE_OPS = FileOps()


def write_all(ops: FileOps, fd: int, data: bytes) -> None:
    """Write every byte of ``data``, looping over short writes (a full disk often writes part of
    a buffer and fails the next call with ENOSPC); raises the ``OSError`` of the failing call."""
    view = memoryview(data)
    while view:
        written = ops.write(fd, view)
        if written <= 0:  # a write that makes no progress: the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def is_out_of_space(exc: OSError) -> bool:
    """ENOSPC or EDQUOT: the file system (or the user's quota) has no room; freeing space cures it."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)
