"""Stateful nodes: aggregations (plain and windowed), suppression, tables and joins.

Every node keeps its state in named stores of the task (``_stores.py``), never in attributes, so a
task restored from its changelog resumes exactly where the committed state left it. Records with a
null key are dropped by aggregations and joins and counted as ``dropped-records``, as in Kafka
Streams; records for a closed window are dropped and counted as ``late-records``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from tidelog.streams._context import StreamRecord, TaskContext
from tidelog.streams._nodes import Node
from tidelog.streams._stores import KeyValueStore, VersionedStore
from tidelog.streams._windows import (
    SessionWindows,
    SlidingWindows,
    TimeWindows,
    Window,
    Windowed,
    merge_session,
)

__all__ = [
    "AggregateNode",
    "SessionAggregateNode",
    "SlidingAggregateNode",
    "StreamStreamJoinNode",
    "StreamTableJoinNode",
    "SuppressNode",
    "TableFilterNode",
    "TableMapValuesNode",
    "TableSourceNode",
    "TableTableJoinNode",
    "ToStreamNode",
    "WindowedAggregateNode",
]

Initializer = Callable[[], Any]
Aggregator = Callable[[Any, Any, Any], Any]  # (key, value, aggregate) -> aggregate


def _kv(ctx: TaskContext, name: str) -> KeyValueStore:
    store = ctx.store(name)
    assert isinstance(store, KeyValueStore)
    return store


class AggregateNode(Node):
    """``count``, ``reduce`` and ``aggregate`` of a grouped stream into a table (a key-value store)."""

    def __init__(self, name: str, store: str, initializer: Initializer, aggregator: Aggregator) -> None:
        super().__init__(name)
        self.store = store
        self.stores = (store,)
        self.initializer = initializer
        self.aggregator = aggregator

    def process(self, ctx: TaskContext, rec: StreamRecord) -> None:
        if rec.key is None or rec.value is None:
            ctx.count("dropped-records")
            return
        store = _kv(ctx, self.store)
        old = store.get(rec.key)
        new = self.aggregator(rec.key, rec.value, self.initializer() if old is None else old)
        store.put(rec.key, new)
        self.forward(ctx, StreamRecord(rec.key, new, rec.timestamp, rec.headers, old))


class WindowedAggregateNode(Node):
    """Tumbling and hopping window aggregation; keys become ``Windowed(key, window)``.

    The store maps ``(key, window start)`` to the aggregate. Windows are kept for ``retention`` ms
    past their close (default: Kafka's one day, or size + grace when larger), then purged.
    """

    def __init__(
        self,
        name: str,
        store: str,
        windows: TimeWindows,
        initializer: Initializer,
        aggregator: Aggregator,
        retention: int,
    ) -> None:
        super().__init__(name)
        self.store = store
        self.stores = (store,)
        self.windows = windows
        self.initializer = initializer
        self.aggregator = aggregator
        self.retention = retention

    def process(self, ctx: TaskContext, rec: StreamRecord) -> None:
        if rec.key is None or rec.value is None:
            ctx.count("dropped-records")
            return
        store = _kv(ctx, self.store)
        accepted = False
        for window in self.windows.windows_for(rec.timestamp):
            if self.windows.closed(window, ctx.stream_time):
                continue
            accepted = True
            old = store.get((rec.key, window.start))
            new = self.aggregator(rec.key, rec.value, self.initializer() if old is None else old)
            store.put((rec.key, window.start), new)
            heapq.heappush(ctx.node_state.setdefault(self.name, []), (window.end, rec.key, window.start))
            self.forward(ctx, StreamRecord(Windowed(rec.key, window), new, rec.timestamp, rec.headers, old))
        if not accepted:
            ctx.count("late-records")

    def on_stream_time(self, ctx: TaskContext) -> None:
        heap: list[tuple[int, Any, int]] = ctx.node_state.get(self.name) or []
        horizon = ctx.stream_time - self.windows.grace - self.retention
        store = _kv(ctx, self.store)
        while heap and heap[0][0] <= horizon:
            _, key, start = heapq.heappop(heap)
            store.delete((key, start))

    def init(self, ctx: TaskContext) -> None:
        # Rebuild the purge schedule from the (possibly restored) store.
        heap = [(start + self.windows.size, key, start) for (key, start), _ in _kv(ctx, self.store).all()]
        heapq.heapify(heap)
        ctx.node_state[self.name] = heap


class SlidingAggregateNode(Node):
    """Sliding window aggregation (KIP-450), recomputed from the key's raw values in its windows.

    The store keeps, per key, the ``[timestamp, value]`` pairs still inside the retention; each new
    record refolds the windows it changes, so any aggregator works (no subtractor needed).
    A record is late when its own window ``[t - d, t]`` has closed (stream time > t + grace).
    """

    def __init__(
        self, name: str, store: str, windows: SlidingWindows, initializer: Initializer, aggregator: Aggregator
    ) -> None:
        super().__init__(name)
        self.store = store
        self.stores = (store,)
        self.windows = windows
        self.initializer = initializer
        self.aggregator = aggregator

    def process(self, ctx: TaskContext, rec: StreamRecord) -> None:
        if rec.key is None or rec.value is None:
            ctx.count("dropped-records")
            return
        if ctx.stream_time > rec.timestamp + self.windows.grace:
            ctx.count("late-records")
            return
        store = _kv(ctx, self.store)
        horizon = ctx.stream_time - self.windows.retention
        values = [(t, v) for t, v in (store.get(rec.key) or []) if t >= horizon]
        affected = self.windows.windows_for((t for t, _ in values), rec.timestamp)
        values.append((rec.timestamp, rec.value))
        values.sort(key=lambda tv: tv[0])  # stable: equal timestamps keep their arrival order
        store.put(rec.key, [[t, v] for t, v in values])
        for window in sorted(affected):
            if self.windows.closed(window, ctx.stream_time):
                continue
            inside = [v for t, v in values if window.start <= t <= window.end]
            if not inside:
                continue
            agg = self.initializer()
            for v in inside:
                agg = self.aggregator(rec.key, v, agg)
            self.forward(ctx, StreamRecord(Windowed(rec.key, window), agg, rec.timestamp, rec.headers))


class SessionAggregateNode(Node):
    """Session window aggregation: a record joins, starts or merges sessions of its key.

    The store maps a key to its sessions ``[[start, end, aggregate], ...]``, kept ``retention`` ms past
    their close (default one day, as for time windows). A merge forwards a tombstone for every
    session it replaced, then the merged session, as Kafka Streams does.
    """

    def __init__(
        self,
        name: str,
        store: str,
        windows: SessionWindows,
        initializer: Initializer,
        aggregator: Aggregator,
        merger: Callable[[Any, Any, Any], Any],
        retention: int,
    ) -> None:
        super().__init__(name)
        self.store = store
        self.stores = (store,)
        self.windows = windows
        self.initializer = initializer
        self.aggregator = aggregator
        self.merger = merger
        self.retention = retention

    def process(self, ctx: TaskContext, rec: StreamRecord) -> None:
        if rec.key is None or rec.value is None:
            ctx.count("dropped-records")
            return
        store = _kv(ctx, self.store)
        sessions = {Window(s, e): agg for s, e, agg in (store.get(rec.key) or [])}
        merged_window, replaced = merge_session(sessions, rec.timestamp, self.windows.inactivity_gap)
        if self.windows.closed(merged_window, ctx.stream_time):
            ctx.count("late-records")
            return
        agg = self.initializer()
        for window in sorted(replaced):
            agg = self.merger(rec.key, agg, sessions.pop(window))
        agg = self.aggregator(rec.key, rec.value, agg)
        sessions[merged_window] = agg
        horizon = ctx.stream_time - self.windows.grace - self.retention
        kept = sorted((w, a) for w, a in sessions.items() if w.end >= horizon)
        store.put(rec.key, [[w.start, w.end, a] for w, a in kept])
        for window in sorted(replaced):
            if window != merged_window:
                self.forward(ctx, StreamRecord(Windowed(rec.key, window), None, rec.timestamp, rec.headers))
        self.forward(ctx, StreamRecord(Windowed(rec.key, merged_window), agg, rec.timestamp, rec.headers))


class SuppressNode(Node):
    """``suppress(until_window_closes)``: one final result per (key, window), once the window closed.

    The buffer is a store (so it survives a restore); stream time is the task's. A tombstone (a
    merged-away session) removes the buffered entry; nothing is emitted for it.
    """

    def __init__(self, name: str, store: str, windows: TimeWindows | SlidingWindows | SessionWindows) -> None:
        super().__init__(name)
        self.store = store
        self.stores = (store,)
        self.windows = windows

    def process(self, ctx: TaskContext, rec: StreamRecord) -> None:
        windowed = rec.key
        assert isinstance(windowed, Windowed), "suppress(until_window_closes) follows a windowed aggregation"
        buffer = _kv(ctx, self.store)
        entry_key = (windowed.window.end, windowed.window.start, windowed.key)
        if rec.value is None:
            buffer.delete(entry_key)
        else:
            buffer.put(entry_key, [rec.value, rec.timestamp])
        self.on_stream_time(ctx)

    def on_stream_time(self, ctx: TaskContext) -> None:
        buffer = _kv(ctx, self.store)
        if not len(buffer):
            return
        due = []
        for entry_key, (value, ts) in buffer.all():
            end, start, key = entry_key
            if not self.windows.closed(Window(start, end), ctx.stream_time):
                break  # keys sort by window end first: the rest close later
            due.append((entry_key, Windowed(key, Window(start, end)), value, ts))
        for entry_key, windowed, value, ts in due:
            buffer.delete(entry_key)
            self.forward(ctx, StreamRecord(windowed, value, ts))


class TableSourceNode(Node):
    """Materialises a topic as a table (``app.table``): a versioned store, changes forwarded."""

    def __init__(self, name: str, store: str) -> None:
        super().__init__(name)
        self.store = store
        self.stores = (store,)

    def process(self, ctx: TaskContext, rec: StreamRecord) -> None:
        if rec.key is None:
            ctx.count("dropped-records")
            return
        store = ctx.store(self.store)
        assert isinstance(store, VersionedStore)
        old = store.get(rec.key, rec.timestamp)
        store.put(rec.key, rec.value, rec.timestamp)
        self.forward(ctx, rec._replace(old=old))


class TableFilterNode(Node):
    """A table's ``filter``: a change that no longer passes becomes a delete (tombstone)."""

    def __init__(self, name: str, predicate: Callable[[Any, Any], bool]) -> None:
        super().__init__(name)
        self.predicate = predicate

    def process(self, ctx: TaskContext, rec: StreamRecord) -> None:
        new = rec.value if rec.value is not None and self.predicate(rec.key, rec.value) else None
        old = rec.old if rec.old is not None and self.predicate(rec.key, rec.old) else None
        if new is None and old is None:
            return
        self.forward(ctx, rec._replace(value=new, old=old))


