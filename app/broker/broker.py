"""The Broker: every open partition log of this process, and produce/fetch/offsets over them.

Lifecycle: ``create_app``'s lifespan builds ``Broker(settings, catalog, storage_health, replication)``, awaits
``start()`` (removes what the catalog does not know from the data directory, then opens the log of
every partition of every topic in the catalog, under ``<data_dir>/<topic>-<partition>/``) and
``close()`` on the way out (every log closed cleanly: flush, producer-state snapshot, clean-shutdown
marker, so the next start skips recovery).

Deleted data never comes back (storage/layout.py): every partition directory carries its topic's id
(``partition.metadata``, KIP-516); deleting a topic renames each directory to a ``-delete`` tombstone,
removed in the background; at start tombstones, directories of topics the catalog does not know and
directories whose topic id is not the catalog's are removed before anything is opened, and a
directory with another topic's id is never opened.

Topic metadata (partition count, ``LogConfig``) is cached in memory: produce and fetch never touch
the catalog. The topic admin hooks (``open_topic``/``delete_topic``/``update_topic_config``) keep the
cache in step; they may be called from worker threads, so the topic table is replaced
copy-on-write under a ``threading.Lock``. A topic missing from the cache is looked up in the
catalog once (another broker sharing the catalog may have created it) before a 404.

Concurrency and durability: see ``app/broker/partitions.py`` and ``docs/durability.md``. In short,
exactly one writer appends to a partition (its ``asyncio.Lock``, taken in arrival order); acks are

- ``0``: answered once the request is validated and its append is queued behind the partition's
  lock; the append still happens, but the client learns no offsets and no error (a failed append is
  logged), and a crash before the append loses the records;
- ``1``: answered after the append to the log (the OS page cache): survives the broker process
  dying (SIGKILL), not the machine losing power before the kernel writes the pages back;
- ``all`` (default): answered after the batch is fsynced; concurrent acks=all requests share one
  fsync per partition (group commit).

On a single node the high watermark is the log end after every append, so records are visible
to consumers as soon as they are appended, before they are fsynced: a machine crash can take back
acks=1 records a consumer has already seen.

A full or failing disk (docs/durability.md): an append whose write fails changes nothing and answers
507 (full) or 500 50003 (I/O error), retriable; a partition whose fsync failed answers 50004 to
writes until it is re-validated. Either marks ``StorageHealth`` as failing (``/readyz`` 503); a
watcher task probes the disk every second meanwhile, clears the failure once a probe write works
and re-validates the read-only partitions, so writes resume by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from app.broker.batch import check_batches
from app.broker.errors import (
    InsufficientStorageError,
    InvalidRecordError,
    InvalidTimestampError,
    OffsetOutOfRangeError,
    OutOfOrderSequenceError,
    PartitionReadOnlyError,
    ProducerFencedError,
    RecordTooLargeError,
    StorageWriteFailedError,
    UnknownProducerError,
)
from app.broker.fetch import BatchFetchResult, FetchResult, batches_end_offset, decode_fetched
from app.broker.idempotency import ABANDONED_CLAIM_MARGIN_MS, IdempotencyKeys
from app.broker.memory import freeze_startup_heap, tune_allocator
from app.broker.partitioner import StickyPartitioner, partition_for_key
from app.broker.partitions import PartitionHandle, PartitionState
from app.broker.produce import ParsedRecords, RecordResult, estimated_size
from app.broker.replication import Replication
from app.broker.storage_health import StorageHealth
from app.catalog import Catalog
from app.catalog import groups as groups_catalog
from app.catalog import producers as producers_catalog
from app.config import Settings
from app.error_codes import ErrorCode
from app.errors_base import (
    InvalidParameterError,
    NotReadyError,
    TidelogError,
    UnknownPartitionError,
    UnknownTopicError,
)
from app.topics.configs import log_config_for
from storage import AppendResult, LogConfig, PartitionLog, RecordIn, TimestampType, layout
from storage import errors as storage_errors
from storage.checkpoint import fsync_dir

__all__ = ["Acks", "Broker", "ProduceOutcome", "RetentionStats"]

logger = logging.getLogger("tidelog.broker")

_BATCH_OVERHEAD = 61  # bytes of a record batch header, offset and length prefix included
#: Batches of at most this many records are appended on the event loop, larger ones in a thread.
_INLINE_APPEND_RECORDS = 64
_INLINE_CHECK_BYTES = 64 * 1024  # binary produce: bodies up to this size are checked on the loop
_FETCH_STEP_BYTES = 256 * 1024  # first read of a fetch; later reads double it, up to max_bytes
_STORAGE_PROBE_INTERVAL_S = 1.0  # while storage fails: how often the disk is probed


class Acks(Enum):
    """How much of the write a produce answer waits for (Kafka's ``acks``)."""

    NONE = "0"
    LEADER = "1"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class ProduceOutcome:
    """Per-record results in request order, and what was appended (for metrics)."""

    results: list[RecordResult]
    appended_records: int
    appended_bytes: int

    @property
    def failed(self) -> bool:
        return any(r.error_code is not None for r in self.results)


@dataclass(frozen=True, slots=True)
class RetentionStats:
    """What one retention and compaction run did."""

    partitions: int = 0
    segments_deleted: int = 0
    partitions_compacted: int = 0
    idempotency_keys_purged: int = 0
    errors: int = 0


@dataclass(frozen=True, slots=True)
class _Topic:
    name: str
    topic_id: str
    config: LogConfig
    partitions: tuple[PartitionHandle, ...]


def _translate(exc: BaseException, closing: bool = False) -> BaseException:
    """A storage error as the data path's domain error (others unchanged).

    A closed log means the topic was deleted, or, while the broker shuts down (``closing``), that
    the request should be retried (on this broker once it is back, or another one).
    """
    if isinstance(exc, storage_errors.RecordTooLargeError):
        return RecordTooLargeError(str(exc), size=exc.size, limit=exc.limit)
    if isinstance(exc, storage_errors.InvalidRecordError):
        return InvalidRecordError(str(exc))
    if isinstance(exc, storage_errors.OutOfOrderSequenceError):
        return OutOfOrderSequenceError(str(exc))
    if isinstance(exc, storage_errors.ProducerFencedError):
        return ProducerFencedError(str(exc))
    if isinstance(exc, storage_errors.UnknownProducerIdError):
        return UnknownProducerError(
            f"{exc}; the partition has no state for this producer: start again at sequence 0 with a new "
            "producer id (POST /v1/producers)"
        )
    if isinstance(exc, storage_errors.StorageFullError):
        return InsufficientStorageError(f"{exc}: the broker's disk is full; retry once space is freed")
    if isinstance(exc, storage_errors.StorageWriteError):
        return StorageWriteFailedError(f"{exc}; retry")
    if isinstance(exc, storage_errors.LogReadOnlyError):
        return PartitionReadOnlyError(
            f"{exc}; the partition takes writes again once the broker has re-validated it: retry"
        )
    if isinstance(exc, storage_errors.LogClosedError):
        if closing:
            return NotReadyError("the broker is shutting down; retry")
        return UnknownTopicError("the topic was deleted while the request was being served")
    return exc


def _log_background_append(task: asyncio.Task[tuple[list[AppendResult], int]]) -> None:
    """Done callback of an acks=0 append: nobody awaits it, so its failure is logged here."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        logger.warning("an acks=0 append failed: %s", exc)


async def _forwarded(results: Awaitable[list[RecordResult]]) -> tuple[list[RecordResult], int]:
    """A forward's results in the shape of a local append's, -1 bytes marking them forwarded."""
    return await results, -1


def _error_of(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, TidelogError):
        return int(exc.code), exc.detail
    return int(ErrorCode.STORAGE_ERROR), f"storage error: {exc}"


class Broker:
    """The partition logs of one broker process and the operations of the data path."""

    def __init__(
        self, settings: Settings, catalog: Catalog, storage_health: StorageHealth, replication: Replication
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        #: Whether writes work (shared with ``/readyz`` and, in a cluster, the ClusterManager).
        self.storage_health = storage_health
        self._storage_watcher: asyncio.Task[None] | None = None
        self.data_dir = Path(settings.data_dir)
        self._topics: dict[str, _Topic] = {}
        self._admin_lock = threading.Lock()
        self._sticky = StickyPartitioner()
        self._background: set[asyncio.Task[Any]] = set()
        #: The newest epoch this broker handed out per producer id: older epochs are fenced at once,
        #: even on partitions the newer incarnation has not written to yet.
        self._producer_epochs: dict[int, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flush_ticker: asyncio.Task[None] | None = None
        self._closed = False
        self.idempotency = IdempotencyKeys(
            catalog,
            settings.idempotency_key_window_ms,
            abandoned_ms=settings.replica_lag_time_max_ms
            + settings.broker_session_timeout_ms
            + ABANDONED_CLAIM_MARGIN_MS,
        )
        #: Leadership, replication and forwarding (app/broker/replication.py): SingleNode, or the
        #: cluster manager in clustered mode.
        self.replication = replication

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the log of every partition of every topic in the catalog."""
        self._loop = asyncio.get_running_loop()
        tune_allocator()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self._open_catalog_topics)
        self._flush_ticker = asyncio.get_running_loop().create_task(self._flush_on_schedule())
        self._storage_watcher = asyncio.get_running_loop().create_task(self._watch_storage())
        freeze_startup_heap()

    def _open_catalog_topics(self) -> None:
        from app.catalog import topics as topics_catalog

        with self.catalog.read() as session:
            rows = [
                (row.name, row.topic_uuid, len(row.partitions), dict(row.config_overrides))
                for row in topics_catalog.list_topics(session)
            ]
        self._remove_unknown_directories({name: (topic_id, count) for name, topic_id, count, _ in rows})
        for name, topic_id, partitions, overrides in rows:
            self.open_topic(name, partitions, log_config_for(self.settings, overrides), topic_id)
        logger.info("opened %d topics", len(rows))

    def _remove_unknown_directories(self, known: Mapping[str, tuple[str, int]]) -> None:
        """Tombstone every partition directory the catalog does not know (a topic deleted while
        this broker was down, or by a delete a crash interrupted) or that carries another topic id
        (deleted and re-created meanwhile); remove them and the old tombstones in the background."""
        live, tombstones = layout.scan_data_dir(self.data_dir)
        doomed = []
        for found in live:
            entry = known.get(found.topic)
            why = None
            if entry is None:
                why = "its topic is not in the catalog"
            elif found.partition >= entry[1]:
                why = f"the topic has {entry[1]} partitions"
            else:
                try:
                    topic_id = layout.read_topic_id(found.path)
                except ValueError as exc:
                    topic_id, why = None, f"its {layout.PARTITION_METADATA_FILE} is unreadable ({exc})"
                if topic_id is not None and topic_id != entry[0]:
                    why = f"it belongs to topic id {topic_id}, not the catalog's {entry[0]}"
            if why is not None:
                logger.warning("removing %s: %s", found.path, why)
                doomed.append(found.path)
        self._remove_in_background([*tombstones, *layout.tombstone_all(doomed, self.data_dir)])

    @staticmethod
    def _remove_in_background(tombstones: list[Path]) -> None:
        if tombstones:
            # A daemon thread: a shutdown does not wait for it, and the next start finishes the job.
            threading.Thread(
                target=layout.remove_tombstones, args=(tombstones,), name="remove-deleted", daemon=True
            ).start()

    async def close(self) -> None:
        """Finish queued acks=0 appends, then close every log cleanly."""
        self._closed = True
        for task in (self._flush_ticker, self._storage_watcher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        with self._admin_lock:
            topics = list(self._topics.values())
            self._topics = {}
        handles = [h for t in topics for h in t.partitions]
        for handle in handles:
            handle.notify()  # long-polls answer now instead of at their max_wait_ms

        def close_all() -> None:
            for handle in handles:
                try:
                    handle.log.close()
                except Exception:
                    logger.exception("closing %s-%d failed", handle.topic, handle.partition)

        await asyncio.to_thread(close_all)

    async def _flush_on_schedule(self) -> None:
        """The ``flush.ms`` policy: fsync partitions whose oldest unflushed append is that old.

        Appends apply ``flush.messages`` and ``flush.ms`` themselves; this tick covers a partition
        that stopped receiving appends before its ``flush.ms`` passed. It wakes every tenth of the
        smallest ``flush.ms`` in use (between 10 ms and 1 s) and does nothing while no topic sets it.
        """
        while True:
            flush_ms = [t.config.flush_ms for t in self._topics.values() if t.config.flush_ms is not None]
            if not flush_ms:
                await asyncio.sleep(1.0)
                continue
            await asyncio.sleep(min(1.0, max(0.01, min(flush_ms) / 10_000)))
            for topic in list(self._topics.values()):
                if topic.config.flush_ms is None:
                    continue
                for handle in topic.partitions:
                    try:
                        await asyncio.to_thread(handle.log.flush_if_due)
                    except storage_errors.LogClosedError:
                        continue
                    except storage_errors.StorageError as exc:
                        self.note_storage_failure(handle, exc)
                    except Exception:
                        logger.exception("flush.ms flush of %s-%d failed", handle.topic, handle.partition)

    # -- storage failures ---------------------------------------------------------------------------

    def note_storage_failure(self, handle: PartitionHandle, exc: BaseException) -> None:
        """Record a failed write or fsync of ``handle``'s log in ``storage_health``."""
        if isinstance(exc, storage_errors.LogReadOnlyError):
            self.storage_health.partition_read_only(handle.topic, handle.partition, str(exc))
        elif isinstance(exc, storage_errors.StorageWriteError):
            self.storage_health.write_failed("the data directory", str(exc))

    async def _watch_storage(self) -> None:
        """While storage fails: probe the disk; once a probe works, clear the failure and
        re-validate the read-only partitions (so writes resume without anyone retrying)."""
        health = self.storage_health
        while True:
            await asyncio.sleep(_STORAGE_PROBE_INTERVAL_S)
            if not health.failing:
                continue
            try:
                if not await asyncio.to_thread(health.probe):
                    continue
                health.write_succeeded()
                for topic, partition in health.read_only_partitions():
                    await self._revalidate(topic, partition)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("storage watcher pass failed")

    async def _revalidate(self, topic: str, partition: int) -> None:
        found = self._topics.get(topic)
        if found is None or partition >= len(found.partitions):
            self.storage_health.partition_writable(topic, partition)  # deleted meanwhile
            return
        handle = found.partitions[partition]
        async with handle.write_lock:
            try:
                await asyncio.to_thread(handle.log.revalidate)
            except storage_errors.LogClosedError:
                pass
            except storage_errors.LogReadOnlyError as exc:
                logger.warning("%s-%d is still read-only: %s", topic, partition, exc)
                return
        self.storage_health.partition_writable(topic, partition)

    # -- topic admin hooks (called by TopicService after its catalog transaction commits) ------------

    @property
    def closed(self) -> bool:
        """True once ``close`` has begun (long polls answer with what there is)."""
        return self._closed

    def partition_dir(self, topic: str, partition: int) -> Path:
        return self.data_dir / f"{topic}-{partition}"

    def open_topic(self, topic: str, partitions: int, config: LogConfig, topic_id: str) -> None:
        """Open (creating if needed) partitions ``0..partitions-1`` of topic id ``topic_id``;
        idempotent, opens only new ones. Open logs of another id (the topic was deleted and
        re-created through another broker process) are deleted first."""
        with self._admin_lock:
            existing = self._topics.get(topic)
            if existing is not None and existing.topic_id != topic_id:
                logger.info("topic %s was re-created (id %s, was %s): removing the old logs",
                            topic, topic_id, existing.topic_id)
                self._topics = {k: v for k, v in self._topics.items() if k != topic}
                self._delete_logs(existing)
                existing = None
            handles = list(existing.partitions) if existing else []
            created = False
            for p in range(len(handles), partitions):
                directory = self.partition_dir(topic, p)
                created |= self._claim_directory(directory, topic_id)
                log = PartitionLog.open(directory, config)
                handles.append(PartitionHandle(topic, p, directory, log))
            if created:
                fsync_dir(self.data_dir)  # the new directories' entries, before any write is acknowledged
            if existing is not None and existing.config != config:
                for handle in existing.partitions:
                    handle.log.update_config(config)
            self._topics = {**self._topics, topic: _Topic(topic, topic_id, config, tuple(handles))}

    def _claim_directory(self, directory: Path, topic_id: str) -> bool:
        """Make ``directory`` a partition directory of ``topic_id``: a directory of another id is
        tombstoned (never opened), a new one gets ``partition.metadata`` before any segment.
        True when the directory was created."""
        if directory.exists():
            try:
                found = layout.read_topic_id(directory)
            except ValueError as exc:
                found = f"unreadable ({exc})"
            if found is None:
                layout.write_topic_id(directory, topic_id)  # a directory from before topic ids
                return False
            if found == topic_id:
                return False
            logger.warning("%s belongs to topic id %s, not %s: removing it", directory, found, topic_id)
            self._remove_in_background(layout.tombstone_all([directory], self.data_dir))
        directory.mkdir(parents=True)
        layout.write_topic_id(directory, topic_id)
        return True

    def topic_id(self, topic: str) -> str:
        """The id of the open topic; raises ``UnknownTopicError``."""
        return self._cached_topic(topic).topic_id

    def delete_topic(self, topic: str) -> None:
        """Close the topic's logs and tombstone their directories (removed in the background).
        A topic this broker has not opened still loses its directories."""
        with self._admin_lock:
            existing = self._topics.get(topic)
            if existing is not None:
                self._topics = {k: v for k, v in self._topics.items() if k != topic}
            self._delete_logs(existing, topic)
        self._sticky.forget(topic)
        self.storage_health.forget_topic(topic)

    def _delete_logs(self, existing: _Topic | None, name: str | None = None) -> None:
        """Let go of the topic's logs (no flush: the data is going) and tombstone every directory of
        it, the open ones and any other ``<topic>-<n>`` on disk, in one rename each."""
        topic = existing.name if existing is not None else name
        handles = existing.partitions if existing is not None else ()
        for handle in handles:
            try:
                handle.log.abandon()
            except Exception:
                logger.exception("closing %s-%d failed", handle.topic, handle.partition)
        live, _ = layout.scan_data_dir(self.data_dir)
        directories = [found.path for found in live if found.topic == topic]
        try:
            self._remove_in_background(layout.tombstone_all(directories, self.data_dir))
        except OSError:
            logger.exception("deleting the directories of topic %s failed (retried at the next start)", topic)
        for handle in handles:
            self._wake_threadsafe(handle)

    def update_topic_config(self, topic: str, config: LogConfig) -> None:
        """Apply a topic's new config to its open logs."""
        with self._admin_lock:
            existing = self._topics.get(topic)
            if existing is None:
                raise UnknownTopicError(f"topic {topic!r} does not exist")
            for handle in existing.partitions:
                handle.log.update_config(config)
            updated = _Topic(topic, existing.topic_id, config, existing.partitions)
            self._topics = {**self._topics, topic: updated}

    def _wake_threadsafe(self, handle: PartitionHandle) -> None:
        # Waiters of a deleted partition wake up and find the topic gone.
        loop = self._loop
        if loop is None:
            return
        try:
            if _running_loop() is loop:
                handle.notify()
            else:
                loop.call_soon_threadsafe(handle.notify)
        except RuntimeError:  # the loop is closed
            pass

    # -- metadata -----------------------------------------------------------------------------------

    def topic_names(self) -> list[str]:
        return sorted(self._topics)

    def partition_count(self, topic: str) -> int:
        """The number of partitions of ``topic``; raises ``UnknownTopicError``."""
        return len(self._cached_topic(topic).partitions)

    def topic_config(self, topic: str) -> LogConfig:
        return self._cached_topic(topic).config

    def partition_state(self, topic: str, partition: int) -> PartitionState:
        """Offsets and size of one partition; raises ``UnknownTopicError``/``UnknownPartitionError``."""
        return self._handle(self._cached_topic(topic), partition).state()

    def partition_sizes(self) -> list[tuple[str, int, int, int, int, int]]:
        """(topic, partition, size_bytes, segment_count, log_start_offset, log_end_offset) of every one."""
        rows = []
        for topic in list(self._topics.values()):
            for handle in topic.partitions:
                s = handle.state()
                rows.append(
                    (s.topic, s.partition, s.size_bytes, s.segment_count,
                     s.log_start_offset, s.log_end_offset)
                )
        return rows

    def _cached_topic(self, topic: str) -> _Topic:
        found = self._topics.get(topic)
        if found is None:
            raise UnknownTopicError(f"topic {topic!r} does not exist")
        return found

    async def _topic(self, topic: str) -> _Topic:
        found = self._topics.get(topic)
        if found is None:
            found = await asyncio.to_thread(self._load_topic, topic)
        return found

    def _load_topic(self, topic: str) -> _Topic:
        """A topic another broker sharing the catalog created: open it here too."""
        from app.catalog import topics as topics_catalog

        with self.catalog.read() as session:
            row = topics_catalog.get_topic(session, name=topic)
            found = None if row is None else (len(row.partitions), dict(row.config_overrides), row.topic_uuid)
        if found is None:
            raise UnknownTopicError(f"topic {topic!r} does not exist")
        self.open_topic(topic, found[0], log_config_for(self.settings, found[1]), found[2])
        return self._cached_topic(topic)

    @staticmethod
    def _handle(topic: _Topic, partition: int) -> PartitionHandle:
        if not 0 <= partition < len(topic.partitions):
            raise UnknownPartitionError(
                f"topic {topic.name!r} has no partition {partition} "
                f"(it has {len(topic.partitions)}: 0..{len(topic.partitions) - 1})",
                partitions=len(topic.partitions),
            )
        return topic.partitions[partition]

    async def partition(self, topic: str, partition: int, *, refresh: bool = True) -> PartitionHandle:
        """The open partition; raises ``UnknownTopicError``/``UnknownPartitionError``.

        A partition beyond the known count re-reads the topic from the catalog first (another broker
        may have added it), unless ``refresh`` is off (a caller that re-read it a moment ago)."""
        found = await self._topic(topic)
        if partition >= len(found.partitions) and refresh:
            # Partitions may have been added by another broker sharing the catalog.
            found = await asyncio.to_thread(self._load_topic, topic)
        return self._handle(found, partition)

    # -- produce ------------------------------------------------------------------------------------

    async def produce(
        self,
        topic: str,
        parsed: ParsedRecords,
        *,
        acks: Acks = Acks.ALL,
        partition: int | None = None,
        key_producer: int = -1,
    ) -> ProduceOutcome:
        """Append ``parsed`` records to ``topic`` (all to ``partition`` when given).

        ``key_producer`` (an ``Idempotency-Key``'s producer id, app/broker/idempotency.py): the
        records are appended as that idempotent producer, each partition's batch at epoch 0 and
        sequence 0, forwarded as such to partitions led elsewhere; records without a key or a
        partition go to partition ``key_producer % partitions`` (not the sticky one), so that every
        attempt of the request puts every record in the same partition, where the partition's
        producer state recognises a retry as a duplicate and answers the original offsets.

        The whole request is checked first (partitions exist, compacted topics get keys,
        idempotent batches fit one batch); then every partition's records are appended, partitions
        concurrently. A partition whose append fails gets the error in each of its records'
        results; the others succeed. Raises when the request is refused as a whole.
        """
        if key_producer >= 0:
            if parsed.idempotent:
                raise InvalidParameterError(
                    "an Idempotency-Key request cannot also carry producer_id, producer_epoch and "
                    "sequence: use one or the other"
                )
            parsed.producer_id, parsed.producer_epoch, parsed.sequence = key_producer, 0, 0
        found = await self._topic(topic)
        count = len(found.partitions)
        if partition is not None and partition >= count:
            found = await asyncio.to_thread(self._load_topic, topic)
            count = len(found.partitions)
        if partition is not None:
            self._handle(found, partition)
        config = found.config
        compacted = "compact" in config.cleanup_policy
        records = parsed.records
        if config.message_timestamp_type is not TimestampType.LOG_APPEND_TIME:
            _check_timestamps(records, config, int(time.time() * 1000))
        groups: dict[int, list[int]] = {}
        used_sticky = False
        asked_partitions = parsed.partitions
        if (
            partition is not None
            and asked_partitions.count(None) == len(asked_partitions)
            and (not compacted or all(r.key is not None for r in records))
        ):
            # A partition's endpoint with no per-record partitions: nothing to decide per record.
            asked_partitions = []
            groups[partition] = list(range(len(records)))
        for i, asked in enumerate(asked_partitions):
            record = records[i]
            if partition is not None:
                if asked is not None and asked != partition:
                    raise InvalidParameterError(
                        f"records[{i}].partition is {asked} but the request is for partition {partition}"
                    )
                p = partition
            elif asked is not None:
                if asked >= count:
                    self._handle(found, asked)
                p = asked
            elif record.key is not None:
                p = partition_for_key(record.key, count)
            elif key_producer >= 0:
                p = key_producer % count
            else:
                p = self._sticky.partition(topic, count)
                used_sticky = True
            if compacted and record.key is None:
                raise InvalidRecordError(
                    f"records[{i}] has no key, but topic {topic!r} is compacted (cleanup.policy="
                    f"{config.cleanup_policy}): every record needs a key"
                )
            group = groups.get(p)
            if group is None:
                groups[p] = [i]
            else:
                group.append(i)
        if used_sticky:
            self._sticky.batch_sent(topic, count)

        if parsed.idempotent:
            if partition is None and key_producer < 0:
                raise InvalidParameterError(
                    "idempotent produce (producer_id, producer_epoch, sequence) is per partition: use "
                    "POST /v1/topics/{topic}/partitions/{partition}/records"
                )
            newest = self._producer_epochs.get(parsed.producer_id)
            if newest is not None and parsed.producer_epoch < newest:
                raise ProducerFencedError(
                    f"producer {parsed.producer_id} epoch {parsed.producer_epoch} is fenced by epoch {newest}"
                )

        plans = [
            (found.partitions[p], indices, self._split(records, indices, config, parsed.idempotent))
            for p, indices in groups.items()
        ]
        # A topic-level produce in a cluster: partitions led elsewhere go to their leaders
        # (app/cluster/forward.py), concurrently with the local appends.
        replication = self.replication
        calls = []
        for h, indices, batches in plans:
            leader = None if partition is not None else replication.leader_elsewhere(topic, h.partition)
            if leader is None:
                calls.append(self._produce_partition(h, records, batches, parsed, acks, config))
            else:
                forward = replication.forward(
                    leader, topic, h.partition, records, indices, acks.value, key_producer
                )
                calls.append(_forwarded(forward))
        outcomes: list[tuple[list[RecordResult], int] | BaseException]
        if len(calls) == 1:
            # One partition (nearly every request): no gather, so no task around the call.
            try:
                outcomes = [await calls[0]]
            except Exception as exc:
                outcomes = [exc]
        else:
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
        results: list[RecordResult | None] = [None] * len(records)
        appended_records = appended_bytes = 0
        errors: list[BaseException] = []
        for (handle, indices, _), outcome in zip(plans, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    raise outcome
                error = _translate(outcome, self._closed)
                errors.append(error)
                code, message = _error_of(error)
                for i in indices:
                    results[i] = RecordResult(handle.partition, error_code=code, message=message)
                continue
            partition_results, n_bytes = outcome
            if n_bytes < 0:  # forwarded: appended (and counted) by the leader
                for i, result in zip(indices, partition_results, strict=True):
                    results[i] = result
                continue
            appended_records += len(indices)
            appended_bytes += n_bytes
            for i, result in zip(indices, partition_results, strict=True):
                results[i] = result
        if errors and len(errors) == len(plans):
            # Nothing was appended: answer with the error itself rather than a 207 of failures.
            raise errors[0]
        final = [r for r in results if r is not None]
        return ProduceOutcome(final, appended_records, appended_bytes)

    def _split(
        self, records: Sequence[RecordIn], indices: list[int], config: LogConfig, idempotent: bool
    ) -> list[list[RecordIn]]:
        """The partition's records cut into batches that fit ``max.message.bytes`` (like ``batch.size``)."""
        limit = config.max_message_bytes
        # Fast path: a bound of the whole batch's size without per-record calls. 41 bytes covers a
        # record's varints at their widest; records with headers take the careful path.
        bound = _BATCH_OVERHEAD + 41 * len(indices)
        for i in indices:
            record = records[i]
            if record.headers:
                bound = limit + 1
                break
            if record.value is not None:
                bound += len(record.value)
            if record.key is not None:
                bound += len(record.key)
        if bound <= limit:
            return [[records[i] for i in indices]]
        batches: list[list[RecordIn]] = []
        current: list[RecordIn] = []
        size = _BATCH_OVERHEAD
        for i in indices:
            record = records[i]
            record_size = estimated_size(record)
            if current and size + record_size > limit:
                batches.append(current)
                current, size = [], _BATCH_OVERHEAD
            current.append(record)
            size += record_size
        if current:
            batches.append(current)
        if idempotent and len(batches) > 1:
            raise RecordTooLargeError(
                f"an idempotent produce request must fit one record batch of max.message.bytes={limit}; "
                "send fewer records per request",
                limit=limit,
            )
        return batches

    async def _produce_partition(
        self,
        handle: PartitionHandle,
        records: Sequence[RecordIn],
        batches: list[list[RecordIn]],
        parsed: ParsedRecords,
        acks: Acks,
        config: LogConfig,
    ) -> tuple[list[RecordResult], int]:
        replication = self.replication
        await replication.ensure_known(handle)
        await handle.write_lock.acquire()
        try:
            replication.check_append(handle, acks_all=acks is Acks.ALL)
        except BaseException:
            handle.write_lock.release()
            raise
        config_now = handle.log.config
        if (
            acks is not Acks.NONE
            and config_now.flush_messages is None
            and config_now.flush_ms is None
            and all(len(b) <= _INLINE_APPEND_RECORDS for b in batches)
        ):
            # Small batches append on the loop without suspending (``_append_locked`` awaits nothing
            # then), so nothing can cancel the append half-way: no task of its own is needed, which
            # saves a task and a shield per single-record request.
            try:
                appended, n_bytes = await self._append_locked(handle, batches, parsed)
            finally:
                handle.write_lock.release()
        else:
            # The append runs in a task of its own that releases the lock when it ends: a request
            # cancelled meanwhile (client gone, shutdown) must neither stop an append half-way nor
            # free the lock while a thread still appends.
            task = asyncio.get_running_loop().create_task(self._append_then_release(handle, batches, parsed))
            if acks is Acks.NONE:
                self._background.add(task)
                task.add_done_callback(self._background.discard)
                task.add_done_callback(_log_background_append)
                n = sum(len(b) for b in batches)
                return [RecordResult(handle.partition)] * n, 0
            appended, n_bytes = await asyncio.shield(task)
        if acks is Acks.ALL and appended:
            try:
                await handle.wait_durable(appended[-1].last_offset + 1)
            except storage_errors.StorageError as exc:
                self.note_storage_failure(handle, exc)
                raise _translate(exc, self._closed) from exc
            await replication.wait_replicated(handle, appended[-1].last_offset + 1)
        log_append_time = config.message_timestamp_type == TimestampType.LOG_APPEND_TIME
        results: list[RecordResult] = []
        p = handle.partition
        # tuple.__new__ with every field given: the NamedTuple's own __new__ is a Python function
        # and costs more than half again as much, once per produced record.
        new_tuple = tuple.__new__
        result_of = RecordResult
        for batch, result in zip(batches, appended, strict=True):
            base = result.base_offset
            if log_append_time:
                ts = result.log_append_time
                results += [new_tuple(result_of, (p, base + j, ts, None, None)) for j in range(len(batch))]
            else:
                # Timestamps were filled in at parse time (the broker's clock when absent).
                results += [
                    new_tuple(result_of, (p, base + j, r.timestamp or 0, None, None))
                    for j, r in enumerate(batch)
                ]
        return results, n_bytes

    async def _append_then_release(
        self, handle: PartitionHandle, batches: list[list[RecordIn]], parsed: ParsedRecords
    ) -> tuple[list[AppendResult], int]:
        try:
            return await self._append_locked(handle, batches, parsed)
        finally:
            handle.write_lock.release()

    async def _append_locked(
        self, handle: PartitionHandle, batches: list[list[RecordIn]], parsed: ParsedRecords
    ) -> tuple[list[AppendResult], int]:
        """Append the batches (the partition's lock is held). Returns their results and bytes added."""
        log = handle.log
        results: list[AppendResult] = []
        size_before = log.size_bytes
        sequence = parsed.sequence
        config = log.config
        # Small batches are appended on the loop: the thread hop would cost more than the append.
        # Not when the log may fsync inside the append (flush.messages / flush.ms).
        may_fsync = config.flush_messages is not None or config.flush_ms is not None
        try:
            for batch in batches:
                if len(batch) <= _INLINE_APPEND_RECORDS and not may_fsync:
                    result = log.append_records(
                        batch,
                        producer_id=parsed.producer_id,
                        producer_epoch=parsed.producer_epoch,
                        base_sequence=sequence,
                    )
                else:
                    result = await asyncio.to_thread(
                        log.append_records,
                        batch,
                        producer_id=parsed.producer_id,
                        producer_epoch=parsed.producer_epoch,
                        base_sequence=sequence,
                    )
                if sequence >= 0:
                    sequence += len(batch)
                results.append(result)
                self.replication.after_append(handle)
        except storage_errors.StorageError as exc:
            self.note_storage_failure(handle, exc)
            raise _translate(exc, self._closed) from exc
        self.storage_health.write_succeeded()
        return results, max(0, log.size_bytes - size_before)

    async def produce_batches(
        self, topic: str, partition: int, body: bytes, *, acks: Acks = Acks.ALL, max_decompressed: int
    ) -> tuple[list[AppendResult], int]:
        """Append a binary produce body (record batches v2, ``app/broker/batch.py``) to one partition.

        Every batch is checked before any is appended (a failure refuses the whole request); then the
        batches' bytes are appended as they are, with offsets, the leader epoch and (LogAppendTime
        topics) the append time patched in, under the idempotent-producer checks of the log. Returns
        each batch's ``AppendResult`` (empty with acks=0) and the bytes appended.
        """
        handle = await self.partition(topic, partition)
        config = handle.log.config
        now_ms = int(time.time() * 1000)
        check = functools.partial(
            check_batches,
            body,
            config,
            now_ms=now_ms,
            max_records=self.settings.max_records_per_request,
            max_decompressed=max_decompressed,
            max_depth=self.settings.max_json_depth,
        )
        # The scan is CPU work in proportion to the body: small bodies are checked on the loop.
        checked = check() if len(body) <= _INLINE_CHECK_BYTES else await asyncio.to_thread(check)
        first = checked[0].header
        if first.producer_id >= 0:
            newest = self._producer_epochs.get(first.producer_id)
            if newest is not None and first.producer_epoch < newest:
                raise ProducerFencedError(
                    f"producer {first.producer_id} epoch {first.producer_epoch} is fenced by epoch {newest}"
                )
        await self.replication.ensure_known(handle)
        await handle.write_lock.acquire()
        try:
            self.replication.check_append(handle, acks_all=acks is Acks.ALL)
        except BaseException:
            handle.write_lock.release()
            raise
        batches = [body[c.position : c.position + c.size] for c in checked]
        task = asyncio.get_running_loop().create_task(self._append_batches_then_release(handle, batches))
        if acks is Acks.NONE:
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            task.add_done_callback(_log_background_append)
            return [], 0
        appended, n_bytes = await asyncio.shield(task)
        if acks is Acks.ALL and appended:
            try:
                await handle.wait_durable(appended[-1].last_offset + 1)
            except storage_errors.StorageError as exc:
                self.note_storage_failure(handle, exc)
                raise _translate(exc, self._closed) from exc
            await self.replication.wait_replicated(handle, appended[-1].last_offset + 1)
        return appended, n_bytes

    async def _append_batches_then_release(
        self, handle: PartitionHandle, batches: list[bytes]
    ) -> tuple[list[AppendResult], int]:
        """Append checked batches as they are (the partition's lock is held; released at the end)."""
        try:
            log = handle.log
            size_before = log.size_bytes
            may_fsync = log.config.flush_messages is not None or log.config.flush_ms is not None
            results: list[AppendResult] = []
            try:
                for batch in batches:
                    if len(batch) <= _INLINE_CHECK_BYTES and not may_fsync:
                        result = log.append_batch(batch, records_checked=True)
                    else:
                        result = await asyncio.to_thread(log.append_batch, batch, records_checked=True)
                    results.append(result)
                    self.replication.after_append(handle)
            except storage_errors.StorageError as exc:
                self.note_storage_failure(handle, exc)
                raise _translate(exc, self._closed) from exc
            self.storage_health.write_succeeded()
            return results, max(0, log.size_bytes - size_before)
        finally:
            handle.write_lock.release()

    # -- producers ----------------------------------------------------------------------------------

    async def init_producer(
        self, producer_id: int | None = None, producer_epoch: int | None = None
    ) -> producers_catalog.ProducerIdentity:
        """A new idempotent producer id (epoch 0), or the given id with its epoch bumped (fencing)."""
        now_ms = int(time.time() * 1000)

        def run() -> producers_catalog.ProducerIdentity:
            with self.catalog.begin() as session:
                return producers_catalog.init_producer(
                    session, now_ms=now_ms, producer_id=producer_id, producer_epoch=producer_epoch
                )

        try:
            identity = await asyncio.to_thread(run)
        except producers_catalog.ProducerLookupError:
            raise UnknownProducerError(f"producer id {producer_id} was never allocated") from None
        except producers_catalog.StaleProducerEpochError as exc:
            raise ProducerFencedError(
                f"producer {producer_id} is at epoch {exc.current_epoch}, not {producer_epoch}: "
                "a newer incarnation has fenced this one",
                current_epoch=exc.current_epoch,
            ) from None
        newest = self._producer_epochs.get(identity.producer_id, -1)
        self._producer_epochs[identity.producer_id] = max(newest, identity.producer_epoch)
        return identity

    # -- fetch --------------------------------------------------------------------------------------

    async def fetch(
        self,
        topic: str,
        partition: int,
        offset: int | None,
        *,
        max_records: int,
        max_bytes: int,
        max_wait_ms: int,
        min_bytes: int = 1,
        leader_only: bool = False,
    ) -> FetchResult:
        """Records of one partition from ``offset`` (None: the log start), never past the high watermark.

        In a cluster, ``leader_only`` refuses (redirects) a read on a follower: a partition read
        sees every acknowledged write (read-your-writes); streams and group polls use
        ``confirmed_high_watermark`` (ReadIndex) instead.

        Long-poll: answers as soon as at least ``min_bytes`` of record batches are readable, or after
        ``max_wait_ms`` with whatever there is. Raises ``OffsetOutOfRangeError`` (with
        ``log_start_offset`` and ``high_watermark``) for an offset below the log start or above its end.
        """
        handle = await self.partition(topic, partition)
        await self.replication.ensure_known(handle)
        self.replication.check_fetch(handle, offset, leader_only=leader_only)
        log = handle.log
        # Read in steps rather than max_bytes at once: a read copies every byte it covers, and a
        # fetch of max_records often needs a small part of max_bytes (1,000 records of 100 bytes are
        # ~130 KB of a 4 MiB budget). The steps add up to what one read of max_bytes would return.
        first_read = min(max_bytes, max(min_bytes, _FETCH_STEP_BYTES))
        data, position, high_watermark, log_start = await self.read_when_ready(
            handle, topic, offset, first_read, min_bytes, max_wait_ms
        )
        records, types, next_offset = decode_fetched(
            data, offset=position, high_watermark=high_watermark, max_records=max_records
        )
        total = len(data)
        step = first_read
        # A read stops at its step or at the end of a segment: continue while the answer has room,
        # so a fetch returns max_records whenever that many are there within max_bytes.
        while len(records) < max_records and next_offset < high_watermark and total < max_bytes:
            step = min(step * 2, max_bytes - total)
            try:
                more = log.read(next_offset, step, max_offset=high_watermark).data
            except storage_errors.StorageError:
                break  # retention or deletion meanwhile: answer what was read
            if not more or total + len(more) > max_bytes:
                break
            room = max_records - len(records)
            extra, extra_types, after = decode_fetched(
                more, offset=next_offset, high_watermark=high_watermark, max_records=room
            )
            if after <= next_offset:
                break
            records += extra
            types += extra_types
            next_offset = after
            total += len(more)
        return FetchResult(
            records=records,
            next_offset=next_offset,
            high_watermark=high_watermark,
            log_start_offset=log_start,
            timestamp_types=types,
            bytes_read=total,
        )

    async def read_when_ready(
        self, handle: PartitionHandle, topic: str, offset: int | None, read_bytes: int, min_bytes: int,
        max_wait_ms: int,
    ) -> tuple[bytes, int, int, int]:  # fmt: skip
        """The long poll of a fetch: whole batches from ``offset`` (None: the log start), read once at
        least ``min_bytes`` are readable or ``max_wait_ms`` has passed.

        Returns the data (at most ``read_bytes``, at least one whole batch when there is one), the
        position read from, the high watermark and the log start offset the read saw. Raises
        ``OffsetOutOfRangeError`` for an offset below the log start or above its end.
        """
        loop = asyncio.get_running_loop()
        log = handle.log
        deadline = loop.time() + max_wait_ms / 1000.0
        event: asyncio.Event | None = None
        try:
            while True:
                high_watermark = log.high_watermark
                log_start = log.log_start_offset
                position = log_start if offset is None else offset
                if position < log_start or position > log.log_end_offset:
                    raise OffsetOutOfRangeError(
                        f"offset {position} is out of range: the log holds [{log_start}, {high_watermark})",
                        offset=position,
                        log_start_offset=log_start,
                        high_watermark=high_watermark,
                        log_end_offset=log.log_end_offset,
                    )
                data = b""
                if position < high_watermark:
                    try:
                        data = log.read(position, read_bytes, max_offset=high_watermark).data
                    except storage_errors.OffsetOutOfRangeError:
                        continue  # retention moved the log start meanwhile: check again
                    except storage_errors.LogClosedError as exc:
                        raise _translate(exc, self._closed) from None
                remaining = deadline - loop.time()
                if len(data) >= min_bytes or remaining <= 0:
                    return data, position, high_watermark, log_start
                if event is None:
                    event = asyncio.Event()
                    handle.add_waiter(event)
                    continue  # registered: check once more so no append is missed
                if self._closed:
                    # shutting down: answer with what there is rather than hold the shutdown
                    return data, position, high_watermark, log_start
                if self._topics.get(topic) is None:
                    raise UnknownTopicError(f"topic {topic!r} was deleted")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
                event.clear()
        finally:
            if event is not None:
                handle.remove_waiter(event)

    async def fetch_batches(
        self,
        topic: str,
        partition: int,
        offset: int | None,
        *,
        max_bytes: int,
        max_wait_ms: int,
        min_bytes: int = 1,
        leader_only: bool = False,
    ) -> BatchFetchResult:
        """The stored batches of one partition from the batch holding ``offset``, below the high watermark.

        The long poll and the errors of ``fetch``; the bytes are one ``pread`` of at most ``max_bytes``
        (at least one whole batch), returned as they are, not decoded.
        """
        handle = await self.partition(topic, partition)
        await self.replication.ensure_known(handle)
        self.replication.check_fetch(handle, offset, leader_only=leader_only)
        data, position, high_watermark, log_start = await self.read_when_ready(
            handle, topic, offset, max_bytes, min_bytes, max_wait_ms
        )
        next_offset = max(position, min(batches_end_offset(data), high_watermark)) if data else position
        return BatchFetchResult(data, position, next_offset, high_watermark, log_start)

    async def wait_for_data(self, positions: Mapping[tuple[str, int], int], timeout_s: float) -> bool:
        """True as soon as any listed partition's high watermark is above its position; False on timeout.

        Also True when a listed topic is deleted meanwhile (the caller's next fetch answers 404),
        and False at once when the broker shuts down.
        """
        loop = asyncio.get_running_loop()
        handles = [(await self.partition(t, p), position) for (t, p), position in positions.items()]
        deadline = loop.time() + timeout_s
        event = asyncio.Event()
        for handle, _ in handles:
            handle.add_waiter(event)
        try:
            while True:
                if any(handle.high_watermark > position for handle, position in handles):
                    return True
                if self._closed:
                    return False
                if any(self._topics.get(handle.topic) is None for handle, _ in handles):
                    return True  # a topic was deleted: the caller's next fetch reports it
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                try:
                    await asyncio.wait_for(event.wait(), remaining)
                except TimeoutError:
                    return any(handle.high_watermark > position for handle, position in handles)
                event.clear()
        finally:
            for handle, _ in handles:
                handle.remove_waiter(event)

    async def confirmed_high_watermark(self, handle: PartitionHandle) -> int:
        """The high watermark a stream or group poll served by this broker may read up to: in a
        cluster, on a follower, the local one once it covers the leader's (ReadIndex)."""
        await self.replication.ensure_known(handle)
        return await self.replication.read_index(handle)

    # -- offsets ------------------------------------------------------------------------------------

    async def delete_records(self, topic: str, partition: int, offset: int) -> int:
        """Move a partition's log start up to ``offset`` (``-1``: its high watermark), as Kafka's
        DeleteRecords does; returns the new log start (the low watermark).

        Only the leader deletes (a follower answers like a produce would: not the leader); followers
        move their log start when they next fetch from it (the replica fetch carries the leader's
        log start). An offset beyond the high watermark is ``OffsetOutOfRangeError``.
        """
        handle = await self.partition(topic, partition)
        self.replication.check_append(handle, acks_all=False)
        log = handle.log
        target = log.high_watermark if offset == -1 else offset
        try:
            return await asyncio.to_thread(log.delete_records, target)
        except storage_errors.OffsetOutOfRangeError:
            high_watermark = log.high_watermark
            raise OffsetOutOfRangeError(
                f"cannot delete records below {target}: the high watermark is {high_watermark}",
                offset=target,
                log_start_offset=log.log_start_offset,
                high_watermark=high_watermark,
                log_end_offset=log.log_end_offset,
            ) from None

    def offset_for_timestamp(self, topic: str, partition: int, timestamp_ms: int) -> int | None:
        """The earliest offset whose timestamp is >= ``timestamp_ms`` below the high watermark, or None."""
        handle = self._handle(self._cached_topic(topic), partition)
        offset = handle.log.offset_for_timestamp(timestamp_ms)
        if offset is None or offset >= handle.log.high_watermark:
            return None
        return max(offset, handle.log.log_start_offset)

    # -- background ---------------------------------------------------------------------------------

    def enforce_retention(self, now_ms: int | None = None) -> RetentionStats:
        """Run retention (and compaction on compacted topics) over every partition; purge old
        Idempotency-Key answers. Called by the scheduler in a worker thread."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        partitions = segments = compacted = errors = 0
        try:
            guards: dict[tuple[str, int], int] | None = self._compaction_guards()
        except Exception:
            # Without the guards a changelog could be compacted past what its group committed:
            # skip compaction (never retention) until the catalog answers again.
            guards = None
            errors += 1
            logger.exception("reading compaction.guard.group bounds failed: no compaction this pass")
        for topic in list(self._topics.values()):
            compact = guards is not None and "compact" in topic.config.cleanup_policy
            for handle in topic.partitions:
                partitions += 1
                try:
                    segments += handle.log.enforce_retention(now)
                    bound = guards.get((handle.topic, handle.partition)) if guards else None
                    if compact and handle.log.compact(now, max_offset=bound) is not None:
                        compacted += 1
                except storage_errors.LogClosedError:
                    continue  # deleted meanwhile
                except Exception:
                    errors += 1
                    logger.exception("retention of %s-%d failed", handle.topic, handle.partition)
        purged = 0
        try:
            with self.catalog.begin() as session:
                purged = producers_catalog.purge_expired_idempotency_keys(session, now_ms=now)
        except Exception:
            errors += 1
            logger.exception("purging expired Idempotency-Key answers failed")
        return RetentionStats(partitions, segments, compacted, purged, errors)

    def _compaction_guards(self) -> dict[tuple[str, int], int]:
        """Where ``compaction.guard.group`` stops compaction, per partition (empty if none is set)."""
        with self.catalog.begin() as session:
            return groups_catalog.compaction_guards(session)

    def iter_handles(self) -> Iterable[PartitionHandle]:
        for topic in list(self._topics.values()):
            yield from topic.partitions


def _check_timestamps(records: Sequence[RecordIn], config: LogConfig, now_ms: int) -> None:
    """Refuse a CreateTime record outside ``message.timestamp.before/after.max.ms`` (KIP-937).

    One far-future timestamp would otherwise keep its segment from rolling by time and from ever
    being old enough for time retention (segment.ms and retention.ms count in record time).
    """
    earliest = now_ms - config.message_timestamp_before_max_ms
    latest = now_ms + config.message_timestamp_after_max_ms
    for i, record in enumerate(records):
        ts = record.timestamp
        if ts is not None and not earliest <= ts <= latest:
            side = "before" if ts < earliest else "after"
            limit = getattr(config, f"message_timestamp_{side}_max_ms")
            raise InvalidTimestampError(
                f"records[{i}].timestamp {ts} is more than message.timestamp.{side}.max.ms={limit} "
                f"{side} the broker's clock ({now_ms})",
                index=i,
                timestamp=ts,
            )


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
