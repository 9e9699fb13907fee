"""Settling a group inside one locked catalog transaction: the coordinator's timers and rebalances.

``GroupCoordinator`` (app/groups/coordinator.py) opens a transaction, locks the group row and loads
its members and partition rows into a ``GroupTxn``; these functions then do what a Kafka
coordinator's timers and rebalance would: expire sessions, hand over revoked partitions, recompute
the assignment (eager or in two cooperative phases) and set the group's state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.catalog.groups import CommittedOffsetRow, GroupRow, MemberRow, OwnershipRow
from app.groups.assignors import MemberInfo, TopicPartition, assign, is_cooperative
from app.groups.model import OffsetCommit
from app.groups.patterns import matching

__all__ = [
    "GroupTxn",
    "TopicLookup",
    "expire",
    "expire_offsets",
    "finish",
    "owned",
    "reconcile",
    "rename_member",
    "revoking",
    "subscribed",
    "upsert_offsets",
]

TopicLookup = Callable[[Session], Mapping[str, int]]


@dataclass
class GroupTxn:
    """One locked group inside one transaction, with its members and partition rows loaded."""

    session: Session
    group: GroupRow
    now_ms: int
    members: dict[str, MemberRow]
    rows: dict[TopicPartition, OwnershipRow]
    generation_bumped: bool = False
    removed: list[str] = field(default_factory=list)

    def bump(self) -> None:
        """Start the next generation (once per transaction, however many changes it makes)."""
        if not self.generation_bumped:
            self.group.generation += 1
            self.generation_bumped = True


def expire(txn: GroupTxn) -> int:
    """Remove members whose session has timed out; answers how many."""
    expired = [m for m in txn.members.values() if m.last_seen_ms + m.session_timeout_ms < txn.now_ms]
    for member in expired:
        del txn.members[member.member_id]
        txn.session.delete(member)
        txn.removed.append(member.member_id)
    if expired:
        txn.session.flush()
    return len(expired)


def rename_member(txn: GroupTxn, member: MemberRow, new_id: str) -> None:
    """Give a static member's partitions to its new member id and drop the old row (KIP-345)."""
    old_id = member.member_id
    for row in txn.rows.values():
        if row.owner_member_id == old_id:
            row.owner_member_id = new_id
        if row.target_member_id == old_id:
            row.target_member_id = new_id
    del txn.members[old_id]
    txn.session.delete(member)
    txn.session.flush()


def subscribed(txn: GroupTxn, topic_lookup: TopicLookup) -> dict[TopicPartition, list[str]]:
    """Every partition some member subscribes to, with the members that may own it."""
    topics = topic_lookup(txn.session)
    eligible: dict[TopicPartition, list[str]] = {}
    for member in txn.members.values():
        if member.topics is not None:
            names = [t for t in member.topics if t in topics]
        else:
            names = matching(member.topic_pattern or "", topics)
        for topic in names:
            for partition in range(topics[topic]):
                eligible.setdefault((topic, partition), []).append(member.member_id)
    return eligible


