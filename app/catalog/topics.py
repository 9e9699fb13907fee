"""Catalog tables of topics, their config overrides and their partitions, and the functions on them.

Only configs that differ from the broker defaults are stored (as Kafka keeps only overrides in
ZooKeeper/KRaft): changing a broker default later changes every topic that did not override it.
Partition rows carry ``leader``, ``replicas``, ``isr`` and ``leader_epoch`` for clustering; on a single
node the leader is this broker and the replica set is ``[broker_id]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from app.catalog.base import Base

__all__ = [
    "PartitionRow",
    "TopicConfigRow",
    "TopicRow",
    "add_partitions",
    "create_topic",
    "delete_topic",
    "get_topic",
    "list_topic_summaries",
    "list_topics",
    "set_topic_configs",
]

ConfigValue = int | float | str


class TopicRow(Base):
    __tablename__ = "topics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(249), unique=True)
    #: A random UUID that tells a re-created topic from the one deleted before it (Kafka's topic id,
    #: KIP-516); also in every partition directory's ``partition.metadata``. Unique (migration 0006).
    topic_uuid: Mapped[str] = mapped_column(String(36), unique=True)
    replication_factor: Mapped[int] = mapped_column(Integer)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)

    configs: Mapped[list[TopicConfigRow]] = relationship(
        back_populates="topic", cascade="all, delete-orphan", passive_deletes=True, lazy="selectin"
    )
    partitions: Mapped[list[PartitionRow]] = relationship(
        back_populates="topic",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
        order_by="PartitionRow.partition",
    )

    @property
    def config_overrides(self) -> dict[str, ConfigValue]:
        return {row.name: row.value for row in self.configs}


class TopicConfigRow(Base):
    __tablename__ = "topic_configs"

    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[ConfigValue] = mapped_column(JSON)

    topic: Mapped[TopicRow] = relationship(back_populates="configs")


class PartitionRow(Base):
    __tablename__ = "partitions"

    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    leader: Mapped[int | None] = mapped_column(Integer, nullable=True)
    replicas: Mapped[list[int]] = mapped_column(JSON)
    isr: Mapped[list[int]] = mapped_column(JSON)
    leader_epoch: Mapped[int] = mapped_column(Integer, default=0)

    topic: Mapped[TopicRow] = relationship(back_populates="partitions")


def _partition_row(partition: int, replicas: Sequence[int]) -> PartitionRow:
    return PartitionRow(
        partition=partition, leader=replicas[0], replicas=list(replicas), isr=list(replicas), leader_epoch=0
    )


def get_topic(session: Session, *, name: str) -> TopicRow | None:
    """The topic called ``name`` with its configs and partitions, or None."""
    return session.scalars(select(TopicRow).where(TopicRow.name == name)).one_or_none()


def list_topics(session: Session) -> Sequence[TopicRow]:
    """Every topic, by name."""
    return session.scalars(select(TopicRow).order_by(TopicRow.name)).all()


def list_topic_summaries(session: Session) -> list[tuple[str, str, int, int]]:
    """(name, topic_uuid, replication_factor, partition count) of every topic, by name, in one query."""
    rows = session.execute(
        select(
            TopicRow.name,
            TopicRow.topic_uuid,
            TopicRow.replication_factor,
            func.count(PartitionRow.partition),
        )
        .outerjoin(PartitionRow, PartitionRow.topic_id == TopicRow.id)
        .group_by(TopicRow.id, TopicRow.name, TopicRow.topic_uuid, TopicRow.replication_factor)
        .order_by(TopicRow.name)
    ).all()
    return [(name, uuid, factor, int(count)) for name, uuid, factor, count in rows]


def count_topics(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(TopicRow)) or 0)


def create_topic(
    session: Session,
    *,
    name: str,
    topic_uuid: str,
    partitions: int,
    replicas: Sequence[int],
    configs: Mapping[str, ConfigValue],
    created_at_ms: int,
) -> TopicRow:
    """Insert a topic, its config overrides and ``partitions`` partitions led by ``replicas[0]``."""
    topic = TopicRow(
        name=name, topic_uuid=topic_uuid, replication_factor=len(replicas), created_at_ms=created_at_ms
    )
    topic.configs = [TopicConfigRow(name=key, value=value) for key, value in sorted(configs.items())]
    topic.partitions = [_partition_row(p, replicas) for p in range(partitions)]
    session.add(topic)
    session.flush()
    return topic


def add_partitions(session: Session, *, topic: TopicRow, count: int, replicas: Sequence[int]) -> None:
    """Grow ``topic`` to ``count`` partitions (callers check that ``count`` is larger)."""
    for p in range(len(topic.partitions), count):
        topic.partitions.append(_partition_row(p, replicas))
    session.flush()


def set_topic_configs(session: Session, *, topic: TopicRow, overrides: Mapping[str, ConfigValue]) -> None:
    """Replace the topic's stored overrides with ``overrides``."""
    existing = {row.name: row for row in topic.configs}
    for name, row in existing.items():
        if name not in overrides:
            topic.configs.remove(row)
    for name, value in overrides.items():
        if name in existing:
            existing[name].value = value
        else:
            topic.configs.append(TopicConfigRow(name=name, value=value))
    session.flush()


def delete_topic(session: Session, *, topic: TopicRow) -> None:
    """Delete the topic row; its configs and partitions go with it (ON DELETE CASCADE)."""
    session.execute(delete(TopicRow).where(TopicRow.id == topic.id))
    session.expunge(topic)