class TableMapValuesNode(Node):
    def __init__(self, name: str, fn: Callable[[Any], Any]) -> None:
        super().__init__(name)
        self.fn = fn

    def process(self, ctx: TaskContext, rec: StreamRecord) -> None:
        new = None if rec.value is None else self.fn(rec.value)
        old = None if rec.old is None else self.fn(rec.old)
        self.forward(ctx, rec._replace(value=new, old=old))


class ToStreamNode(Node):
    """A table's changes as a stream of (key, new value) records."""

    def process(self, ctx: TaskContext, rec: StreamRecord) -> None:
        self.forward(ctx, rec._replace(old=None))


class StreamTableJoinNode(Node):
    """Stream-table (and stream-global-table) join: each stream record meets the table as of its time.

    With a versioned table (a topic read by ``app.table``) the lookup is the latest value with a
    timestamp ``<=`` the stream record's (KIP-914); a table built by an aggregation gives its latest
    value. ``key_mapper`` picks the table key (global tables); ``left`` keeps unmatched records.
    """

    def __init__(
        self,
        name: str,
        table_store: str,
        joiner: Callable[[Any, Any], Any],
        *,
        left: bool,
        key_mapper: Callable[[Any, Any], Any] | None = None,
        global_stores: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name)
        self.table_store = table_store
        self.stores = () if global_stores is not None else (table_store,)
        self.joiner = joiner
        self.left = left
        self.key_mapper = key_mapper
        self.global_stores = global_stores

    def process(self, ctx: TaskContext, rec: StreamRecord) -> None:
        lookup = rec.key if self.key_mapper is None else self.key_mapper(rec.key, rec.value)
        if lookup is None or rec.value is None:
            ctx.count("dropped-records")
            return
        store = (self.global_stores or ctx.stores)[self.table_store]
        if isinstance(store, VersionedStore):
            table_value = store.get(lookup, rec.timestamp)
        else:
            table_value = store.latest(lookup)
        if table_value is None and not self.left:
            return
        self.forward(ctx, rec._replace(value=self.joiner(rec.value, table_value)))


