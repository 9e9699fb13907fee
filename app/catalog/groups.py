"""Catalog tables of consumer groups, their members, partition ownership and committed offsets.

Everything a group coordinator knows lives here, so that any broker process sharing the catalog can
serve any request of any member (see docs/groups.md). The coordinator (``app/groups/coordinator.py``)
changes these rows only inside one transaction that first locks the group row (``lock_group``):
``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite the write transaction itself (``BEGIN IMMEDIATE``)
already holds the database's single write lock.

Tables:
    consumer_groups   one row per group: generation, assignor (the group's protocol), state
    group_members     one row per live member: subscription, session, last contact
    group_partitions  one row per subscribed partition: owner, pending new owner (cooperative
                      revocation), the owner's position (next offset to deliver)
    group_offsets     committed offsets (kept while the group is empty, up to offsets.retention.minutes)
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKeyConstraint,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.catalog.base import Base
from app.catalog.topics import PartitionRow, TopicConfigRow, TopicRow

__all__ = [
    "CommittedOffsetRow",
    "GroupRow",
    "MemberRow",
    "OwnershipRow",
    "compaction_guards",
    "delete_group",
    "list_groups",
    "lock_group",
    "topic_partition_counts",
]


class GroupRow(Base):
    __tablename__ = "consumer_groups"

    group_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: Empty / PreparingRebalance / CompletingRebalance / Stable / Dead, as of the last operation.
    state: Mapped[str] = mapped_column(String(32))
    #: The assignor all members use (Kafka's "protocol"); None while the group has no members.
    protocol: Mapped[str | None] = mapped_column(String(32), nullable=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    state_changed_at_ms: Mapped[int] = mapped_column(BigInteger)
    #: When the last member left: committed offsets expire offsets.retention.minutes after it.
    empty_since_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class MemberRow(Base):
    __tablename__ = "group_members"
    __table_args__ = (
        ForeignKeyConstraint(["group_id"], ["consumer_groups.group_id"], ondelete="CASCADE"),
        # Static membership (KIP-345): one live member per group.instance.id. NULLs never collide.
        UniqueConstraint("group_id", "instance_id"),
    )

    group_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    #: Explicit topic subscription (None when subscribed by pattern).
    topics: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    topic_pattern: Mapped[str | None] = mapped_column(Text, nullable=True)
    assignor: Mapped[str] = mapped_column(String(32))
    session_timeout_ms: Mapped[int] = mapped_column(Integer)
    rebalance_timeout_ms: Mapped[int] = mapped_column(Integer)
    auto_offset_reset: Mapped[str] = mapped_column(String(16))
    #: "http" for members polling /records, "sse" for group event streams.
    client_kind: Mapped[str] = mapped_column(String(16))
    joined_at_ms: Mapped[int] = mapped_column(BigInteger)
    last_seen_ms: Mapped[int] = mapped_column(BigInteger)
    #: The latest generation this member has been told about (in a join, heartbeat or poll answer).
    known_generation: Mapped[int] = mapped_column(Integer)


class OwnershipRow(Base):
    __tablename__ = "group_partitions"
    __table_args__ = (ForeignKeyConstraint(["group_id"], ["consumer_groups.group_id"], ondelete="CASCADE"),)

    group_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    topic: Mapped[str] = mapped_column(String(249), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_member_id: Mapped[str] = mapped_column(String(64))
    #: Generation at which the owner got the partition.
    assigned_generation: Mapped[int] = mapped_column(Integer)
    #: Next offset the owner delivers; None: start from the committed offset or auto_offset_reset.
    position: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: Cooperative rebalancing: the member the partition goes to once the owner has released it.
    #: While set, the owner no longer fetches the partition (it may still commit it).
    target_member_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    revoked_generation: Mapped[int | None] = mapped_column(Integer, nullable=True)
    revoke_deadline_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class CommittedOffsetRow(Base):
    __tablename__ = "group_offsets"
    __table_args__ = (ForeignKeyConstraint(["group_id"], ["consumer_groups.group_id"], ondelete="CASCADE"),)

    group_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    topic: Mapped[str] = mapped_column(String(249), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    offset: Mapped[int] = mapped_column(BigInteger)
    metadata_: Mapped[str | None] = mapped_column("metadata", Text, nullable=True)
    committed_at_ms: Mapped[int] = mapped_column(BigInteger)


def lock_group(session: Session, *, group_id: str, now_ms: int, create: bool) -> GroupRow | None:
    """The group's row, locked for the rest of the transaction; created (Empty) when ``create``.

    On PostgreSQL the row lock (``FOR UPDATE``) serialises coordinator operations on one group across
    broker processes; a concurrent first creation is absorbed by ``ON CONFLICT DO NOTHING``. On SQLite
    the transaction already holds the database write lock (``BEGIN IMMEDIATE``).
    """
    dialect = session.get_bind().dialect.name
    if create:
        values = {
            "group_id": group_id,
            "state": "Empty",
            "protocol": None,
            "generation": 0,
            "created_at_ms": now_ms,
            "state_changed_at_ms": now_ms,
            "empty_since_ms": now_ms,
        }
        if dialect == "postgresql":
            session.execute(pg_insert(GroupRow).values(**values).on_conflict_do_nothing())
        elif dialect == "sqlite":
            session.execute(sqlite_insert(GroupRow).values(**values).on_conflict_do_nothing())
        elif session.get(GroupRow, group_id) is None:  # pragma: no cover - other databases
            session.add(GroupRow(**values))
            session.flush()
    query = select(GroupRow).where(GroupRow.group_id == group_id)
    if dialect == "postgresql":
        query = query.with_for_update()
    return session.scalars(query.execution_options(populate_existing=True)).one_or_none()


def list_groups(session: Session) -> Sequence[GroupRow]:
    """Every group, by id."""
    return session.scalars(select(GroupRow).order_by(GroupRow.group_id)).all()


def delete_group(session: Session, *, group_id: str) -> None:
    """Delete the group with its members, ownership and offsets."""
    for model in (OwnershipRow, MemberRow, CommittedOffsetRow):
        session.execute(delete(model).where(model.group_id == group_id))
    session.execute(delete(GroupRow).where(GroupRow.group_id == group_id))


def topic_partition_counts(session: Session) -> dict[str, int]:
    """Every topic in the catalog with its partition count (the metadata a rebalance works from)."""
    rows = session.execute(
        select(TopicRow.name, func.count(PartitionRow.partition))
        .join(PartitionRow, PartitionRow.topic_id == TopicRow.id)
        .group_by(TopicRow.name)
    ).all()
    return {name: int(count) for name, count in rows}


def compaction_guards(session: Session) -> dict[tuple[str, int], int]:
    """For every topic with ``compaction.guard.group``: per partition, the offset compaction stops at.

    The bound of partition ``p`` of changelog topic ``T`` is the smallest position for ``T`` in the
    ``{"changelog": {T: position}}`` metadata of the group's committed offsets of partition ``p``
    (what ``tidelog.streams`` commits); ``0`` (nothing cleaned) while the group has committed none.
    """
    guarded = session.execute(
        select(TopicRow.name, TopicConfigRow.value, func.count(PartitionRow.partition))
        .join(TopicConfigRow, TopicConfigRow.topic_id == TopicRow.id)
        .join(PartitionRow, PartitionRow.topic_id == TopicRow.id)
        .where(TopicConfigRow.name == "compaction.guard.group")
        .group_by(TopicRow.name, TopicConfigRow.value)
    ).all()
    bounds: dict[tuple[str, int], int] = {}
    for topic, group, partitions in guarded:
        if not isinstance(group, str):
            continue
        for p in range(int(partitions)):
            bounds[(topic, p)] = 0
        found: dict[int, int] = {}
        rows = session.execute(
            select(CommittedOffsetRow.partition, CommittedOffsetRow.metadata_).where(
                CommittedOffsetRow.group_id == group
            )
        ).all()
        for partition, metadata in rows:
            position = _changelog_position(metadata, topic)
            if position is not None:
                found[partition] = min(found.get(partition, position), position)
        bounds.update({(topic, p): pos for p, pos in found.items()})
    return bounds


def _changelog_position(metadata: str | None, topic: str) -> int | None:
    if not metadata or "changelog" not in metadata:
        return None
    try:
        value = json.loads(metadata).get("changelog", {}).get(topic)
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
