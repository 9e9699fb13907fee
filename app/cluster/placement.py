"""Replica placement for new topics and partitions (Kafka's rack-unaware assignment, simplified).

Partition ``p`` gets the live brokers rotated by ``start + p``: leaders (the first replica) spread
evenly over the brokers, and every broker holds about ``partitions * replication_factor / brokers``
replicas. ``start`` is random per topic, so many small topics do not all lead on the lowest id.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.catalog import cluster as cluster_catalog
from app.catalog import topics as topics_catalog
from app.topics.errors import InvalidReplicationFactorError

__all__ = ["ReplicaPlacer", "assign_replicas"]


def assign_replicas(
    brokers: Sequence[int], *, partitions: range, replication_factor: int, start: int
) -> dict[int, list[int]]:
    """partition → replicas (the first one the preferred leader) over ``brokers``."""
    ordered = sorted(brokers)
    n = len(ordered)
    if not 1 <= replication_factor <= n:
        raise ValueError(f"replication factor {replication_factor} with {n} brokers")
    return {
        p: [ordered[(start + p + i) % n] for i in range(replication_factor)] for p in partitions
    }


class ReplicaPlacer:
    """The TopicService's placement hook in clustered mode: checks the replication factor against
    the live brokers and places new partitions' replicas in the topic's catalog transaction."""

    def __init__(
        self, rng: random.Random | None = None, on_change: Callable[[], None] | None = None
    ) -> None:
        self._rng = rng or random.Random()
        self._on_change = on_change

    def live_brokers(self, session: Session) -> list[int]:
        return [b.broker_id for b in cluster_catalog.list_brokers(session) if not b.fenced]

    def check_factor(self, session: Session, factor: int) -> list[int]:
        """The live brokers; raises ``InvalidReplicationFactorError`` when ``factor`` does not fit."""
        live = self.live_brokers(session)
        if factor < 1 or factor > len(live):
            raise InvalidReplicationFactorError(
                f"replication_factor {factor} is larger than the {len(live)} live brokers"
                if factor >= 1 else f"replication_factor must be at least 1, got {factor}",
                available_brokers=len(live),
            )
        return live

    def place(self, session: Session, topic: topics_catalog.TopicRow, *, first_partition: int) -> None:
        """Assign replicas to the topic's partitions from ``first_partition`` on (ORM rows, flushed)."""
        factor = topic.replication_factor
        live = self.check_factor(session, factor)
        start = self._rng.randrange(len(live))
        rows = [row for row in topic.partitions if row.partition >= first_partition]
        assignment = assign_replicas(
            live, partitions=range(first_partition, first_partition + len(rows)),
            replication_factor=factor, start=start,
        )
        for row in rows:
            replicas = assignment[row.partition]
            row.replicas = list(replicas)
            row.isr = list(replicas)
            row.leader = replicas[0]
            row.leader_epoch = 0
        session.flush()
        if self._on_change is not None:
            on_change = self._on_change
            # Once committed, this broker re-reads leadership at once instead of at its next tick.
            event.listen(session, "after_commit", lambda _session: on_change(), once=True)
