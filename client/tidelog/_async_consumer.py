"""``AsyncConsumer``: the group member of ``Consumer`` for asyncio, with a heartbeat task.

The protocol and the at-least-once rules are those of ``tidelog/_consumer.py`` (read its docstring):
join on the first ``poll()``, heartbeats carry the generation the member applied, revoked partitions
are committed before they are given up, ``poll()`` commits what the previous one returned, a 404
rejoins. Rebalance callbacks may be plain functions or coroutines; they run in the task that
polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self

from tidelog import _api
from tidelog._consumer import OFFSET_RESETS
from tidelog._errors import (
    ClientStateError,
    IllegalGenerationError,
    NotFoundError,
    RebalanceInProgressError,
    TidelogError,
    UnknownMemberError,
)
from tidelog._types import Record, TopicPartition, parse_assignment

if TYPE_CHECKING:
    from tidelog._client import AsyncClient

__all__ = ["AsyncConsumer", "AsyncPartitionReader", "AsyncRebalanceCallback"]

log = logging.getLogger("tidelog.consumer")

AsyncRebalanceCallback = Callable[[list[TopicPartition]], Awaitable[None] | None]


class AsyncConsumer:
    """A consumer-group member for asyncio.

    >>> consumer = client.consumer("billing", ["orders"], auto_offset_reset="earliest")  # doctest: +SKIP
    >>> async with consumer:
    ...     async for record in consumer:
    ...         await handle(record)
    """

    def __init__(
        self,
        client: AsyncClient,
        group_id: str,
        topics: Sequence[str] | None = None,
        *,
        topic_pattern: str | None = None,
        assignor: str = "range",
        session_timeout_ms: int = 10_000,
        rebalance_timeout_ms: int | None = None,
        heartbeat_interval_ms: int | None = None,
        instance_id: str | None = None,
        auto_offset_reset: str = "latest",
        enable_auto_commit: bool = True,
        max_poll_records: int = 500,
        max_poll_bytes: int | None = None,
        key_format: str | None = None,
        value_format: str | None = None,
        on_assign: AsyncRebalanceCallback | None = None,
        on_revoke: AsyncRebalanceCallback | None = None,
    ) -> None:
        if (topics is None) == (topic_pattern is None):
            raise ValueError("give either topics or topic_pattern")
        if auto_offset_reset not in OFFSET_RESETS:
            raise ValueError(f"auto_offset_reset must be one of {', '.join(OFFSET_RESETS)}")
        self._client = client
        self.group_id = group_id
        self.topics = list(topics) if topics is not None else None
        self.topic_pattern = topic_pattern
        self.assignor = assignor
        self.session_timeout_ms = session_timeout_ms
        self.rebalance_timeout_ms = rebalance_timeout_ms
        self._heartbeat_override = heartbeat_interval_ms
        self.instance_id = instance_id
        self.auto_offset_reset = auto_offset_reset
        self.enable_auto_commit = enable_auto_commit
        self.max_poll_records = max_poll_records
        self.max_poll_bytes = max_poll_bytes
        self.key_format = key_format
        self.value_format = value_format
        self.on_assign = on_assign
        self.on_revoke = on_revoke
        self._member_id: str | None = None
        self._generation: int | None = None
        self._assignment: tuple[TopicPartition, ...] = ()
        self._latest: tuple[int, tuple[TopicPartition, ...]] | None = None
        self._rejoin = False
        self._heartbeat_interval_s = 3.0
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._consumed: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._closed = False

    @property
    def member_id(self) -> str | None:
        return self._member_id

    @property
    def generation(self) -> int | None:
        return self._generation

    def assignment(self) -> list[TopicPartition]:
        return list(self._assignment)

    def position(self, tp: TopicPartition | tuple[str, int]) -> int | None:
        return self._consumed.get(TopicPartition(*tp))

    async def _join(self) -> None:
        answer = await self._client.call(
            _api.join_group(
                self.group_id,
                topics=self.topics,
                topic_pattern=self.topic_pattern,
                assignor=self.assignor,
                session_timeout_ms=self.session_timeout_ms,
                rebalance_timeout_ms=self.rebalance_timeout_ms,
                instance_id=self.instance_id,
                auto_offset_reset=self.auto_offset_reset,
            )
        )
        member_id, generation = answer.get("member_id"), answer.get("generation")
        if not isinstance(member_id, str) or not isinstance(generation, int):
            raise ClientStateError(f"join answered without member_id/generation: {answer}")
        interval = (
            self._heartbeat_override or answer.get("heartbeat_interval_ms") or self.session_timeout_ms // 3
        )
        self._member_id, self._generation = member_id, generation
        self._latest = (generation, parse_assignment(answer.get("assignment")))
        self._rejoin = False
        self._heartbeat_interval_s = max(0.05, int(interval) / 1000.0)
        if self._heartbeat_task is None:
            self._heartbeat_task = asyncio.create_task(self._heartbeat_loop(), name="tidelog-heartbeat")

    async def _heartbeat_loop(self) -> None:
        while not self._closed:
            await asyncio.sleep(self._heartbeat_interval_s)
            await self.heartbeat()

    async def heartbeat(self) -> None:
        """Send one heartbeat now (the background task does this on its own)."""
        member_id = self._member_id
        if member_id is None or self._rejoin:
            return
        try:
            answer = await self._client.call(
                _api.heartbeat(self.group_id, member_id, self._generation), retries=1
            )
        except UnknownMemberError:
            if self._member_id == member_id:
                self._rejoin = True
            return
        except TidelogError as error:
            log.warning("heartbeat of %s in %s failed: %s", member_id, self.group_id, error)
            return
        generation = answer.get("generation")
        if isinstance(generation, int) and "assignment" in answer and self._member_id == member_id:
            self._latest = (generation, parse_assignment(answer.get("assignment")))

    async def _call_back(
        self, callback: AsyncRebalanceCallback | None, partitions: list[TopicPartition]
    ) -> None:
        if callback is None or not partitions:
            return
        result = callback(partitions)
        if inspect.isawaitable(result):
            await result

    async def _apply(self, assignment: tuple[TopicPartition, ...]) -> None:
        old, new = set(self._assignment), set(assignment)
        revoked, added = sorted(old - new), sorted(new - old)
        for tp in revoked:
            self._consumed.pop(tp, None)
            self._committed.pop(tp, None)
        await self._call_back(self.on_revoke, revoked)
        self._assignment = tuple(sorted(new))
        await self._call_back(self.on_assign, added)

    async def _apply_latest(self) -> None:
        latest, self._latest = self._latest, None
        if latest is None:
            return
        generation, assignment = latest
        if self.enable_auto_commit:
            revoked = set(self._assignment) - set(assignment)
            pending = {tp: off for tp, off in self._uncommitted().items() if tp in revoked}
            if pending:
                try:
                    await self._commit(pending, generation, None)
                except (IllegalGenerationError, UnknownMemberError, RebalanceInProgressError) as error:
                    log.info("commit of revoked partitions in %s refused: %s", self.group_id, error)
        await self._apply(assignment)
        self._generation = generation

    async def _ensure_member(self) -> None:
        if self._closed:
            raise ClientStateError("the consumer is closed")
        if self._member_id is None or self._rejoin:
            if self._member_id is not None:
                await self._apply(())  # the session expired: everything it had is lost
                self._member_id = None
            await self._join()
        await self._apply_latest()

    def _uncommitted(self) -> dict[TopicPartition, int]:
        return {tp: off for tp, off in self._consumed.items() if self._committed.get(tp) != off}

    async def _auto_commit(self, *, retry: bool = True) -> None:
        if self._member_id is None:
            return
        generation, owned = self._latest or (self._generation, self._assignment)
        pending = {tp: off for tp, off in self._uncommitted().items() if tp in owned}
        if not pending:
            return
        try:
            await self._commit(pending, generation, None)
        except IllegalGenerationError as error:
            if retry:
                await self.heartbeat()
                await self._apply_latest()
                await self._auto_commit(retry=False)
                return
            log.info("auto-commit in %s refused after a rebalance: %s", self.group_id, error)
        except (UnknownMemberError, RebalanceInProgressError) as error:
            log.info("auto-commit in %s refused after a rebalance: %s", self.group_id, error)

    async def _commit(
        self, chosen: dict[TopicPartition, int], generation: int | None, metadata: str | None
    ) -> None:
        await self._client.call(
            _api.commit(
                self.group_id,
                [(tp.topic, tp.partition, off, metadata) for tp, off in chosen.items()],
                member_id=self._member_id,
                generation=generation,
            )
        )
        self._committed.update(chosen)

    async def commit(
        self,
        offsets: Mapping[TopicPartition, int] | Mapping[tuple[str, int], int] | None = None,
        *,
        metadata: str | None = None,
    ) -> None:
        """Commit ``offsets`` (next offsets to read) or what ``poll()`` returned so far."""
        if self._member_id is None:
            raise ClientStateError("the consumer has not joined its group yet: poll() first")
        chosen = {TopicPartition(*tp): off for tp, off in (offsets or self._uncommitted()).items()}
        if chosen:
            await self._commit(chosen, self._generation, metadata)

    async def committed(self) -> dict[TopicPartition, int | None]:
        result = await self._client.call(_api.group_offsets(self.group_id))
        owned = set(self._assignment)
        return {
            TopicPartition(o.topic, o.partition): o.offset
            for o in result.offsets
            if not owned or TopicPartition(o.topic, o.partition) in owned
        }

    async def _poll(self, timeout_ms: int) -> list[Record]:
        await self._ensure_member()
        assert self._member_id is not None
        try:
            answer = await self._client.call(
                _api.poll_member(
                    self.group_id,
                    self._member_id,
                    max_records=self.max_poll_records,
                    max_bytes=self.max_poll_bytes,
                    max_wait_ms=max(0, int(timeout_ms)),
                    key_format=self.key_format,
                    value_format=self.value_format,
                )
            )
        except UnknownMemberError:
            self._rejoin = True
            return []
        except RebalanceInProgressError:
            await self.heartbeat()
            await self._apply_latest()
            return []
        generation = answer.get("generation")
        if isinstance(generation, int) and "assignment" in answer:
            self._latest = (generation, parse_assignment(answer.get("assignment")))
            await self._apply_latest()
        return [
            Record.from_json(r, key_format=self.key_format, value_format=self.value_format)
            for r in answer.get("records") or ()
            if isinstance(r, Mapping)
        ]

    def _mark_consumed(self, records: list[Record]) -> None:
        for record in records:
            tp = record.topic_partition
            if record.offset + 1 > self._consumed.get(tp, -1):
                self._consumed[tp] = record.offset + 1

    async def poll(self, timeout_ms: int = 1000) -> list[Record]:
        """Return the next records of the assigned partitions, waiting up to ``timeout_ms``."""
        if self.enable_auto_commit:
            await self._auto_commit()
        records = await self._poll(timeout_ms)
        self._mark_consumed(records)
        return records

    async def __aiter__(self) -> AsyncIterator[Record]:
        """Yield records until closed; a record counts as consumed when the loop asks for the next."""
        while not self._closed:
            if self.enable_auto_commit:
                await self._auto_commit()
            for record in await self._poll(1000):
                yield record
                self._mark_consumed([record])
                if self._closed:
                    return

    async def _seek(self, tp: TopicPartition, to: str, value: int | None) -> None:
        await self._ensure_member()
        assert self._member_id is not None
        await self._client.call(_api.seek(self.group_id, self._member_id, tp.topic, tp.partition, to, value))

    async def seek(self, tp: TopicPartition | tuple[str, int], offset: int) -> None:
        await self._seek(TopicPartition(*tp), "offset", offset)
        self._consumed[TopicPartition(*tp)] = offset

    async def seek_to_beginning(self, partitions: Sequence[TopicPartition] | None = None) -> None:
        for tp in partitions or self._assignment:
            await self._seek(TopicPartition(*tp), "earliest", None)
            self._consumed.pop(TopicPartition(*tp), None)

    async def seek_to_end(self, partitions: Sequence[TopicPartition] | None = None) -> None:
        for tp in partitions or self._assignment:
            await self._seek(TopicPartition(*tp), "latest", None)
            self._consumed.pop(TopicPartition(*tp), None)

    async def close(self, *, commit: bool | None = None) -> None:
        """Commit what was returned (with auto-commit, or ``commit=True``), leave the group, stop."""
        if self._closed:
            return
        try:
            if (self.enable_auto_commit if commit is None else commit) and self._member_id is not None:
                await self._auto_commit()
        finally:
            self._closed = True
            if self._heartbeat_task is not None:
                self._heartbeat_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._heartbeat_task
            try:
                await self._call_back(self.on_revoke, list(self._assignment))
            except Exception:
                log.exception("on_revoke raised during close")
            self._assignment = ()
            member_id, self._member_id = self._member_id, None
            if member_id is not None:
                try:
                    await self._client.call(_api.leave_group(self.group_id, member_id), retries=1)
                except NotFoundError:
                    pass
                except TidelogError as error:
                    log.warning("leaving group %s failed: %s", self.group_id, error)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class AsyncPartitionReader:
    """``PartitionReader`` for asyncio: one partition by offset, with long-polls, without a group."""

    def __init__(
        self,
        client: AsyncClient,
        topic: str,
        partition: int = 0,
        offset: int | str = "earliest",
        *,
        max_records: int = 1000,
        max_bytes: int | None = None,
        key_format: str | None = None,
        value_format: str | None = None,
        header_format: str | None = None,
        on_out_of_range: str = "earliest",
    ) -> None:
        if on_out_of_range not in ("earliest", "latest", "error"):
            raise ValueError("on_out_of_range must be earliest, latest or error")
        self._client = client
        self.topic = topic
        self.partition = partition
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.key_format = key_format
        self.value_format = value_format
        self.header_format = header_format
        self.on_out_of_range = on_out_of_range
        self.high_watermark: int | None = None
        self._start: int | str = offset
        self._position: int | None = None

    async def position(self) -> int:
        """The offset of the next record to read (resolving earliest/latest on first use)."""
        if self._position is None:
            await self._client.ensure_leader(self.topic, self.partition)
            self._position = await self._resolve(self._start)
        return self._position

    async def _resolve(self, offset: int | str) -> int:
        if isinstance(offset, int) and offset >= 0:
            return offset
        offsets = await self._client.offsets(self.topic, self.partition)
        if isinstance(offset, int):
            return max(offsets.log_start_offset, offsets.high_watermark + offset)
        if offset == "earliest":
            return offsets.log_start_offset
        if offset == "latest":
            return offsets.high_watermark
        raise ValueError(f"offset must be an int, 'earliest' or 'latest', not {offset!r}")

    async def seek(self, offset: int | str) -> None:
        self._position = await self._resolve(offset)

    async def poll(self, timeout_ms: int = 1000) -> list[Record]:
        """Return the next records, waiting up to ``timeout_ms`` for at least one."""
        from tidelog._errors import OffsetOutOfRangeError

        position = await self.position()
        try:
            result = await self._client.fetch(
                self.topic,
                self.partition,
                position,
                max_records=self.max_records,
                max_bytes=self.max_bytes,
                max_wait_ms=max(0, int(timeout_ms)),
                key_format=self.key_format,
                value_format=self.value_format,
                header_format=self.header_format,
            )
        except OffsetOutOfRangeError as error:
            if self.on_out_of_range == "error":
                raise
            target = error.log_start_offset if self.on_out_of_range == "earliest" else error.high_watermark
            self._position = target if target is not None else await self._resolve(self.on_out_of_range)
            return []
        self.high_watermark = result.high_watermark
        records = [r for r in result.records if r.offset >= position]
        self._position = max(position, result.next_offset)
        return records

    async def read_to_end(self, *, timeout_ms: int = 1000) -> AsyncIterator[Record]:
        """Yield records up to the high watermark as it is now, then stop."""
        end = (await self._client.offsets(self.topic, self.partition)).high_watermark
        while await self.position() < end:
            records = await self.poll(timeout_ms)
            for record in records:
                if record.offset >= end:
                    return
                yield record
            if (
                not records
                and self.high_watermark is not None
                and await self.position() >= self.high_watermark
            ):
                return

    async def __aiter__(self) -> AsyncIterator[Record]:
        while True:
            for record in await self.poll(5000):
                yield record
