"""``Consumer`` (a consumer-group member) and ``PartitionReader`` (one partition, no group).

The group protocol over HTTP (``docs/groups.md``): ``POST /v1/groups/{g}/members`` joins and answers
the member id, generation and assignment; a background thread heartbeats every
``heartbeat_interval_ms`` and each heartbeat's answer carries the current generation and assignment,
so a member follows a rebalance by heartbeating. Only a 404 (``UnknownMemberError``, 40403: the
session expired) makes it join again. Rebalance callbacks run in the thread that calls ``poll()``,
as in Kafka, never in the heartbeat thread.

At-least-once by default (``enable_auto_commit=True``): each ``poll()`` first commits the offsets of
the records the previous ``poll()`` returned, and ``close()`` commits what was returned last, so a
record is committed only after the application had it and came back for more. A crash in between
redelivers, never skips.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from tidelog import _api
from tidelog._errors import (
    ClientStateError,
    IllegalGenerationError,
    NotFoundError,
    OffsetOutOfRangeError,
    RebalanceInProgressError,
    TidelogError,
    UnknownMemberError,
)
from tidelog._types import Record, TopicPartition, parse_assignment

if TYPE_CHECKING:
    from tidelog._client import Client
    from tidelog._sse import GroupStream

__all__ = ["Consumer", "PartitionReader", "RebalanceCallback"]

log = logging.getLogger("tidelog.consumer")

RebalanceCallback = Callable[[list[TopicPartition]], None]
OFFSET_RESETS = ("earliest", "latest", "none")


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

        self._lock = threading.Lock()
        self._member_id: str | None = None
        self._generation: int | None = None
        self._assignment: tuple[TopicPartition, ...] = ()  # as the application last saw it
        self._latest: tuple[int, tuple[TopicPartition, ...]] | None = None  # from heartbeats
        self._rejoin = False
        self._heartbeat_interval_s = 3.0
        self._stop = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None
        self._consumed: dict[TopicPartition, int] = {}  # next offset after the last returned record
        self._committed: dict[TopicPartition, int] = {}
        self._commit_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._closed = False

    # -- membership -----------------------------------------------------------------------------

    @property
    def member_id(self) -> str | None:
        return self._member_id

    @property
    def generation(self) -> int | None:
        return self._generation

    def assignment(self) -> list[TopicPartition]:
        """Return the partitions this member owns, as of its last ``poll()``."""
        return list(self._assignment)

    def _join(self) -> None:
        answer = self._client.call(
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
        member_id = answer.get("member_id")
        generation = answer.get("generation")
        if not isinstance(member_id, str) or not isinstance(generation, int):
            raise ClientStateError(f"join answered without member_id/generation: {answer}")
        interval = (
            self._heartbeat_override or answer.get("heartbeat_interval_ms") or self.session_timeout_ms // 3
        )
        with self._lock:
            self._member_id = member_id
            self._generation = generation
            self._latest = (generation, parse_assignment(answer.get("assignment")))
            self._rejoin = False
            self._heartbeat_interval_s = max(0.05, int(interval) / 1000.0)
        if self._heartbeat_thread is None:
            self._heartbeat_thread = threading.Thread(
                target=self._heartbeat_loop, name=f"tidelog-heartbeat-{self.group_id}", daemon=True
            )
            self._heartbeat_thread.start()
        log.info("joined group %s as %s (generation %s)", self.group_id, member_id, generation)

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self._heartbeat_interval_s):
            self.heartbeat()

    def heartbeat(self) -> None:
        """Send one heartbeat now (the background thread does this on its own)."""
        with self._lock:
            member_id = self._member_id
            applied = self._generation
            if member_id is None or self._rejoin:
                return
        try:
            # The generation the poll thread has applied: it acknowledges the revocations it carried
            # out (committed, on_revoke called), so the broker may hand those partitions over.
            answer = self._client.call(_api.heartbeat(self.group_id, member_id, applied), retries=1)
        except UnknownMemberError:
            with self._lock:
                if self._member_id == member_id:
                    self._rejoin = True
            return
        except TidelogError as error:
            log.warning("heartbeat of %s in %s failed: %s", member_id, self.group_id, error)
            return
        generation = answer.get("generation")
        if isinstance(generation, int) and "assignment" in answer:
            with self._lock:
                if self._member_id == member_id:
                    self._latest = (generation, parse_assignment(answer.get("assignment")))

    def _ensure_member(self) -> None:
        if self._closed:
            raise ClientStateError("the consumer is closed")
        rejoin = False
        with self._lock:
            if self._member_id is None or self._rejoin:
                rejoin = True
        if rejoin:
            if self._member_id is not None:
                # The session expired: everything this member had is gone (Kafka's onPartitionsLost).
                self._apply(())
                with self._lock:
                    self._member_id = None
            self._join()
        self._apply_latest()

    def _apply_latest(self) -> None:
        with self._lock:
            latest = self._latest
            self._latest = None
        if latest is None:
            return
        generation, assignment = latest
        if self.enable_auto_commit:
            # Partitions being revoked stay committable until handed over: commit what the
            # application already had from them, so the next owner starts right after it.
            revoked = set(self._assignment) - set(assignment)
            pending = {tp: off for tp, off in self._uncommitted().items() if tp in revoked}
            if pending:
                try:
                    self._commit(pending, generation, None)
                except (IllegalGenerationError, UnknownMemberError, RebalanceInProgressError) as error:
                    log.info("commit of revoked partitions in %s refused: %s", self.group_id, error)
        self._apply(assignment)
        with self._lock:
            self._generation = generation

    def _apply(self, assignment: tuple[TopicPartition, ...]) -> None:
        old, new = set(self._assignment), set(assignment)
        revoked = sorted(old - new)
        added = sorted(new - old)
        if revoked:
            for tp in revoked:
                self._consumed.pop(tp, None)
                self._committed.pop(tp, None)
            if self.on_revoke is not None:
                self.on_revoke(revoked)
        self._assignment = tuple(sorted(new))
        if added and self.on_assign is not None:
            self.on_assign(added)

    # -- consuming ------------------------------------------------------------------------------

    def poll(self, timeout_ms: int = 1000) -> list[Record]:
        """Return the next records of the assigned partitions, waiting up to ``timeout_ms`` for some."""
        records = self._poll(timeout_ms)
        self._mark_consumed(records)
        return records

    def _mark_consumed(self, records: list[Record]) -> None:
        for record in records:
            tp = record.topic_partition
            if record.offset + 1 > self._consumed.get(tp, -1):
                self._consumed[tp] = record.offset + 1

    def _poll(self, timeout_ms: int) -> list[Record]:
        if self.enable_auto_commit:
            self._auto_commit()
        self._ensure_member()
        member_id = self._member_id
        assert member_id is not None
        try:
            answer = self._client.call(
                _api.poll_member(
                    self.group_id,
                    member_id,
                    max_records=self.max_poll_records,
                    max_bytes=self.max_poll_bytes,
                    max_wait_ms=max(0, int(timeout_ms)),
                    key_format=self.key_format,
                    value_format=self.value_format,
                )
            )
        except UnknownMemberError:
            with self._lock:
                self._rejoin = True
            return []
        except RebalanceInProgressError:
            self.heartbeat()
            self._apply_latest()
            return []
        self._note_answer(answer)
        return [
            Record.from_json(r, key_format=self.key_format, value_format=self.value_format)
            for r in answer.get("records") or ()
            if isinstance(r, Mapping)
        ]

    def _note_answer(self, answer: Mapping[str, Any]) -> None:
        # A poll's answer may carry the generation and assignment too; treat it like a heartbeat's.
        generation = answer.get("generation")
        if isinstance(generation, int) and "assignment" in answer:
            with self._lock:
                self._latest = (generation, parse_assignment(answer.get("assignment")))
            self._apply_latest()

    def __iter__(self) -> Iterator[Record]:
        """Yield records until the consumer is closed.

        A record counts as consumed (and is committed by auto-commit) once the loop asks for the
        next one, so breaking out of the loop while handling a record leaves it to be delivered again.
        """
        while not self._closed:
            for record in self._poll(1000):
                yield record
                self._mark_consumed([record])
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

        if self._member_id is not None:
            raise ClientStateError("this consumer already joined by poll(); a stream is a member of its own")
        params: dict[str, Any] = {
            "assignor": self.assignor,
            "session_timeout_ms": self.session_timeout_ms,
            "auto_offset_reset": self.auto_offset_reset,
        }
        if self.topic_pattern is not None:
            params["topic_pattern"] = self.topic_pattern
        if self.instance_id is not None:
            params["instance_id"] = self.instance_id
        if self.rebalance_timeout_ms is not None:
            params["rebalance_timeout_ms"] = self.rebalance_timeout_ms
        options.setdefault("key_format", self.key_format)
        options.setdefault("value_format", self.value_format)
        return GroupStream(self._client, self.group_id, self.topics or [], extra_params=params, **options)

    # -- offsets --------------------------------------------------------------------------------

    def _uncommitted(self) -> dict[TopicPartition, int]:
        return {tp: off for tp, off in self._consumed.items() if self._committed.get(tp) != off}

    def _auto_commit(self, *, retry: bool = True) -> None:
        if self._member_id is None:
            return
        with self._lock:
            generation, owned = self._latest or (self._generation, self._assignment)
        # Only partitions the member still owns in the newest generation it heard of: the broker
        # refuses a whole commit that names a partition which moved (40902).
        pending = {tp: off for tp, off in self._uncommitted().items() if tp in owned}
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
            # The partitions moved on before the commit: their records will be delivered again.
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
        if self._member_id is None:
            raise ClientStateError("the consumer has not joined its group yet: poll() first")
        chosen = {TopicPartition(*tp): off for tp, off in (offsets or self._uncommitted()).items()}
        if not chosen:
            return None
        if not asynchronous:
            self._commit(chosen, self._generation, metadata)
            return None
        if self._commit_pool is None:
            self._commit_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tidelog-commit")
        return self._commit_pool.submit(self._commit, chosen, self._generation, metadata)

    def _commit(
        self, chosen: dict[TopicPartition, int], generation: int | None, metadata: str | None
    ) -> None:
        self._client.call(
            _api.commit(
                self.group_id,
                [(tp.topic, tp.partition, off, metadata) for tp, off in chosen.items()],
                member_id=self._member_id,
                generation=generation,
            )
        )
        with self._lock:
            self._committed.update(chosen)

    def committed(self) -> dict[TopicPartition, int | None]:
        """Return the group's committed offsets of the partitions this member owns."""
        result = self._client.call(_api.group_offsets(self.group_id))
        owned = set(self._assignment)
        return {
            TopicPartition(o.topic, o.partition): o.offset
            for o in result.offsets
            if not owned or TopicPartition(o.topic, o.partition) in owned
        }

    def position(self, tp: TopicPartition) -> int | None:
        """Return the offset after the last record ``poll()`` returned from ``tp`` (None if none yet)."""
        return self._consumed.get(TopicPartition(*tp))

    def seek(self, tp: TopicPartition | tuple[str, int], offset: int) -> None:
        """Make the next poll of ``tp`` start at ``offset``."""
        self._seek(TopicPartition(*tp), "offset", offset)
        self._consumed[TopicPartition(*tp)] = offset

    def seek_to_beginning(self, partitions: Sequence[TopicPartition] | None = None) -> None:
        for tp in partitions or self._assignment:
            self._seek(TopicPartition(*tp), "earliest", None)
            self._consumed.pop(TopicPartition(*tp), None)

    def seek_to_end(self, partitions: Sequence[TopicPartition] | None = None) -> None:
        for tp in partitions or self._assignment:
            self._seek(TopicPartition(*tp), "latest", None)
            self._consumed.pop(TopicPartition(*tp), None)

    def seek_to_timestamp(self, tp: TopicPartition | tuple[str, int], timestamp_ms: int) -> None:
        self._seek(TopicPartition(*tp), "timestamp", timestamp_ms)
        self._consumed.pop(TopicPartition(*tp), None)

    def _seek(self, tp: TopicPartition, to: str, value: int | None) -> None:
        self._ensure_member()
        assert self._member_id is not None
        self._client.call(_api.seek(self.group_id, self._member_id, tp.topic, tp.partition, to, value))

    # -- closing --------------------------------------------------------------------------------

    def close(self, *, commit: bool | None = None) -> None:
        """Commit what was returned (with auto-commit, or ``commit=True``), leave the group, stop."""
        if self._closed:
            return
        try:
            if (self.enable_auto_commit if commit is None else commit) and self._member_id is not None:
                self._auto_commit()
        finally:
            self._closed = True
            self._stop.set()
            if self._heartbeat_thread is not None:
                self._heartbeat_thread.join(timeout=5)
            if self._commit_pool is not None:
                self._commit_pool.shutdown(wait=True)
            member_id = self._member_id
            if self._assignment and self.on_revoke is not None:
                try:
                    self.on_revoke(list(self._assignment))
                except Exception:
                    log.exception("on_revoke raised during close")
            self._assignment = ()
            if member_id is not None:
                try:
                    self._client.call(_api.leave_group(self.group_id, member_id), retries=1)
                except NotFoundError:
                    pass  # already expired: nothing to leave
                except TidelogError as error:
                    log.warning(
                        "leaving group %s failed: %s (the session timeout removes it)", self.group_id, error
                    )
            self._member_id = None

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
        client.ensure_leader(topic, partition)
        self._position = self._resolve(offset)

    @property
    def position(self) -> int:
        """The offset of the next record to read."""
        return self._position

    def _resolve(self, offset: int | str) -> int:
        if isinstance(offset, int):
            if offset < 0:
                # Like kcat's -o -N: N records before the end.
                end = self._client.offsets(self.topic, self.partition)
                return max(end.log_start_offset, end.high_watermark + offset)
            return offset
        offsets = self._client.offsets(self.topic, self.partition)
        if offset == "earliest":
            return offsets.log_start_offset
        if offset == "latest":
            return offsets.high_watermark
        raise ValueError(f"offset must be an int, 'earliest' or 'latest', not {offset!r}")

    def seek(self, offset: int | str) -> None:
        self._position = self._resolve(offset)

    def poll(self, timeout_ms: int = 1000) -> list[Record]:
        """Return the next records, waiting up to ``timeout_ms`` for at least one."""
        try:
            result = self._client.fetch(
                self.topic,
                self.partition,
                self._position,
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
            self._position = target if target is not None else self._resolve(self.on_out_of_range)
            return []
        self.high_watermark = result.high_watermark
        records = [r for r in result.records if r.offset >= self._position]
        self._position = max(self._position, result.next_offset)
        return records

    def read_to_end(self, *, timeout_ms: int = 1000) -> Iterator[Record]:
        """Yield records up to the high watermark as it is now, then stop."""
        end = self._client.offsets(self.topic, self.partition).high_watermark
        while self._position < end:
            records = self.poll(timeout_ms)
            for record in records:
                if record.offset >= end:
                    return
                yield record
            if not records and self.high_watermark is not None and self._position >= self.high_watermark:
                return

    def __iter__(self) -> Iterator[Record]:
        """Yield records forever, following the partition as it grows."""
        while True:
            yield from self.poll(5000)
