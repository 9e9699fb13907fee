"""Catalog functions of clustered mode: broker registrations, the controller lease, partition leadership.

Every change of a partition's leader or ISR is a compare-and-set on ``partitions.partition_epoch``
(bumped by each change), so a leader or controller acting on a stale view changes nothing and learns
it is stale. Times are the database's clock (``clock_timestamp()`` on PostgreSQL), so brokers whose
clocks disagree still agree on who has expired. The tables are created by migration 0004.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import JSON, BigInteger, Boolean, Integer, String, column, select, table, text, update
from sqlalchemy.orm import Session

__all__ = [
    "BrokerRow",
    "PartitionLeadership",
    "acquire_controller",
    "cas_partition",
    "current_controller",
    "db_now_ms",
    "fence_expired",
    "heartbeat",
    "list_brokers",
    "list_partitions",
    "min_insync_overrides",
    "register_broker",
    "start_reassignment",
    "unfence_returned",
]

_brokers = table(
    "brokers",
    column("broker_id", Integer),
    column("url", String),
    column("incarnation", BigInteger),
    column("registered_at_ms", BigInteger),
    column("last_heartbeat_ms", BigInteger),
    column("fenced", Boolean),
)
_lease = table(
    "controller_lease",
    column("id", Integer),
    column("holder", Integer),
    column("epoch", BigInteger),
    column("expires_at_ms", BigInteger),
)
_partitions = table(
    "partitions",
    column("topic_id", Integer),
    column("partition", Integer),
    column("leader", Integer),
    column("replicas", JSON),
    column("isr", JSON),
    column("leader_epoch", Integer),
    column("partition_epoch", Integer),
    column("target_replicas", JSON),
)
_topics = table("topics", column("id", Integer), column("name", String))
_topic_configs = table(
    "topic_configs", column("topic_id", Integer), column("name", String), column("value", JSON)
)


@dataclass(frozen=True, slots=True)
class BrokerRow:
    broker_id: int
    url: str
    incarnation: int
    last_heartbeat_ms: int
    fenced: bool


@dataclass(frozen=True, slots=True)
class PartitionLeadership:
    """A partition's leadership as the catalog has it."""

    topic_id: int
    topic: str
    partition: int
    leader: int | None
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader_epoch: int
    partition_epoch: int
    #: The replica set a running reassignment moves to (``replicas`` then holds old and new).
    target_replicas: tuple[int, ...] | None = None


