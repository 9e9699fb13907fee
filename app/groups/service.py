"""``GroupService``: the coordinator joined with the data path (positions, long-poll, lag, resets).

The coordinator (catalog, synchronous) runs in worker threads; fetching runs on the event loop through
the ``Broker``. A poll is two short catalog transactions around the fetch: the first heartbeats and
reads the member's partitions and positions, the second stores the advanced positions and drops what
the member lost to a rebalance meanwhile. No transaction is held while waiting for data.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from anyio import to_thread
from sqlalchemy.exc import OperationalError

from app.catalog.db import Catalog
from app.config import Settings
from app.errors_base import (
    InvalidParameterError,
    NotReadyError,
    OverloadedError,
    UnknownPartitionError,
    UnknownTopicError,
)
from app.groups.assignors import TopicPartition
from app.groups.coordinator import GroupCoordinator
from app.groups.errors import GroupNotEmptyError, NoCommittedOffsetError, UnknownGroupError
from app.groups.model import (
    CommittedOffset,
    GroupDescription,
    GroupSummary,
    JoinRequest,
    MemberState,
    MemberView,
    OffsetCommit,
    PartitionPosition,
)
from storage import Record, TimestampType
from storage.errors import OffsetOutOfRangeError

if TYPE_CHECKING:
    from app.broker import Broker

__all__ = ["FetchedRecord", "GroupService", "OffsetLag", "PollResult", "ResetPlanEntry"]

logger = logging.getLogger("tidelog.groups")
T = TypeVar("T")

SEEK_TARGETS = ("earliest", "latest", "offset", "timestamp")
RESET_TARGETS = ("earliest", "latest", "timestamp", "offset", "shift_by")


@dataclass(frozen=True, slots=True)
class FetchedRecord:
    topic: str
    partition: int
    record: Record
    timestamp_type: TimestampType


@dataclass(frozen=True, slots=True)
class PollResult:
    view: MemberView
    records: list[FetchedRecord]
    #: Next offset per partition after this poll (what a cursor or a commit would carry).
    positions: dict[TopicPartition, int]


@dataclass(frozen=True, slots=True)
class OffsetLag:
    topic: str
    partition: int
    offset: int
    metadata: str | None
    committed_at_ms: int
    high_watermark: int | None
    lag: int | None


@dataclass(frozen=True, slots=True)
class ResetPlanEntry:
    topic: str
    partition: int
    previous_offset: int | None
    offset: int


class GroupService:
    """Consumer-group operations for the HTTP layer and the SSE streams of one broker process."""

    def __init__(self, settings: Settings, catalog: Catalog, broker: Broker) -> None:
        self.settings = settings
        self.broker = broker
        self.coordinator = GroupCoordinator(
            catalog,
            min_session_timeout_ms=settings.group_min_session_timeout_ms,
            max_session_timeout_ms=settings.group_max_session_timeout_ms,
            offsets_retention_ms=settings.offsets_retention_minutes * 60_000,
        )
        self._turn = itertools.count()
        self._sweeper: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the periodic sweep (session expiry and offset retention for idle groups)."""
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="tidelog-group-sweep")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    @property
    def sweep_interval_s(self) -> float:
        return max(0.2, min(5.0, self.settings.group_min_session_timeout_ms / 2000))

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval_s)
            try:
                expired = await self._run(self.coordinator.sweep)
                if expired:
                    logger.info("expired %d group member(s) whose session timed out", expired)
            except Exception:  # a catalog hiccup must not end the sweeps
                logger.exception("group sweep failed")

    @staticmethod
    async def _run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn`` in a worker thread; a catalog that is busy or unreachable becomes a retriable 503."""
        try:
            return await to_thread.run_sync(lambda: fn(*args, **kwargs))
        except OperationalError as exc:
            if "locked" in str(exc.orig).lower():
                # SQLite's write lock stayed taken past busy_timeout: shed load, let the client retry.
                raise OverloadedError("the catalog is busy (its write lock is contended); retry") from None
            logger.warning("catalog unavailable: %s", exc)
            raise NotReadyError("the catalog is unreachable; retry") from None

    # ------------------------------------------------------------------ membership

    async def join(self, group_id: str, request: JoinRequest) -> MemberView:
        return await self._run(self.coordinator.join, group_id, request)

    async def leave(self, group_id: str, member_id: str) -> None:
        await self._run(self.coordinator.leave, group_id, member_id)

    async def heartbeat(
        self, group_id: str, member_id: str, acked_generation: int | None = None
    ) -> MemberView:
        state = await self._run(self.coordinator.sync, group_id, member_id, acked_generation=acked_generation)
        return state.view

    async def sync(
        self,
        group_id: str,
        member_id: str,
        positions: Mapping[TopicPartition, int] | None = None,
    ) -> MemberState:
        return await self._run(self.coordinator.sync, group_id, member_id, positions=positions)

    # ------------------------------------------------------------------ positions and polling

    async def resolve_positions(
        self, positions: Sequence[PartitionPosition], auto_offset_reset: str
    ) -> dict[TopicPartition, int]:
        """Where to fetch each partition: its position, else the committed offset, else the reset policy.

        A position or committed offset outside ``[log_start_offset, high_watermark]`` (retention
        deleted it, or the log was truncated) also falls back to ``auto_offset_reset``.
        """
        resolved: dict[TopicPartition, int] = {}
        for pos in positions:
            handle = await self.broker.partition(pos.topic, pos.partition)
            state = handle.state()
            start, high = state.log_start_offset, state.high_watermark
            for candidate in (pos.position, pos.committed):
                if candidate is not None and start <= candidate <= high:
                    resolved[(pos.topic, pos.partition)] = candidate
                    break
            else:
                resolved[(pos.topic, pos.partition)] = self._reset(
                    pos.topic, pos.partition, auto_offset_reset, start, high, pos.committed
                )
        return resolved

    @staticmethod
    def _reset(topic: str, partition: int, policy: str, start: int, high: int, committed: int | None) -> int:
        if policy == "earliest":
            return start
        if policy == "latest":
            return high
        reason = (
            "no committed offset" if committed is None else f"committed offset {committed} is out of range"
        )
        raise NoCommittedOffsetError(
            f"{topic}-{partition}: {reason} and auto_offset_reset is none",
            topic=topic,
            partition=partition,
            log_start_offset=start,
            high_watermark=high,
        )

    async def fetch_round(
        self,
        positions: dict[TopicPartition, int],
        *,
        max_records: int,
        max_bytes: int,
        auto_offset_reset: str,
    ) -> list[FetchedRecord]:
        """Records from ``positions`` (advanced in place), fair across partitions over time.

        Partitions with records are visited from a start that rotates on every call, each giving
        what is left of ``max_records``/``max_bytes`` (as Kafka's fetch sessions rotate partition
        order): one busy partition cannot starve the others, and a poll costs as few reads as the
        data allows.
        """
        order = []
        for tp in sorted(positions):
            handle = await self.broker.partition(*tp)
            # Through a follower: only once its log covers the leader's high watermark (ReadIndex),
            # so a poll never returns less than the leader would.
            if await self.broker.confirmed_high_watermark(handle) > positions[tp]:
                order.append(tp)
        if not order:
            return []
        start = next(self._turn) % len(order)
        order = order[start:] + order[:start]
        out: list[FetchedRecord] = []
        used_bytes = 0
        for tp in order:
            remaining = max_records - len(out)
            if remaining <= 0 or used_bytes >= max_bytes:
                break
            try:
                result = await self.broker.fetch(
                    tp[0],
                    tp[1],
                    positions[tp],
                    max_records=remaining,
                    max_bytes=max_bytes - used_bytes,
                    max_wait_ms=0,
                )
            except OffsetOutOfRangeError as exc:
                positions[tp] = self._reset(
                    tp[0], tp[1], auto_offset_reset, exc.log_start_offset, exc.log_end_offset, None
                )
                continue
            except UnknownTopicError:
                continue  # deleted meanwhile: the next rebalance drops it
            used_bytes += result.bytes_read
            for record, ts_type in zip(result.records, result.timestamp_types, strict=True):
                out.append(FetchedRecord(tp[0], tp[1], record, ts_type))
            positions[tp] = result.next_offset
        return out

    async def poll(
        self, group_id: str, member_id: str, *, max_records: int, max_bytes: int, max_wait_ms: int,
        check_topics: Callable[[set[str]], None] | None = None,
    ) -> PollResult:
        """A long-poll of the member's partitions; positions advance in the catalog.

        Waits at most half the member's session timeout, so that a poll never outlives its session.
        ``check_topics`` is given the topics of the member's partitions before anything is read and
        may raise (the caller's ACLs: Kafka checks TOPIC READ on every fetch); nothing then advances.
        """
        state = await self._run(self.coordinator.peek, group_id, member_id)
        try:
            positions = await self.resolve_positions(state.positions, state.view.auto_offset_reset)
        except (UnknownTopicError, UnknownPartitionError):
            # A subscribed topic was deleted and nobody has settled the group since: settle, retry.
            state = await self.sync(group_id, member_id)
            positions = await self.resolve_positions(state.positions, state.view.auto_offset_reset)
        if check_topics is not None:
            check_topics({topic for topic, _ in positions})
        view = state.view
        wait_s = min(max_wait_ms, view.session_timeout_ms // 2) / 1000
        if positions and wait_s > 0:
            await self.broker.wait_for_data(positions, wait_s)
        records = await self.fetch_round(
            positions, max_records=max_records, max_bytes=max_bytes, auto_offset_reset=view.auto_offset_reset
        )
        if state.steady and await self._run(self.coordinator.advance, group_id, member_id, positions):
            # Stable group, every partition still ours: positions stored, nothing to settle.
            return PollResult(view=view, records=records, positions=positions)
        after = await self._run(
            self.coordinator.sync, group_id, member_id, positions=positions, with_positions=False
        )
        kept = set(after.view.assignment) | set(after.view.revoking)
        return PollResult(
            view=after.view,
            records=[r for r in records if (r.topic, r.partition) in kept],
            positions={tp: off for tp, off in positions.items() if tp in kept},
        )

    async def seek(
        self, group_id: str, member_id: str, topic: str, partition: int, to: str, value: int | None
    ) -> int:
        """Move the member's position in one partition it owns; answers the new position."""
        offset = await self._target_offset(topic, partition, to, value, committed=None, clamp=False)
        await self._run(self.coordinator.seek, group_id, member_id, (topic, partition), offset)
        return offset

    async def _target_offset(
        self, topic: str, partition: int, to: str, value: int | None, *, committed: int | None, clamp: bool
    ) -> int:
        handle = await self.broker.partition(topic, partition)
        state = handle.state()
        start, high = state.log_start_offset, state.high_watermark
        if to == "earliest":
            return start
        if to == "latest":
            return high
        if value is None:
            raise InvalidParameterError(f"to={to} needs a value")
        if to == "timestamp":
            found = self.broker.offset_for_timestamp(topic, partition, value)
            return high if found is None else found
        if to == "offset":
            target = value
        elif to == "shift_by":
            target = (committed if committed is not None else high) + value
        else:
            raise InvalidParameterError(f"unknown target {to!r}")
        if clamp:
            # kafka-consumer-groups clamps reset targets into the log's range.
            return min(max(target, start), high)
        if not start <= target <= high:
            raise OffsetOutOfRangeError(target, start, high)
        return target

    # ------------------------------------------------------------------ offsets

    async def commit(
        self,
        group_id: str,
        offsets: Sequence[OffsetCommit],
        *,
        member_id: str | None,
        generation: int | None,
    ) -> None:
        await self._run(
            self.coordinator.commit, group_id, offsets, member_id=member_id, generation=generation
        )

    async def commit_forward(self, group_id: str, offsets: Sequence[OffsetCommit]) -> None:
        """Commit offsets a reconnecting SSE client acknowledged, never moving a commit backwards."""
        await self._run(self.coordinator.commit_forward, group_id, offsets)

    async def offsets(self, group_id: str) -> list[OffsetLag]:
        committed = await self._run(self.coordinator.committed, group_id)
        return [await self._with_lag(c) for c in committed]

    async def _with_lag(self, c: CommittedOffset) -> OffsetLag:
        high: int | None
        try:
            high = (await self.broker.partition(c.topic, c.partition)).high_watermark
        except (UnknownTopicError, UnknownPartitionError):
            high = None  # the topic was deleted since the commit
        lag = None if high is None else max(0, high - c.offset)
        return OffsetLag(c.topic, c.partition, c.offset, c.metadata, c.committed_at_ms, high, lag)

    async def reset_offsets(
        self,
        group_id: str,
        *,
        topics: Sequence[str],
        partitions: Sequence[int] | None,
        to: str,
        value: int | None,
        dry_run: bool,
    ) -> list[ResetPlanEntry]:
        """Plan (and unless ``dry_run`` apply) new committed offsets, like ``--reset-offsets``."""
        if to not in RESET_TARGETS:
            raise InvalidParameterError(f"to must be one of {', '.join(RESET_TARGETS)}")
        if to != "earliest" and to != "latest" and value is None:
            raise InvalidParameterError(f"to={to} needs a value")
        members = await self._run(self.coordinator.members_count, group_id)
        if not dry_run and members:
            raise GroupNotEmptyError(f"group {group_id!r} has members: stop them before resetting offsets")
        try:
            committed = await self._run(self.coordinator.committed, group_id)
        except UnknownGroupError:
            committed = []  # resetting creates the group, as kafka-consumer-groups does
        current = {(c.topic, c.partition): c.offset for c in committed}
        plan: list[ResetPlanEntry] = []
        for topic in topics:
            await self.broker.partition(topic, 0)  # opens a topic another broker created; raises if unknown
            count = self.broker.partition_count(topic)
            for partition in partitions or ():
                if not 0 <= partition < count:
                    raise UnknownPartitionError(f"topic {topic!r} has no partition {partition}")
            numbers = range(count) if partitions is None else partitions
            for partition in numbers:
                previous = current.get((topic, partition))
                offset = await self._target_offset(
                    topic, partition, to, value, committed=previous, clamp=True
                )
                plan.append(ResetPlanEntry(topic, partition, previous, offset))
        if not dry_run:
            await self._run(
                self.coordinator.reset_offsets,
                group_id,
                [OffsetCommit(e.topic, e.partition, e.offset) for e in plan],
            )
        return plan

    # ------------------------------------------------------------------ groups

    async def describe(self, group_id: str) -> tuple[GroupDescription, list[OffsetLag]]:
        description = await self._run(self.coordinator.describe, group_id)
        lags = [await self._with_lag(c) for c in description.offsets]
        return description, lags

    async def list_groups(self) -> list[GroupSummary]:
        return await self._run(self.coordinator.list_groups)

    async def delete(self, group_id: str) -> None:
        await self._run(self.coordinator.delete, group_id)
