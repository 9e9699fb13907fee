"""A stream task: one sub-topology on one partition, fed records one at a time. Pure code.

The task owns its stores and its ``TaskContext``; ``process`` runs one input record through the
sub-topology, then lets time-driven nodes (window purges, suppression, join expiry) and stream-time
punctuators act. What the record produced waits in ``ctx.emitted`` and in the stores' changed keys
until the driver takes it with ``take_output`` and ``take_changes``.

A record a user function cannot handle follows the application's ``processing_errors`` strategy,
the connectors' three: ``fail`` (raise, the default), ``skip`` (count ``skipped-records`` and go on),
``dead-letter`` (hand it back as a ``DeadLetter`` for the driver to write to the dead-letter topic,
with the error as context). Whatever the record had already changed before the error stays, as in
Kafka Streams.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any, Literal

from tidelog.streams._context import Emitted, Headers, PunctuationType, StreamRecord, TaskContext, TaskId
from tidelog.streams._nodes import Node
from tidelog.streams._stores import Store
from tidelog.streams._topology import SubTopology

__all__ = ["DeadLetter", "ProcessingError", "ProcessingErrors", "StreamTask", "next_input"]

ProcessingErrors = Literal["fail", "skip", "dead-letter"]


class ProcessingError(RuntimeError):
    """A user function failed on a record under ``processing_errors="fail"``."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that failed, with where it came from and why."""

    topic: str
    partition: int
    offset: int
    key: Any
    value: Any
    timestamp: int
    headers: Headers
    error: str
    stacktrace: str

    def context_headers(self) -> list[tuple[str, str]]:
        """Kafka Connect's ``__connect.errors.*`` context headers, named for streams."""
        return [
            ("__streams.errors.topic", self.topic),
            ("__streams.errors.partition", str(self.partition)),
            ("__streams.errors.offset", str(self.offset)),
            ("__streams.errors.exception.message", self.error),
            ("__streams.errors.exception.stacktrace", self.stacktrace[-4000:]),
        ]


class StreamTask:
    """One task (see the module docstring)."""

    def __init__(
        self,
        application_id: str,
        task_id: TaskId,
        sub: SubTopology,
        *,
        processing_errors: ProcessingErrors = "fail",
        stores: dict[str, Store] | None = None,
    ) -> None:
        self.id = task_id
        self.sub = sub
        self.processing_errors = processing_errors
        self.stores: dict[str, Store] = (
            stores if stores is not None else {s.name: s.create() for s in sub.stores}
        )
        self.ctx = TaskContext(application_id, task_id, self.stores)
        self._timed = [node for node in sub.nodes if type(node).on_stream_time is not Node.on_stream_time]
        self._initialised = False
        self.dead_letters: list[DeadLetter] = []

    def initialise(self) -> None:
        """Start the nodes (after the stores were restored)."""
        if self._initialised:
            return
        for node in self.sub.nodes:
            node.init(self.ctx)
        self._initialised = True

    def process(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: Any,
        value: Any,
        timestamp: int,
        headers: Headers = (),
    ) -> None:
        """Run one input record through the sub-topology."""
        self.initialise()
        source = self.sub.sources[topic]
        try:
            ts = source.timestamp_of(key, value, timestamp)
            self.ctx.begin(topic, partition, offset, ts, headers)
            source.process(self.ctx, StreamRecord(key, value, ts, headers))
        except Exception as error:
            self._failed(topic, partition, offset, key, value, timestamp, headers, error)
        self._after_record()

    def _failed(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: Any,
        value: Any,
        timestamp: int,
        headers: Headers,
        error: Exception,
    ) -> None:
        if self.processing_errors == "fail":
            raise ProcessingError(
                f"task {self.id} failed on {topic}-{partition}@{offset}: {type(error).__name__}: {error}"
            ) from error
        self.ctx.count("skipped-records")
        if self.processing_errors == "dead-letter":
            self.dead_letters.append(
                DeadLetter(
                    topic,
                    partition,
                    offset,
                    key,
                    value,
                    timestamp,
                    headers,
                    f"{type(error).__name__}: {error}",
                    traceback.format_exc(),
                )
            )

    def _after_record(self) -> None:
        for node in self._timed:
            node.on_stream_time(self.ctx)
        self.ctx.punctuate(PunctuationType.STREAM_TIME, self.ctx.stream_time)

    def punctuate_wall_clock(self, now_ms: int) -> None:
        self.initialise()
        self.ctx.punctuate(PunctuationType.WALL_CLOCK_TIME, now_ms)

    def take_output(self) -> list[Emitted]:
        out = self.ctx.emitted
        self.ctx.emitted = []
        return out

    def take_dead_letters(self) -> list[DeadLetter]:
        out = self.dead_letters
        self.dead_letters = []
        return out

    def take_changes(self) -> dict[str, list[tuple[str, Any]]]:
        """Changed keys per store since the last call (what goes to the changelogs)."""
        return {name: changes for name, store in self.stores.items() if (changes := store.drain_changes())}

    def close(self) -> None:
        if self._initialised:
            for node in self.sub.nodes:
                node.close(self.ctx)
        self._initialised = False


def next_input(
    heads: dict[Any, int], inputs: int, *, idle_since: float | None, now: float, max_idle_s: float
) -> tuple[Any | None, float | None]:
    """Which input a task takes its next record from, and the new start of its idle wait.

    ``heads`` maps each input partition with buffered records to its first record's timestamp;
    ``inputs`` is how many input partitions the task has. The oldest head goes first (ties by
    partition), so records of co-partitioned inputs are processed in timestamp order. While an
    input has nothing buffered, the task waits up to ``max_idle_s`` for it (Kafka's
    ``max.task.idle.ms``, KIP-353/695) before going on without it; ``(None, idle_since)`` means
    wait. The wait starts again once every input has records.
    """
    if not heads:
        return None, None
    if len(heads) >= inputs:
        idle_since = None
    elif max_idle_s > 0:
        if idle_since is None:
            idle_since = now
        if now - idle_since < max_idle_s:
            return None, idle_since
    chosen = min(heads, key=lambda tp: (heads[tp], tp))
    return chosen, idle_since

