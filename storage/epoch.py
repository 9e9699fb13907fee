"""Leader-epoch bookkeeping: which leader epoch started at which offset (Kafka's
LeaderEpochFileCache, KIP-101 / KIP-279).

File ``leader-epoch-checkpoint`` (text, Kafka's format)::

    0                   version
    <n>                 number of entries
    <epoch> <offset>    n lines, epochs and start offsets strictly increasing

It is rewritten atomically (temporary file, fsync, rename, directory fsync) on every change.
"""

from __future__ import annotations

import logging
from pathlib import Path

from storage.checkpoint import write_atomic
from storage.fileops import OS_FILE_OPS, FileOps

__all__ = ["UNDEFINED_EPOCH", "UNDEFINED_EPOCH_OFFSET", "LeaderEpochCache"]

log = logging.getLogger(__name__)

UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1
FILE_NAME = "leader-epoch-checkpoint"


class LeaderEpochCache:
    """Epoch → start offset entries, persisted in ``leader-epoch-checkpoint``."""

    def __init__(self, directory: Path, ops: FileOps = OS_FILE_OPS) -> None:
        self.path = directory / FILE_NAME
        self._ops = ops
        self.entries: list[tuple[int, int]] = self._read()

    def _read(self) -> list[tuple[int, int]]:
        try:
            lines = self.path.read_text("ascii").split("\n")
        except FileNotFoundError:
            return []
        try:
            if lines[0].strip() != "0":
                raise ValueError(f"unknown version {lines[0]!r}")
            n = int(lines[1])
            entries = []
            for line in lines[2 : 2 + n]:
                epoch, offset = line.split()
                entries.append((int(epoch), int(offset)))
            if len(entries) != n:
                raise ValueError("fewer entries than announced")
            return entries
        except (ValueError, IndexError) as exc:
            log.warning("ignoring corrupt leader-epoch checkpoint %s: %s", self.path, exc)
            return []

    def _write(self) -> None:
        body = "0\n" + f"{len(self.entries)}\n" + "".join(f"{e} {o}\n" for e, o in self.entries)
        write_atomic(self.path, body.encode("ascii"), ops=self._ops)

    @property
    def latest_epoch(self) -> int:
        return self.entries[-1][0] if self.entries else UNDEFINED_EPOCH

    def assign(self, epoch: int, start_offset: int) -> None:
        """Record that ``epoch`` starts at ``start_offset`` (ignored if not newer than the latest)."""
        if self.entries:
            last_epoch, last_offset = self.entries[-1]
            if epoch < last_epoch:
                raise ValueError(f"leader epoch {epoch} is older than the latest epoch {last_epoch}")
            if epoch == last_epoch:
                return
            if start_offset < last_offset:
                # a new epoch starting below an older one: the older entries are stale (Kafka
                # removes them too when a follower truncates)
                self.entries = [(e, o) for e, o in self.entries if o < start_offset]
        self.entries.append((epoch, start_offset))
        self._write()

    def end_offset_for(self, epoch: int, log_end_offset: int) -> tuple[int, int]:
        """(epoch, end offset) as Kafka's OffsetsForLeaderEpoch answers (LeaderEpochFileCache).

        The latest epoch ends at the log end; an older epoch ends where the next higher epoch
        starts, reported under the largest known epoch <= the requested one (or the requested
        epoch itself when it precedes every entry); an unknown newer epoch is (-1, -1).
        """
        if epoch == UNDEFINED_EPOCH or not self.entries:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if epoch == self.entries[-1][0]:
            return epoch, log_end_offset
        floor: int | None = None
        for e, o in self.entries:
            if e > epoch:
                return (epoch if floor is None else floor), o
            floor = e
        return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET

    def clear(self) -> None:
        """Forget every epoch (the log was emptied and restarted at another offset)."""
        if self.entries:
            self.entries = []
            self._write()

    def truncate_from_end(self, end_offset: int) -> None:
        """Drop epochs starting at or after ``end_offset`` (after the log is truncated there)."""
        kept = [(e, o) for e, o in self.entries if o < end_offset]
        if kept != self.entries:
            self.entries = kept
            self._write()

    def truncate_from_start(self, start_offset: int) -> None:
        """Forget epochs that ended before ``start_offset``; clamp the first one to it."""
        if not self.entries or self.entries[0][1] >= start_offset:
            return
        keep = [(e, o) for e, o in self.entries if o <= start_offset]
        later = [(e, o) for e, o in self.entries if o > start_offset]
        first = keep[-1][0]
        self.entries = [(first, start_offset), *later]
        self._write()
