"""What a processor sees while it runs: the record, the task's stores, stream time and punctuation.

One ``TaskContext`` per task (a sub-topology on one partition). The task driver (the test driver or
the runtime) sets the current record's coordinates before it hands the record to a source node, and
collects what sink nodes emit; nothing here does I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tidelog.streams._stores import Store

__all__ = ["Emitted", "ProcessorContext", "PunctuationType", "StreamRecord", "TaskContext", "TaskId"]

Headers = tuple[tuple[str, Any], ...]


class StreamRecord(NamedTuple):
    """A record flowing through a topology; ``old`` is a table's previous value for its key."""

    key: Any
    value: Any
    timestamp: int
    headers: Headers = ()
    old: Any = None


class TaskId(NamedTuple):
    """A task: one sub-topology on one partition number of its (co-partitioned) inputs."""

    subtopology: int
    partition: int

    def __str__(self) -> str:
        return f"{self.subtopology}_{self.partition}"


class Emitted(NamedTuple):
    """A record a sink node wants produced; ``source`` is the input (topic, partition, offset, seq)."""

    topic: str
    key: Any
    value: Any
    timestamp: int
    headers: Headers
    source: tuple[str, int, int, int]


class PunctuationType(enum.Enum):
    """When a punctuator fires: on stream time (record timestamps) or on the wall clock."""

    STREAM_TIME = "stream_time"
    WALL_CLOCK_TIME = "wall_clock_time"


@dataclass(slots=True)
class _Punctuator:
    interval: int
    kind: PunctuationType
    callback: Callable[[int], None]
    next_due: int | None = None


@dataclass(slots=True)
class TaskContext:
    """The state of one task while it processes (see the module docstring)."""

    application_id: str
    task: TaskId
    stores: dict[str, Store]
    stream_time: int = -1
    topic: str = ""
    partition: int = -1
    offset: int = -1
    timestamp: int = -1
    headers: Headers = ()
    emitted: list[Emitted] = field(default_factory=list)
    metrics: dict[str, int] = field(default_factory=dict)
    punctuators: list[_Punctuator] = field(default_factory=list)
    #: per-node state of this task (a Processor API instance, say), by node name
    node_state: dict[str, Any] = field(default_factory=dict)
    _seq: int = 0

    def begin(self, topic: str, partition: int, offset: int, timestamp: int, headers: Headers) -> None:
        """Make ``(topic, partition, offset)`` the current input record and advance stream time."""
        self.topic, self.partition, self.offset, self.timestamp, self.headers = (
            topic,
            partition,
            offset,
            timestamp,
            headers,
        )
        self._seq = 0
        if timestamp > self.stream_time:
            self.stream_time = timestamp

    def emit(self, topic: str, record: StreamRecord) -> None:
        source = (self.topic, self.partition, self.offset, self._seq)
        self._seq += 1
        self.emitted.append(
            Emitted(topic, record.key, record.value, record.timestamp, record.headers, source)
        )

    def count(self, metric: str, n: int = 1) -> None:
        self.metrics[metric] = self.metrics.get(metric, 0) + n

    def store(self, name: str) -> Store:
        try:
            return self.stores[name]
        except KeyError:
            raise KeyError(f"task {self.task} has no store {name!r}: name it in the topology") from None

    def schedule(self, interval_ms: int, kind: PunctuationType, callback: Callable[[int], None]) -> None:
        if interval_ms <= 0:
            raise ValueError("a punctuation interval must be positive")
        self.punctuators.append(_Punctuator(interval_ms, kind, callback))

    def punctuate(self, kind: PunctuationType, now: int) -> None:
        """Run every punctuator of ``kind`` that is due at ``now`` (stream time or wall-clock ms)."""
        if now < 0:
            return
        for p in self.punctuators:
            if p.kind is not kind:
                continue
            if p.next_due is None:
                p.next_due = now + p.interval
                continue
            if now >= p.next_due:
                p.callback(now)
                # Kafka skips missed intervals rather than firing once per interval missed.
                p.next_due = now + p.interval - (now - p.next_due) % p.interval


class ProcessorContext:
    """The Processor API's view of a task (Kafka's ``ProcessorContext``)."""

    def __init__(self, task: TaskContext, forward: Callable[[StreamRecord], None]) -> None:
        self._task = task
        self._forward = forward

    @property
    def application_id(self) -> str:
        return self._task.application_id

    @property
    def task_id(self) -> TaskId:
        return self._task.task

    @property
    def topic(self) -> str:
        return self._task.topic

    @property
    def partition(self) -> int:
        return self._task.partition

    @property
    def offset(self) -> int:
        return self._task.offset

    @property
    def timestamp(self) -> int:
        return self._task.timestamp

    @property
    def headers(self) -> Headers:
        return self._task.headers

    @property
    def stream_time(self) -> int:
        return self._task.stream_time

    def forward(
        self, key: Any, value: Any, timestamp: int | None = None, headers: Headers | None = None
    ) -> None:
        ts = self._task.timestamp if timestamp is None else timestamp
        self._forward(StreamRecord(key, value, ts, self._task.headers if headers is None else headers))

    def get_store(self, name: str) -> Store:
        return self._task.store(name)

    def schedule(self, interval_ms: int, kind: PunctuationType, callback: Callable[[int], None]) -> None:
        """Call ``callback(time)`` every ``interval_ms`` of stream time or of wall-clock time."""
        self._task.schedule(interval_ms, kind, callback)
