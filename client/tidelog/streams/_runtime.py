"""Running an application against brokers: tasks, restore, the commit order, internal topics.

**Who does what.** One thread runs the loop: poll the group, hand each record to its task in
timestamp order, produce what tasks emit, commit every ``commit_interval_ms``. The consumer's
heartbeat thread and the producer's sender thread are the client's own.

**The commit order** (at-least-once outputs, exactly-once state):

1. every store's changed keys since the last commit go to its changelog partition (the task's
   partition), each stamped with the input positions they reflect (header ``__streams.input``);
2. the producer is flushed: outputs, repartition records and changelog records are acknowledged
   (``acks=all``, idempotent), and the changelog end offsets are known;
3. the input offsets are committed with those changelog positions in the commit metadata;
4. the local SQLite state is flushed with the same positions.

**Restore** (a task assigned to this process): load the local file, replay the changelog from its
checkpoint up to the committed position (never past it), then look at what lies beyond: records a
crashed run wrote for inputs that were never committed. Their keys are **repaired**: the restored
value (or a tombstone) is appended and acknowledged before the task processes anything, so a later
restore that replays past them ends on the committed value. State thus never counts an input twice.

**Across a repartition topic** (and on every output) every record carries the (topic, partition,
offset, sequence) of the input it came from (header ``__streams.src``); the downstream task keeps
the last one per source partition in a store of its own (changelogged like the others) and drops
replays, so aggregations
after a repartition count every input once, too. Outputs to user topics are at-least-once: after a
crash they may repeat (see docs/streams.md).
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tidelog import (
    Client,
    IllegalGenerationError,
    OffsetOutOfRangeError,
    PartitionReader,
    RebalanceInProgressError,
    Record,
    TidelogError,
    TopicPartition,
    UnknownMemberError,
)
from tidelog.streams._context import TaskId
from tidelog.streams._local import LocalState
from tidelog.streams._stores import KeyValueStore, Store, VersionedStore, decode_key, encode_key
from tidelog.streams._task import StreamTask, next_input
from tidelog.streams._topology import StoreSpec, SubTopology, TopologyError
from tidelog.streams._windows import Windowed

if TYPE_CHECKING:
    from tidelog.streams._app import App

__all__ = ["Runtime"]

log = logging.getLogger("tidelog.streams")

SRC_HEADER = "__streams.src"
INPUT_HEADER = "__streams.input"


def wire_key(key: Any, *, internal: bool) -> str | None:
    """The key as written: strings as they are on user topics, anything else as compact JSON text."""
    if key is None:
        return None
    if isinstance(key, Windowed):
        return json.dumps(key.to_json(), separators=(",", ":"), sort_keys=True)
    if isinstance(key, str) and not internal:
        return key
    return json.dumps(key, separators=(",", ":"), sort_keys=True)


def _encoded_value(store: Store, encoded_key: str) -> Any:
    key = decode_key(encoded_key)
    if isinstance(store, KeyValueStore):
        return store.get(key)
    if isinstance(store, VersionedStore):
        for k, versions in store.snapshot():
            if k == encoded_key:
                return versions
    return None


@dataclass
class _Running:
    task: StreamTask
    inputs: list[TopicPartition]
    local: LocalState
    buffers: dict[TopicPartition, deque[Record]] = field(default_factory=dict)
    positions: dict[TopicPartition, int] = field(default_factory=dict)
    #: input offsets the group has committed for this task (what a purge may delete below)
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    purged: dict[TopicPartition, int] = field(default_factory=dict)
    changelog: dict[str, int] = field(default_factory=dict)
    unflushed: dict[str, dict[str, Any]] = field(default_factory=dict)
    idle_since: float | None = None


class Runtime:
    def __init__(self, app: App) -> None:
        self.app = app
        self.topology = app.topology
        self.subs = self.topology.subtopologies()
        self.by_topic: dict[str, SubTopology] = {t: sub for sub in self.subs for t in sub.source_topics}
        self.internal_topics = set(self.topology.repartition_topics)
        self.positions_store: dict[int, StoreSpec] = {
            sub.id: StoreSpec(f"positions-{sub.id}")
            for sub in self.subs
            if any(t in self.internal_topics for t in sub.source_topics)
        }
        self.client = Client(app.url or "", **app.client_options)
        self.tasks: dict[TaskId, _Running] = {}
        self._store_of = {
            self.topology.changelog_topic(spec.name): spec.name
            for sub in self.subs
            for spec in self._stores_of(sub)
        }
        self.partition_counts: dict[int, int] = {}
        self._metrics: dict[str, int] = {"records-processed": 0, "duplicates-dropped": 0}
        self._futures: list[Any] = []
        self._last_purge = time.monotonic()
        self._last_global_poll = 0.0

    def metrics(self) -> dict[str, int]:
        total = dict(self._metrics)
        for running in self.tasks.values():
            for name, value in running.task.ctx.metrics.items():
                total[name] = total.get(name, 0) + value
        return total

    # -- topics -----------------------------------------------------------------------------------

    def _stores_of(self, sub: SubTopology) -> list[StoreSpec]:
        extra = [self.positions_store[sub.id]] if sub.id in self.positions_store else []
        return [*sub.stores, *extra]

    def prepare_topics(self) -> None:
        """Check co-partitioning and create the internal topics (repartition, changelog)."""
        admin = self.client.admin
        known: dict[str, int] = {}
        for sub in self.subs:
            for topic in sub.source_topics:
                if topic not in self.internal_topics:
                    known[topic] = admin.describe_topic(topic).partition_count
        for table in self.topology.global_tables.values():
            known[table.topic] = admin.describe_topic(table.topic).partition_count
        writer: dict[str, SubTopology] = {
            t: sub for sub in self.subs for t in sub.sink_topics if t in self.internal_topics
        }
        pending = list(self.subs)
        for _ in range(len(self.subs) + 1):
            for sub in list(pending):
                counts = [known.get(t) for t in sub.source_topics]
                if any(c is None for c in counts):
                    # A repartition topic takes the partition count of the sub-topology writing it.
                    for topic in sub.source_topics:
                        up = writer.get(topic)
                        if topic not in known and up is not None and up.id in self.partition_counts:
                            known[topic] = self.partition_counts[up.id]
                    counts = [known.get(t) for t in sub.source_topics]
                    if any(c is None for c in counts):
                        continue
                if len(set(counts)) > 1:
                    detail = ", ".join(f"{t} has {known[t]}" for t in sub.source_topics)
                    raise TopologyError(
                        f"sub-topology {sub.id} reads topics that are not co-partitioned ({detail}): "
                        "inputs joined or merged into one task need equal partition counts"
                    )
                self.partition_counts[sub.id] = int(counts[0] or 0)
                pending.remove(sub)
        if pending:
            raise TopologyError("the topology's repartition topics form a cycle")
        rf = self.app.replication_factor
        for topic in sorted(self.internal_topics):
            self._ensure_topic(topic, known[topic], {"cleanup.policy": "delete"}, rf)
        for sub in self.subs:
            for spec in self._stores_of(sub):
                if spec.logged:
                    # The broker never compacts a changelog past what the group committed: a value
                    # superseded only by an uncommitted write must survive until the repair.
                    configs = {
                        **self.app.changelog_configs,
                        "cleanup.policy": "compact",
                        "compaction.guard.group": self.app.application_id,
                    }
                    self._ensure_topic(
                        self.topology.changelog_topic(spec.name), self.partition_counts[sub.id], configs, rf
                    )

    def _ensure_topic(self, topic: str, partitions: int, configs: dict[str, Any], rf: int | None) -> None:
        admin = self.client.admin
        try:
            existing = admin.describe_topic(topic).partition_count
        except TidelogError:
            try:
                admin.create_topic(topic, partitions, replication_factor=rf, configs=configs)
                return
            except TidelogError as error:
                if "exists" not in str(error).lower():
                    raise
                existing = admin.describe_topic(topic).partition_count
        if existing != partitions:
            raise TopologyError(
                f"internal topic {topic} has {existing} partitions, the topology needs {partitions}"
            )

    # -- the loop ---------------------------------------------------------------------------------

    def run(self, should_stop: Callable[[], bool]) -> None:
        try:
            self.prepare_topics()
        except BaseException:
            self.client.close()
            raise
        topics = sorted(self.by_topic)
        self.producer = self.client.producer(acks="all", linger_ms=2)
        self.consumer = self.client.consumer(
            self.app.application_id,
            topics,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            # Partition p of every input together, sticky and cooperative (app/groups/assignors.py).
            assignor="streams",
            session_timeout_ms=self.app.session_timeout_ms,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
        )
        readers = self._bootstrap_globals()
        last_commit = time.monotonic()
        try:
            while not should_stop():
                records = self.consumer.poll(self.app.poll_timeout_ms)
                for record in records:
                    self._buffer(record)
                self._process_ready()
                self._poll_globals(readers)
                now_ms = int(time.time() * 1000)
                for running in self.tasks.values():
                    running.task.punctuate_wall_clock(now_ms)
                    self._send_output(running)
                if (time.monotonic() - last_commit) * 1000 >= self.app.commit_interval_ms:
                    self.commit()
                    last_commit = time.monotonic()
            self.commit()
        finally:
            for tid in list(self.tasks):
                self._close_task(tid)
            try:
                self.consumer.close(commit=False)
            finally:
                self.producer.close()
                self.client.close()

    def _bootstrap_globals(self) -> list[tuple[PartitionReader, VersionedStore]]:
        """Read every global table to its end before processing starts (as Kafka's GlobalStreamThread)."""
        readers: list[tuple[PartitionReader, VersionedStore]] = []
        for spec in self.topology.global_tables.values():
            store = spec.store.create()
            assert isinstance(store, VersionedStore)
            self.app.global_stores[spec.store.name] = store
            for partition in range(self.client.admin.describe_topic(spec.topic).partition_count):
                reader = self.client.reader(spec.topic, partition, offset="earliest")
                for record in reader.read_to_end(timeout_ms=0):
                    store.put(record.key, record.value, record.timestamp)
                readers.append((reader, store))
        return readers

    def _poll_globals(self, readers: list[tuple[PartitionReader, VersionedStore]]) -> None:
        if not readers or time.monotonic() - self._last_global_poll < 0.1:
            return
        self._last_global_poll = time.monotonic()
        for reader, store in readers:
            for record in reader.poll(timeout_ms=0):
                store.put(record.key, record.value, record.timestamp)

    def _buffer(self, record: Record) -> None:
        sub = self.by_topic.get(record.topic)
        if sub is None:
            return
        tid = TaskId(sub.id, record.partition)
        running = self.tasks.get(tid)
        if running is None:
            # Either a poll returned records of a partition whose revocation it learned on the way
            # (this process no longer owns the task: another one may be restoring it), or opening
            # the task failed when it was assigned. Open it now if it is still ours; the record is
            # delivered again from the committed offset the opening seeks to.
            if record.topic_partition in self.consumer.assignment():
                self._try_open(tid)
            return
        tp = record.topic_partition
        if record.offset < running.positions.get(tp, -1):
            return  # already processed (a re-delivery after a seek)
        running.buffers.setdefault(tp, deque()).append(record)

    def _process_ready(self) -> None:
        idle_s = self.app.max_task_idle_ms / 1000.0
        for running in self.tasks.values():
            while True:
                heads = {tp: buf[0].timestamp for tp, buf in running.buffers.items() if buf}
                tp, running.idle_since = next_input(
                    heads, len(running.inputs), idle_since=running.idle_since, now=time.monotonic(),
                    max_idle_s=idle_s,
                )
                if tp is None:
                    break
                self._process(running, running.buffers[tp].popleft())
            self._send_output(running)

    def _process(self, running: _Running, record: Record) -> None:
        internal = record.topic in self.internal_topics
        key = record.key
        if internal:
            if not self._first_time(running, record):
                self._metrics["duplicates-dropped"] += 1
                running.positions[record.topic_partition] = record.offset + 1
                return
            key = None if key is None else json.loads(key)
            key = tuple(key) if isinstance(key, list) else key
        headers = tuple((k, v) for k, v in record.headers if not k.startswith("__streams."))
        running.task.process(
            record.topic, record.partition, record.offset, key, record.value, record.timestamp, headers
        )
        running.positions[record.topic_partition] = record.offset + 1
        self._metrics["records-processed"] += 1

    def _first_time(self, running: _Running, record: Record) -> bool:
        """False for a repartition record whose source input this task has already counted."""
        src = next((v for k, v in record.headers if k == SRC_HEADER), None)
        if not isinstance(src, str):
            return True
        topic, partition, offset, seq = src.rsplit("|", 3)
        store = running.task.stores[self.positions_store[running.task.sub.id].name]
        assert isinstance(store, KeyValueStore)
        seen = store.get((topic, int(partition)))
        mark = [int(offset), int(seq)]
        if seen is not None and list(seen) >= mark:
            return False
        store.put((topic, int(partition)), mark)
        return True

    def _send_output(self, running: _Running) -> None:
        task = running.task
        for out in task.take_output():
            internal = out.topic in self.internal_topics
            headers: list[tuple[str, str | bytes | None]] = [(k, v) for k, v in out.headers]
            # Where the record came from: the dedupe key downstream of a repartition topic, and what
            # lets a reader of an output topic collapse the repeats of an at-least-once restart.
            headers.append((SRC_HEADER, "|".join(str(x) for x in out.source)))
            value = out.value
            self._futures.append(
                self.producer.send(
                    out.topic,
                    value,
                    key=wire_key(out.key, internal=internal),
                    headers=headers,
                    timestamp=max(0, out.timestamp),
                )
            )
        dlq = self.app.dead_letter_topic or f"{self.app.application_id}-dlq"
        for letter in task.take_dead_letters():
            headers = [(k, v) for k, v in letter.headers] + list(letter.context_headers())
            self._futures.append(
                self.producer.send(
                    dlq,
                    letter.value,
                    key=wire_key(letter.key, internal=False),
                    headers=headers,
                    timestamp=max(0, letter.timestamp),
                )
            )

    # -- commit -----------------------------------------------------------------------------------

    def commit(self) -> None:
        """Changelogs, flush, offsets with changelog positions, local state (the module docstring)."""
        last: dict[tuple[TaskId, str], Any] = {}
        for tid, running in self.tasks.items():
            self._send_output(running)
            stamp = ",".join(
                f"{tp.topic}|{tp.partition}|{off}" for tp, off in sorted(running.positions.items())
            )
            for store, items in running.task.take_changes().items():
                topic = self.topology.changelog_topic(store)
                for key, value in items:
                    last[(tid, store)] = self.producer.send(
                        topic, value, key=key, partition=tid.partition, headers=[(INPUT_HEADER, stamp)]
                    )
                    running.unflushed.setdefault(store, {})[key] = value
        self.producer.flush()
        futures, self._futures = self._futures, []
        for future in futures:
            future.result()  # a failed output fails the application before anything is committed
        for (tid, store), future in last.items():
            self.tasks[tid].changelog[store] = future.result().offset + 1
        for running in self.tasks.values():
            self._commit_task(running)
        if (time.monotonic() - self._last_purge) * 1000 >= self.app.repartition_purge_interval_ms:
            self._purge()
            self._last_purge = time.monotonic()

    def _commit_task(self, running: _Running) -> None:
        offsets = {tp: off for tp, off in running.positions.items()}
        if not offsets:
            return
        # Keyed by changelog topic: the broker reads it to bound compaction (compaction.guard.group).
        positions = {self.topology.changelog_topic(store): pos for store, pos in running.changelog.items()}
        metadata = json.dumps({"changelog": positions}, separators=(",", ":"))
        try:
            self.consumer.commit(offsets, metadata=metadata)
        except (IllegalGenerationError, UnknownMemberError, RebalanceInProgressError) as error:
            log.info(
                "commit of task %s refused (%s): its inputs will be processed again", running.task.id, error
            )
            return
        running.committed.update(offsets)
        changes = {store: list(items.items()) for store, items in running.unflushed.items()}
        running.local.flush(changes, running.changelog)
        running.unflushed.clear()

    def _purge(self) -> None:
        """Trim repartition topics below what the group committed (KIP-811), through DeleteRecords.

        Only below the *committed* offset: records processed but not committed are read again by
        whoever owns the task after a crash or a rebalance, so they must stay.
        """
        for running in self.tasks.values():
            for tp, offset in running.committed.items():
                if tp.topic not in self.internal_topics or offset <= running.purged.get(tp, 0):
                    continue
                try:
                    self.client.admin.delete_records(tp.topic, tp.partition, offset)
                except TidelogError as error:  # housekeeping: never fail processing for it
                    log.debug("purge of %s failed: %s", tp, error)
                    continue
                running.purged[tp] = offset

    # -- tasks ------------------------------------------------------------------------------------

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            sub = self.by_topic.get(tp.topic)
            if sub is not None and TaskId(sub.id, tp.partition) not in self.tasks:
                self._try_open(TaskId(sub.id, tp.partition))

    def _try_open(self, tid: TaskId) -> None:
        try:
            self._open_task(tid)
        except (IllegalGenerationError, UnknownMemberError, RebalanceInProgressError) as error:
            # The assignment moved on while the task opened: it is someone else's now.
            log.info("task %s not opened: %s", tid, error)

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        gone = {
            TaskId(self.by_topic[tp.topic].id, tp.partition) for tp in partitions if tp.topic in self.by_topic
        }
        if not gone:
            return
        try:
            self.commit()
        except TidelogError as error:
            log.info("commit before handing tasks over failed: %s", error)
        for tid in gone:
            self._close_task(tid)

    def _close_task(self, tid: TaskId) -> None:
        running = self.tasks.pop(tid, None)
        if running is not None:
            running.task.close()
            running.local.close()

    def _open_task(self, tid: TaskId, *, seek: bool = True) -> _Running:
        sub = self.subs[tid.subtopology]
        specs = self._stores_of(sub)
        stores = {spec.name: spec.create() for spec in specs}
        task = StreamTask(
            self.app.application_id, tid, sub, processing_errors=self.app.processing_errors, stores=stores
        )
        inputs = [TopicPartition(t, tid.partition) for t in sub.source_topics]
        local = LocalState(self.app.state_dir / self.app.application_id / f"{tid}.sqlite")
        running = _Running(task, inputs, local)
        try:
            self._prepare(running, specs, seek=seek)
        except BaseException:
            local.close()
            raise
        self.tasks[tid] = running
        return running

    def _prepare(self, running: _Running, specs: list[StoreSpec], *, seek: bool) -> None:
        inputs = running.inputs
        committed = self._committed(inputs)
        for tp, (offset, _) in committed.items():
            if offset is not None:
                running.positions[tp] = offset
        # The restored state is the committed one: read the inputs from the committed offsets. The
        # group may still hold a delivery position past them (a revocation cancelled before the
        # handover keeps the member's position), and records skipped there would be lost.
        running.committed = dict(running.positions)
        for tp in inputs if seek else ():
            if tp not in running.positions:
                self.consumer.seek_to_beginning([tp])
                continue
            try:
                self.consumer.seek(tp, running.positions[tp])
            except OffsetOutOfRangeError as error:
                # Retention removed records the group had not committed past (a user topic's
                # retention.ms): what is gone cannot be processed; go on from the log start.
                log.warning("task %s: %s; starting %s at its log start", running.task.id, error, tp)
                self.consumer.seek_to_beginning([tp])
                running.positions.pop(tp, None)
        positions: dict[str, int] = {}
        for _, meta in committed.values():
            positions.update(meta)
        self._restore(running, [s for s in specs if s.logged], positions)
        running.task.initialise()

    def _committed(
        self, inputs: list[TopicPartition]
    ) -> dict[TopicPartition, tuple[int | None, dict[str, int]]]:
        wanted = set(inputs)
        result: dict[TopicPartition, tuple[int | None, dict[str, int]]] = {}
        for o in self.client.admin.list_group_offsets(self.app.application_id).offsets:
            tp = TopicPartition(o.topic, o.partition)
            if tp not in wanted:
                continue
            meta: dict[str, int] = {}
            if o.metadata:
                try:
                    stored = json.loads(o.metadata).get("changelog", {})
                    meta = {
                        self._store_of[str(k)]: int(v) for k, v in stored.items() if str(k) in self._store_of
                    }
                except (ValueError, AttributeError, TypeError):
                    meta = {}
            result[tp] = (o.offset, meta)
        return result

    def _restore(self, running: _Running, specs: list[StoreSpec], committed: dict[str, int]) -> None:
        task, tid = running.task, running.task.id
        checkpoints = running.local.checkpoints()
        log.info(
            "task %s: restoring from local %s, committed %s, inputs at %s",
            tid,
            checkpoints,
            committed,
            dict(running.positions),
        )
        stale = any(checkpoints.get(s.name, 0) > committed.get(s.name, 0) for s in specs)
        if stale:
            # The local file claims more than the group committed (a reset, a deleted group): distrust it.
            running.local.wipe()
            checkpoints = {}
        repaired: dict[str, Any] = {}
        for spec in specs:
            store = task.stores[spec.name]
            start = checkpoints.get(spec.name)
            if start is not None:
                for key, value in running.local.entries(spec.name):
                    store.restore(key, value)
            target = committed.get(spec.name, 0)
            topic = self.topology.changelog_topic(spec.name)
            reader = self.client.reader(
                topic, tid.partition, offset=start if start is not None else "earliest"
            )
            garbage: set[str] = set()
            replayed = running.unflushed.setdefault(spec.name, {})
            deadline = time.monotonic() + 300
            while True:
                batch = reader.poll(timeout_ms=0)
                for record in batch:
                    if record.offset < target:
                        store.restore(str(record.key), record.value)
                        # What the changelog adds to the local file goes into it with the next
                        # flush, so a later restore from that file misses nothing.
                        replayed[str(record.key)] = record.value
                    else:
                        garbage.add(str(record.key))
                if not batch and reader.position >= (reader.high_watermark or 0):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"restoring {topic}-{tid.partition} took over 5 minutes")
            running.changelog[spec.name] = max(target, reader.position)
            for key in garbage:
                replayed[key] = _encoded_value(store, key)
                repaired[spec.name] = self.producer.send(
                    topic,
                    _encoded_value(store, key),
                    key=key,
                    partition=tid.partition,
                    headers=[(INPUT_HEADER, "repair")],
                )
            if garbage:
                log.info(
                    "task %s: %d keys of %s written after the last commit were repaired",
                    tid,
                    len(garbage),
                    spec.name,
                )
            store.drain_changes()
        if repaired:
            self.producer.flush()
            for name, future in repaired.items():
                running.changelog[name] = future.result().offset + 1


__all__ += ["encode_key", "wire_key"]
