"""Group commit: many threads waiting for durability share one fsync.

``GroupCommit.flush(wanted, fsync_to_end)`` returns once every offset below ``wanted`` is durable.
A caller that finds no fsync in flight becomes the leader: it runs ``fsync_to_end`` (which captures
the log end at that moment, fsyncs, and says up to where), then publishes the new durable offset and
wakes everyone waiting on the condition variable. Callers that arrive while an fsync is in flight
wait; when it finishes they are either served (their batches were written before it began) or one
of them leads the next fsync for all the rest. N concurrent ``acks=all`` producers therefore cost
about two fsyncs, not N.

A truncation bumps a generation number: an fsync that started before it must not publish an offset
that now names different (newer, unflushed) bytes.

``BackgroundFlusher`` runs flushes off the writer's thread (for rolled segments, so an append never
waits for a whole segment's fsync): one short-lived thread at a time, started on demand.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from storage.errors import LogClosedError, LogReadOnlyError, StorageError

__all__ = ["BackgroundFlusher", "GroupCommit"]

log = logging.getLogger(__name__)


class GroupCommit:
    """The durable offset of one log and the protocol that advances it."""

    def __init__(self, durable_offset: int = 0) -> None:
        self._cond = threading.Condition()
        self._running = False
        self._durable = durable_offset
        self._generation = 0

    @property
    def durable_offset(self) -> int:
        """Every offset below this one is on disk."""
        return self._durable

    @property
    def generation(self) -> int:
        return self._generation

    def flush(self, wanted: int, fsync_to_end: Callable[[], tuple[int, int]]) -> None:
        """Return once ``durable_offset >= wanted``, leading an fsync when none is in flight.

        ``fsync_to_end`` returns (offset now durable, the generation it read before fsyncing).
        """
        cond = self._cond
        with cond:
            while self._durable < wanted and self._running:
                cond.wait()
            if self._durable >= wanted:
                return
            self._running = True
        target, generation = self._durable, -1
        try:
            target, generation = fsync_to_end()
        finally:
            with cond:
                if generation == self._generation and target > self._durable:
                    self._durable = target
                self._running = False
                cond.notify_all()

    def reset(self, durable_offset: int) -> None:
        """Start over at ``durable_offset`` (the log was re-opened from disk after a failed fsync)."""
        with self._cond:
            self._generation += 1
            self._durable = durable_offset
            self._cond.notify_all()

    def truncated(self, end: int) -> None:
        """The log was cut at ``end``: nothing at or past it is durable any more."""
        with self._cond:
            self._generation += 1
            self._durable = min(self._durable, end)


class BackgroundFlusher:
    """Runs ``flush(up_to)`` in a background thread for the highest offset scheduled."""

    def __init__(self, name: str, flush: Callable[[int], None]) -> None:
        self._name = name
        self._flush = flush
        self._lock = threading.Lock()
        self._pending: int | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    def schedule(self, up_to: int) -> None:
        with self._lock:
            if self._stopped:
                return
            self._pending = max(up_to, self._pending or 0)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                up_to, self._pending = self._pending, None
                if up_to is None or self._stopped:
                    self._thread = None
                    return
            try:
                self._flush(up_to)
            except LogClosedError:
                pass
            except LogReadOnlyError as exc:
                log.error("background flush of %s failed: %s", self._name, exc)
            except (OSError, StorageError):
                log.exception("background flush of %s failed", self._name)

    def wait_idle(self) -> None:
        """Wait until nothing is scheduled or running."""
        while True:
            with self._lock:
                thread = self._thread
            if thread is None:
                return
            thread.join()
