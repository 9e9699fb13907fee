"""One partition's replica on this broker: its role, and as leader the state of its followers.

Kafka's ``Partition`` and ``Replica`` (``kafka.cluster``), reduced to what tidelog needs:

- **Leader.** Tracks each follower's log end offset (the offset of its last fetch) and when it was
  last caught up (``lastCaughtUpTimeMs``: the time of a fetch at the leader's log end, or of the
  previous fetch when this one reached the log end that fetch saw). High watermark = the smallest
  log end offset of the ISR. A follower not caught up for ``replica.lag.time.max.ms`` leaves the
  ISR; one that reaches the high watermark (and the start of the current leader epoch) joins it.
- **Follower.** Fetches from the leader; its high watermark is the leader's, capped at its own log end.
- **Servable.** A broker restarting opens its logs with the high watermark at the log end, which
  may include records the cluster never committed. A replica serves consumers only once its high
  watermark is known to be committed: as leader, once the ISR's log ends reach it; as follower,
  once the leader's high watermark does. Until then fetches are sent to the leader.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from enum import Enum

from app.broker.partitions import PartitionHandle
from app.catalog.cluster import PartitionLeadership

__all__ = ["FollowerState", "Replica", "Role"]


class Role(Enum):
    LEADER = "leader"
    FOLLOWER = "follower"
    NONE = "none"  # this broker holds no replica of the partition


@dataclass(slots=True)
class FollowerState:
    """What the leader knows of one follower (monotonic times in seconds)."""

    log_end_offset: int = -1
    last_caught_up: float = field(default_factory=time.monotonic)
    last_fetch: float = 0.0
    leader_end_at_last_fetch: int = -1


class Replica:
    """This broker's view of one partition."""

    def __init__(self, handle: PartitionHandle, meta: PartitionLeadership) -> None:
        self.handle = handle
        self.topic_id = meta.topic_id
        self.role = Role.NONE
        self.leader_id: int | None = None
        self.leader_epoch = -1
        self.partition_epoch = -1
        self.replicas: tuple[int, ...] = ()
        self.isr: tuple[int, ...] = ()
        self.followers: dict[int, FollowerState] = {}
        self.epoch_start_offset = 0
        self.servable = False
        self.isr_change: asyncio.Task[None] | None = None

    @property
    def key(self) -> tuple[str, int]:
        return self.handle.topic, self.handle.partition

    def record_fetch(self, replica_id: int, offset: int) -> FollowerState:
        """Note a follower's fetch at ``offset`` (its log end), as Kafka's updateFetchState."""
        now = time.monotonic()
        state = self.followers.get(replica_id)
        if state is None:
            state = self.followers[replica_id] = FollowerState(last_caught_up=0.0)
        leader_end = self.handle.log.log_end_offset
        if offset >= leader_end:
            state.last_caught_up = now
        elif offset >= state.leader_end_at_last_fetch >= 0:
            state.last_caught_up = max(state.last_caught_up, state.last_fetch)
        state.leader_end_at_last_fetch = leader_end
        state.last_fetch = now
        state.log_end_offset = offset
        return state

    def isr_high_watermark(self, me: int) -> int:
        """The smallest log end offset of the ISR (-1 while a member's is unknown)."""
        ends = [self.handle.log.log_end_offset]
        for broker in self.isr:
            if broker == me:
                continue
            state = self.followers.get(broker)
            ends.append(-1 if state is None else state.log_end_offset)
        return min(ends)

    def lagging(self, me: int, lag_max_s: float) -> list[int]:
        """ISR followers not caught up within ``lag_max_s``."""
        now = time.monotonic()
        out = []
        for broker in self.isr:
            if broker == me:
                continue
            state = self.followers.get(broker)
            if state is None or now - state.last_caught_up > lag_max_s:
                out.append(broker)
        return out
