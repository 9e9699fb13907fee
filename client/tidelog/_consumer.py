"""``Consumer`` (a consumer-group member) and ``PartitionReader`` (one partition, no group).

``Consumer`` is the threaded shell over ``tidelog._core.member.GroupMember``, whose docstring states
the group protocol and the at-least-once rules: it sends what the core builds, runs a heartbeat
thread, and calls the rebalance callbacks in the thread that calls ``poll()``, as in Kafka, never in
the heartbeat thread. ``AsyncConsumer`` (``tidelog._async_consumer``) is the same over asyncio.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from tidelog._core.member import OFFSET_RESETS, GroupMember, MemberOption, MemberOptions
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
    from tidelog._client import Client
    from tidelog._sse import GroupStream

__all__ = ["OFFSET_RESETS", "Consumer", "PartitionReader", "RebalanceCallback"]

log = logging.getLogger("tidelog.consumer")

RebalanceCallback = Callable[[list[TopicPartition]], None]
#: What a commit refused after a rebalance raises: the partitions moved on, their records come again.
MOVED_ON = (IllegalGenerationError, UnknownMemberError, RebalanceInProgressError)


class Consumer:
    """A member of a consumer group: ``poll()`` records of its share of the topics' partitions.

    >>> consumer = client.consumer("billing", ["orders"], auto_offset_reset="earliest")  # doctest: +SKIP
    >>> with consumer:
    ...     for record in consumer:
    ...         handle(record)
    """

    def __init__(
        self,
        client: Client,
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
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
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
        self._stop = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None
        self._commit_pool: concurrent.futures.ThreadPoolExecutor | None = None
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

    def _join(self) -> None:
        answer = self._client.call(self._member.join_call())
        self._member.joined(answer)
        if self._heartbeat_thread is None:
            self._heartbeat_thread = threading.Thread(
                target=self._heartbeat_loop, name=f"tidelog-heartbeat-{self.group_id}", daemon=True
            )
            self._heartbeat_thread.start()
        log.info("joined group %s as %s (generation %s)", self.group_id, self.member_id, self.generation)

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self._member.heartbeat_interval_s):
            self.heartbeat()

    def heartbeat(self) -> None:
        """Send one heartbeat now (the background thread does this on its own)."""
        due = self._member.heartbeat_call()
        if due is None:
            return
        member_id, call = due
        try:
            answer = self._client.call(call, retries=1)
        except UnknownMemberError:
            self._member.unknown(member_id)
            return
        except TidelogError as error:
            log.warning("heartbeat of %s in %s failed: %s", member_id, self.group_id, error)
            return
        self._member.heard(member_id, answer)

    def _ensure_member(self) -> None:
        if self._closed:
            raise ClientStateError("the consumer is closed")
        if self._member.needs_join:
            if self._member.member_id is not None:
                self._apply(self._member.lose())  # everything it had is gone (onPartitionsLost)
            self._join()
        self._apply_latest()

    def _apply_latest(self) -> None:
        change = self._member.take_change()
        if change is None:
            return
        if change.pending:
            try:
                self._commit(change.pending, change.generation, None)
            except MOVED_ON as error:
                log.info("commit of revoked partitions in %s refused: %s", self.group_id, error)
        self._apply(change.assignment)
        self._member.applied(change.generation)

    def _apply(self, assignment: tuple[TopicPartition, ...]) -> None:
        revoked, added = self._member.apply(assignment)
        if revoked and self.on_revoke is not None:
            self.on_revoke(revoked)
        if added and self.on_assign is not None:
            self.on_assign(added)

    # -- consuming ------------------------------------------------------------------------------

    def poll(self, timeout_ms: int = 1000) -> list[Record]:
        """Return the next records of the assigned partitions, waiting up to ``timeout_ms`` for some."""
        records = self._poll(timeout_ms)
        self._member.mark_consumed(records)
        return records

    def _poll(self, timeout_ms: int) -> list[Record]:
        if self.enable_auto_commit:
            self._auto_commit()
        self._ensure_member()
        member_id = self._member.member_id
        assert member_id is not None
        try:
            answer = self._client.call(self._member.poll_call(timeout_ms))
        except UnknownMemberError:
            self._member.unknown(member_id)
            return []
        except RebalanceInProgressError:
            self.heartbeat()
            self._apply_latest()
            return []
        # A poll's answer may carry the generation and assignment too; treat it like a heartbeat's.
        self._member.heard(member_id, answer)
        self._apply_latest()
        return self._member.records(answer)

    def __iter__(self) -> Iterator[Record]:
        """Yield records until the consumer is closed.

        A record counts as consumed (and is committed by auto-commit) once the loop asks for the
        next one, so breaking out of the loop while handling a record leaves it to be delivered again.
        """
        while not self._closed:
            for record in self._poll(1000):
                yield record
                self._member.mark_consumed([record])
                if self._closed:
                    return

    def stream(self, **options: Any) -> GroupStream:
        """Return this consumer's group membership over one Server-Sent Events connection.

        Instead of join, ``poll()`` and heartbeats, the broker pushes the member's records; the
        stream joins on connect with this consumer's group, topics and options, leaves on
        disconnect, and a reconnection commits the cursor of the last record handed out
        (at-least-once, see ``GroupStream``). Use it instead of ``poll()``, not with it.
        """
        from tidelog._sse import GroupStream

        params = self._member.stream_params()
        options.setdefault("key_format", self.key_format)
        options.setdefault("value_format", self.value_format)
        return GroupStream(self._client, self.group_id, self.topics or [], extra_params=params, **options)

    # -- offsets --------------------------------------------------------------------------------

    def _auto_commit(self, *, retry: bool = True) -> None:
        if self._member.member_id is None:
            return
        pending, generation = self._member.auto_commit_offsets()
        if not pending:
            return
        try:
            self._commit(pending, generation, None)
        except IllegalGenerationError as error:
            if retry:
                # A rebalance this member has not heard of yet: learn the new generation and
                # assignment (committing what is being revoked), then commit what it still owns.
                self.heartbeat()
                self._apply_latest()
                self._auto_commit(retry=False)
                return
            log.info("auto-commit in %s refused after a rebalance: %s", self.group_id, error)
        except (UnknownMemberError, RebalanceInProgressError) as error:
            log.info("auto-commit in %s refused after a rebalance: %s", self.group_id, error)

    def commit(
        self,
        offsets: Mapping[TopicPartition, int] | Mapping[tuple[str, int], int] | None = None,
        *,
        asynchronous: bool = False,
        metadata: str | None = None,
    ) -> concurrent.futures.Future[None] | None:
        """Commit ``offsets`` (next offsets to read) or, by default, what ``poll()`` returned so far.

        With ``asynchronous=True`` the commit is sent from a background thread and a ``Future`` is
        returned (Kafka's ``commitAsync``); otherwise it returns once the broker made it durable.
        """
        chosen = self._member.chosen(offsets)
        if not chosen:
            return None
        generation = self._member.generation
        if not asynchronous:
            self._commit(chosen, generation, metadata)
            return None
        if self._commit_pool is None:
            self._commit_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tidelog-commit")
        return self._commit_pool.submit(self._commit, chosen, generation, metadata)

    def _commit(
        self, chosen: dict[TopicPartition, int], generation: int | None, metadata: str | None
    ) -> None:
        self._client.call(self._member.commit_call(chosen, generation, metadata))
        self._member.on_committed(chosen)

    def committed(self) -> dict[TopicPartition, int | None]:
        """Return the group's committed offsets of the partitions this member owns."""
        from tidelog import _api

        return self._member.owned_offsets(self._client.call(_api.group_offsets(self.group_id)))

    def position(self, tp: TopicPartition | tuple[str, int]) -> int | None:
        """Return the offset after the last record ``poll()`` returned from ``tp`` (None if none yet)."""
        return self._member.consumed.get(TopicPartition(*tp))

    def seek(self, tp: TopicPartition | tuple[str, int], offset: int) -> None:
        """Make the next poll of ``tp`` start at ``offset``."""
        self._seek(TopicPartition(*tp), "offset", offset)

    def seek_to_beginning(self, partitions: Sequence[TopicPartition] | None = None) -> None:
        for tp in self._member.seek_targets(partitions):
            self._seek(tp, "earliest", None)

    def seek_to_end(self, partitions: Sequence[TopicPartition] | None = None) -> None:
        for tp in self._member.seek_targets(partitions):
            self._seek(tp, "latest", None)

    def seek_to_timestamp(self, tp: TopicPartition | tuple[str, int], timestamp_ms: int) -> None:
        """Make the next poll of ``tp`` start at the first record at or after ``timestamp_ms``."""
        self._seek(TopicPartition(*tp), "timestamp", timestamp_ms)

    def _seek(self, tp: TopicPartition, to: str, value: int | None) -> None:
        self._ensure_member()
        self._client.call(self._member.seek_call(tp, to, value))
        self._member.sought(tp, to, value)

    # -- closing --------------------------------------------------------------------------------

    def close(self, *, commit: bool | None = None) -> None:
        """Commit what was returned (with auto-commit, or ``commit=True``), leave the group, stop."""
        if self._closed:
            return
        try:
            if (self.enable_auto_commit if commit is None else commit) and self.member_id is not None:
                self._auto_commit()
        finally:
            self._closed = True
            self._stop.set()
            if self._heartbeat_thread is not None:
                self._heartbeat_thread.join(timeout=5)
            if self._commit_pool is not None:
                self._commit_pool.shutdown(wait=True)
            revoked, leave = self._member.leave()
            if revoked and self.on_revoke is not None:
                try:
                    self.on_revoke(revoked)
                except Exception:
                    log.exception("on_revoke raised during close")
            if leave is not None:
                try:
                    self._client.call(leave, retries=1)
                except NotFoundError:
                    pass  # already expired: nothing to leave
                except TidelogError as error:
                    log.warning(
                        "leaving group %s failed: %s (the session timeout removes it)", self.group_id, error
                    )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class PartitionReader:
    """Reads one partition by offset with long-polls, without a group (like ``kcat -p``).

    ``offset`` is an int, ``"earliest"`` or ``"latest"``; ``on_out_of_range`` says where to go when
    the position falls out of the log (``"earliest"``, ``"latest"``, or ``"error"`` to raise
    ``OffsetOutOfRangeError``), e.g. after retention deleted the records ahead of a slow reader.
    The decisions are ``tidelog._core.reader``'s; this shell sends the requests.

    >>> reader = client.reader("orders", partition=0, offset="earliest")      # doctest: +SKIP
    >>> for record in reader.read_to_end():
    ...     print(record.offset, record.value)
    """

    def __init__(
        self,
        client: Client,
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
        client.ensure_leader(topic, partition)
        self._state.position = self._resolve(offset)

    topic: ReaderOption[str] = ReaderOption()
    partition: ReaderOption[int] = ReaderOption()
    max_records: ReaderOption[int] = ReaderOption()
    max_bytes: ReaderOption[int | None] = ReaderOption()
    key_format: ReaderOption[str | None] = ReaderOption()
    value_format: ReaderOption[str | None] = ReaderOption()
    header_format: ReaderOption[str | None] = ReaderOption()
    on_out_of_range: ReaderOption[str] = ReaderOption()
    high_watermark: ReaderOption[int | None] = ReaderOption()

    @property
    def position(self) -> int:
        """The offset of the next record to read."""
        assert self._state.position is not None
        return self._state.position

    def _resolve(self, offset: int | str) -> int:
        needs = ReaderState.needs_offsets(offset)
        offsets = self._client.offsets(self.topic, self.partition) if needs else None
        return ReaderState.resolve(offset, offsets)

    def seek(self, offset: int | str) -> None:
        self._state.position = self._resolve(offset)

    def poll(self, timeout_ms: int = 1000) -> list[Record]:
        """Return the next records, waiting up to ``timeout_ms`` for at least one."""
        position = self.position
        try:
            result = self._client.fetch(
                self.topic, self.partition, position, **self._state.fetch_options(timeout_ms)
            )
        except OffsetOutOfRangeError as error:
            target = self._state.out_of_range(error)
            self._state.position = target if target is not None else self._resolve(self.on_out_of_range)
            return []
        return self._state.fetched(position, result)

    def read_to_end(self, *, timeout_ms: int = 1000) -> Iterator[Record]:
        """Yield records up to the high watermark as it is now, then stop."""
        end = self._client.offsets(self.topic, self.partition).high_watermark
        while self.position < end:
            records = self.poll(timeout_ms)
            for record in records:
                if record.offset >= end:
                    return
                yield record
            if self._state.at_end(records):
                return

    def __iter__(self) -> Iterator[Record]:
        """Yield records forever, following the partition as it grows."""
        while True:
            yield from self.poll(5000)
