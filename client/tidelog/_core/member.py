"""A consumer-group member's state machine, without I/O: what to send next and what an answer means.

The group protocol over HTTP (``docs/groups.md``): ``POST /v1/groups/{g}/members`` joins and answers
the member id, generation and assignment; heartbeats every ``heartbeat_interval_ms`` carry the
generation the member has *applied* (so the broker knows its revocations are done) and answer the
current generation and assignment, so a member follows a rebalance by heartbeating. Only a 404
(``UnknownMemberError``, 40403: the session expired) makes it join again; then everything it owned is
lost (Kafka's ``onPartitionsLost``). A new assignment is applied in the polling thread or task,
never in the heartbeat's: first the offsets already handed out from partitions being revoked are
committed (so the next owner starts right after them), then ``on_revoke``, then ``on_assign``.

At-least-once by default (``enable_auto_commit``): each poll first commits the offsets of the
records the previous poll returned, and close commits what was returned last; a commit names only
partitions the member still owns in the newest generation it heard of (the broker refuses a whole
commit naming one that moved, 40902).

``GroupMember`` holds that state and builds every ``Call``; ``Consumer`` (a heartbeat thread) and
``AsyncConsumer`` (a heartbeat task) send them and run the callbacks. Its lock makes it safe to
share between a polling thread and a heartbeat thread; under asyncio it is never contended.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from tidelog import _api
from tidelog._errors import ClientStateError
from tidelog._types import Record, TopicPartition, parse_assignment

__all__ = ["OFFSET_RESETS", "Change", "GroupMember", "MemberOption", "MemberOptions"]

OFFSET_RESETS = ("earliest", "latest", "none")
T = TypeVar("T")


@dataclass(slots=True)
class MemberOptions:
    """What a member joins and polls with (Kafka's consumer configs of the same names)."""

    group_id: str
    topics: list[str] | None
    topic_pattern: str | None
    assignor: str
    session_timeout_ms: int
    rebalance_timeout_ms: int | None
    heartbeat_interval_ms: int | None
    instance_id: str | None
    auto_offset_reset: str
    max_poll_records: int
    max_poll_bytes: int | None
    key_format: str | None
    value_format: str | None
    enable_auto_commit: bool

    def __post_init__(self) -> None:
        if (self.topics is None) == (self.topic_pattern is None):
            raise ValueError("give either topics or topic_pattern")
        if self.auto_offset_reset not in OFFSET_RESETS:
            raise ValueError(f"auto_offset_reset must be one of {', '.join(OFFSET_RESETS)}")


class MemberOption(Generic[T]):
    """A consumer attribute that reads and writes its member's option of the same name, so both
    shells keep the attributes (``consumer.max_poll_records = 100``) that their users set."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, shell: Any, owner: type | None = None) -> T:
        return cast(T, getattr(shell._member.options, self.name))

    def __set__(self, shell: Any, value: T) -> None:
        setattr(shell._member.options, self.name, value)


@dataclass(frozen=True, slots=True)
class Change:
    """An assignment to apply: commit ``pending`` (under ``generation``) first, then revoke, assign."""

    generation: int
    assignment: tuple[TopicPartition, ...]
    pending: dict[TopicPartition, int]


class GroupMember:
    """One member's protocol state: identity, generation, assignment, positions and commits."""

    def __init__(self, options: MemberOptions) -> None:
        self.options = options
        self._lock = threading.Lock()
        self.member_id: str | None = None
        self.generation: int | None = None
        self.assignment: tuple[TopicPartition, ...] = ()  # as the application last saw it
        self._latest: tuple[int, tuple[TopicPartition, ...]] | None = None  # heard, not yet applied
        self._rejoin = False
        self.heartbeat_interval_s = 3.0
        self.consumed: dict[TopicPartition, int] = {}  # next offset after the last returned record
        self.committed: dict[TopicPartition, int] = {}

    # -- joining and heartbeats ---------------------------------------------------------------------

    @property
    def needs_join(self) -> bool:
        with self._lock:
            return self.member_id is None or self._rejoin

    def join_call(self) -> _api.Call[dict[str, Any]]:
        o = self.options
        return _api.join_group(
            o.group_id,
            topics=o.topics,
            topic_pattern=o.topic_pattern,
            assignor=o.assignor,
            session_timeout_ms=o.session_timeout_ms,
            rebalance_timeout_ms=o.rebalance_timeout_ms,
            instance_id=o.instance_id,
            auto_offset_reset=o.auto_offset_reset,
        )

    def lose(self) -> tuple[TopicPartition, ...]:
        """The session expired: forget the member id; return the assignment to apply (nothing)."""
        with self._lock:
            self.member_id = None
        return ()

    def joined(self, answer: Mapping[str, Any]) -> None:
        """Take a join's answer: the member id, generation, assignment and heartbeat interval."""
        member_id, generation = answer.get("member_id"), answer.get("generation")
        if not isinstance(member_id, str) or not isinstance(generation, int):
            raise ClientStateError(f"join answered without member_id/generation: {dict(answer)}")
        o = self.options
        interval = o.heartbeat_interval_ms or answer.get("heartbeat_interval_ms") or o.session_timeout_ms // 3
        with self._lock:
            self.member_id, self.generation = member_id, generation
            self._latest = (generation, parse_assignment(answer.get("assignment")))
            self._rejoin = False
            self.heartbeat_interval_s = max(0.05, int(interval) / 1000.0)

    def heartbeat_call(self) -> tuple[str, _api.Call[dict[str, Any]]] | None:
        """The heartbeat to send now with the member id it is for, or None (not a member, rejoining)."""
        with self._lock:
            member_id, applied = self.member_id, self.generation
            if member_id is None or self._rejoin:
                return None
        # The generation the poll thread has applied: it acknowledges the revocations it carried
        # out (committed, on_revoke called), so the broker may hand those partitions over.
        return member_id, _api.heartbeat(self.options.group_id, member_id, applied)

    def heard(self, member_id: str, answer: Mapping[str, Any]) -> None:
        """A heartbeat's (or poll's) answer for ``member_id``: remember its generation and assignment."""
        generation = answer.get("generation")
        if isinstance(generation, int) and "assignment" in answer:
            with self._lock:
                if self.member_id == member_id:
                    self._latest = (generation, parse_assignment(answer.get("assignment")))

    def unknown(self, member_id: str) -> None:
        """The broker does not know ``member_id`` (40403): join again on the next poll."""
        with self._lock:
            if self.member_id == member_id:
                self._rejoin = True

    # -- rebalances -------------------------------------------------------------------------------

    def take_change(self) -> Change | None:
        """The newest assignment heard and not yet applied, with what to commit before revoking."""
        with self._lock:
            latest, self._latest = self._latest, None
        if latest is None:
            return None
        generation, assignment = latest
        pending: dict[TopicPartition, int] = {}
        if self.options.enable_auto_commit:
            # Partitions being revoked stay committable until handed over.
            revoked = set(self.assignment) - set(assignment)
            pending = {tp: off for tp, off in self.uncommitted().items() if tp in revoked}
        return Change(generation, assignment, pending)

    def apply(
        self, assignment: tuple[TopicPartition, ...]
    ) -> tuple[list[TopicPartition], list[TopicPartition]]:
        """Make ``assignment`` current; return (revoked, added) for the callbacks, in that order."""
        old, new = set(self.assignment), set(assignment)
        revoked, added = sorted(old - new), sorted(new - old)
        for tp in revoked:
            self.consumed.pop(tp, None)
            self.committed.pop(tp, None)
        self.assignment = tuple(sorted(new))
        return revoked, added

    def applied(self, generation: int) -> None:
        with self._lock:
            self.generation = generation

    # -- polling ----------------------------------------------------------------------------------

    def poll_call(self, timeout_ms: int) -> _api.Call[dict[str, Any]]:
        o = self.options
        assert self.member_id is not None
        return _api.poll_member(
            o.group_id,
            self.member_id,
            max_records=o.max_poll_records,
            max_bytes=o.max_poll_bytes,
            max_wait_ms=max(0, int(timeout_ms)),
            key_format=o.key_format,
            value_format=o.value_format,
        )

    def records(self, answer: Mapping[str, Any]) -> list[Record]:
        o = self.options
        return [
            Record.from_json(r, key_format=o.key_format, value_format=o.value_format)
            for r in answer.get("records") or ()
            if isinstance(r, Mapping)
        ]

    def mark_consumed(self, records: Iterable[Record]) -> None:
        consumed = self.consumed
        for record in records:
            tp = record.topic_partition
            if record.offset + 1 > consumed.get(tp, -1):
                consumed[tp] = record.offset + 1

    # -- offsets ----------------------------------------------------------------------------------

    def uncommitted(self) -> dict[TopicPartition, int]:
        return {tp: off for tp, off in self.consumed.items() if self.committed.get(tp) != off}

    def auto_commit_offsets(self) -> tuple[dict[TopicPartition, int], int | None]:
        """What auto-commit sends now: the uncommitted offsets of partitions still owned, and the
        generation to send them under (the newest heard of)."""
        with self._lock:
            generation, owned = self._latest or (self.generation, self.assignment)
        return {tp: off for tp, off in self.uncommitted().items() if tp in owned}, generation

    def chosen(
        self, offsets: Mapping[TopicPartition, int] | Mapping[tuple[str, int], int] | None
    ) -> dict[TopicPartition, int]:
        """The offsets an explicit ``commit()`` sends: the given ones, else every uncommitted one."""
        if self.member_id is None:
            raise ClientStateError("the consumer has not joined its group yet: poll() first")
        return {TopicPartition(*tp): off for tp, off in (offsets or self.uncommitted()).items()}

    def commit_call(
        self, chosen: Mapping[TopicPartition, int], generation: int | None, metadata: str | None
    ) -> _api.Call[None]:
        return _api.commit(
            self.options.group_id,
            [(tp.topic, tp.partition, off, metadata) for tp, off in chosen.items()],
            member_id=self.member_id,
            generation=generation,
        )

    def on_committed(self, chosen: Mapping[TopicPartition, int]) -> None:
        with self._lock:
            self.committed.update(chosen)

    def owned_offsets(self, result: Any) -> dict[TopicPartition, int | None]:
        """The committed offsets (a ``group_offsets`` answer) of the partitions this member owns."""
        owned = set(self.assignment)
        return {
            TopicPartition(o.topic, o.partition): o.offset
            for o in result.offsets
            if not owned or TopicPartition(o.topic, o.partition) in owned
        }

    def seek_call(self, tp: TopicPartition, to: str, value: int | None) -> _api.Call[None]:
        assert self.member_id is not None
        return _api.seek(self.options.group_id, self.member_id, tp.topic, tp.partition, to, value)

    def sought(self, tp: TopicPartition, to: str, value: int | None) -> None:
        """After a seek: the position is the offset sought to, or unknown until the next poll."""
        if to == "offset" and value is not None:
            self.consumed[tp] = value
        else:
            self.consumed.pop(tp, None)

    def seek_targets(self, partitions: Sequence[TopicPartition] | None) -> list[TopicPartition]:
        return [TopicPartition(*tp) for tp in (partitions or self.assignment)]

    # -- streams and leaving ----------------------------------------------------------------------

    def stream_params(self) -> dict[str, Any]:
        """The join parameters of a group SSE stream that stands in for this member."""
        if self.member_id is not None:
            raise ClientStateError("this consumer already joined by poll(); a stream is a member of its own")
        o = self.options
        params: dict[str, Any] = {
            "assignor": o.assignor,
            "session_timeout_ms": o.session_timeout_ms,
            "auto_offset_reset": o.auto_offset_reset,
        }
        if o.topic_pattern is not None:
            params["topic_pattern"] = o.topic_pattern
        if o.instance_id is not None:
            params["instance_id"] = o.instance_id
        if o.rebalance_timeout_ms is not None:
            params["rebalance_timeout_ms"] = o.rebalance_timeout_ms
        return params

    def leave(self) -> tuple[list[TopicPartition], _api.Call[None] | None]:
        """Close the membership: the partitions to revoke, and the leave request (None if not a member)."""
        revoked, self.assignment = list(self.assignment), ()
        with self._lock:
            member_id, self.member_id = self.member_id, None
        return revoked, (_api.leave_group(self.options.group_id, member_id) if member_id else None)
