"""What the Broker calls in clustered mode (``Broker.cluster``; None on a single node)."""

from __future__ import annotations

from typing import Protocol

from app.broker.partitions import PartitionHandle

__all__ = ["ReplicationHooks"]


class ReplicationHooks(Protocol):
    async def ensure_known(self, handle: PartitionHandle) -> None:
        """Refresh this broker's metadata at once if it has not heard of the partition yet."""

    def check_append(self, handle: PartitionHandle, *, acks_all: bool) -> None:
        """Raise NotLeaderError / NotEnoughReplicasError unless this broker may append now
        (called with the partition's write lock held)."""

    def after_append(self, handle: PartitionHandle) -> None:
        """Move the high watermark (the smallest log end of the ISR) and wake the followers."""

    async def wait_replicated(self, handle: PartitionHandle, end_offset: int) -> None:
        """Return once every ISR replica has the offsets below ``end_offset`` (acks=all)."""

    def check_fetch(self, handle: PartitionHandle, offset: int | None, *, leader_only: bool = False) -> None:
        """Raise NotLeaderError unless this broker holds a replica it may serve ``offset`` from
        (with ``leader_only``: unless it leads the partition)."""

    async def read_index(self, handle: PartitionHandle) -> int:
        """The high watermark a read here may serve: the local one once it covers the leader's."""