def reconcile(
    txn: GroupTxn,
    topic_lookup: TopicLookup,
    *,
    force: bool = False,
    acting: str | None = None,
    acked_generation: int = -1,
) -> None:
    members = txn.members
    # 1. Hand over revoked partitions whose old owner has let go of them.
    for row in txn.rows.values():
        if row.target_member_id is None:
            continue
        released = (
            row.owner_member_id not in members
            or (row.revoke_deadline_ms is not None and txn.now_ms >= row.revoke_deadline_ms)
            or (row.owner_member_id == acting and acked_generation >= (row.revoked_generation or 0))
        )
        if released and row.target_member_id in members:
            txn.bump()
            row.owner_member_id = row.target_member_id
            row.assigned_generation = txn.group.generation
            row.position = None
            row.target_member_id = row.revoked_generation = row.revoke_deadline_ms = None
    # 2. Recompute the assignment when membership, subscriptions or partitions changed.
    eligible = subscribed(txn, topic_lookup)
    needed = force or bool(txn.removed) or set(eligible) != set(txn.rows)
    if not needed:
        for tp, row in txn.rows.items():
            if row.owner_member_id not in eligible[tp] or (
                row.target_member_id is not None and row.target_member_id not in eligible[tp]
            ):
                needed = True
                break
    if not needed:
        return
    txn.bump()
    txn.removed.clear()
    generation = txn.group.generation
    protocol = txn.group.protocol or "range"
    infos = [
        MemberInfo(
            member_id=m.member_id,
            instance_id=m.instance_id,
            topics=frozenset(tp[0] for tp, ids in eligible.items() if m.member_id in ids),
        )
        for m in members.values()
    ]
    current = {
        tp: row.owner_member_id
        for tp, row in txn.rows.items()
        if tp in eligible and row.owner_member_id in eligible[tp]
    }
    target = assign(protocol, infos, sorted(eligible), current)
    cooperative = is_cooperative(protocol)
    for tp in [tp for tp in txn.rows if tp not in target]:
        txn.session.delete(txn.rows.pop(tp))
    for tp, new_owner in target.items():
        existing = txn.rows.get(tp)
        if existing is None:
            row = OwnershipRow(
                group_id=txn.group.group_id,
                topic=tp[0],
                partition=tp[1],
                owner_member_id=new_owner,
                assigned_generation=generation,
                position=None,
            )
            txn.session.add(row)
            txn.rows[tp] = row
            continue
        row = existing
        owner_valid = tp in current
        if row.owner_member_id == new_owner and owner_valid:
            row.target_member_id = row.revoked_generation = row.revoke_deadline_ms = None
        elif cooperative and owner_valid:
            if row.target_member_id is None:
                old_owner = members[row.owner_member_id]
                row.revoked_generation = generation
                row.revoke_deadline_ms = txn.now_ms + old_owner.rebalance_timeout_ms
            row.target_member_id = new_owner
        else:
            row.owner_member_id = new_owner
            row.assigned_generation = generation
            row.position = None
            row.target_member_id = row.revoked_generation = row.revoke_deadline_ms = None
    txn.session.flush()


def finish(txn: GroupTxn) -> None:
    """Set the group's state (and empty_since) from its members and pending revocations."""
    group = txn.group
    if not txn.members:
        state = "Dead" if group.state == "Dead" else "Empty"
        group.protocol = None
        if group.empty_since_ms is None:
            group.empty_since_ms = txn.now_ms
    else:
        group.empty_since_ms = None
        if any(r.target_member_id is not None for r in txn.rows.values()):
            state = "PreparingRebalance"
        elif any(m.known_generation < group.generation for m in txn.members.values()):
            state = "CompletingRebalance"
        else:
            state = "Stable"
    if state != group.state:
        group.state = state
        group.state_changed_at_ms = txn.now_ms


def expire_offsets(txn: GroupTxn, retention_ms: int) -> None:
    """Delete committed offsets of an empty group older than the retention; Dead when none remain."""
    group = txn.group
    if txn.members or group.empty_since_ms is None:
        return
    rows = txn.session.scalars(
        select(CommittedOffsetRow).where(CommittedOffsetRow.group_id == group.group_id)
    ).all()
    for row in rows:
        if max(group.empty_since_ms, row.committed_at_ms) + retention_ms <= txn.now_ms:
            txn.session.delete(row)
    txn.session.flush()
    remaining = txn.session.scalars(
        select(CommittedOffsetRow.topic).where(CommittedOffsetRow.group_id == group.group_id).limit(1)
    ).first()
    if remaining is None and rows and group.state != "Dead":
        group.state = "Dead"
        group.state_changed_at_ms = txn.now_ms


def upsert_offsets(txn: GroupTxn, offsets: Sequence[OffsetCommit]) -> None:
    """Insert or overwrite committed offsets (a commit revives a Dead group as Empty)."""
    for commit in offsets:
        key = (txn.group.group_id, commit.topic, commit.partition)
        row = txn.session.get(CommittedOffsetRow, key)
        if row is None:
            txn.session.add(
                CommittedOffsetRow(
                    group_id=key[0],
                    topic=commit.topic,
                    partition=commit.partition,
                    offset=commit.offset,
                    metadata_=commit.metadata,
                    committed_at_ms=txn.now_ms,
                )
            )
        else:
            row.offset = commit.offset
            row.metadata_ = commit.metadata
            row.committed_at_ms = txn.now_ms
    if txn.group.state == "Dead":
        txn.group.state = "Empty"
        txn.group.state_changed_at_ms = txn.now_ms
    txn.session.flush()


def owned(txn: GroupTxn, member_id: str) -> tuple[TopicPartition, ...]:
    return tuple(
        sorted(
            tp
            for tp, row in txn.rows.items()
            if row.owner_member_id == member_id and row.target_member_id is None
        )
    )


def revoking(txn: GroupTxn, member_id: str) -> tuple[TopicPartition, ...]:
    return tuple(
        sorted(
            tp
            for tp, row in txn.rows.items()
            if row.owner_member_id == member_id and row.target_member_id is not None
        )
    )