def db_now_ms(session: Session) -> int:
    """The database's clock in epoch milliseconds (the local clock on SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        value = session.scalar(text("SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint"))
        return int(value or 0)
    return int(time.time() * 1000)


def register_broker(session: Session, *, broker_id: int, url: str) -> int:
    """Register (or re-register) ``broker_id``; returns its new incarnation.

    A (re-)registered broker starts fenced: the controller first takes it out of every ISR and
    leadership it held in its previous life, then unfences it (see ``unfence_returned``).
    """
    now = db_now_ms(session)
    current = session.scalar(
        select(_brokers.c.incarnation).where(_brokers.c.broker_id == broker_id).with_for_update()
    )
    if current is None:
        session.execute(
            _brokers.insert().values(
                broker_id=broker_id, url=url, incarnation=1, registered_at_ms=now,
                last_heartbeat_ms=now, fenced=True,
            )
        )
        return 1
    incarnation = int(current) + 1
    session.execute(
        update(_brokers)
        .where(_brokers.c.broker_id == broker_id)
        .values(url=url, incarnation=incarnation, registered_at_ms=now, last_heartbeat_ms=now, fenced=True)
    )
    return incarnation


def heartbeat(session: Session, *, broker_id: int, incarnation: int) -> bool | None:
    """Record a heartbeat; returns whether the broker is fenced, or None if another process has
    registered this broker id since (this one must stop acting for it)."""
    now = db_now_ms(session)
    result = session.execute(
        update(_brokers)
        .where(_brokers.c.broker_id == broker_id, _brokers.c.incarnation == incarnation)
        .values(last_heartbeat_ms=now)
        .returning(_brokers.c.fenced)
    ).first()
    return None if result is None else bool(result[0])


def expire_broker(session: Session, *, broker_id: int, incarnation: int) -> None:
    """Mark a broker's session as lapsed at once (a clean shutdown, or writes that fail): the
    controller fences it on its next pass, as if its heartbeats had stopped long ago."""
    session.execute(
        update(_brokers)
        .where(_brokers.c.broker_id == broker_id, _brokers.c.incarnation == incarnation)
        .values(last_heartbeat_ms=0)
    )


def list_brokers(session: Session) -> list[BrokerRow]:
    """Every registered broker, by id."""
    rows = session.execute(
        select(
            _brokers.c.broker_id, _brokers.c.url, _brokers.c.incarnation, _brokers.c.last_heartbeat_ms,
            _brokers.c.fenced,
        ).order_by(_brokers.c.broker_id)
    ).all()
    return [BrokerRow(int(r[0]), str(r[1]), int(r[2]), int(r[3]), bool(r[4])) for r in rows]


def acquire_controller(session: Session, *, broker_id: int, lease_ms: int) -> int | None:
    """Take or renew the controller lease; returns its epoch, or None when another broker holds it.

    The lease row stays locked until the transaction ends, so the caller's controller work in the
    same transaction cannot interleave with another broker taking the lease over.
    """
    now = db_now_ms(session)
    row = session.execute(
        select(_lease.c.holder, _lease.c.epoch, _lease.c.expires_at_ms)
        .where(_lease.c.id == 1)
        .with_for_update()
    ).first()
    if row is None:
        return None
    holder, epoch, expires = row[0], int(row[1]), int(row[2])
    if holder is not None and holder != broker_id and expires > now:
        return None
    if holder != broker_id:
        epoch += 1
    session.execute(
        update(_lease)
        .where(_lease.c.id == 1)
        .values(holder=broker_id, epoch=epoch, expires_at_ms=now + lease_ms)
    )
    return epoch


def current_controller(session: Session) -> int | None:
    """The broker holding an unexpired controller lease, or None."""
    now = db_now_ms(session)
    row = session.execute(select(_lease.c.holder, _lease.c.expires_at_ms).where(_lease.c.id == 1)).first()
    if row is None or row[0] is None or int(row[1]) <= now:
        return None
    return int(row[0])


def fence_expired(session: Session, *, session_timeout_ms: int) -> list[int]:
    """Fence every unfenced broker whose last heartbeat is older than the session timeout."""
    now = db_now_ms(session)
    rows = session.execute(
        update(_brokers)
        .where(_brokers.c.fenced.is_(False), _brokers.c.last_heartbeat_ms < now - session_timeout_ms)
        .values(fenced=True)
        .returning(_brokers.c.broker_id)
    ).all()
    return sorted(int(r[0]) for r in rows)


def unfence_returned(session: Session, *, broker_ids: Sequence[int]) -> None:
    """Unfence the given brokers (the controller has already removed them from ISRs and leadership)."""
    if broker_ids:
        session.execute(
            update(_brokers).where(_brokers.c.broker_id.in_(list(broker_ids))).values(fenced=False)
        )


def list_partitions(session: Session) -> list[PartitionLeadership]:
    """Every partition of every topic with its leadership, by topic and partition."""
    p = _partitions.c
    rows = session.execute(
        select(p.topic_id, _topics.c.name, p.partition, p.leader, p.replicas, p.isr, p.leader_epoch,
               p.partition_epoch, p.target_replicas)
        .join(_topics, _topics.c.id == p.topic_id)
        .order_by(_topics.c.name, p.partition)
    ).all()
    return [
        PartitionLeadership(
            int(r[0]), str(r[1]), int(r[2]), None if r[3] is None else int(r[3]),
            tuple(int(x) for x in r[4]), tuple(int(x) for x in r[5]), int(r[6]), int(r[7]),
            None if r[8] is None else tuple(int(x) for x in r[8]),
        )
        for r in rows
    ]


def cas_partition(
    session: Session,
    *,
    topic_id: int,
    partition: int,
    expected_partition_epoch: int,
    leader: int | None,
    isr: Sequence[int],
    leader_epoch: int,
    replicas: Sequence[int] | None = None,
    clear_target: bool = False,
) -> bool:
    """Set a partition's leader, ISR and leader epoch if its partition epoch is still the expected
    one (bumping it); False when someone changed the partition first."""
    p = _partitions.c
    values: dict[str, object] = {
        "leader": leader,
        "isr": list(isr),
        "leader_epoch": leader_epoch,
        "partition_epoch": expected_partition_epoch + 1,
    }
    if replicas is not None:
        values["replicas"] = list(replicas)
    if clear_target:
        values["target_replicas"] = None
    result = session.execute(
        update(_partitions)
        .where(
            p.topic_id == topic_id, p.partition == partition, p.partition_epoch == expected_partition_epoch
        )
        .values(**values)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def min_insync_overrides(session: Session) -> dict[str, int]:
    """Topics that override ``min.insync.replicas``: name → value."""
    rows = session.execute(
        select(_topics.c.name, _topic_configs.c.value)
        .join(_topic_configs, _topic_configs.c.topic_id == _topics.c.id)
        .where(_topic_configs.c.name == "min.insync.replicas")
    ).all()
    return {str(name): int(value) for name, value in rows}


def start_reassignment(
    session: Session, *, topic_id: int, partition: int, target: Sequence[int]
) -> PartitionLeadership | None:
    """Begin moving a partition to the replica set ``target``: the replicas become the old set
    followed by the new brokers (which catch up as followers), the target is recorded, and the
    partition epoch bumped. Returns the partition as it now is (None if it does not exist)."""
    p = _partitions.c
    row = session.execute(
        select(p.leader, p.replicas, p.isr, p.leader_epoch, p.partition_epoch)
        .where(p.topic_id == topic_id, p.partition == partition)
        .with_for_update()
    ).first()
    if row is None:
        return None
    current = [int(x) for x in row[1]]
    replicas = current + [b for b in target if b not in current]
    session.execute(
        update(_partitions)
        .where(p.topic_id == topic_id, p.partition == partition)
        .values(replicas=replicas, target_replicas=list(target), partition_epoch=int(row[4]) + 1)
    )
    name = session.scalar(select(_topics.c.name).where(_topics.c.id == topic_id))
    return PartitionLeadership(
        topic_id, str(name), partition, None if row[0] is None else int(row[0]), tuple(replicas),
        tuple(int(x) for x in row[2]), int(row[3]), int(row[4]) + 1, tuple(target),
    )
