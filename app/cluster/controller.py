"""What the controller decides for one partition, given the live (unfenced) brokers.

Pure functions, no I/O: ``app/cluster/manager.py`` applies the decisions by compare-and-set on the
partition epoch. The rules follow Kafka's controller (KRaft ``PartitionChangeBuilder``):

- a fenced follower leaves the ISR at once (the leader would drop it after replica.lag.time.max.ms);
- a fenced leader is replaced by the first replica, in preference order, that is live and in the
  ISR; the leader epoch is bumped, so the old leader and its followers learn they are stale;
- when no ISR member is live, the partition goes offline (no leader, epoch bumped) and keeps its
  last ISR: ``unclean.leader.election.enable=false``, a replica outside the ISR may lack
  acknowledged records, so it is never elected; the partition returns when an ISR member does;
- when the preferred replica (the first) is live and back in the ISR, leadership moves back to it
  (Kafka's auto.leader.rebalance.enable, applied at once rather than at an imbalance ratio);
- a reassignment (``target_replicas``) completes once every target replica is in the ISR: the
  replicas become the target, the ISR loses the others, and if the leader is not a target replica
  the first live target replica in the ISR leads (epoch bumped). Until then the rules above apply
  to the union of old and new replicas.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

from app.catalog.cluster import PartitionLeadership

__all__ = ["LeadershipChange", "decide"]


@dataclass(frozen=True, slots=True)
class LeadershipChange:
    leader: int | None
    isr: tuple[int, ...]
    leader_epoch: int
    reason: str
    #: A new replica set (a finished reassignment), or None to keep it.
    replicas: tuple[int, ...] | None = None


def decide(p: PartitionLeadership, live: Set[int]) -> LeadershipChange | None:
    """The change the controller makes to ``p`` (None: leave it as it is)."""
    finished = _finish_reassignment(p, live)
    if finished is not None:
        return finished
    live_isr = tuple(b for b in p.isr if b in live)
    leader = p.leader
    if leader is not None and leader in live:
        preferred = p.replicas[0] if p.replicas else leader
        isr = live_isr if leader in live_isr else (leader, *live_isr)
        if preferred != leader and preferred in live_isr:
            return LeadershipChange(preferred, isr, p.leader_epoch + 1, "preferred replica back in sync")
        if isr != p.isr:
            return LeadershipChange(leader, isr, p.leader_epoch, "fenced followers left the ISR")
        return None
    candidates = [b for b in p.replicas if b in live_isr]
    if candidates:
        return LeadershipChange(candidates[0], live_isr, p.leader_epoch + 1, "leader elected from the ISR")
    if leader is None:
        return None
    # No live ISR member: offline rather than unclean. The last ISR stays, so one of them leads again.
    return LeadershipChange(None, p.isr, p.leader_epoch + 1, "no live replica in the ISR: offline")


def _finish_reassignment(p: PartitionLeadership, live: Set[int]) -> LeadershipChange | None:
    target = p.target_replicas
    if target is None or not set(target) <= set(p.isr):
        return None
    isr = tuple(b for b in p.isr if b in target)
    if p.leader is not None and p.leader in target and p.leader in live:
        return LeadershipChange(p.leader, isr, p.leader_epoch, "reassignment finished", replicas=target)
    candidates = [b for b in target if b in isr and b in live]
    if not candidates:
        return None  # wait for a target replica to be live
    return LeadershipChange(
        candidates[0], isr, p.leader_epoch + 1, "reassignment finished: leader moved", replicas=target
    )
