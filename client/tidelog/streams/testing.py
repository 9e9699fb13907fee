"""Run a topology without a broker, for unit tests (Kafka Streams' ``TopologyTestDriver``).

>>> app = App("wordcount")                                            # doctest: +SKIP
>>> app.stream("text").flat_map_values(str.split).group_by(lambda k, w: w).count().to_stream().to("counts")
>>> with TopologyTestDriver(app) as driver:
...     driver.create_input_topic("text").pipe_input(None, "a b a")
...     driver.create_output_topic("counts").read_key_values_to_map()
{'a': 2, 'b': 1}

Every topic has one partition; a record piped in is processed at once, and so is every record the
topology writes to one of its own repartition topics, before ``pipe_input`` returns. Windowed keys
come out as ``Windowed(key, Window(start, end))``. Wall-clock punctuation runs on
``advance_wall_clock_time``.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tidelog.streams._context import Headers, TaskId
from tidelog.streams._stores import VersionedStore
from tidelog.streams._task import StreamTask

if TYPE_CHECKING:
    from types import TracebackType

    from tidelog.streams._app import App

__all__ = ["TestInputTopic", "TestOutputTopic", "TestRecord", "TopologyTestDriver"]


@dataclass(frozen=True, slots=True)
class TestRecord:
    key: Any
    value: Any
    timestamp: int
    headers: Headers = ()


class TopologyTestDriver:
    """See the module docstring."""

    __test__ = False  # not a pytest test class

    def __init__(self, app: App, *, start_wall_clock_ms: int = 0) -> None:
        self._app = app
        topology = app.topology
        self._topology = topology
        self._tasks: dict[str, StreamTask] = {}
        self._all_tasks: list[StreamTask] = []
        for sub in topology.subtopologies():
            task = StreamTask(
                topology.application_id, TaskId(sub.id, 0), sub, processing_errors=app.processing_errors
            )
            self._all_tasks.append(task)
            for topic in sub.source_topics:
                self._tasks[topic] = task
        for spec in topology.global_tables.values():
            app.global_stores[spec.store.name] = spec.store.create()
        self._outputs: dict[str, deque[TestRecord]] = {}
        self._offsets: dict[str, itertools.count[int]] = {}
        self._wall_clock = start_wall_clock_ms
        for task in self._all_tasks:
            task.initialise()

    # -- topics -----------------------------------------------------------------------------------

    def create_input_topic(self, topic: str) -> TestInputTopic:
        if topic not in self._tasks and topic not in self._topology.global_tables:
            raise ValueError(f"the topology does not read {topic!r}")
        return TestInputTopic(self, topic)

    def create_output_topic(self, topic: str) -> TestOutputTopic:
        return TestOutputTopic(self._outputs.setdefault(topic, deque()))

    def pipe(self, topic: str, key: Any, value: Any, timestamp: int, headers: Headers = ()) -> None:
        """Process one record of ``topic`` and everything it causes inside the topology."""
        queue: deque[tuple[str, Any, Any, int, Headers]] = deque([(topic, key, value, timestamp, headers)])
        while queue:
            topic, key, value, timestamp, headers = queue.popleft()
            offset = next(self._offsets.setdefault(topic, itertools.count()))
            spec = self._topology.global_tables.get(topic)
            if spec is not None:
                store = self._app.global_stores[spec.store.name]
                assert isinstance(store, VersionedStore)
                store.put(key, value, timestamp)
                continue
            task = self._tasks[topic]
            task.process(topic, 0, offset, key, value, timestamp, headers)
            for letter in task.take_dead_letters():
                dlq = self._app.dead_letter_topic or f"{self._topology.application_id}-dlq"
                headers_out = tuple(letter.headers) + tuple(letter.context_headers())
                self._outputs.setdefault(dlq, deque()).append(
                    TestRecord(letter.key, letter.value, letter.timestamp, headers_out)
                )
            task.take_changes()
            for out in task.take_output():
                self._outputs.setdefault(out.topic, deque()).append(
                    TestRecord(out.key, out.value, out.timestamp, out.headers)
                )
                if out.topic in self._tasks:
                    queue.append((out.topic, out.key, out.value, out.timestamp, out.headers))

    def advance_wall_clock_time(self, ms: int) -> None:
        self._wall_clock += ms
        for task in self._all_tasks:
            task.punctuate_wall_clock(self._wall_clock)
            for out in task.take_output():
                self._outputs.setdefault(out.topic, deque()).append(
                    TestRecord(out.key, out.value, out.timestamp, out.headers)
                )

    # -- state --------------------------------------------------------------------------------------

    def get_store(self, name: str) -> Any:
        """The named store of the task that owns it (or a global store)."""
        if name in self._app.global_stores:
            return self._app.global_stores[name]
        for task in self._all_tasks:
            if name in task.stores:
                return task.stores[name]
        raise KeyError(f"no store {name!r}")

    def metrics(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for task in self._all_tasks:
            for name, value in task.ctx.metrics.items():
                total[name] = total.get(name, 0) + value
        return total

    def close(self) -> None:
        for task in self._all_tasks:
            task.close()

    def __enter__(self) -> TopologyTestDriver:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class TestInputTopic:
    __test__ = False

    def __init__(self, driver: TopologyTestDriver, topic: str) -> None:
        self._driver = driver
        self.topic = topic
        self._clock = 0

    def pipe_input(self, key: Any, value: Any, timestamp: int | None = None, headers: Headers = ()) -> None:
        """Pipe one record; without a timestamp it gets the topic's clock (starting at 0)."""
        ts = self._clock if timestamp is None else timestamp
        self._clock = max(self._clock, ts)
        self._driver.pipe(self.topic, key, value, ts, headers)

    def pipe_key_value_list(self, pairs: Iterable[tuple[Any, Any]]) -> None:
        for key, value in pairs:
            self.pipe_input(key, value)

    def pipe_value_list(self, values: Iterable[Any]) -> None:
        for value in values:
            self.pipe_input(None, value)


class TestOutputTopic:
    __test__ = False

    def __init__(self, records: deque[TestRecord]) -> None:
        self._records = records

    def is_empty(self) -> bool:
        return not self._records

    def read_record(self) -> TestRecord:
        return self._records.popleft()

    def read_records(self) -> list[TestRecord]:
        out = list(self._records)
        self._records.clear()
        return out

    def read_key_values(self) -> list[tuple[Any, Any]]:
        return [(r.key, r.value) for r in self.read_records()]

    def read_values(self) -> list[Any]:
        return [r.value for r in self.read_records()]

    def read_key_values_to_map(self) -> dict[Any, Any]:
        """The last value per key (a ``None`` value removes the key)."""
        result: dict[Any, Any] = {}
        for key, value in self.read_key_values():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = value
        return result
