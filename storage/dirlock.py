"""An exclusive lock on a directory: ``<dir>/.lock`` held with ``flock`` (Kafka's log-directory lock).

The broker takes it on its data directory before anything else at start, so two broker processes
can never share one data directory, even one without any partition yet (each partition log also
locks its own directory). The lock is tied to the open file description: it goes away when the
holder releases it or its process dies, so a crashed broker never leaves a stale lock behind. The
file holds the holder's process id, for the message a refused second broker prints.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from storage.errors import StorageError

__all__ = ["LOCK_FILE", "DirectoryInUseError", "DirectoryLock"]

LOCK_FILE = ".lock"


class DirectoryInUseError(StorageError):
    """Another process (or another holder in this one) has the directory locked."""


class DirectoryLock:
    """A held lock on one directory; ``release`` (or the process ending) lets it go."""

    __slots__ = ("_fd", "directory")

    def __init__(self, directory: Path, fd: int) -> None:
        self.directory = directory
        self._fd = fd

    @classmethod
    def acquire(cls, directory: Path) -> DirectoryLock:
        """Lock ``directory`` (created if missing), or raise ``DirectoryInUseError`` at once."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            with contextlib.suppress(OSError, ValueError):
                pid = int(os.pread(fd, 32, 0).decode("ascii").strip() or "0")
                holder = f" (process {pid})" if pid > 0 else ""
            os.close(fd)
            raise DirectoryInUseError(
                f"the data directory {directory.resolve()} is in use by another broker{holder}; "
                "two brokers cannot share one data directory"
            ) from None
        with contextlib.suppress(OSError):  # the pid is a courtesy: a full disk must not refuse the start
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        return cls(directory, fd)

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def release(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)  # closing the only descriptor of the open file drops the flock
