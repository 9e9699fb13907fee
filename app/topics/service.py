"""TopicService: create, describe, grow, reconfigure and delete topics. No FastAPI here.

Every change is one catalog transaction; the Broker's hooks (``open_topic``, ``update_topic_config``,
``delete_topic``) run after it commits, so the logs never hold a topic the catalog does not. Catalog
work runs in a worker thread (the catalog is synchronous); the hooks run on the event loop, where the
Broker keeps its per-partition state.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from anyio import to_thread
from sqlalchemy.exc import IntegrityError

from app.catalog import Catalog
from app.catalog import topics as catalog_topics
from app.config import Settings
from app.errors_base import UnknownPartitionError, UnknownTopicError
from app.topics.configs import (
    TOPIC_CONFIGS,
    ConfigValue,
    effective_configs,
    log_config_for,
    validate_overrides,
)
from app.topics.errors import (
    InvalidConfigError,
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    InvalidTopicNameError,
    TopicExistsError,
)
from storage.config import LogConfig

if TYPE_CHECKING:
    from app.broker.replication import Replication
    from app.cluster.placement import ReplicaPlacer

__all__ = ["MAX_TOPIC_NAME_LENGTH", "PartitionInfo", "TopicConfigs", "TopicInfo", "TopicService",
           "TopicSummary", "validate_topic_name"]

MAX_TOPIC_NAME_LENGTH = 249
_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]+")


class PartitionOffsets(Protocol):
    @property
    def log_start_offset(self) -> int: ...
    @property
    def high_watermark(self) -> int: ...
    @property
    def log_end_offset(self) -> int: ...


class TopicHooks(Protocol):
    """What TopicService needs of the Broker."""

    def open_topic(self, topic: str, partitions: int, config: LogConfig, topic_id: str) -> None: ...
    def topic_id(self, topic: str) -> str: ...
    def delete_topic(self, topic: str) -> None: ...
    def update_topic_config(self, topic: str, config: LogConfig) -> None: ...
    def partition_state(self, topic: str, partition: int) -> PartitionOffsets: ...
    def partition_count(self, topic: str) -> int: ...


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    partition: int
    leader: int | None
    replicas: list[int]
    isr: list[int]
    leader_epoch: int
    log_start_offset: int
    high_watermark: int
    log_end_offset: int


@dataclass(frozen=True, slots=True)
class TopicSummary:
    name: str
    topic_id: str
    replication_factor: int
    partition_count: int


@dataclass(frozen=True, slots=True)
class TopicConfigs:
    """A topic's effective configs, and which of them are the broker defaults (not overridden)."""

    topic: str
    configs: dict[str, ConfigValue]
    defaults: list[str]


@dataclass(frozen=True, slots=True)
class TopicInfo:
    name: str
    topic_id: str | None
    replication_factor: int
    partitions: list[PartitionInfo]
    configs: dict[str, ConfigValue] = field(default_factory=dict)
    defaults: list[str] = field(default_factory=list)

    @property
    def partition_count(self) -> int:
        return len(self.partitions)


@dataclass(frozen=True, slots=True)
class _TopicRecord:
    """What a catalog transaction hands back: plain values, no ORM object across threads."""

    name: str
    topic_id: str
    replication_factor: int
    partitions: list[tuple[int, int | None, list[int], list[int], int]]
    overrides: dict[str, ConfigValue]


def validate_topic_name(name: str) -> None:
    """Kafka's rules: 1 to 249 characters of ``[a-zA-Z0-9._-]``, and not ``.`` or ``..``."""
    if not name:
        raise InvalidTopicNameError("topic name is empty")
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        raise InvalidTopicNameError(
            f"topic name is {len(name)} characters long; the limit is {MAX_TOPIC_NAME_LENGTH}"
        )
    if name in (".", ".."):
        raise InvalidTopicNameError(f"topic name cannot be {name!r}")
    if not _TOPIC_NAME.fullmatch(name):
        raise InvalidTopicNameError(
            f"topic name {name!r} has characters other than ASCII letters, digits, '.', '_' and '-'"
        )


