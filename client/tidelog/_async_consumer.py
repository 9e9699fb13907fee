"""``AsyncConsumer``: the group member of ``Consumer`` for asyncio, with a heartbeat task.

The asyncio shell over ``tidelog._core.member.GroupMember``, as ``Consumer`` is the threaded one:
the protocol and the at-least-once rules are the core's (read its docstring), and the two shells
have the same methods (``tests/client/test_api_parity.py``). Rebalance callbacks may be plain
functions or coroutines; they run in the task that polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from tidelog import _api
from tidelog._consumer import MOVED_ON
from tidelog._core.member import GroupMember, MemberOption, MemberOptions
from tidelog._core.reader import ReaderOption, ReaderState
from tidelog._errors import (
    ClientStateError,
    IllegalGenerationError,
    NotFoundError,
    OffsetOutOfRangeError,
    RebalanceInProgressError,
    TidelogError,
    UnknownMemberError,
)
from tidelog._types import Record, TopicPartition

if TYPE_CHECKING:
    from tidelog._client import AsyncClient
    from tidelog._sse import GroupStream

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
        self._client = client
        self._member = GroupMember(
            MemberOptions(
                group_id=group_id,
                topics=list(topics) if topics is not None else None,
                topic_pattern=topic_pattern,
                assignor=assignor,
                session_timeout_ms=session_timeout_ms,
                rebalance_timeout_ms=rebalance_timeout_ms,
                heartbeat_interval_ms=heartbeat_interval_ms,
                instance_id=instance_id,
                auto_offset_reset=auto_offset_reset,
                max_poll_records=max_poll_records,
                max_poll_bytes=max_poll_bytes,
                key_format=key_format,
                value_format=value_format,
                enable_auto_commit=enable_auto_commit,
            )
        )
        self.on_assign = on_assign
        self.on_revoke = on_revoke
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._commit_tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- what it was made with ------------------------------------------------------------------

    group_id: MemberOption[str] = MemberOption()
    topics: MemberOption[list[str] | None] = MemberOption()
    topic_pattern: MemberOption[str | None] = MemberOption()
    assignor: MemberOption[str] = MemberOption()
    session_timeout_ms: MemberOption[int] = MemberOption()
    rebalance_timeout_ms: MemberOption[int | None] = MemberOption()
    instance_id: MemberOption[str | None] = MemberOption()
    auto_offset_reset: MemberOption[str] = MemberOption()
    enable_auto_commit: MemberOption[bool] = MemberOption()
    max_poll_records: MemberOption[int] = MemberOption()
    max_poll_bytes: MemberOption[int | None] = MemberOption()
    key_format: MemberOption[str | None] = MemberOption()
    value_format: MemberOption[str | None] = MemberOption()

    # -- membership -----------------------------------------------------------------------------

    @property
    def member_id(self) -> str | None:
        return self._member.member_id

    @property
    def generation(self) -> int | None:
        return self._member.generation

    def assignment(self) -> list[TopicPartition]:
        """Return the partitions this member owns, as of its last ``poll()``."""
        return list(self._member.assignment)

    async def _join(self) -> None:
        answer = await self._client.call(self._member.join_call())
        self._member.joined(answer)
        if self._heartbeat_task is None:
            self._heartbeat_task = asyncio.create_task(self._heartbeat_loop(), name="tidelog-heartbeat")

    async def _heartbeat_loop(self) -> None:
        while not self._closed:
            await asyncio.sleep(self._member.heartbeat_interval_s)
            await self.heartbeat()

    async def heartbeat(self) -> None:
        """Send one heartbeat now (the background task does this on its own)."""
        due = self._member.heartbeat_call()
        if due is None:
            return
        member_id, call = due
        try:
            answer = await self._client.call(call, retries=1)
        except UnknownMemberError:
            self._member.unknown(member_id)
            return
        except TidelogError as error:
            log.warning("heartbeat of %s in %s failed: %s", member_id, self.group_id, error)
            return
        self._member.heard(member_id, answer)

    async def _call_back(
        self, callback: AsyncRebalanceCallback | None, partitions: list[TopicPartition]
    ) -> None:
        if callback is None or not partitions:
            return
        result = callback(partitions)
        if inspect.isawaitable(result):
            await result

    async def _apply(self, assignment: tuple[TopicPartition, ...]) -> None:
        revoked, added = self._member.apply(assignment)
        await self._call_back(self.on_revoke, revoked)
        await self._call_back(self.on_assign, added)

    async def _apply_latest(self) -> None:
        change = self._member.take_change()
        if change is None:
            return
        if change.pending:
            try:
                await self._commit(change.pending, change.generation, None)
            except MOVED_ON as error:
                log.info("commit of revoked partitions in %s refused: %s", self.group_id, error)
        await self._apply(change.assignment)
        self._member.applied(change.generation)

    async def _ensure_member(self) -> None:
        if self._closed:
            raise ClientStateError("the consumer is closed")
        if self._member.needs_join:
            if self._member.member_id is not None:
                await self._apply(self._member.lose())  # the session expired: everything is lost
            await self._join()
        await self._apply_latest()

    # -- consuming ------------------------------------------------------------------------------

    async def poll(self, timeout_ms: int = 1000) -> list[Record]:
        """Return the next records of the assigned partitions, waiting up to ``timeout_ms``."""
        records = await self._poll(timeout_ms)
        self._member.mark_consumed(records)
        return records

    async def _poll(self, timeout_ms: int) -> list[Record]:
        if self.enable_auto_commit:
            await self._auto_commit()
        await self._ensure_member()
        member_id = self._member.member_id
        assert member_id is not None
        try:
            answer = await self._client.call(self._member.poll_call(timeout_ms))
        except UnknownMemberError:
            self._member.unknown(member_id)
            return []
        except RebalanceInProgressError:
            await self.heartbeat()
            await self._apply_latest()
            return []
        self._member.heard(member_id, answer)
        await self._apply_latest()
        return self._member.records(answer)

    async def __aiter__(self) -> AsyncIterator[Record]:
        """Yield records until closed; a record counts as consumed when the loop asks for the next."""
        while not self._closed:
            for record in await self._poll(1000):
                yield record
                self._member.mark_consumed([record])
                if self._closed:
                    return

    def stream(self, **options: Any) -> GroupStream:
        """Return this consumer's group membership over one SSE connection (see ``Consumer.stream``),
        to iterate with ``async for``."""
        from tidelog._sse import GroupStream

        params = self._member.stream_params()
        options.setdefault("key_format", self.key_format)
        options.setdefault("value_format", self.value_format)
        return GroupStream(self._client, self.group_id, self.topics or [], extra_params=params, **options)

    # -- offsets --------------------------------------------------------------------------------

    async def _auto_commit(self, *, retry: bool = True) -> None:
        if self._member.member_id is None:
            return
        pending, generation = self._member.auto_commit_offsets()
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

    async def commit(
        self,
        offsets: Mapping[TopicPartition, int] | Mapping[tuple[str, int], int] | None = None,
        *,
        asynchronous: bool = False,
        metadata: str | None = None,
    ) -> asyncio.Future[None] | None:
        """Commit ``offsets`` (next offsets to read) or what ``poll()`` returned so far.

        With ``asynchronous=True`` the commit runs in a task of its own and the task is returned
        (Kafka's ``commitAsync``); otherwise it returns once the broker made it durable.
        """
        chosen = self._member.chosen(offsets)
        if not chosen:
            return None
        generation = self._member.generation
        if not asynchronous:
            await self._commit(chosen, generation, metadata)
            return None
        task = asyncio.create_task(self._commit(chosen, generation, metadata), name="tidelog-commit")
        self._commit_tasks.add(task)
        task.add_done_callback(self._commit_tasks.discard)
        return task

    async def _commit(
        self, chosen: dict[TopicPartition, int], generation: int | None, metadata: str | None
    ) -> None:
        await self._client.call(self._member.commit_call(chosen, generation, metadata))
        self._member.on_committed(chosen)

    async def committed(self) -> dict[TopicPartition, int | None]:
        """Return the group's committed offsets of the partitions this member owns."""
        return self._member.owned_offsets(await self._client.call(_api.group_offsets(self.group_id)))

    def position(self, tp: TopicPartition | tuple[str, int]) -> int | None:
        """Return the offset after the last record ``poll()`` returned from ``tp`` (None if none yet)."""
        return self._member.consumed.get(TopicPartition(*tp))

    async def seek(self, tp: TopicPartition | tuple[str, int], offset: int) -> None:
        """Make the next poll of ``tp`` start at ``offset``."""
        await self._seek(TopicPartition(*tp), "offset", offset)

    async def seek_to_beginning(self, partitions: Sequence[TopicPartition] | None = None) -> None:
        for tp in self._member.seek_targets(partitions):
            await self._seek(tp, "earliest", None)

    async def seek_to_end(self, partitions: Sequence[TopicPartition] | None = None) -> None:
        for tp in self._member.seek_targets(partitions):
            await self._seek(tp, "latest", None)

    async def seek_to_timestamp(self, tp: TopicPartition | tuple[str, int], timestamp_ms: int) -> None:
        """Make the next poll of ``tp`` start at the first record at or after ``timestamp_ms``."""
        await self._seek(TopicPartition(*tp), "timestamp", timestamp_ms)

    async def _seek(self, tp: TopicPartition, to: str, value: int | None) -> None:
        await self._ensure_member()
        await self._client.call(self._member.seek_call(tp, to, value))
        self._member.sought(tp, to, value)

    # -- closing --------------------------------------------------------------------------------

    async def close(self, *, commit: bool | None = None) -> None:
        """Commit what was returned (with auto-commit, or ``commit=True``), leave the group, stop."""
        if self._closed:
            return
        try:
            if (self.enable_auto_commit if commit is None else commit) and self.member_id is not None:
                await self._auto_commit()
        finally:
            self._closed = True
            if self._heartbeat_task is not None:
                self._heartbeat_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._heartbeat_task
            if self._commit_tasks:
                await asyncio.gather(*self._commit_tasks, return_exceptions=True)
            revoked, leave = self._member.leave()
            try:
                await self._call_back(self.on_revoke, revoked)
            except Exception:
                log.exception("on_revoke raised during close")
            if leave is not None:
                try:
                    await self._client.call(leave, retries=1)
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
    """``PartitionReader`` for asyncio: one partition by offset, with long-polls, without a group.

    The same decisions (``tidelog._core.reader``); the start offset is resolved on first use.
    """

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
        self._client = client
        self._state = ReaderState(
            topic,
            partition,
            max_records=max_records,
            max_bytes=max_bytes,
            key_format=key_format,
            value_format=value_format,
            header_format=header_format,
            on_out_of_range=on_out_of_range,
        )
        self._start: int | str = offset

    topic: ReaderOption[str] = ReaderOption()
    partition: ReaderOption[int] = ReaderOption()
    max_records: ReaderOption[int] = ReaderOption()
    max_bytes: ReaderOption[int | None] = ReaderOption()
    key_format: ReaderOption[str | None] = ReaderOption()
    value_format: ReaderOption[str | None] = ReaderOption()
    header_format: ReaderOption[str | None] = ReaderOption()
    on_out_of_range: ReaderOption[str] = ReaderOption()
    high_watermark: ReaderOption[int | None] = ReaderOption()

    async def position(self) -> int:
        """The offset of the next record to read (resolving earliest/latest on first use)."""
        if self._state.position is None:
            await self._client.ensure_leader(self.topic, self.partition)
            self._state.position = await self._resolve(self._start)
        return self._state.position

    async def _resolve(self, offset: int | str) -> int:
        needs = ReaderState.needs_offsets(offset)
        offsets = await self._client.offsets(self.topic, self.partition) if needs else None
        return ReaderState.resolve(offset, offsets)

    async def seek(self, offset: int | str) -> None:
        self._state.position = await self._resolve(offset)

    async def poll(self, timeout_ms: int = 1000) -> list[Record]:
        """Return the next records, waiting up to ``timeout_ms`` for at least one."""
        position = await self.position()
        try:
            result = await self._client.fetch(
                self.topic, self.partition, position, **self._state.fetch_options(timeout_ms)
            )
        except OffsetOutOfRangeError as error:
            target = self._state.out_of_range(error)
            self._state.position = (
                target if target is not None else await self._resolve(self.on_out_of_range)
            )
            return []
        return self._state.fetched(position, result)

    async def read_to_end(self, *, timeout_ms: int = 1000) -> AsyncIterator[Record]:
        """Yield records up to the high watermark as it is now, then stop."""
        end = (await self._client.offsets(self.topic, self.partition)).high_watermark
        while await self.position() < end:
            records = await self.poll(timeout_ms)
            for record in records:
                if record.offset >= end:
                    return
                yield record
            if self._state.at_end(records):
                return

    async def __aiter__(self) -> AsyncIterator[Record]:
        """Yield records forever, following the partition as it grows."""
        while True:
            for record in await self.poll(5000):
                yield record
