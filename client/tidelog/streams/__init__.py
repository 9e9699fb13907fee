"""tidelog.streams: stream processing over tidelog, in the manner of Kafka Streams.

>>> import tidelog.streams as ts
>>> app = ts.App("wordcount", url="http://127.0.0.1:8080")            # doctest: +SKIP
>>> (app.stream("text-input")
...     .flat_map_values(lambda v: v.lower().split())
...     .group_by(lambda key, word: word)
...     .count(store="counts")
...     .to_stream().to("word-counts"))
>>> app.run()

It uses only the tidelog client (HTTP), never the broker's internals. ``docs/streams.md`` describes
the DSL, windows and grace, the processing guarantee exactly as built, scaling out and testing
(``tidelog.streams.testing.TopologyTestDriver``).
"""

from tidelog.streams._app import App
from tidelog.streams._context import ProcessorContext, PunctuationType, StreamRecord, TaskId
from tidelog.streams._dsl import (
    GlobalKTable,
    KGroupedStream,
    KStream,
    KTable,
    SessionWindowedKStream,
    TimeWindowedKStream,
)
from tidelog.streams._nodes import Processor
from tidelog.streams._stores import KeyValueStore, VersionedStore
from tidelog.streams._task import DeadLetter, ProcessingError
from tidelog.streams._topology import TopologyError
from tidelog.streams._windows import (
    JoinWindows,
    SessionWindows,
    SlidingWindows,
    TimeWindows,
    Window,
    Windowed,
)

__all__ = [
    "App",
    "DeadLetter",
    "GlobalKTable",
    "JoinWindows",
    "KGroupedStream",
    "KStream",
    "KTable",
    "KeyValueStore",
    "ProcessingError",
    "Processor",
    "ProcessorContext",
    "PunctuationType",
    "SessionWindowedKStream",
    "SessionWindows",
    "SlidingWindows",
    "StreamRecord",
    "TaskId",
    "TimeWindowedKStream",
    "TimeWindows",
    "TopologyError",
    "VersionedStore",
    "Window",
    "Windowed",
]
