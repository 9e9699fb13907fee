"""The seam between the Broker and clustered mode: what a produce, a fetch or a new topic asks of
replication.

:class:`SingleNode` is the embedded default: every partition is led here, an append is committed
once it is in the local log, and nothing is forwarded. ``app.cluster.manager.ClusterManager`` is the
clustered implementation (leadership from the catalog, followers, the ISR). Both are given to the
``Broker`` and the ``TopicService`` when they are built (``app/main.py``'s lifespan).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from app.broker.partitions import PartitionHandle
from app.broker.produce import RecordResult
from storage import RecordIn

if TYPE_CHECKING:
    from app.cluster.placement import ReplicaPlacer

__all__ = ["Replication", "SingleNode"]


class Replication(Protocol):
    """What the Broker and TopicService call, on one node or in a cluster."""

    @property
    def placer(self) -> ReplicaPlacer | None:
        """Where a new partition's replicas go (None: this broker holds every partition)."""

    async def ensure_known(self, handle: PartitionHandle) -> None:
        """Refresh this broker's metadata at once if it has not heard of the partition yet."""

    def check_append(self, handle: PartitionHandle, *, acks_all: bool) -> None:
        """Raise NotLeaderError / NotEnoughReplicasError unless this broker may append now
        (called with the partition's write lock held)."""

    def after_append(self, handle: PartitionHandle) -> None:
        """Move the high watermark (the smallest log end of the ISR) and wake the waiters."""

    async def wait_replicated(self, handle: PartitionHandle, end_offset: int) -> None:
        """Return once every ISR replica has the offsets below ``end_offset`` (acks=all)."""

    def check_fetch(self, handle: PartitionHandle, offset: int | None, *, leader_only: bool = False) -> None:
        """Raise NotLeaderError unless this broker holds a replica it may serve ``offset`` from
        (with ``leader_only``: unless it leads the partition)."""

    async def read_index(self, handle: PartitionHandle) -> int:
        """The high watermark a read here may serve: the local one once it covers the leader's."""

    async def wait_ready(self, topic: str, partitions: int, timeout_ms: int) -> list[int]:
        """The partitions of a new topic that some live broker cannot serve after ``timeout_ms``."""

    def leader_elsewhere(self, topic: str, partition: int) -> tuple[int, str] | None:
        """(broker id, URL) of the partition's leader when another broker leads it, else None."""

    async def forward(
        self, leader: tuple[int, str], topic: str, partition: int, records: Sequence[RecordIn],
        indices: Sequence[int], acks: str, key_producer: int = -1,
    ) -> list[RecordResult]:
        """Produce ``records[i] for i in indices`` on the leader named by ``leader_elsewhere``."""


class SingleNode:
    """One broker holding every partition: the leader of each, its whole ISR."""

    @property
    def placer(self) -> ReplicaPlacer | None:
        return None

    async def ensure_known(self, handle: PartitionHandle) -> None:
        return None

    def check_append(self, handle: PartitionHandle, *, acks_all: bool) -> None:
        return None

    def after_append(self, handle: PartitionHandle) -> None:
        handle.advance_high_watermark()

    async def wait_replicated(self, handle: PartitionHandle, end_offset: int) -> None:
        return None

    def check_fetch(self, handle: PartitionHandle, offset: int | None, *, leader_only: bool = False) -> None:
        return None

    async def read_index(self, handle: PartitionHandle) -> int:
        return handle.log.high_watermark

    async def wait_ready(self, topic: str, partitions: int, timeout_ms: int) -> list[int]:
        return []  # a partition is servable the moment its log is open

    def leader_elsewhere(self, topic: str, partition: int) -> tuple[int, str] | None:
        return None

    async def forward(
        self, leader: tuple[int, str], topic: str, partition: int, records: Sequence[RecordIn],
        indices: Sequence[int], acks: str, key_producer: int = -1,
    ) -> list[RecordResult]:
        raise RuntimeError("a single broker leads every partition: nothing is forwarded")
