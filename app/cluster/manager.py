"""ClusterManager: this broker's part in a cluster sharing a PostgreSQL catalog, wired from Kafka's
components, each a module of its own:

- ``lifecycle`` (BrokerLifecycleManager): registration, heartbeats, fencing, and stepping out of
  every leadership and ISR while this broker's writes fail (KIP-112);
- ``controller_loop``: the controller's pass around the pure ``controller.decide`` (lease,
  elections, preferred-leader return, the switch of a reassignment) and reassignment;
- ``partition`` (Partition): a replica's state as leader or follower, the high watermark as the
  ISR's smallest log end, ISR changes by compare-and-set, the Broker's checks;
- ``fetcher`` (ReplicaFetcherThread): one fetch task per leader, for all the partitions followed
  from it;
- ``state``: what they share (this broker's view of the cluster).

This module runs the **metadata** loop (a few times per heartbeat, or at once when something looks
stale): it reads every partition's leader, replicas, ISR and epochs and moves each local replica
into its role: a new leader records its leader epoch at its log end (KIP-101) and starts tracking
followers; a new follower starts a fetcher; lagging followers leave the ISRs led here.

Every field of the shared state is read and written on the event loop; catalog transactions run in
worker threads and set ``lock_timeout`` and ``idle_in_transaction_session_timeout``, so a broker
paused (SIGSTOP) inside one cannot hold a row lock the others wait for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from app.broker.partitions import PartitionHandle
from app.broker.produce import RecordResult
from app.catalog import Catalog
from app.catalog import cluster as cluster_catalog
from app.catalog.cluster import BrokerRow, PartitionLeadership
from app.cluster.controller_loop import ControllerLoop
from app.cluster.fetcher import ReplicaFetcher
from app.cluster.forward import ProduceForwarder
from app.cluster.lifecycle import BrokerLifecycle
from app.cluster.partition import FetchPartition, PartitionFetched, PartitionReplicas, ReplicaFetch
from app.cluster.placement import ReplicaPlacer
from app.cluster.replica import FollowerState, Replica, Role
from app.cluster.state import INTERNAL_PREFIX, ClusterState
from app.config import Settings
from app.errors_base import UnknownPartitionError, UnknownTopicError
from storage import RecordIn

if TYPE_CHECKING:
    from app.broker import Broker

__all__ = ["ClusterManager", "ClusterView", "ReplicaFetch"]

logger = logging.getLogger("tidelog.cluster")


@dataclass(frozen=True, slots=True)
class ClusterView:
    """What ``GET /v1/cluster`` shows."""

    controller_id: int | None
    brokers: list[BrokerRow]
    under_replicated: list[tuple[str, int]]


class ClusterManager:
    """Wires this broker's cluster parts and keeps its replicas in their roles (see the module
    docstring); the Broker, the routes and the produce forwarder call it."""

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.state = ClusterState(settings, catalog)
        self.lifecycle = BrokerLifecycle(self.state)
        self.controller = ControllerLoop(self.state)
        self.partitions = PartitionReplicas(self.state)
        self.fetcher = ReplicaFetcher(self.state)
        self._placer = ReplicaPlacer(on_change=self._refresh_soon)
        self.forwarder = ProduceForwarder(self, settings)
        self._topic_ids: dict[str, int] = {}
        #: One metadata refresh at a time (the loop's, or one a request asked for at once).
        self._refresh_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- what others read ---------------------------------------------------------------------------

    @property
    def placer(self) -> ReplicaPlacer:
        return self._placer

    @property
    def me(self) -> int:
        return self.state.me

    @property
    def replicas(self) -> dict[tuple[str, int], Replica]:
        return self.state.replicas

    @property
    def brokers(self) -> dict[int, BrokerRow]:
        return self.state.brokers

    def _refresh_soon(self) -> None:
        """Re-read leadership now (safe from worker threads: the placer calls it)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.state.refresh_wanted.set)

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self, broker: Broker) -> None:
        """Register this broker, learn the leadership of ``broker``'s partitions, start the loops.

        ``broker`` was built with this manager as its replication (and has opened its logs).
        """
        state = self.state
        state.bind(broker)
        self._loop = asyncio.get_running_loop()
        if logging.getLogger("httpx").level == logging.NOTSET:
            # One INFO line per replica fetch would drown the broker's log.
            logging.getLogger("httpx").setLevel(logging.WARNING)
        incarnation = await asyncio.to_thread(self.lifecycle.register)
        state.last_heartbeat = time.monotonic()
        state.client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=2.0))
        await self._refresh()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self.lifecycle.run(self.controller.control)),
            loop.create_task(self._metadata_loop()),
        ]
        logger.info("broker %d registered (incarnation %d) at %s", state.me, incarnation, state.url)

    async def close(self) -> None:
        """Stop the loops and fetchers; tell the controller this broker is gone (expired heartbeat)."""
        state = self.state
        state.closing = True
        await self.forwarder.aclose()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.fetcher.close()
        if state.client is not None:
            await state.client.aclose()
        try:
            await asyncio.to_thread(self.lifecycle.expire)
        except Exception:
            logger.warning("could not mark broker %d as gone in the catalog", state.me, exc_info=True)

    # -- metadata -----------------------------------------------------------------------------------

    def _read_metadata(
        self,
    ) -> tuple[list[PartitionLeadership], list[BrokerRow], dict[str, int], int | None]:
        with self.state.catalog.read() as session:
            return (
                cluster_catalog.list_partitions(session),
                cluster_catalog.list_brokers(session),
                cluster_catalog.min_insync_overrides(session),
                cluster_catalog.current_controller(session),
            )

    async def _metadata_loop(self) -> None:
        state = self.state
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.refresh_wanted.wait(), state.refresh_s)
            state.refresh_wanted.clear()
            try:
                async with self._refresh_lock:
                    await self._refresh()
                self.partitions.shrink_isrs()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("metadata refresh of broker %d failed", state.me, exc_info=True)

    async def _refresh(self) -> None:
        state = self.state
        partitions, brokers, min_insync, controller = await asyncio.to_thread(self._read_metadata)
        state.brokers = {b.broker_id: b for b in brokers}
        state.min_insync = min_insync
        if controller is not None:
            state.controller_id = controller
        await self._drop_deleted_topics({meta.topic: meta.topic_id for meta in partitions})
        seen: set[tuple[str, int]] = set()
        for meta in partitions:
            key = (meta.topic, meta.partition)
            seen.add(key)
            try:
                handle = await state.broker.partition(meta.topic, meta.partition)
            except (UnknownTopicError, UnknownPartitionError):
                continue  # deleted between the two reads
            replica = state.replicas.get(key)
            if replica is None or replica.handle is not handle or replica.topic_id != meta.topic_id:
                if replica is not None:
                    await self.fetcher.stop(replica)
                replica = state.replicas[key] = Replica(handle, meta)
            await self._apply(replica, meta)
        for key in [k for k in state.replicas if k not in seen]:
            replica = state.replicas.pop(key)
            replica.role = Role.NONE
            await self.fetcher.stop(replica)

    async def _drop_deleted_topics(self, catalog_ids: dict[str, int]) -> None:
        """Remove the logs of topics deleted (or deleted and re-created) through another broker.

        Only topics this broker has seen in the catalog count, and only while their open logs are
        the ones it saw: a topic (re-)created through this broker a moment ago is left alone.
        """
        state = self.state
        for topic in state.broker.topic_names():
            before = self._topic_ids.get(topic)
            if before is None or catalog_ids.get(topic) == before:
                continue
            known = state.replicas.get((topic, 0))
            try:
                handle = await state.broker.partition(topic, 0)
            except (UnknownTopicError, UnknownPartitionError):
                continue
            if known is None or known.handle is not handle:
                continue  # re-opened here since: created through this broker
            logger.info("topic %s was deleted or re-created through another broker: removing its logs", topic)
            for key in [k for k in state.replicas if k[0] == topic]:
                replica = state.replicas.pop(key)
                replica.role = Role.NONE
                await self.fetcher.stop(replica)
            state.broker.delete_topic(topic)
        self._topic_ids = dict(catalog_ids)

    async def _apply(self, replica: Replica, meta: PartitionLeadership) -> None:
        """Move ``replica`` into the role ``meta`` gives it."""
        me = self.state.me
        if meta.leader_epoch < replica.leader_epoch or meta.partition_epoch < replica.partition_epoch:
            return  # an older read than what this broker already acted on
        role = (
            Role.LEADER if meta.leader == me
            else Role.FOLLOWER if me in meta.replicas
            else Role.NONE
        )
        same = (
            role is replica.role and meta.leader_epoch == replica.leader_epoch
            and meta.leader == replica.leader_id
        )
        replica.replicas = meta.replicas
        if same:
            if meta.partition_epoch != replica.partition_epoch:
                replica.isr = meta.isr
                replica.partition_epoch = meta.partition_epoch
                if role is Role.LEADER:
                    self.partitions.update_high_watermark(replica)
            return
        await self.fetcher.stop(replica)
        handle = replica.handle
        async with handle.write_lock:
            dropped = role is Role.NONE and replica.role is not Role.NONE
            replica.role = role
            replica.leader_id = meta.leader
            replica.leader_epoch = meta.leader_epoch
            replica.partition_epoch = meta.partition_epoch
            replica.isr = meta.isr
            replica.servable = False
            if role is Role.LEADER:
                log = handle.log
                end = log.log_end_offset
                if meta.leader_epoch > log.latest_epoch:
                    await asyncio.to_thread(log.assign_epoch, meta.leader_epoch, end)
                replica.epoch_start_offset = end
                replica.followers = {b: FollowerState() for b in meta.replicas if b != me}
                self.partitions.update_high_watermark(replica)
            else:
                replica.followers = {}
            if dropped and (handle.log.log_end_offset > 0 or handle.log.log_start_offset > 0):
                # A reassignment removed this broker from the replica set (the controller switched
                # only once the target replicas were in sync): free the disk, as Kafka's StopReplica
                # with deletePartition. The empty log restarts at 0, so a broker added back later
                # fetches from the leader's log start like a new replica.
                await asyncio.to_thread(handle.log.truncate_fully_and_start_at, 0)
                logger.info("%s-%d: no longer a replica here; log emptied", handle.topic, handle.partition)
        logger.info(
            "%s-%d: %s at leader epoch %d (leader %s, isr %s)", handle.topic, handle.partition,
            role.value, meta.leader_epoch, meta.leader, list(meta.isr),
        )
        if role is Role.FOLLOWER:
            self.fetcher.start(replica, meta.leader_epoch)
        handle.notify()  # acks=all requests waiting on the old role find out now

    # -- the Broker's hooks (app/cluster/hooks.py) --------------------------------------------------

    async def ensure_known(self, handle: PartitionHandle) -> None:
        """Read the catalog at once when this broker has not heard of the partition yet.

        A partition created (or grown) through another broker a moment ago: rather than answering
        "unknown leader, retry", the request waits for one metadata refresh (shared by concurrent
        requests) and is then served or redirected.
        """
        replicas = self.state.replicas
        replica = replicas.get((handle.topic, handle.partition))
        if replica is not None and replica.handle is handle and replica.leader_id is not None:
            return
        async with self._refresh_lock:
            replica = replicas.get((handle.topic, handle.partition))
            if replica is not None and replica.handle is handle and replica.leader_id is not None:
                return  # a refresh that ran meanwhile brought it
            await self._refresh()

    def check_append(self, handle: PartitionHandle, *, acks_all: bool) -> None:
        self.partitions.check_append(handle, acks_all=acks_all)

    def after_append(self, handle: PartitionHandle) -> None:
        self.partitions.after_append(handle)

    async def wait_replicated(self, handle: PartitionHandle, end_offset: int) -> None:
        await self.partitions.wait_replicated(handle, end_offset)

    def check_fetch(self, handle: PartitionHandle, offset: int | None, *, leader_only: bool = False) -> None:
        self.partitions.check_fetch(handle, offset, leader_only=leader_only)

    async def read_index(self, handle: PartitionHandle, timeout_s: float = 2.0) -> int:
        return await self.partitions.read_index(handle, timeout_s)

    def leader_elsewhere(self, topic: str, partition: int) -> tuple[int, str] | None:
        return self.forwarder.leader_of(topic, partition)

    async def forward(
        self, leader: tuple[int, str], topic: str, partition: int, records: Sequence[RecordIn],
        indices: Sequence[int], acks: str, key_producer: int = -1,
    ) -> list[RecordResult]:
        return await self.forwarder.forward(leader, topic, partition, records, indices, acks, key_producer)

    # -- the internal endpoints' side (app/cluster/http.py) -----------------------------------------

    async def serve_replica_fetch(
        self, topic: str, partition: int, *, replica_id: int, leader_epoch: int, offset: int,
        max_bytes: int, max_wait_ms: int,
    ) -> ReplicaFetch:
        return await self.partitions.serve_replica_fetch(
            topic, partition, replica_id=replica_id, leader_epoch=leader_epoch, offset=offset,
            max_bytes=max_bytes, max_wait_ms=max_wait_ms,
        )

    async def serve_replica_fetches(
        self, *, replica_id: int, partitions: list[FetchPartition], max_bytes: int, max_wait_ms: int
    ) -> list[PartitionFetched]:
        return await self.partitions.serve_replica_fetches(
            replica_id=replica_id, partitions=partitions, max_bytes=max_bytes, max_wait_ms=max_wait_ms
        )

    def end_offset_for_epoch(
        self, topic: str, partition: int, *, leader_epoch: int, epoch: int
    ) -> tuple[int, int]:
        return self.partitions.end_offset_for_epoch(topic, partition, leader_epoch=leader_epoch, epoch=epoch)

    def leader_high_watermark(self, topic: str, partition: int) -> int:
        return self.partitions.leader_high_watermark(topic, partition)

    async def reassign(self, topic: str, partition: int, replicas: list[int]) -> PartitionLeadership:
        return await self.controller.reassign(topic, partition, replicas)

    # -- readiness of new topics (TopicService) -----------------------------------------------------

    def partition_ready(self, topic: str, partition: int) -> bool:
        return self.partitions.partition_ready(topic, partition)

    async def local_not_ready(self, topic: str, partitions: int) -> list[int]:
        """The partitions of ``topic`` below ``partitions`` this broker cannot serve yet."""
        missing = []
        for p in range(partitions):
            try:
                handle = await self.state.broker.partition(topic, p)
            except (UnknownTopicError, UnknownPartitionError):
                missing.append(p)
                continue
            await self.ensure_known(handle)
            if not self.partitions.partition_ready(topic, p):
                missing.append(p)
        return missing

    async def wait_ready(self, topic: str, partitions: int, timeout_ms: int) -> list[int]:
        """Wait until every live broker can serve every partition of a new topic; return the
        partitions still not ready after ``timeout_ms`` (empty once all are)."""
        state = self.state
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        client = state.http()
        while True:
            not_ready = set(await self.local_not_ready(topic, partitions))
            for row in list(state.brokers.values()):
                if row.broker_id == state.me or row.fenced:
                    continue
                try:
                    answer = await client.get(
                        f"{row.url}{INTERNAL_PREFIX}/{topic}/readiness",
                        params={"partitions": partitions}, timeout=5,
                    )
                    if answer.status_code == 200:
                        not_ready.update(int(p) for p in answer.json().get("not_ready", []))
                    else:
                        not_ready.update(range(partitions))
                except (httpx.HTTPError, ValueError):
                    not_ready.update(range(partitions))  # a broker that does not answer is not ready
            if not not_ready or loop.time() >= deadline:
                return sorted(not_ready)
            state.refresh_wanted.set()
            await asyncio.sleep(0.05)

    # -- view ---------------------------------------------------------------------------------------

    def view(self) -> ClusterView:
        state = self.state
        under = sorted(
            key for key, r in state.replicas.items()
            if r.replicas and (len(r.isr) < len(r.replicas) or r.leader_id is None)
        )
        brokers = sorted(state.brokers.values(), key=lambda b: b.broker_id)
        return ClusterView(state.controller_id, brokers, under)
