"""StorageHealth: whether this broker's disks take writes, for ``/readyz`` and the cluster.

A write that fails for want of space or with an I/O error (a partition append, a catalog commit
answered SQLITE_FULL or PostgreSQL's disk_full) marks the broker's storage as failing; a partition
whose fsync failed is read-only until it is re-validated. While either holds, ``ready`` is False:
``/readyz`` answers 503 so a load balancer sends produce traffic elsewhere, and in a cluster the
broker gives up its leaderships and leaves its ISRs (Kafka's offline log directory, KIP-112).

Nobody has to retry for the broker to recover: while storage is failing the Broker runs ``probe``
every second (a ``_PROBE_BYTES`` file written, fsynced and removed in the data directory and in the
SQLite catalog's directory); once it succeeds the failure is cleared and read-only partitions are
re-validated. A successful append clears the failure too.

Thread safety: the methods are called on the event loop and from worker threads; each is a few
attribute updates under one lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path

from storage.fileops import OS_FILE_OPS, FileOps, write_all

__all__ = ["PROBE_FILE", "StorageHealth"]

logger = logging.getLogger("tidelog.storage")

PROBE_FILE = ".write-probe"
_PROBE_BYTES = 1 << 20  # room for a typical batch: a probe that fits but a produce that does not flaps


class StorageHealth:
    """The failing state of the data directory and the catalog, and the read-only partitions."""

    def __init__(self, directories: list[Path], file_ops: FileOps = OS_FILE_OPS) -> None:
        #: The data directory first, then the SQLite catalog's directory when it is elsewhere.
        self.directories = list(dict.fromkeys(directories))
        self._ops = file_ops
        self._lock = threading.Lock()
        self._failure: str | None = None
        self._read_only: dict[tuple[str, int], str] = {}

    # -- state ------------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """True while writes work: no failing write since the last success, no read-only partition."""
        return self._failure is None and not self._read_only

    @property
    def failing(self) -> bool:
        """True while storage needs probing (a write failed, or a partition is read-only)."""
        return not self.ready

    def reason(self) -> str:
        """Why writes fail, for ``/readyz`` and the log ("" while ready)."""
        with self._lock:
            parts = [] if self._failure is None else [self._failure]
            if self._read_only:
                names = ", ".join(f"{t}-{p}" for t, p in sorted(self._read_only)[:5])
                more = f" and {len(self._read_only) - 5} more" if len(self._read_only) > 5 else ""
                parts.append(f"read-only after a failed fsync until re-validated: {names}{more}")
            return "; ".join(parts)

    def read_only_partitions(self) -> list[tuple[str, int]]:
        with self._lock:
            return sorted(self._read_only)

    # -- events -----------------------------------------------------------------------------------

    def write_failed(self, where: str, detail: str) -> None:
        """A write to ``where`` (``"the data directory"``, ``"the catalog"``) failed."""
        with self._lock:
            first = self._failure is None
            self._failure = f"writes to {where} fail: {detail}"
        if first:
            logger.error("storage is failing (not ready until writes succeed again): %s: %s", where, detail)

    def write_succeeded(self) -> None:
        if self._failure is None:
            return
        with self._lock:
            was, self._failure = self._failure, None
        if was is not None:
            logger.warning("storage works again (was: %s)", was)

    def partition_read_only(self, topic: str, partition: int, detail: str) -> None:
        with self._lock:
            self._read_only[(topic, partition)] = detail

    def partition_writable(self, topic: str, partition: int) -> None:
        with self._lock:
            self._read_only.pop((topic, partition), None)

    def forget_topic(self, topic: str) -> None:
        """A deleted topic's partitions no longer count."""
        with self._lock:
            for key in [k for k in self._read_only if k[0] == topic]:
                del self._read_only[key]

    # -- probe --------------------------------------------------------------------------------------

    def probe(self) -> bool:
        """Write, fsync and remove a probe file in every directory; True when all of it worked."""
        for directory in self.directories:
            path = directory / PROBE_FILE
            try:
                fd = self._ops.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    write_all(self._ops, fd, b"\0" * _PROBE_BYTES)
                    self._ops.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                logger.debug("storage probe in %s failed: %s", directory, exc)
                return False
            finally:
                with contextlib.suppress(OSError):
                    path.unlink()
        return True
