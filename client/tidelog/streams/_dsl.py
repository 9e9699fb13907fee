"""The DSL: ``KStream``, ``KTable`` and their grouped and windowed forms, as in Kafka Streams.

Each method adds nodes to the application's ``Topology`` and returns the next stream or table; no
record flows until the application (or the test driver) runs. Operations that change the key mark
the stream, and a later ``group_by_key`` or join then goes through a repartition topic first, as
Kafka Streams does, so that records with one key meet in one task.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tidelog.streams import _nodes as n
from tidelog.streams import _stateful as s
from tidelog.streams._topology import StoreSpec, Topology, TopologyError
from tidelog.streams._windows import JoinWindows, SessionWindows, SlidingWindows, TimeWindows

__all__ = [
    "KGroupedStream",
    "KStream",
    "KTable",
    "SessionWindowedKStream",
    "TimeWindowedKStream",
]

DEFAULT_WINDOW_RETENTION = 86_400_000  # Kafka's default window store retention: one day


def _count_aggregator(_key: Any, _value: Any, agg: int) -> int:
    return agg + 1


def _zero() -> int:
    return 0


class KStream:
    """A record stream: every record is an event."""

    def __init__(self, topology: Topology, node: n.Node, *, key_changed: bool = False) -> None:
        self._topology = topology
        self._node = node
        self._key_changed = key_changed

    def _then(self, node: n.Node, *, key_changed: bool | None = None) -> KStream:
        self._node.add_child(node)
        return KStream(
            self._topology, node, key_changed=self._key_changed if key_changed is None else key_changed
        )

    def _name(self, prefix: str) -> str:
        return self._topology.name(prefix)

    # -- stateless --------------------------------------------------------------------------------

    def filter(self, predicate: Callable[[Any, Any], bool]) -> KStream:
        return self._then(n.FilterNode(self._name("KSTREAM-FILTER"), predicate))

    def filter_not(self, predicate: Callable[[Any, Any], bool]) -> KStream:
        return self._then(n.FilterNode(self._name("KSTREAM-FILTER"), predicate, negate=True))

    def map(self, fn: Callable[[Any, Any], tuple[Any, Any]]) -> KStream:
        return self._then(n.MapNode(self._name("KSTREAM-MAP"), fn, "map"), key_changed=True)

    def map_values(self, fn: Callable[[Any], Any]) -> KStream:
        return self._then(n.MapNode(self._name("KSTREAM-MAPVALUES"), fn, "map_values"))

    def map_values_with_key(self, fn: Callable[[Any, Any], Any]) -> KStream:
        return self._then(n.MapNode(self._name("KSTREAM-MAPVALUES"), fn, "map_values_with_key"))

    def select_key(self, fn: Callable[[Any, Any], Any]) -> KStream:
        return self._then(n.MapNode(self._name("KSTREAM-KEY-SELECT"), fn, "select_key"), key_changed=True)

    def flat_map(self, fn: Callable[[Any, Any], Iterable[tuple[Any, Any]]]) -> KStream:
        return self._then(
            n.FlatMapNode(self._name("KSTREAM-FLATMAP"), fn, values_only=False), key_changed=True
        )

    def flat_map_values(self, fn: Callable[[Any], Iterable[Any]]) -> KStream:
        return self._then(n.FlatMapNode(self._name("KSTREAM-FLATMAPVALUES"), fn, values_only=True))

    def peek(self, fn: Callable[[Any, Any], None]) -> KStream:
        return self._then(n.PeekNode(self._name("KSTREAM-PEEK"), fn))

    def branch(self, *predicates: Callable[[Any, Any], bool]) -> list[KStream]:
        """One stream per predicate; a record goes to the first whose predicate holds."""
        if not predicates:
            raise TopologyError("branch needs at least one predicate")
        node = n.BranchNode(self._name("KSTREAM-BRANCH"), list(predicates))
        self._node.add_child(node)
        return [KStream(self._topology, b, key_changed=self._key_changed) for b in node.branches]

    def merge(self, other: KStream) -> KStream:
        node = n.PassNode(self._name("KSTREAM-MERGE"))
        self._node.add_child(node)
        other._node.add_child(node)
        return KStream(self._topology, node, key_changed=self._key_changed or other._key_changed)

    def to(self, topic: str | Callable[[Any, Any], str]) -> None:
        """Write every record to ``topic`` (or the topic a function of key and value names)."""
        self._node.add_child(n.SinkNode(self._name("KSTREAM-SINK"), topic))

    def repartition(self, name: str | None = None) -> KStream:
        """Send the stream through ``<application-id>-<name>-repartition``, partitioned by key."""
        topic = self._topology.repartition_topic(name or self._name("KSTREAM-REPARTITION"))
        self._node.add_child(n.SinkNode(self._name("KSTREAM-SINK"), topic, internal=True))
        source = self._topology.source(topic, internal=True)
        return KStream(self._topology, source)

    def process(self, factory: Callable[[], n.Processor], *, stores: Iterable[str] = ()) -> KStream:
        """Run a ``Processor`` per task (the Processor API); it may use the named stores."""
        names = tuple(stores)
        for store in names:
            if store not in self._topology.stores:
                self._topology.add_store(StoreSpec(store))
        return self._then(n.ProcessorNode(self._name("KSTREAM-PROCESSOR"), factory, names), key_changed=True)

    # -- grouping ---------------------------------------------------------------------------------

    def group_by(self, fn: Callable[[Any, Any], Any], *, name: str | None = None) -> KGroupedStream:
        """Group by a new key; records go through a repartition topic before aggregating."""
        keyed = self.select_key(fn)
        return KGroupedStream(keyed, repartition_name=name)

    def group_by_key(self, *, name: str | None = None) -> KGroupedStream:
        return KGroupedStream(self, repartition_name=name)

    def _co_located(self, name: str | None) -> KStream:
        if not self._key_changed:
            return self
        return self.repartition(name)

    # -- joins ------------------------------------------------------------------------------------

    def join(
        self,
        other: KStream | KTable | GlobalKTable,
        joiner: Callable[[Any, Any], Any],
        windows: JoinWindows | None = None,
        *,
        key_mapper: Callable[[Any, Any], Any] | None = None,
    ) -> KStream:
        """Inner join with a stream (within ``windows``), a table, or a global table."""
        return self._join(other, joiner, windows, key_mapper, left=False)

    def left_join(
        self,
        other: KStream | KTable | GlobalKTable,
        joiner: Callable[[Any, Any], Any],
        windows: JoinWindows | None = None,
        *,
        key_mapper: Callable[[Any, Any], Any] | None = None,
    ) -> KStream:
        return self._join(other, joiner, windows, key_mapper, left=True)

    def _join(
        self,
        other: Any,
        joiner: Callable[[Any, Any], Any],
        windows: JoinWindows | None,
        key_mapper: Callable[[Any, Any], Any] | None,
        *,
        left: bool,
    ) -> KStream:
        if isinstance(other, GlobalKTable):
            node = s.StreamTableJoinNode(
                self._name("KSTREAM-GLOBALJOIN"),
                other.store,
                joiner,
                left=left,
                key_mapper=key_mapper or (lambda k, _v: k),
                global_stores=other.stores,
            )
            return self._then(node)
        if isinstance(other, KTable):
            this = self._co_located(None)
            table = other._materialized()
            node = s.StreamTableJoinNode(self._name("KSTREAM-JOIN"), table, joiner, left=left)
            return this._then(node, key_changed=False)
        if isinstance(other, KStream):
            if windows is None:
                raise TopologyError("a stream-stream join needs JoinWindows")
            this, that = self._co_located(None), other._co_located(None)
            left_store = self._topology.add_store(StoreSpec(self._name("KSTREAM-JOINTHIS-STORE"))).name
            right_store = self._topology.add_store(StoreSpec(self._name("KSTREAM-JOINOTHER-STORE"))).name
            out = n.PassNode(self._name("KSTREAM-MERGE"))
            this_node = s.StreamStreamJoinNode(
                self._name("KSTREAM-JOINTHIS"),
                left_store,
                right_store,
                joiner,
                windows.before,
                windows.after,
                windows.grace,
                this_is_left=True,
                left_join=left,
            )
            that_node = s.StreamStreamJoinNode(
                self._name("KSTREAM-JOINOTHER"),
                right_store,
                left_store,
                joiner,
                windows.after,
                windows.before,
                windows.grace,
                this_is_left=False,
                left_join=False,
            )
            this._node.add_child(this_node)
            that._node.add_child(that_node)
            this_node.add_child(out)
            that_node.add_child(out)
            return KStream(self._topology, out)
        raise TypeError(f"cannot join a stream with {type(other).__name__}")

    def to_table(self, *, store: str | None = None) -> KTable:
        """The stream read as a table: the latest value per key (``None`` deletes)."""
        this = self._co_located(None)
        name = store or self._name("KSTREAM-TOTABLE-STATE-STORE")
        self._topology.add_store(StoreSpec(name, kind="versioned"))
        node = s.TableSourceNode(self._name("KSTREAM-TOTABLE"), name)
        this._node.add_child(node)
        return KTable(self._topology, node, name)


class KGroupedStream:
    """A stream grouped by key, ready to aggregate."""

    def __init__(self, stream: KStream, *, repartition_name: str | None) -> None:
        self._stream = stream
        self._topology = stream._topology
        self._repartition_name = repartition_name

    def _source(self, store: str) -> KStream:
        return self._stream._co_located(self._repartition_name or store)

    def _store(self, store: str | None, prefix: str) -> str:
        name = store or self._topology.name(prefix)
        self._topology.add_store(StoreSpec(name))
        return name

    def count(self, *, store: str | None = None) -> KTable:
        return self.aggregate(_zero, _count_aggregator, store=store)

    def reduce(self, reducer: Callable[[Any, Any], Any], *, store: str | None = None) -> KTable:
        def aggregator(_key: Any, value: Any, agg: Any) -> Any:
            return value if agg is None else reducer(agg, value)

        return self.aggregate(_reduce_init, aggregator, store=store)

    def aggregate(
        self,
        initializer: Callable[[], Any],
        aggregator: Callable[[Any, Any, Any], Any],
        *,
        store: str | None = None,
    ) -> KTable:
        name = self._store(store, "KSTREAM-AGGREGATE-STATE-STORE")
        source = self._source(name)
        node = s.AggregateNode(self._topology.name("KSTREAM-AGGREGATE"), name, initializer, aggregator)
        source._node.add_child(node)
        return KTable(self._topology, node, name)

    def windowed_by(
        self, windows: TimeWindows | SlidingWindows | SessionWindows, *, retention_ms: int | None = None
    ) -> TimeWindowedKStream | SessionWindowedKStream:
        if isinstance(windows, SessionWindows):
            return SessionWindowedKStream(self, windows, retention_ms)
        return TimeWindowedKStream(self, windows, retention_ms)


def _reduce_init() -> Any:
    return None


class TimeWindowedKStream:
    """A grouped stream over tumbling, hopping or sliding windows."""

    def __init__(
        self, grouped: KGroupedStream, windows: TimeWindows | SlidingWindows, retention_ms: int | None
    ) -> None:
        self._grouped = grouped
        self._windows = windows
        self._retention = retention_ms

    def count(self, *, store: str | None = None) -> KTable:
        return self.aggregate(_zero, _count_aggregator, store=store)

    def reduce(self, reducer: Callable[[Any, Any], Any], *, store: str | None = None) -> KTable:
        def aggregator(_key: Any, value: Any, agg: Any) -> Any:
            return value if agg is None else reducer(agg, value)

        return self.aggregate(_reduce_init, aggregator, store=store)

    def aggregate(
        self,
        initializer: Callable[[], Any],
        aggregator: Callable[[Any, Any, Any], Any],
        *,
        store: str | None = None,
    ) -> KTable:
        topology = self._grouped._topology
        name = self._grouped._store(store, "KSTREAM-AGGREGATE-STATE-STORE")
        source = self._grouped._source(name)
        windows = self._windows
        node: n.Node
        if isinstance(windows, SlidingWindows):
            node = s.SlidingAggregateNode(
                topology.name("KSTREAM-SLIDINGWINDOWAGGREGATE"), name, windows, initializer, aggregator
            )
        else:
            retention = (
                self._retention
                if self._retention is not None
                else max(DEFAULT_WINDOW_RETENTION - windows.size - windows.grace, 0)
            )
            node = s.WindowedAggregateNode(
                topology.name("KSTREAM-WINDOWAGGREGATE"), name, windows, initializer, aggregator, retention
            )
        source._node.add_child(node)
        return KTable(topology, node, name, windows=windows)


class SessionWindowedKStream:
    """A grouped stream over session windows; aggregations also need a ``merger``."""

    def __init__(self, grouped: KGroupedStream, windows: SessionWindows, retention_ms: int | None) -> None:
        self._grouped = grouped
        self._windows = windows
        self._retention = retention_ms if retention_ms is not None else DEFAULT_WINDOW_RETENTION

    def count(self, *, store: str | None = None) -> KTable:
        return self.aggregate(_zero, _count_aggregator, lambda _k, a, b: a + b, store=store)

    def reduce(self, reducer: Callable[[Any, Any], Any], *, store: str | None = None) -> KTable:
        def aggregator(_key: Any, value: Any, agg: Any) -> Any:
            return value if agg is None else reducer(agg, value)

        def merger(_key: Any, a: Any, b: Any) -> Any:
            return b if a is None else a if b is None else reducer(a, b)

        return self.aggregate(_reduce_init, aggregator, merger, store=store)

    def aggregate(
        self,
        initializer: Callable[[], Any],
        aggregator: Callable[[Any, Any, Any], Any],
        merger: Callable[[Any, Any, Any], Any],
        *,
        store: str | None = None,
    ) -> KTable:
        topology = self._grouped._topology
        name = self._grouped._store(store, "KSTREAM-AGGREGATE-STATE-STORE")
        source = self._grouped._source(name)
        node = s.SessionAggregateNode(
            topology.name("KSTREAM-SESSIONWINDOWAGGREGATE"),
            name,
            self._windows,
            initializer,
            aggregator,
            merger,
            self._retention,
        )
        source._node.add_child(node)
        return KTable(topology, node, name, windows=self._windows)


class KTable:
    """A changelog stream read as a table: the latest value per key."""

    def __init__(
        self,
        topology: Topology,
        node: n.Node,
        store: str | None,
        windows: TimeWindows | SlidingWindows | SessionWindows | None = None,
    ) -> None:
        self._topology = topology
        self._node = node
        self.store = store
        self._windows = windows

    def _then(self, node: n.Node) -> KTable:
        self._node.add_child(node)
        return KTable(self._topology, node, None, self._windows)

    def filter(self, predicate: Callable[[Any, Any], bool]) -> KTable:
        return self._then(s.TableFilterNode(self._topology.name("KTABLE-FILTER"), predicate))

    def map_values(self, fn: Callable[[Any], Any]) -> KTable:
        return self._then(s.TableMapValuesNode(self._topology.name("KTABLE-MAPVALUES"), fn))

    def to_stream(self) -> KStream:
        node = s.ToStreamNode(self._topology.name("KTABLE-TOSTREAM"))
        self._node.add_child(node)
        return KStream(self._topology, node)

    def suppress(self, *, until_window_closes: bool = True, store: str | None = None) -> KTable:
        """Hold every windowed result back until its window closed: one final result per window."""
        if not until_window_closes or self._windows is None:
            raise TopologyError("suppress(until_window_closes=True) applies to a windowed table")
        name = store or self._topology.name("KTABLE-SUPPRESS-STATE-STORE")
        self._topology.add_store(StoreSpec(name))
        node = s.SuppressNode(self._topology.name("KTABLE-SUPPRESS"), name, self._windows)
        self._node.add_child(node)
        return KTable(self._topology, node, None, self._windows)

    def _materialized(self) -> str:
        if self.store is not None:
            return self.store
        name = self._topology.name("KTABLE-MATERIALIZED-STATE-STORE")
        self._topology.add_store(StoreSpec(name))
        node = _MaterializeNode(self._topology.name("KTABLE-MATERIALIZE"), name)
        self._node.add_child(node)
        self._node, self.store = node, name
        return name

    def join(self, other: KTable, joiner: Callable[[Any, Any], Any]) -> KTable:
        return self._table_join(other, joiner, "inner")

    def left_join(self, other: KTable, joiner: Callable[[Any, Any], Any]) -> KTable:
        return self._table_join(other, joiner, "left")

    def outer_join(self, other: KTable, joiner: Callable[[Any, Any], Any]) -> KTable:
        return self._table_join(other, joiner, "outer")

    def _table_join(self, other: KTable, joiner: Callable[[Any, Any], Any], mode: str) -> KTable:
        mine, theirs = self._materialized(), other._materialized()
        out = n.PassNode(self._topology.name("KTABLE-MERGE"))
        left = s.TableTableJoinNode(
            self._topology.name("KTABLE-JOINTHIS"), theirs, joiner, this_is_left=True, mode=mode
        )
        right = s.TableTableJoinNode(
            self._topology.name("KTABLE-JOINOTHER"), mine, joiner, this_is_left=False, mode=mode
        )
        left.stores = (theirs,)
        right.stores = (mine,)
        self._node.add_child(left)
        other._node.add_child(right)
        left.add_child(out)
        right.add_child(out)
        return KTable(self._topology, out, None)


class _MaterializeNode(n.Node):
    def __init__(self, name: str, store: str) -> None:
        super().__init__(name)
        self.store = store
        self.stores = (store,)

    def process(self, ctx: Any, rec: Any) -> None:
        ctx.store(self.store).put(rec.key, rec.value)
        self.forward(ctx, rec)


class GlobalKTable:
    """A table of every partition of a topic, replicated to every instance (``app.global_table``)."""

    def __init__(self, topic: str, store: str, stores: dict[str, Any]) -> None:
        self.topic = topic
        self.store = store
        self.stores = stores