class TableTableJoinNode(Node):
    """One side of a table-table join: a change on this side meets the other side's current value."""

    def __init__(
        self,
        name: str,
        other_store: str,
        joiner: Callable[[Any, Any], Any],
        *,
        this_is_left: bool,
        mode: str,
    ) -> None:
        super().__init__(name)
        self.other_store = other_store
        self.joiner = joiner
        self.this_is_left = this_is_left
        self.mode = mode  # inner | left | outer

    def _join(self, this: Any, other: Any) -> Any:
        left, right = (this, other) if self.this_is_left else (other, this)
        if left is None and right is None:
            return None
        if self.mode == "inner" and (left is None or right is None):
            return None
        if self.mode == "left" and left is None:
            return None
        return self.joiner(left, right)

    def process(self, ctx: TaskContext, rec: StreamRecord) -> None:
        if rec.key is None:
            return
        other_store = ctx.store(self.other_store)
        other = other_store.latest(rec.key)
        new = self._join(rec.value, other)
        old = self._join(rec.old, other)
        if new is None and old is None:
            return
        self.forward(ctx, rec._replace(value=new, old=old))


class StreamStreamJoinNode(Node):
    """One side of a windowed stream-stream join (inner or left).

    Each side keeps its records of the last ``retention`` ms in a store (key -> [[ts, value,
    matched]]); a record joins every record of the other side within the join window, with the larger
    of the two timestamps. For a left join, a left record still unmatched when its window closes
    (stream time > t + after + grace) is emitted with ``None`` then (KIP-633's fix for early
    spurious left results).
    """

    def __init__(
        self,
        name: str,
        this_store: str,
        other_store: str,
        joiner: Callable[[Any, Any], Any],
        before: int,
        after: int,
        grace: int,
        *,
        this_is_left: bool,
        left_join: bool,
    ) -> None:
        super().__init__(name)
        self.this_store = this_store
        self.other_store = other_store
        self.stores = (this_store, other_store)
        self.joiner = joiner
        self.before = before  # how far the other side's records may precede this side's
        self.after = after
        self.grace = grace
        self.this_is_left = this_is_left
        self.left_join = left_join

    def process(self, ctx: TaskContext, rec: StreamRecord) -> None:
        if rec.key is None or rec.value is None:
            ctx.count("dropped-records")
            return
        if ctx.stream_time > rec.timestamp + max(self.before, self.after) + self.grace:
            ctx.count("late-records")
            return
        this_store, other_store = _kv(ctx, self.this_store), _kv(ctx, self.other_store)
        others = other_store.get(rec.key) or []
        matched = False
        for entry in others:
            t_other, v_other = entry[0], entry[1]
            if -self.before <= t_other - rec.timestamp <= self.after:
                matched = True
                if len(entry) > 2:
                    entry[2] = True  # the other side's left record found its match
                left, right = (rec.value, v_other) if self.this_is_left else (v_other, rec.value)
                ts = max(rec.timestamp, t_other)
                self.forward(ctx, StreamRecord(rec.key, self.joiner(left, right), ts, rec.headers))
        if matched and others:
            other_store.put(rec.key, others)
        mine = this_store.get(rec.key) or []
        mine.append(
            [rec.timestamp, rec.value, matched]
            if (self.left_join and self.this_is_left)
            else [rec.timestamp, rec.value]
        )
        this_store.put(rec.key, mine)

    def on_stream_time(self, ctx: TaskContext) -> None:
        horizon = ctx.stream_time - max(self.before, self.after) - self.grace
        store = _kv(ctx, self.this_store)
        expired_keys = []
        for key, entries in store.all():
            if entries and entries[0][0] < horizon:
                expired_keys.append((key, entries))
        for key, entries in expired_keys:
            keep = []
            for entry in entries:
                if entry[0] >= horizon:
                    keep.append(entry)
                elif self.left_join and self.this_is_left and len(entry) > 2 and not entry[2]:
                    self.forward(ctx, StreamRecord(key, self.joiner(entry[1], None), entry[0]))
            store.put(key, keep or None)