def _record(row: catalog_topics.TopicRow) -> _TopicRecord:
    return _TopicRecord(
        name=row.name,
        topic_id=row.topic_uuid,
        replication_factor=row.replication_factor,
        partitions=[
            (p.partition, p.leader, list(p.replicas), list(p.isr), p.leader_epoch) for p in row.partitions
        ],
        overrides=dict(row.config_overrides),
    )


class TopicService:
    """Topic administration over the catalog and the Broker."""

    def __init__(
        self, settings: Settings, catalog: Catalog, broker: TopicHooks, replication: Replication
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.broker = broker
        # Changes run one at a time: a delete's hook must not run after a re-create of the same name
        # has committed and opened its logs (admin operations are rare; reads are not serialised).
        self._changes = asyncio.Lock()
        #: Readiness of new partitions (app/broker/replication.py: SingleNode or the cluster manager).
        self.replication = replication
        #: Clustered mode's replica placement (app/cluster/placement.py); None on a single node.
        self.placer: ReplicaPlacer | None = replication.placer

    # --- reads

    async def list_topics(self) -> list[TopicSummary]:
        """Every topic's name, id, replication factor and partition count, by name."""
        return await to_thread.run_sync(self._list)

    def record_counts(self, names: Sequence[str]) -> dict[str, int]:
        """Records held per topic (high watermark - log start, over the partitions opened here)."""
        counts: dict[str, int] = {}
        for name in names:
            try:
                partitions = self.broker.partition_count(name)
                total = 0
                for partition in range(partitions):
                    state = self.broker.partition_state(name, partition)
                    total += state.high_watermark - state.log_start_offset
            except (UnknownTopicError, UnknownPartitionError):
                continue  # not (yet) opened on this broker: no local count
            counts[name] = total
        return counts

    async def get_topic(self, name: str) -> TopicInfo:
        """The topic with its partitions' leaders and offsets and its effective configs."""
        record = await to_thread.run_sync(self._get, name)
        self._ensure_open(record)
        return self._info(record, with_offsets=True)

    async def get_configs(self, name: str) -> TopicConfigs:
        record = await to_thread.run_sync(self._get, name)
        return self._configs(record)

    # --- changes

    async def create_topic(
        self,
        name: str,
        *,
        partitions: int | None = None,
        replication_factor: int | None = None,
        configs: Mapping[str, object] | None = None,
        validate_only: bool = False,
    ) -> TopicInfo:
        """Create a topic (or, with ``validate_only``, say what would be created)."""
        validate_topic_name(name)
        count = self.settings.num_partitions if partitions is None else partitions
        self._check_partition_count(count)
        factor = 1 if replication_factor is None else replication_factor
        replicas = self._replicas(factor)
        overrides: dict[str, ConfigValue] = {
            k: v for k, v in validate_overrides(configs or {}).items() if v is not None
        }
        self._check_consistency(overrides, factor)
        log_config = log_config_for(self.settings, overrides)
        if validate_only:
            exists = await to_thread.run_sync(self._exists, name)
            if exists:
                raise TopicExistsError(f"topic {name!r} already exists", topic=name)
            record = _TopicRecord(
                name=name, topic_id="", replication_factor=factor,
                partitions=[(p, replicas[0], replicas, replicas, 0) for p in range(count)],
                overrides=overrides,
            )
            info = self._info(record, with_offsets=False)
            return TopicInfo(name=info.name, topic_id=None, replication_factor=factor,
                             partitions=info.partitions, configs=info.configs, defaults=info.defaults)
        async with self._changes:
            record = await to_thread.run_sync(self._create, name, count, replicas, overrides)
            self.broker.open_topic(name, count, log_config, record.topic_id)
        return self._info(record, with_offsets=True)

    async def wait_ready(self, name: str, partitions: int, timeout_ms: int) -> list[int]:
        """The partitions not yet servable by every live broker after up to ``timeout_ms``.

        A single node serves a partition the moment its log is open: always empty there. In a
        cluster a new partition needs a leader that took up its leadership (with ISR >=
        min.insync.replicas) and every other broker knowing it, so that the first produce through
        any broker succeeds.
        """
        return await self.replication.wait_ready(name, partitions, timeout_ms)

    async def add_partitions(self, name: str, partitions: int) -> TopicInfo:
        """Raise the topic's partition count to ``partitions`` (the same count is a no-op)."""
        self._check_partition_count(partitions)
        async with self._changes:
            record, grew = await to_thread.run_sync(self._grow, name, partitions)
            if grew:
                self.broker.open_topic(
                    name, partitions, log_config_for(self.settings, record.overrides), record.topic_id
                )
        return self._info(record, with_offsets=True)

    async def update_configs(self, name: str, configs: Mapping[str, object]) -> TopicConfigs:
        """Merge ``configs`` into the topic's overrides; a ``None`` value resets that config."""
        changes = validate_overrides(configs)
        async with self._changes:
            record = await to_thread.run_sync(self._update_configs, name, changes)
            self.broker.update_topic_config(name, log_config_for(self.settings, record.overrides))
        return self._configs(record)

    async def delete_topic(self, name: str) -> None:
        """Delete the topic from the catalog, then its logs."""
        async with self._changes:
            await to_thread.run_sync(self._delete, name)
            self.broker.delete_topic(name)

    def _ensure_open(self, record: _TopicRecord) -> None:
        """Open logs the catalog has and this broker has not: the topic (or its new partitions, or a
        new incarnation of it) was created through another broker process sharing the catalog."""
        try:
            opened = self.broker.partition_count(record.name)
            same = self.broker.topic_id(record.name) == record.topic_id
        except UnknownTopicError:
            opened, same = 0, False
        if opened < len(record.partitions) or not same:
            # a different id: the topic was deleted and re-created through another broker process
            self.broker.open_topic(
                record.name, len(record.partitions), log_config_for(self.settings, record.overrides),
                record.topic_id,
            )

    # --- checks

    def _check_partition_count(self, count: int) -> None:
        limit = self.settings.max_partitions_per_topic
        if not 1 <= count <= limit:
            raise InvalidPartitionsError(
                f"partitions must be between 1 and {limit} (max_partitions_per_topic), got {count}",
                max_partitions=limit,
            )

    def _replicas(self, factor: int) -> list[int]:
        if self.placer is not None and factor >= 1:
            # Clustered: the factor is checked against the live brokers and the replicas placed
            # in the catalog transaction (``_create``/``_grow``); this list is a placeholder.
            return [self.settings.broker_id] * factor
        # A single broker: the only valid replica set is this broker.
        if factor != 1:
            raise InvalidReplicationFactorError(
                f"replication_factor {factor} is larger than the 1 available broker"
                if factor > 1 else f"replication_factor must be at least 1, got {factor}",
                available_brokers=1,
            )
        return [self.settings.broker_id]

    def _check_consistency(self, overrides: Mapping[str, ConfigValue], factor: int) -> None:
        effective = effective_configs(self.settings, overrides)
        min_isr = effective["min.insync.replicas"]
        if isinstance(min_isr, int) and min_isr > factor:
            raise InvalidConfigError(
                f"min.insync.replicas={min_isr} is larger than the replication factor {factor}: "
                "acks=all writes could never succeed",
                config="min.insync.replicas",
            )

    # --- catalog transactions (worker threads)

    def _list(self) -> list[TopicSummary]:
        with self.catalog.read() as session:
            return [TopicSummary(*row) for row in catalog_topics.list_topic_summaries(session)]

    def _get(self, name: str) -> _TopicRecord:
        with self.catalog.read() as session:
            row = catalog_topics.get_topic(session, name=name)
            if row is None:
                raise UnknownTopicError(f"topic {name!r} does not exist", topic=name)
            return _record(row)

    def _exists(self, name: str) -> bool:
        with self.catalog.read() as session:
            return catalog_topics.get_topic(session, name=name) is not None

    def _create(
        self, name: str, count: int, replicas: Sequence[int], overrides: Mapping[str, ConfigValue]
    ) -> _TopicRecord:
        try:
            with self.catalog.begin() as session:
                if catalog_topics.get_topic(session, name=name) is not None:
                    raise TopicExistsError(f"topic {name!r} already exists", topic=name)
                row = catalog_topics.create_topic(
                    session,
                    name=name,
                    topic_uuid=str(uuid.uuid4()),
                    partitions=count,
                    replicas=replicas,
                    configs={k: v for k, v in overrides.items() if v is not None},
                    created_at_ms=int(time.time() * 1000),
                )
                if self.placer is not None:
                    self.placer.place(session, row, first_partition=0)
                return _record(row)
        except IntegrityError as exc:  # another broker process created it between our check and insert
            raise TopicExistsError(f"topic {name!r} already exists", topic=name) from exc

    def _grow(self, name: str, count: int) -> tuple[_TopicRecord, bool]:
        with self.catalog.begin() as session:
            row = catalog_topics.get_topic(session, name=name)
            if row is None:
                raise UnknownTopicError(f"topic {name!r} does not exist", topic=name)
            current = len(row.partitions)
            if count < current:
                raise InvalidPartitionsError(
                    f"topic {name!r} has {current} partitions; the count can only be raised, not lowered "
                    f"to {count}",
                    partitions=current,
                )
            if count == current:
                return _record(row), False
            replicas = row.partitions[0].replicas
            catalog_topics.add_partitions(session, topic=row, count=count, replicas=replicas)
            if self.placer is not None:
                self.placer.place(session, row, first_partition=current)
            return _record(row), True

    def _update_configs(self, name: str, changes: Mapping[str, ConfigValue]) -> _TopicRecord:
        with self.catalog.begin() as session:
            row = catalog_topics.get_topic(session, name=name)
            if row is None:
                raise UnknownTopicError(f"topic {name!r} does not exist", topic=name)
            overrides = dict(row.config_overrides)
            for key, value in changes.items():
                if value is None:
                    overrides.pop(key, None)
                else:
                    overrides[key] = value
            self._check_consistency(overrides, row.replication_factor)
            log_config_for(self.settings, overrides)  # every combination the log would refuse, refused here
            catalog_topics.set_topic_configs(session, topic=row, overrides=overrides)
            return _record(row)

    def _delete(self, name: str) -> None:
        with self.catalog.begin() as session:
            row = catalog_topics.get_topic(session, name=name)
            if row is None:
                raise UnknownTopicError(f"topic {name!r} does not exist", topic=name)
            catalog_topics.delete_topic(session, topic=row)

    # --- shaping

    def _configs(self, record: _TopicRecord) -> TopicConfigs:
        configs = effective_configs(self.settings, record.overrides)
        defaults = sorted(name for name in TOPIC_CONFIGS if name not in record.overrides)
        return TopicConfigs(topic=record.name, configs=configs, defaults=defaults)

    def _info(self, record: _TopicRecord, *, with_offsets: bool) -> TopicInfo:
        partitions = []
        for partition, leader, replicas, isr, epoch in record.partitions:
            start = high = end = 0
            if with_offsets:
                state = self.broker.partition_state(record.name, partition)
                start, high, end = state.log_start_offset, state.high_watermark, state.log_end_offset
            partitions.append(PartitionInfo(partition, leader, replicas, isr, epoch, start, high, end))
        configs = self._configs(record)
        return TopicInfo(
            name=record.name,
            topic_id=record.topic_id or None,
            replication_factor=record.replication_factor,
            partitions=partitions,
            configs=configs.configs,
            defaults=configs.defaults,
        )
