"""The controller: one pass per heartbeat around the pure ``app.cluster.controller.decide``, and
partition reassignment.

The broker holding (or taking) the controller lease fences brokers silent for
``broker.session.timeout.ms``, applies ``decide`` to every partition (elections, ISR changes,
preferred-leader return, the switch of a reassignment, each a compare-and-set on the partition
epoch) and unfences brokers that came back, in one transaction holding the lease row. Any broker
may start a reassignment: it records the target replicas, which the controller's passes then carry
out once the new replicas are in sync.
"""

from __future__ import annotations

import asyncio
import logging

from app.catalog import cluster as cluster_catalog
from app.catalog import topics as topics_catalog
from app.catalog.cluster import PartitionLeadership
from app.cluster.controller import decide
from app.cluster.state import ClusterState
from app.errors_base import UnknownPartitionError, UnknownTopicError
from app.topics.errors import InvalidReplicationFactorError

__all__ = ["ControllerLoop"]

logger = logging.getLogger("tidelog.cluster")


class ControllerLoop:
    """The controller's pass and reassignment (see the module docstring)."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state

    def control(self) -> bool:
        """One controller pass if this broker holds (or takes) the lease; True if anything changed.

        Runs in a worker thread.
        """
        state = self.state
        timeout_ms = state.settings.broker_session_timeout_ms
        with state.begin() as session:
            epoch = cluster_catalog.acquire_controller(session, broker_id=state.me, lease_ms=timeout_ms)
            if epoch is None:
                state.controller_id = cluster_catalog.current_controller(session)
                return False
            if state.controller_id != state.me:
                logger.info("broker %d is the controller (lease epoch %d)", state.me, epoch)
            state.controller_id = state.me
            fenced = cluster_catalog.fence_expired(session, session_timeout_ms=timeout_ms)
            for broker_id in fenced:
                logger.warning("controller: fenced broker %d (no heartbeat for %d ms)", broker_id, timeout_ms)
            brokers = cluster_catalog.list_brokers(session)
            now = cluster_catalog.db_now_ms(session)
            live = {b.broker_id for b in brokers if not b.fenced}
            returning = [
                b.broker_id for b in brokers if b.fenced and b.last_heartbeat_ms >= now - timeout_ms
            ]
            changed = bool(fenced or returning)
            for p in cluster_catalog.list_partitions(session):
                change = decide(p, live)
                if change is None:
                    continue
                ok = cluster_catalog.cas_partition(
                    session, topic_id=p.topic_id, partition=p.partition,
                    expected_partition_epoch=p.partition_epoch, leader=change.leader, isr=change.isr,
                    leader_epoch=change.leader_epoch, replicas=change.replicas,
                    clear_target=change.replicas is not None,
                )
                if ok:
                    changed = True
                    logger.info(
                        "controller: %s-%d leader %s -> %s, isr %s -> %s, epoch %d -> %d (%s)",
                        p.topic, p.partition, p.leader, change.leader, list(p.isr), list(change.isr),
                        p.leader_epoch, change.leader_epoch, change.reason,
                    )
            # Unfenced only now: this pass removed them from every ISR and leadership of their past life.
            cluster_catalog.unfence_returned(session, broker_ids=returning)
            return changed

    # -- reassignment -------------------------------------------------------------------------------

    async def reassign(self, topic: str, partition: int, replicas: list[int]) -> PartitionLeadership:
        """Start moving a partition to ``replicas`` (the first the preferred leader); the new ones
        catch up as followers and the controller switches once they are all in the ISR."""
        if len(set(replicas)) != len(replicas):
            raise InvalidReplicationFactorError(f"replicas {replicas} name a broker twice")
        brokers = await asyncio.to_thread(self._registered_brokers)
        unknown = sorted(set(replicas) - brokers)
        if unknown:
            raise InvalidReplicationFactorError(
                f"brokers {unknown} are not registered in the cluster (known: {sorted(brokers)})",
                available_brokers=len(brokers),
            )
        moved = await asyncio.to_thread(self._start_reassignment, topic, partition, replicas)
        self.state.refresh_wanted.set()
        return moved

    def _registered_brokers(self) -> set[int]:
        with self.state.catalog.read() as session:
            return {b.broker_id for b in cluster_catalog.list_brokers(session)}

    def _start_reassignment(self, topic: str, partition: int, replicas: list[int]) -> PartitionLeadership:
        with self.state.begin() as session:
            row = topics_catalog.get_topic(session, name=topic)
            if row is None:
                raise UnknownTopicError(f"topic {topic!r} does not exist", topic=topic)
            topic_id, count = row.id, len(row.partitions)
            moved = cluster_catalog.start_reassignment(
                session, topic_id=topic_id, partition=partition, target=replicas
            )
            if moved is None:
                raise UnknownPartitionError(
                    f"topic {topic!r} has no partition {partition} (it has {count})", partitions=count
                )
            logger.info("reassigning %s-%d to replicas %s", topic, partition, replicas)
            return moved
