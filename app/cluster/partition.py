"""A partition's replica state on this broker, as leader or follower (Kafka's ``Partition``).

As leader: the high watermark is the smallest log end offset of the ISR; followers that lag more
than ``replica.lag.time.max.ms`` leave the ISR and followers that caught up join it, each by
compare-and-set on the partition epoch in the catalog (one change in flight per partition); the
replica fetches of followers are answered here. For the Broker: who may append (``check_append``),
who may serve which offset (``check_fetch``), when an ``acks=all`` write is replicated
(``wait_replicated``), and the high watermark a read through a follower may serve (``read_index``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import httpx

from app.broker.partitions import PartitionHandle
from app.catalog import cluster as cluster_catalog
from app.cluster.errors import (
    NotEnoughReplicasAfterAppendError,
    NotEnoughReplicasError,
    NotLeaderError,
    ReplicaOffsetOutOfRangeError,
)
from app.cluster.replica import Replica, Role
from app.cluster.state import INTERNAL_PREFIX, ClusterState
from storage import errors as storage_errors

__all__ = ["FetchPartition", "PartitionFetched", "PartitionReplicas", "ReplicaFetch"]

logger = logging.getLogger("tidelog.cluster")


@dataclass(frozen=True, slots=True)
class ReplicaFetch:
    """The leader's answer to a follower's fetch."""

    data: bytes
    high_watermark: int
    log_start_offset: int
    log_end_offset: int
    leader_epoch: int


@dataclass(frozen=True, slots=True)
class FetchPartition:
    """One partition of a follower's batched fetch: where its log ends, at which leader epoch."""

    topic: str
    partition: int
    leader_epoch: int
    offset: int
    max_bytes: int


@dataclass(frozen=True, slots=True)
class PartitionFetched:
    """The leader's answer for one partition of a batched fetch.

    ``error`` is None, ``"not_leader"`` (this broker does not lead it at that epoch; ``leader_epoch``
    is its current one when it leads at another) or ``"offset_out_of_range"`` (the offset is outside
    ``[log_start_offset, log_end_offset]``).
    """

    topic: str
    partition: int
    error: str | None
    data: bytes
    high_watermark: int
    log_start_offset: int
    log_end_offset: int
    leader_epoch: int


