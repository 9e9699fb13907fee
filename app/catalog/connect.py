"""Catalog tables of ``tidelog connect``: connectors, their tasks, the workers, source offsets, topics.

``connectors``: one row per connector: its config (strings, as given; config-provider references
unresolved), its target state (RUNNING, PAUSED, STOPPED), and a connector-level failure trace.
``connect_tasks``: one row per task of a connector (``task_id`` 0…n-1): its config as the
connector's ``task_configs`` gave it, the worker it is assigned to and the assignment's
``generation`` (bumped at every new assignment: a task reporting with an older one is a zombie and
is refused), its reported state and trace, and ``restart_epoch`` (bumped by a restart request: the
worker restarts the task when it sees a new one).
``connect_workers``: the live workers, each with a lease (``last_seen_ms`` + ``session_timeout_ms``)
and the tasks it reported running at its last heartbeat.
``connect_offsets``: per connector and source partition (canonical JSON), the offset of the
contiguous acknowledged prefix (sink offsets are the consumer group ``connect-<name>``).
``connect_topics``: the topics a connector used since its last reset (KIP-558).
``connect_lock``: one row, locked by every assignment so two brokers never assign at once.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.catalog.base import Base

__all__ = [
    "ConnectLockRow",
    "ConnectOffsetRow",
    "ConnectTaskRow",
    "ConnectTopicRow",
    "ConnectWorkerRow",
    "ConnectorRow",
    "delete_offsets",
    "get_connector",
    "list_connectors",
    "list_offsets",
    "list_tasks",
    "list_topics",
    "list_workers",
    "lock_assignment",
]


class ConnectorRow(Base):
    __tablename__ = "connectors"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    connector_class: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(8))  # source | sink
    config: Mapped[str] = mapped_column(Text)  # JSON object of strings
    target_state: Mapped[str] = mapped_column(String(16))
    trace: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


class ConnectTaskRow(Base):
    __tablename__ = "connect_tasks"

    connector: Mapped[str] = mapped_column(
        String(255), ForeignKey("connectors.name", ondelete="CASCADE"), primary_key=True
    )
    task_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    config: Mapped[str] = mapped_column(Text)
    worker_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    generation: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    trace: Mapped[str | None] = mapped_column(Text, nullable=True)
    restart_epoch: Mapped[int] = mapped_column(Integer)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


class ConnectWorkerRow(Base):
    __tablename__ = "connect_workers"

    worker_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    last_seen_ms: Mapped[int] = mapped_column(BigInteger)
    session_timeout_ms: Mapped[int] = mapped_column(Integer)
    running: Mapped[str] = mapped_column(Text)  # JSON list of "connector/task"


class ConnectOffsetRow(Base):
    __tablename__ = "connect_offsets"

    connector: Mapped[str] = mapped_column(String(255), primary_key=True)
    partition_key: Mapped[str] = mapped_column(String(1024), primary_key=True)  # canonical JSON
    offset: Mapped[str] = mapped_column(Text)  # JSON
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


class ConnectTopicRow(Base):
    __tablename__ = "connect_topics"

    connector: Mapped[str] = mapped_column(String(255), primary_key=True)
    topic: Mapped[str] = mapped_column(String(255), primary_key=True)


class ConnectLockRow(Base):
    __tablename__ = "connect_lock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger)


def lock_assignment(session: Session) -> None:
    """Takes the assignment lock for the rest of the transaction (creates its row at first use)."""
    row = session.execute(select(ConnectLockRow).where(ConnectLockRow.id == 1).with_for_update()).scalar()
    if row is None:
        session.add(ConnectLockRow(id=1, epoch=0))
        session.flush()
        row = session.execute(
            select(ConnectLockRow).where(ConnectLockRow.id == 1).with_for_update()
        ).scalar_one()
    row.epoch += 1


def get_connector(session: Session, *, name: str) -> ConnectorRow | None:
    return session.get(ConnectorRow, name)


def list_connectors(session: Session) -> list[ConnectorRow]:
    return list(session.execute(select(ConnectorRow).order_by(ConnectorRow.name)).scalars())


def list_tasks(session: Session, *, connector: str | None = None) -> list[ConnectTaskRow]:
    query = select(ConnectTaskRow).order_by(ConnectTaskRow.connector, ConnectTaskRow.task_id)
    if connector is not None:
        query = query.where(ConnectTaskRow.connector == connector)
    return list(session.execute(query).scalars())


def list_workers(session: Session) -> list[ConnectWorkerRow]:
    return list(session.execute(select(ConnectWorkerRow).order_by(ConnectWorkerRow.worker_id)).scalars())


def list_offsets(session: Session, *, connector: str) -> list[ConnectOffsetRow]:
    query = select(ConnectOffsetRow).where(ConnectOffsetRow.connector == connector)
    return list(session.execute(query.order_by(ConnectOffsetRow.partition_key)).scalars())


def delete_offsets(session: Session, *, connector: str) -> None:
    session.execute(delete(ConnectOffsetRow).where(ConnectOffsetRow.connector == connector))


def list_topics(session: Session, *, connector: str) -> list[str]:
    query = select(ConnectTopicRow.topic).where(ConnectTopicRow.connector == connector)
    return list(session.execute(query.order_by(ConnectTopicRow.topic)).scalars())
