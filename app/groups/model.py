"""Value types the coordinator hands out: plain frozen dataclasses, no rows, no HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.groups.assignors import TopicPartition

__all__ = [
    "AUTO_OFFSET_RESETS",
    "GROUP_STATES",
    "CommittedOffset",
    "GroupDescription",
    "GroupSummary",
    "JoinRequest",
    "MemberDescription",
    "MemberState",
    "MemberView",
    "OffsetCommit",
    "PartitionPosition",
]

AUTO_OFFSET_RESETS = ("earliest", "latest", "none")
GROUP_STATES = ("Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead")


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """What a joining member asks for; None timeouts take the broker's defaults."""

    topics: tuple[str, ...] | None = None
    topic_pattern: str | None = None
    assignor: str = "range"
    session_timeout_ms: int | None = None
    rebalance_timeout_ms: int | None = None
    instance_id: str | None = None
    auto_offset_reset: str = "latest"
    #: "http" (polls /records) or "sse" (a group event stream); shown by describe.
    client_kind: str = "http"


@dataclass(frozen=True, slots=True)
class MemberView:
    """A member's view of its group: what a join, heartbeat or poll answers."""

    group_id: str
    member_id: str
    generation: int
    state: str
    #: Partitions the member owns and may fetch, sorted.
    assignment: tuple[TopicPartition, ...]
    #: Partitions being taken from it (cooperative): no longer fetched, still committable.
    revoking: tuple[TopicPartition, ...]
    heartbeat_interval_ms: int
    session_timeout_ms: int
    auto_offset_reset: str


@dataclass(frozen=True, slots=True)
class PartitionPosition:
    """Where a member is in one assigned partition."""

    topic: str
    partition: int
    #: Next offset to deliver; None until the first fetch resolves it.
    position: int | None
    #: The group's committed offset, if any.
    committed: int | None


@dataclass(frozen=True, slots=True)
class MemberState:
    view: MemberView
    positions: tuple[PartitionPosition, ...]
    #: From ``peek``: the group is Stable and the member knows its generation, so storing its
    #: positions needs no settling (``GroupCoordinator.advance``).
    steady: bool = False


@dataclass(frozen=True, slots=True)
class OffsetCommit:
    topic: str
    partition: int
    offset: int
    metadata: str | None = None


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    topic: str
    partition: int
    offset: int
    metadata: str | None
    committed_at_ms: int


@dataclass(frozen=True, slots=True)
class MemberDescription:
    member_id: str
    instance_id: str | None
    client_kind: str
    topics: tuple[str, ...] | None
    topic_pattern: str | None
    session_timeout_ms: int
    last_seen_ms: int
    known_generation: int
    assignment: tuple[TopicPartition, ...]
    revoking: tuple[TopicPartition, ...]


@dataclass(frozen=True, slots=True)
class GroupDescription:
    group_id: str
    state: str
    protocol: str | None
    generation: int
    members: tuple[MemberDescription, ...]
    offsets: tuple[CommittedOffset, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class GroupSummary:
    group_id: str
    state: str
    protocol: str | None
    generation: int
    members: int