class PartitionReplicas:
    """The leader and follower state of this broker's replicas (see the module docstring)."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state

    # -- leader: high watermark and ISR -------------------------------------------------------------

    def update_high_watermark(self, replica: Replica) -> None:
        """HW = the smallest log end offset of the ISR; wake waiters when it moves."""
        log = replica.handle.log
        hw = replica.isr_high_watermark(self.state.me)
        if hw < 0:
            return
        if hw >= log.high_watermark:
            replica.servable = True
        before = log.high_watermark
        log.update_high_watermark(hw)
        if log.high_watermark != before:
            replica.handle.notify()

    def shrink_isrs(self) -> None:
        """Drop the followers that lag more than ``replica.lag.time.max.ms`` from the ISRs led here."""
        for replica in list(self.state.replicas.values()):
            if replica.role is not Role.LEADER:
                continue
            lagging = replica.lagging(self.state.me, self.state.lag_max_s)
            if lagging:
                isr = tuple(b for b in replica.isr if b not in lagging)
                logger.info(
                    "%s-%d: followers %s lag more than replica.lag.time.max.ms: shrinking the ISR to %s",
                    *replica.key, lagging, list(isr),
                )
                self.change_isr(replica, isr)

    def change_isr(self, replica: Replica, isr: tuple[int, ...]) -> None:
        """Compare-and-set the ISR in the catalog (one change in flight per partition)."""
        if replica.isr_change is not None and not replica.isr_change.done():
            return
        epoch, partition_epoch = replica.leader_epoch, replica.partition_epoch

        async def run() -> None:
            try:
                ok = await asyncio.to_thread(self._cas_isr, replica, isr)
            except Exception:
                logger.warning("ISR change of %s-%d failed", *replica.key, exc_info=True)
                ok = False
            if (
                ok and replica.role is Role.LEADER and replica.leader_epoch == epoch
                and replica.partition_epoch == partition_epoch
            ):
                replica.isr = isr
                replica.partition_epoch = partition_epoch + 1
                self.update_high_watermark(replica)
                replica.handle.notify()
            elif not ok:
                # Someone changed the partition first (a new leader epoch, or the controller):
                # this broker's view is stale and it must not acknowledge on it.
                self.state.refresh_wanted.set()

        replica.isr_change = asyncio.get_running_loop().create_task(run())

    def _cas_isr(self, replica: Replica, isr: tuple[int, ...]) -> bool:
        with self.state.begin() as session:
            return cluster_catalog.cas_partition(
                session, topic_id=replica.topic_id, partition=replica.handle.partition,
                expected_partition_epoch=replica.partition_epoch, leader=self.state.me, isr=isr,
                leader_epoch=replica.leader_epoch,
            )

    # -- leader: the followers' fetches -------------------------------------------------------------

    async def serve_replica_fetch(
        self, topic: str, partition: int, *, replica_id: int, leader_epoch: int, offset: int,
        max_bytes: int, max_wait_ms: int,
    ) -> ReplicaFetch:
        """A follower's fetch: record its log end, then raw batches from ``offset`` (long-poll)."""
        replica = self._record_replica_fetch(
            topic, partition, replica_id=replica_id, leader_epoch=leader_epoch, offset=offset
        )
        handle = replica.handle
        log = handle.log
        if offset >= log.log_end_offset and max_wait_ms > 0:
            await self._wait_for_append(handle, offset, max_wait_ms / 1000, replica, leader_epoch)
        data = b""
        if offset < log.log_end_offset:
            try:
                data = log.read(offset, max_bytes, max_offset=log.log_end_offset).data
            except storage_errors.OffsetOutOfRangeError:
                data = b""
        return ReplicaFetch(data, log.high_watermark, log.log_start_offset, log.log_end_offset,
                            replica.leader_epoch)

    async def serve_replica_fetches(
        self, *, replica_id: int, partitions: list[FetchPartition], max_bytes: int, max_wait_ms: int
    ) -> list[PartitionFetched]:
        """A follower's fetch of every partition it follows from this leader, in one request (Kafka's
        replica Fetch): each partition's fetch offset is recorded (high watermark, ISR expansion) as
        :meth:`serve_replica_fetch` does, then the answer waits up to ``max_wait_ms`` until any of
        them has records past its offset, and reads each (at most its own ``max_bytes``, at most
        ``max_bytes`` in all, always the first partition with data whole)."""
        served: list[tuple[FetchPartition, Replica | None, str | None]] = []
        for want in partitions:
            try:
                replica = self._record_replica_fetch(
                    want.topic, want.partition, replica_id=replica_id, leader_epoch=want.leader_epoch,
                    offset=want.offset,
                )
                served.append((want, replica, None))
            except NotLeaderError:
                served.append((want, None, "not_leader"))
            except ReplicaOffsetOutOfRangeError:
                leader = self.state.replicas.get((want.topic, want.partition))
                served.append((want, leader, "offset_out_of_range"))
        waiting = [(w, r) for w, r, error in served if r is not None and error is None]
        if max_wait_ms > 0 and len(waiting) == len(served) and all(
            w.offset >= r.handle.log.log_end_offset for w, r in waiting
        ):
            await self._wait_for_any_append(waiting, max_wait_ms / 1000)
        answers: list[PartitionFetched] = []
        budget = max_bytes
        for want, maybe_replica, error in served:
            if maybe_replica is None:
                answers.append(PartitionFetched(want.topic, want.partition, error, b"", -1, -1, -1, -1))
                continue
            replica = maybe_replica
            log = replica.handle.log
            data = b""
            if error is None and want.offset < log.log_end_offset and budget > 0:
                try:
                    data = log.read(
                        want.offset, min(want.max_bytes, budget), max_offset=log.log_end_offset
                    ).data
                except storage_errors.OffsetOutOfRangeError:
                    data = b""
                budget -= len(data)
            answers.append(PartitionFetched(
                want.topic, want.partition, error, data, log.high_watermark, log.log_start_offset,
                log.log_end_offset, replica.leader_epoch,
            ))
        return answers

    async def _wait_for_any_append(
        self, waiting: list[tuple[FetchPartition, Replica]], timeout_s: float
    ) -> None:
        event = asyncio.Event()
        epochs = [(w, r, r.leader_epoch) for w, r in waiting]
        for _, replica, _ in epochs:
            replica.handle.add_waiter(event)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            while not self.state.closing and all(
                r.handle.log.log_end_offset <= w.offset and r.role is Role.LEADER and r.leader_epoch == e
                for w, r, e in epochs
            ):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
                event.clear()
        finally:
            for _, replica, _ in epochs:
                replica.handle.remove_waiter(event)

    def _record_replica_fetch(
        self, topic: str, partition: int, *, replica_id: int, leader_epoch: int, offset: int
    ) -> Replica:
        """Check a follower's fetch of a partition led here and note its position (its log end):
        the high watermark may move, and a follower that caught up joins the ISR."""
        replica = self.led(topic, partition, leader_epoch)
        if replica_id not in replica.replicas:
            raise NotLeaderError(
                f"broker {replica_id} holds no replica of {topic}-{partition}", leader_id=self.state.me,
                leader_url=None,
            )
        log = replica.handle.log
        if offset > log.log_end_offset or offset < log.log_start_offset:
            raise ReplicaOffsetOutOfRangeError(
                f"offset {offset} is outside the leader's log [{log.log_start_offset}, {log.log_end_offset})",
                log_start_offset=log.log_start_offset, log_end_offset=log.log_end_offset,
            )
        replica.record_fetch(replica_id, offset)
        self.update_high_watermark(replica)
        if (
            replica_id not in replica.isr and offset >= log.high_watermark
            and offset >= replica.epoch_start_offset
        ):
            logger.info("%s-%d: follower %d caught up: joining the ISR", topic, partition, replica_id)
            self.change_isr(replica, (*replica.isr, replica_id))
        return replica

    async def _wait_for_append(
        self, handle: PartitionHandle, offset: int, timeout_s: float, replica: Replica, epoch: int
    ) -> None:
        event = asyncio.Event()
        handle.add_waiter(event)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            while handle.log.log_end_offset <= offset and replica.role is Role.LEADER \
                    and replica.leader_epoch == epoch and not self.state.closing:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
                event.clear()
        finally:
            handle.remove_waiter(event)

    def end_offset_for_epoch(
        self, topic: str, partition: int, *, leader_epoch: int, epoch: int
    ) -> tuple[int, int]:
        """KIP-101/279 OffsetsForLeaderEpoch, answered by the leader."""
        replica = self.led(topic, partition, leader_epoch)
        return replica.handle.log.end_offset_for_epoch(epoch)

    def led(self, topic: str, partition: int, leader_epoch: int) -> Replica:
        """The replica of a partition this broker leads at ``leader_epoch``, else NotLeaderError."""
        state = self.state
        replica = state.replicas.get((topic, partition))
        if replica is None or replica.role is not Role.LEADER:
            state.refresh_wanted.set()
            leader = None if replica is None else replica.leader_id
            raise NotLeaderError(
                f"broker {state.me} does not lead {topic}-{partition}", leader_id=leader,
                leader_url=state.url_of(leader),
            )
        if leader_epoch != replica.leader_epoch:
            if leader_epoch > replica.leader_epoch:
                state.refresh_wanted.set()
            raise NotLeaderError(
                f"leader epoch {leader_epoch} is not the current epoch {replica.leader_epoch} of "
                f"{topic}-{partition}",
                leader_id=state.me, leader_url=None, leader_epoch=replica.leader_epoch,
            )
        return replica

    def leader_high_watermark(self, topic: str, partition: int) -> int:
        """The high watermark of a partition this broker leads (for a follower's ReadIndex)."""
        state = self.state
        replica = state.replicas.get((topic, partition))
        if replica is None or replica.role is not Role.LEADER:
            raise NotLeaderError(
                f"broker {state.me} does not lead {topic}-{partition}",
                leader_id=None if replica is None else replica.leader_id,
                leader_url=None if replica is None else state.url_of(replica.leader_id),
            )
        return replica.handle.log.high_watermark

    # -- the Broker's checks ------------------------------------------------------------------------

    def partition_ready(self, topic: str, partition: int) -> bool:
        """True once this broker can serve the partition as a new topic's first request expects:
        as its leader accepting ``acks=all`` (ISR >= min.insync.replicas), else knowing the leader."""
        state = self.state
        replica = state.replicas.get((topic, partition))
        if replica is None or replica.leader_id is None:
            return False
        if replica.leader_id != state.me:
            return True
        needed = state.min_insync_of(topic)
        return replica.role is Role.LEADER and len(replica.isr) >= needed and not state.fenced

    def _not_leader(self, handle: PartitionHandle, replica: Replica | None, what: str) -> NotLeaderError:
        state = self.state
        topic = f"{handle.topic}-{handle.partition}"
        if replica is None or replica.handle is not handle:
            # Created a moment ago: this broker has not read its leadership yet.
            state.refresh_wanted.set()
            return NotLeaderError(
                f"broker {state.me} does not know the leader of {topic} yet: retry",
                leader_id=None, leader_url=None,
            )
        leader = replica.leader_id
        where = f"led by broker {leader}" if leader is not None else "without a leader at the moment"
        return NotLeaderError(
            f"broker {state.me} cannot {what} {topic}: it is {where}", leader_id=leader,
            leader_url=state.url_of(leader),
        )

    def check_append(self, handle: PartitionHandle, *, acks_all: bool) -> None:
        state = self.state
        replica = state.replicas.get((handle.topic, handle.partition))
        if replica is None or replica.handle is not handle or replica.role is not Role.LEADER:
            raise self._not_leader(handle, replica, "accept writes for")
        if state.session_lapsed():
            raise NotLeaderError(
                f"broker {state.me} is fenced (its session with the catalog lapsed): retry",
                leader_id=None, leader_url=None,
            )
        if acks_all:
            needed = state.min_insync_of(handle.topic)
            if len(replica.isr) < needed:
                raise NotEnoughReplicasError(
                    f"{handle.topic}-{handle.partition} has {len(replica.isr)} in-sync replicas "
                    f"{list(replica.isr)}; min.insync.replicas is {needed}",
                    isr=list(replica.isr), min_insync_replicas=needed,
                )

    def after_append(self, handle: PartitionHandle) -> None:
        replica = self.state.replicas.get((handle.topic, handle.partition))
        if replica is not None and replica.role is Role.LEADER and replica.handle is handle:
            self.update_high_watermark(replica)
        handle.notify()  # followers long-polling at the old log end

    async def wait_replicated(self, handle: PartitionHandle, end_offset: int) -> None:
        """Wait until the ISR has the records below ``end_offset`` (the high watermark covers them).

        Called after the append, so every failure here is ``NotEnoughReplicasAfterAppendError``:
        the records are in this log and may survive, and the answer must never be a redirect.
        """
        state = self.state
        replica = state.replicas.get((handle.topic, handle.partition))
        where = f"{handle.topic}-{handle.partition}"

        def after_append(detail: str, **extra: object) -> NotEnoughReplicasAfterAppendError:
            leader = replica.leader_id if replica is not None else None
            return NotEnoughReplicasAfterAppendError(
                f"{detail}; the records were appended on broker {state.me} and may have been written: "
                "an idempotent producer's retry (or one with the same Idempotency-Key) is not duplicated",
                leader_id=leader, leader_url=state.url_of(leader), **extra,
            )

        if replica is None or replica.role is not Role.LEADER:
            raise after_append(f"broker {state.me} stopped leading {where} before the write was replicated")
        epoch = replica.leader_epoch
        loop = asyncio.get_running_loop()
        deadline = loop.time() + state.lag_max_s + state.session_s
        event = asyncio.Event()
        handle.add_waiter(event)
        try:
            while True:
                if replica.role is not Role.LEADER or replica.leader_epoch != epoch:
                    raise after_append(f"leadership of {where} moved before the write was replicated")
                if handle.log.high_watermark >= end_offset:
                    needed = state.min_insync_of(handle.topic)
                    if len(replica.isr) < needed:
                        raise after_append(
                            f"the ISR {list(replica.isr)} shrank below min.insync.replicas={needed} "
                            "before the write was replicated",
                            isr=list(replica.isr), min_insync_replicas=needed,
                        )
                    return
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise after_append(
                        f"the ISR {list(replica.isr)} of {where} did not replicate the write in time",
                        isr=list(replica.isr),
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(remaining, 0.5))
                event.clear()
        finally:
            handle.remove_waiter(event)

    def check_fetch(self, handle: PartitionHandle, offset: int | None, *, leader_only: bool = False) -> None:
        replica = self.state.replicas.get((handle.topic, handle.partition))
        if replica is None or replica.handle is not handle or replica.role is Role.NONE:
            raise self._not_leader(handle, replica, "serve reads of")
        if leader_only and replica.role is not Role.LEADER:
            # Read-your-writes: a follower's high watermark lags the leader's, so by default a
            # partition read goes to the leader (replica=any opts into follower reads, KIP-392).
            raise self._not_leader(handle, replica, "serve leader reads (replica=leader) of")
        if not replica.servable:
            raise self._not_leader(handle, replica, "yet serve reads (catching up) of")
        if replica.role is Role.FOLLOWER and offset is not None and offset > handle.log.high_watermark:
            # A position a consumer got from the leader (or a fresher replica) that this follower
            # has not reached yet: the leader answers it, rather than this replica calling it out
            # of range (KIP-392's OFFSET_NOT_AVAILABLE, as a redirect).
            raise self._not_leader(handle, replica, f"yet serve offset {offset} of")

    async def read_index(self, handle: PartitionHandle, timeout_s: float = 2.0) -> int:
        """The high watermark a read through this broker may serve so that it sees every write
        acknowledged before it: the local one, once (on a follower) it covers the leader's high
        watermark as of now (Raft's ReadIndex), which is cheaper than proxying a stream.

        A leader, a replica without a known leader, or a leader that does not answer (a failover
        in progress): the local high watermark, as before.
        """
        state = self.state
        log = handle.log
        replica = state.replicas.get((handle.topic, handle.partition))
        if replica is None or replica.role is not Role.FOLLOWER or replica.leader_id is None:
            return log.high_watermark
        url = state.url_of(replica.leader_id)
        if url is None or state.client is None:
            return log.high_watermark
        try:
            answer = await state.client.get(
                f"{url}{INTERNAL_PREFIX}/{handle.topic}/{handle.partition}/high-watermark", timeout=timeout_s
            )
            target = int(answer.json()["high_watermark"]) if answer.status_code == 200 else log.high_watermark
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return log.high_watermark
        if log.high_watermark >= target:
            return log.high_watermark
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        event = asyncio.Event()
        handle.add_waiter(event)
        try:
            while log.high_watermark < target and loop.time() < deadline:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), max(0.0, min(0.1, deadline - loop.time())))
                event.clear()
        finally:
            handle.remove_waiter(event)
        return log.high_watermark
