"""The processing nodes of a topology: stateless operators, sources and sinks, the Processor API.

Nodes are definitions shared by every task; whatever belongs to one task (its stores, a Processor
instance) lives in that task's ``TaskContext``. ``process`` handles one record and forwards what it
makes to the node's children, depth first, as Kafka Streams does. The stateful nodes (aggregations,
windows, suppression, joins) are in ``_stateful.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tidelog.streams._context import ProcessorContext, StreamRecord, TaskContext

__all__ = [
    "BranchNode",
    "FilterNode",
    "FlatMapNode",
    "MapNode",
    "Node",
    "PassNode",
    "PeekNode",
    "Processor",
    "ProcessorNode",
    "SinkNode",
    "SourceNode",
]


class Node:
    """A node of the processing graph."""

    #: stores this node reads or writes (the task creates them)
    stores: tuple[str, ...] = ()

    def __init__(self, name: str) -> None:
        self.name = name
        self.children: list[Node] = []

    def add_child(self, child: Node) -> Node:
        self.children.append(child)
        return child

    def init(self, ctx: TaskContext) -> None:
        """Called once per task before its first record."""

    def close(self, ctx: TaskContext) -> None:
        """Called once per task when it is closed."""

    def on_stream_time(self, ctx: TaskContext) -> None:
        """Called after every input record of the task, once stream time may have moved."""

    def process(self, ctx: TaskContext, rec: StreamRecord) -> None:
        self.forward(ctx, rec)

    def forward(self, ctx: TaskContext, rec: StreamRecord) -> None:
        for child in self.children:
            child.process(ctx, rec)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class SourceNode(Node):
    """Where a sub-topology reads a topic; ``timestamp_extractor`` may replace record time."""

    def __init__(
        self,
        name: str,
        topic: str,
        *,
        timestamp_extractor: Callable[[Any, Any, int], int] | None = None,
        internal: bool = False,
    ) -> None:
        super().__init__(name)
        self.topic = topic
        self.timestamp_extractor = timestamp_extractor
        self.internal = internal

    def timestamp_of(self, key: Any, value: Any, record_timestamp: int) -> int:
        if self.timestamp_extractor is None:
            return record_timestamp
        return int(self.timestamp_extractor(key, value, record_timestamp))


class PassNode(Node):
    """Forwards every record unchanged (``merge`` joins two parents into one of these)."""


class FilterNode(Node):
    def __init__(self, name: str, predicate: Callable[[Any, Any], bool], *, negate: bool = False) -> None:
        super().__init__(name)
        self.predicate = predicate
        self.negate = negate

    def process(self, ctx: TaskContext, rec: StreamRecord) -> None:
        if bool(self.predicate(rec.key, rec.value)) != self.negate:
            self.forward(ctx, rec)


class MapNode(Node):
    """``map`` (a new key and value), ``map_values`` and ``select_key``, by ``kind``."""

    def __init__(self, name: str, fn: Callable[..., Any], kind: str) -> None:
        super().__init__(name)
        self.fn = fn
        self.kind = kind

    def process(self, ctx: TaskContext, rec: StreamRecord) -> None:
        if self.kind == "map":
            key, value = self.fn(rec.key, rec.value)
        elif self.kind == "map_values":
            key, value = rec.key, self.fn(rec.value)
        elif self.kind == "map_values_with_key":
            key, value = rec.key, self.fn(rec.key, rec.value)
        else:  # select_key
            key, value = self.fn(rec.key, rec.value), rec.value
        self.forward(ctx, rec._replace(key=key, value=value))


class FlatMapNode(Node):
    """``flat_map`` (pairs) and ``flat_map_values`` (values), by ``values_only``."""

    def __init__(self, name: str, fn: Callable[..., Iterable[Any]], *, values_only: bool) -> None:
        super().__init__(name)
        self.fn = fn
        self.values_only = values_only

    def process(self, ctx: TaskContext, rec: StreamRecord) -> None:
        if self.values_only:
            for value in self.fn(rec.value):
                self.forward(ctx, rec._replace(value=value))
        else:
            for key, value in self.fn(rec.key, rec.value):
                self.forward(ctx, rec._replace(key=key, value=value))


class PeekNode(Node):
    def __init__(self, name: str, fn: Callable[[Any, Any], None]) -> None:
        super().__init__(name)
        self.fn = fn

    def process(self, ctx: TaskContext, rec: StreamRecord) -> None:
        self.fn(rec.key, rec.value)
        self.forward(ctx, rec)


class BranchNode(Node):
    """``branch``: each record goes to the first branch whose predicate holds (or to none)."""

    def __init__(self, name: str, predicates: list[Callable[[Any, Any], bool]]) -> None:
        super().__init__(name)
        self.predicates = predicates
        self.branches: list[PassNode] = [PassNode(f"{name}-{i}") for i in range(len(predicates))]
        self.children = list(self.branches)

    def process(self, ctx: TaskContext, rec: StreamRecord) -> None:
        for predicate, branch in zip(self.predicates, self.branches, strict=True):
            if predicate(rec.key, rec.value):
                branch.process(ctx, rec)
                return


class SinkNode(Node):
    """Writes every record to ``topic`` (a name, or a function of key, value and context)."""

    def __init__(self, name: str, topic: str | Callable[[Any, Any], str], *, internal: bool = False) -> None:
        super().__init__(name)
        self.topic = topic
        self.internal = internal

    def topic_for(self, rec: StreamRecord) -> str:
        return self.topic if isinstance(self.topic, str) else str(self.topic(rec.key, rec.value))

    def process(self, ctx: TaskContext, rec: StreamRecord) -> None:
        ctx.emit(self.topic_for(rec), rec)


class Processor:
    """The Processor API: subclass it and pass the class (or a factory) to ``KStream.process``.

    ``init`` gets a ``ProcessorContext`` (forward, stores, ``schedule`` on stream or wall-clock time);
    ``process`` gets each ``StreamRecord``; ``close`` runs when the task closes.
    """

    context: ProcessorContext

    def init(self, context: ProcessorContext) -> None:
        self.context = context

    def process(self, record: StreamRecord) -> None:  # pragma: no cover - to be overridden
        raise NotImplementedError

    def close(self) -> None:
        pass


class ProcessorNode(Node):
    """Runs one ``Processor`` instance per task."""

    def __init__(self, name: str, factory: Callable[[], Processor], stores: tuple[str, ...]) -> None:
        super().__init__(name)
        self.factory = factory
        self.stores = stores

    def init(self, ctx: TaskContext) -> None:
        processor = self.factory()
        ctx.node_state[self.name] = processor
        processor.init(ProcessorContext(ctx, lambda rec: self.forward(ctx, rec)))

    def close(self, ctx: TaskContext) -> None:
        processor = ctx.node_state.pop(self.name, None)
        if processor is not None:
            processor.close()

    def process(self, ctx: TaskContext, rec: StreamRecord) -> None:
        processor = ctx.node_state[self.name]
        processor.process(rec)
