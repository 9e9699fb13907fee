"""ClusterManager: this broker's part in a cluster sharing a PostgreSQL catalog.

Three loops run on the event loop (catalog work in worker threads):

- **heartbeat** (every ``broker.heartbeat.interval.ms``): records this broker's heartbeat, learns
  whether the controller has fenced it, and tries to take or renew the controller lease; as the
  controller it fences brokers silent for ``broker.session.timeout.ms``, applies
  ``app.cluster.controller.decide`` to every partition (compare-and-set on the partition epoch) and
  unfences brokers that came back, in one transaction holding the lease row;
- **metadata** (a few times per heartbeat, or at once when something looks stale): reads every
  partition's leader, replicas, ISR and epochs and moves each local replica into its role: a new
  leader records its leader epoch at its log end (KIP-101) and starts tracking followers; a new
  follower starts a fetcher; it also drops lagging followers from the ISR of partitions it leads;
- **offline storage** (Kafka's offline log directory, KIP-112): while this broker's writes fail
  (``Broker.storage_health``: a full disk, a failed fsync) it stops heartbeating and expires its
  own session at once, so the controller moves its leaderships and drops it from every ISR; once
  writes work again it heartbeats and comes back as any returning broker does;
- **fetchers**, one per followed partition: truncate by leader epoch, then long-poll the leader's
  internal endpoint for raw batches and append them with their offsets and epochs; a follower
  whose log end fell below the leader's log start restarts its log, empty, at that start.

Every catalog transaction here sets ``lock_timeout`` and ``idle_in_transaction_session_timeout``,
so a broker paused (SIGSTOP) inside one cannot hold a row lock the others wait for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.broker.partitions import PartitionHandle
from app.catalog import Catalog
from app.catalog import cluster as cluster_catalog
from app.catalog.cluster import BrokerRow, PartitionLeadership
from app.cluster.controller import decide
from app.cluster.errors import (
    NotEnoughReplicasAfterAppendError,
    NotEnoughReplicasError,
    NotLeaderError,
    ReplicaOffsetOutOfRangeError,
)
from app.cluster.placement import ReplicaPlacer
from app.cluster.replica import FollowerState, Replica, Role
from app.config import Settings
from app.errors_base import UnknownPartitionError, UnknownTopicError
from app.topics.errors import InvalidReplicationFactorError
from storage import errors as storage_errors
from storage import iter_batches

__all__ = ["ClusterManager", "ClusterView", "ReplicaFetch"]

logger = logging.getLogger("tidelog.cluster")

INTERNAL_PREFIX = "/internal/v1/replication"


@dataclass(frozen=True, slots=True)
class ReplicaFetch:
    """The leader's answer to a follower's fetch."""

    data: bytes
    high_watermark: int
    log_start_offset: int
    log_end_offset: int
    leader_epoch: int


@dataclass(frozen=True, slots=True)
class ClusterView:
    """What ``GET /v1/cluster`` shows."""

    controller_id: int | None
    brokers: list[BrokerRow]
    under_replicated: list[tuple[str, int]]


class ClusterManager:
    """Membership, controller and replication of one broker (see the module docstring)."""

    def __init__(self, settings: Settings, catalog: Catalog, broker: Any) -> None:
        self.settings = settings
        self.catalog = catalog
        self.broker = broker
        self.me = settings.broker_id
        self.url = settings.effective_advertised_url
        self.placer = ReplicaPlacer(on_change=self._refresh_soon)
        self.replicas: dict[tuple[str, int], Replica] = {}
        self.brokers: dict[int, BrokerRow] = {}
        self.controller_id: int | None = None
        self.min_insync: dict[str, int] = {}
        self._topic_ids: dict[str, int] = {}
        self.incarnation = 0
        self.fenced = True
        self._last_heartbeat = 0.0
        self._session_s = settings.broker_session_timeout_ms / 1000
        self._heartbeat_s = settings.broker_heartbeat_interval_ms / 1000
        self._lag_max_s = settings.replica_lag_time_max_ms / 1000
        self._refresh_s = max(0.05, min(self._heartbeat_s / 2, 0.5))
        self._refresh_wanted = asyncio.Event()
        #: One metadata refresh at a time (the loop's, or one a request asked for at once).
        self._refresh_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self._closing = False
        self._storage_offline = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def _refresh_soon(self) -> None:
        """Re-read leadership now (safe from worker threads: the placer calls it)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._refresh_wanted.set)

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Register this broker, learn the partitions' leadership, start the loops."""
        self._loop = asyncio.get_running_loop()
        if logging.getLogger("httpx").level == logging.NOTSET:
            # One INFO line per replica fetch would drown the broker's log.
            logging.getLogger("httpx").setLevel(logging.WARNING)
        self.incarnation = await asyncio.to_thread(self._register)
        self._last_heartbeat = time.monotonic()
        from app.security.authn.bootstrap import inter_broker_headers, inter_broker_verify

        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(10.0, connect=2.0), headers=inter_broker_headers(self.settings),
            verify=inter_broker_verify(self.settings),
        )
        await self._refresh()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._heartbeat_loop()), loop.create_task(self._metadata_loop())]
        logger.info("broker %d registered (incarnation %d) at %s", self.me, self.incarnation, self.url)

    async def close(self) -> None:
        """Stop the loops and fetchers; tell the controller this broker is gone (expired heartbeat)."""
        self._closing = True
        tasks = list(self._tasks)
        for replica in self.replicas.values():
            if replica.fetcher is not None:
                tasks.append(replica.fetcher)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            await self._client.aclose()
        try:
            await asyncio.to_thread(self._expire_self)
        except Exception:
            logger.warning("could not mark broker %d as gone in the catalog", self.me, exc_info=True)

    # -- catalog transactions (worker threads) ------------------------------------------------------

    @contextlib.contextmanager
    def _begin(self) -> Iterator[Session]:
        with self.catalog.begin() as session:
            if self.catalog.dialect == "postgresql":
                idle = max(1000, int(self.settings.broker_session_timeout_ms))
                session.execute(text("SET LOCAL lock_timeout = '2000ms'"))
                session.execute(text(f"SET LOCAL idle_in_transaction_session_timeout = '{idle}ms'"))
            yield session

    def _register(self) -> int:
        with self._begin() as session:
            return cluster_catalog.register_broker(session, broker_id=self.me, url=self.url)

    def _expire_self(self) -> None:
        from sqlalchemy import update

        from app.catalog.cluster import _brokers

        with self._begin() as session:
            session.execute(
                update(_brokers)
                .where(_brokers.c.broker_id == self.me, _brokers.c.incarnation == self.incarnation)
                .values(last_heartbeat_ms=0)
            )

    def _heartbeat(self) -> bool | None:
        with self._begin() as session:
            return cluster_catalog.heartbeat(session, broker_id=self.me, incarnation=self.incarnation)

    def _control(self) -> bool:
        """One controller pass if this broker holds (or takes) the lease; True if anything changed."""
        timeout_ms = self.settings.broker_session_timeout_ms
        with self._begin() as session:
            epoch = cluster_catalog.acquire_controller(session, broker_id=self.me, lease_ms=timeout_ms)
            if epoch is None:
                self.controller_id = cluster_catalog.current_controller(session)
                return False
            if self.controller_id != self.me:
                logger.info("broker %d is the controller (lease epoch %d)", self.me, epoch)
            self.controller_id = self.me
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

    def _read_metadata(
        self,
    ) -> tuple[list[PartitionLeadership], list[BrokerRow], dict[str, int], int | None]:
        with self.catalog.read() as session:
            return (
                cluster_catalog.list_partitions(session),
                cluster_catalog.list_brokers(session),
                cluster_catalog.min_insync_overrides(session),
                cluster_catalog.current_controller(session),
            )

    def _cas_isr(self, replica: Replica, isr: tuple[int, ...]) -> bool:
        with self._begin() as session:
            return cluster_catalog.cas_partition(
                session, topic_id=replica.topic_id, partition=replica.handle.partition,
                expected_partition_epoch=replica.partition_epoch, leader=self.me, isr=isr,
                leader_epoch=replica.leader_epoch,
            )

    # -- loops --------------------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            started = time.monotonic()
            try:
                if await self._offline_storage():
                    await asyncio.sleep(self._heartbeat_s)
                    continue
                fenced = await asyncio.to_thread(self._heartbeat)
                if fenced is None:
                    logger.error("broker id %d was registered by another process: stepping down", self.me)
                    self.fenced = True
                else:
                    if fenced != self.fenced:
                        logger.info("broker %d is %s", self.me, "fenced" if fenced else "unfenced")
                    self.fenced = fenced
                    self._last_heartbeat = started
                if await asyncio.to_thread(self._control):
                    self._refresh_wanted.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("heartbeat/controller pass of broker %d failed", self.me, exc_info=True)
            await asyncio.sleep(max(0.0, self._heartbeat_s - (time.monotonic() - started)))

    async def _offline_storage(self) -> bool:
        """True while this broker's writes fail: it gives up leaderships and ISRs (KIP-112)."""
        health = self.broker.storage_health
        if health.ready:
            if self._storage_offline:
                self._storage_offline = False
                logger.warning("broker %d: writes work again; rejoining the cluster", self.me)
            return False
        if not self._storage_offline:
            self._storage_offline = True
            logger.error(
                "broker %d: writes fail (%s); giving up its leaderships and ISRs until they work again",
                self.me, health.reason(),
            )
            await asyncio.to_thread(self._expire_self)
        self.fenced = True
        return True

    async def _metadata_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._refresh_wanted.wait(), self._refresh_s)
            self._refresh_wanted.clear()
            try:
                async with self._refresh_lock:
                    await self._refresh()
                self._shrink_isrs()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("metadata refresh of broker %d failed", self.me, exc_info=True)

    # -- roles --------------------------------------------------------------------------------------

    async def _refresh(self) -> None:
        partitions, brokers, min_insync, controller = await asyncio.to_thread(self._read_metadata)
        self.brokers = {b.broker_id: b for b in brokers}
        self.min_insync = min_insync
        if controller is not None:
            self.controller_id = controller
        await self._drop_deleted_topics({meta.topic: meta.topic_id for meta in partitions})
        seen: set[tuple[str, int]] = set()
        for meta in partitions:
            key = (meta.topic, meta.partition)
            seen.add(key)
            try:
                handle = await self.broker.partition(meta.topic, meta.partition)
            except (UnknownTopicError, UnknownPartitionError):
                continue  # deleted between the two reads
            replica = self.replicas.get(key)
            if replica is None or replica.handle is not handle or replica.topic_id != meta.topic_id:
                if replica is not None:
                    await self._stop_fetcher(replica)
                replica = self.replicas[key] = Replica(handle, meta)
            await self._apply(replica, meta)
        for key in [k for k in self.replicas if k not in seen]:
            replica = self.replicas.pop(key)
            replica.role = Role.NONE
            await self._stop_fetcher(replica)

    async def _drop_deleted_topics(self, catalog_ids: dict[str, int]) -> None:
        """Remove the logs of topics deleted (or deleted and re-created) through another broker.

        Only topics this broker has seen in the catalog count, and only while their open logs are
        the ones it saw: a topic (re-)created through this broker a moment ago is left alone.
        """
        for topic in self.broker.topic_names():
            before = self._topic_ids.get(topic)
            if before is None or catalog_ids.get(topic) == before:
                continue
            known = self.replicas.get((topic, 0))
            try:
                handle = await self.broker.partition(topic, 0)
            except (UnknownTopicError, UnknownPartitionError):
                continue
            if known is None or known.handle is not handle:
                continue  # re-opened here since: created through this broker
            logger.info("topic %s was deleted or re-created through another broker: removing its logs", topic)
            for key in [k for k in self.replicas if k[0] == topic]:
                replica = self.replicas.pop(key)
                replica.role = Role.NONE
                await self._stop_fetcher(replica)
            self.broker.delete_topic(topic)
        self._topic_ids = dict(catalog_ids)

    async def _apply(self, replica: Replica, meta: PartitionLeadership) -> None:
        if meta.leader_epoch < replica.leader_epoch or meta.partition_epoch < replica.partition_epoch:
            return  # an older read than what this broker already acted on
        role = (
            Role.LEADER if meta.leader == self.me
            else Role.FOLLOWER if self.me in meta.replicas
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
                    self._update_high_watermark(replica)
            return
        await self._stop_fetcher(replica)
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
                replica.followers = {b: FollowerState() for b in meta.replicas if b != self.me}
                self._update_high_watermark(replica)
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
            replica.fetcher = asyncio.get_running_loop().create_task(
                self._follow(replica, meta.leader_epoch)
            )
        handle.notify()  # acks=all requests waiting on the old role find out now

    async def _stop_fetcher(self, replica: Replica) -> None:
        task, replica.fetcher = replica.fetcher, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- leader -------------------------------------------------------------------------------------

    def _update_high_watermark(self, replica: Replica) -> None:
        """HW = the smallest log end offset of the ISR; wake waiters when it moves."""
        log = replica.handle.log
        hw = replica.isr_high_watermark(self.me)
        if hw < 0:
            return
        if hw >= log.high_watermark:
            replica.servable = True
        before = log.high_watermark
        log.update_high_watermark(hw)
        if log.high_watermark != before:
            replica.handle.notify()

    def _shrink_isrs(self) -> None:
        for replica in list(self.replicas.values()):
            if replica.role is not Role.LEADER:
                continue
            lagging = replica.lagging(self.me, self._lag_max_s)
            if lagging:
                isr = tuple(b for b in replica.isr if b not in lagging)
                logger.info(
                    "%s-%d: followers %s lag more than replica.lag.time.max.ms: shrinking the ISR to %s",
                    *replica.key, lagging, list(isr),
                )
                self._change_isr(replica, isr)

    def _change_isr(self, replica: Replica, isr: tuple[int, ...]) -> None:
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
                self._update_high_watermark(replica)
                replica.handle.notify()
            elif not ok:
                # Someone changed the partition first (a new leader epoch, or the controller):
                # this broker's view is stale and it must not acknowledge on it.
                self._refresh_wanted.set()

        replica.isr_change = asyncio.get_running_loop().create_task(run())

    async def serve_replica_fetch(
        self, topic: str, partition: int, *, replica_id: int, leader_epoch: int, offset: int,
        max_bytes: int, max_wait_ms: int,
    ) -> ReplicaFetch:
        """A follower's fetch: record its log end, then raw batches from ``offset`` (long-poll)."""
        replica = self._led(topic, partition, leader_epoch)
        if replica_id not in replica.replicas:
            raise NotLeaderError(
                f"broker {replica_id} holds no replica of {topic}-{partition}", leader_id=self.me,
                leader_url=None,
            )
        handle = replica.handle
        log = handle.log
        if offset > log.log_end_offset or offset < log.log_start_offset:
            raise ReplicaOffsetOutOfRangeError(
                f"offset {offset} is outside the leader's log [{log.log_start_offset}, {log.log_end_offset})",
                log_start_offset=log.log_start_offset, log_end_offset=log.log_end_offset,
            )
        replica.record_fetch(replica_id, offset)
        self._update_high_watermark(replica)
        if (
            replica_id not in replica.isr and offset >= log.high_watermark
            and offset >= replica.epoch_start_offset
        ):
            logger.info("%s-%d: follower %d caught up: joining the ISR", topic, partition, replica_id)
            self._change_isr(replica, (*replica.isr, replica_id))
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

    async def _wait_for_append(
        self, handle: PartitionHandle, offset: int, timeout_s: float, replica: Replica, epoch: int
    ) -> None:
        event = asyncio.Event()
        handle.add_waiter(event)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            while handle.log.log_end_offset <= offset and replica.role is Role.LEADER \
                    and replica.leader_epoch == epoch and not self._closing:
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
        replica = self._led(topic, partition, leader_epoch)
        return replica.handle.log.end_offset_for_epoch(epoch)

    def _led(self, topic: str, partition: int, leader_epoch: int) -> Replica:
        replica = self.replicas.get((topic, partition))
        if replica is None or replica.role is not Role.LEADER:
            self._refresh_wanted.set()
            leader = None if replica is None else replica.leader_id
            raise NotLeaderError(
                f"broker {self.me} does not lead {topic}-{partition}", leader_id=leader,
                leader_url=self._url_of(leader),
            )
        if leader_epoch != replica.leader_epoch:
            if leader_epoch > replica.leader_epoch:
                self._refresh_wanted.set()
            raise NotLeaderError(
                f"leader epoch {leader_epoch} is not the current epoch {replica.leader_epoch} of "
                f"{topic}-{partition}",
                leader_id=self.me, leader_url=None, leader_epoch=replica.leader_epoch,
            )
        return replica

    # -- follower -----------------------------------------------------------------------------------

    async def _follow(self, replica: Replica, epoch: int) -> None:
        handle = replica.handle
        log = handle.log
        topic, partition = replica.key
        must_truncate = True
        assert self._client is not None
        client = self._client
        wait_ms = self.settings.replica_fetch_wait_max_ms
        while replica.role is Role.FOLLOWER and replica.leader_epoch == epoch and not self._closing:
            url = self._url_of(replica.leader_id)
            if url is None:
                await asyncio.sleep(self._refresh_s)
                continue
            base = f"{url}{INTERNAL_PREFIX}/{topic}/{partition}"
            try:
                if must_truncate:
                    await self._truncate_to_leader(replica, base, epoch)
                    must_truncate = False
                answer = await client.get(
                    base,
                    params={"replica_id": self.me, "leader_epoch": epoch, "offset": log.log_end_offset,
                            "max_bytes": 4 * 1024 * 1024, "max_wait_ms": wait_ms},
                    timeout=wait_ms / 1000 + 10,
                )
                if answer.status_code == 416:
                    bounds = answer.json()
                    leader_start = int(bounds.get("log_start_offset", 0))
                    leader_end = int(bounds.get("log_end_offset", 0))
                    if log.log_end_offset < leader_start:
                        await self._restart_at(replica, epoch, leader_start)
                    elif leader_end < log.log_end_offset:
                        await self._truncate(replica, epoch, leader_end)
                    must_truncate = True
                    continue
                if answer.status_code != 200:
                    self._refresh_wanted.set()
                    await asyncio.sleep(self._refresh_s)
                    continue
                high_watermark = int(answer.headers["x-high-watermark"])
                data = answer.content
                if data:
                    async with handle.write_lock:
                        if replica.role is not Role.FOLLOWER or replica.leader_epoch != epoch:
                            return
                        await asyncio.to_thread(_append_batches, log, data)
                before = log.high_watermark
                log.update_high_watermark(min(high_watermark, log.log_end_offset))
                # DeleteRecords on the leader: follow its log start (never beyond what this
                # replica has and may serve).
                leader_start = int(answer.headers.get("x-log-start-offset", "0"))
                if leader_start > log.log_start_offset:
                    await asyncio.to_thread(log.delete_records, min(leader_start, log.high_watermark))
                if log.high_watermark <= high_watermark:
                    replica.servable = True
                if data or log.high_watermark != before:
                    handle.notify()
            except asyncio.CancelledError:
                raise
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                logger.debug(
                    "fetch of %s-%d from broker %s failed: %s", topic, partition, replica.leader_id, exc
                )
                await asyncio.sleep(self._refresh_s)
            except storage_errors.StorageError as exc:  # a full or failing disk: KIP-112 above
                self.broker.note_storage_failure(handle, exc)
                logger.debug("replica append of %s-%d failed: %s", topic, partition, exc)
                await asyncio.sleep(self._refresh_s)
            except Exception:
                logger.warning("replica fetcher of %s-%d failed", topic, partition, exc_info=True)
                await asyncio.sleep(self._refresh_s)

    async def _truncate_to_leader(self, replica: Replica, base: str, epoch: int) -> None:
        """Find where this log diverges from the leader's by leader epoch (KIP-101/279); cut it there."""
        log = replica.handle.log
        latest = log.latest_epoch
        if latest < 0:
            return  # nothing written under any epoch: the fetch offset check covers the rest
        assert self._client is not None
        answer = await self._client.get(
            f"{base}/epoch-end", params={"leader_epoch": epoch, "epoch": latest}, timeout=10
        )
        if answer.status_code != 200:
            raise httpx.HTTPError(f"epoch-end answered {answer.status_code}")
        body = answer.json()
        leader_epoch_found, leader_end = int(body["epoch"]), int(body["end_offset"])
        if leader_epoch_found < 0:
            target = log.high_watermark
        elif leader_epoch_found == latest:
            target = leader_end
        else:
            _, own_end = log.end_offset_for_epoch(leader_epoch_found)
            target = leader_end if own_end < 0 else min(leader_end, own_end)
        if target < log.log_end_offset:
            await self._truncate(replica, epoch, target)

    async def _truncate(self, replica: Replica, epoch: int, target: int) -> None:
        handle = replica.handle
        async with handle.write_lock:
            if replica.role is not Role.FOLLOWER or replica.leader_epoch != epoch:
                return
            end = handle.log.log_end_offset
            await asyncio.to_thread(handle.log.truncate_to, target)
        logger.info(
            "%s-%d: truncated from %d to %d to match leader %s at epoch %d",
            *replica.key, end, handle.log.log_end_offset, replica.leader_id, epoch,
        )

    async def _restart_at(self, replica: Replica, epoch: int, leader_start: int) -> None:
        """Empty this replica's log and restart it at the leader's log start offset: retention or
        compaction at the leader removed records this follower still lacks (Kafka's
        ``truncateFullyAndStartAt`` on OFFSET_OUT_OF_RANGE below the leader's log start)."""
        handle = replica.handle
        async with handle.write_lock:
            if replica.role is not Role.FOLLOWER or replica.leader_epoch != epoch:
                return
            end = handle.log.log_end_offset
            if end >= leader_start:
                return
            await asyncio.to_thread(handle.log.truncate_fully_and_start_at, leader_start)
        handle.notify()
        logger.info(
            "%s-%d: log end %d is below leader %s's log start; log restarted at %d",
            *replica.key, end, replica.leader_id, leader_start,
        )

    # -- Broker hooks -------------------------------------------------------------------------------

    async def ensure_known(self, handle: PartitionHandle) -> None:
        """Read the catalog at once when this broker has not heard of the partition yet.

        A partition created (or grown) through another broker a moment ago: rather than answering
        "unknown leader, retry", the request waits for one metadata refresh (shared by concurrent
        requests) and is then served or redirected.
        """
        replica = self.replicas.get((handle.topic, handle.partition))
        if replica is not None and replica.handle is handle and replica.leader_id is not None:
            return
        async with self._refresh_lock:
            replica = self.replicas.get((handle.topic, handle.partition))
            if replica is not None and replica.handle is handle and replica.leader_id is not None:
                return  # a refresh that ran meanwhile brought it
            await self._refresh()

    def partition_ready(self, topic: str, partition: int) -> bool:
        """True once this broker can serve the partition as a new topic's first request expects:
        as its leader accepting ``acks=all`` (ISR >= min.insync.replicas), else knowing the leader."""
        replica = self.replicas.get((topic, partition))
        if replica is None or replica.leader_id is None:
            return False
        if replica.leader_id != self.me:
            return True
        needed = self.min_insync.get(topic, self.settings.min_insync_replicas)
        return replica.role is Role.LEADER and len(replica.isr) >= needed and not self.fenced

    async def local_not_ready(self, topic: str, partitions: int) -> list[int]:
        """The partitions of ``topic`` below ``partitions`` this broker cannot serve yet."""
        missing = []
        for p in range(partitions):
            try:
                handle = await self.broker.partition(topic, p)
            except (UnknownTopicError, UnknownPartitionError):
                missing.append(p)
                continue
            await self.ensure_known(handle)
            if not self.partition_ready(topic, p):
                missing.append(p)
        return missing

    async def wait_ready(self, topic: str, partitions: int, timeout_ms: int) -> list[int]:
        """Wait until every live broker can serve every partition of a new topic; return the
        partitions still not ready after ``timeout_ms`` (empty once all are)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        assert self._client is not None
        while True:
            not_ready = set(await self.local_not_ready(topic, partitions))
            for row in list(self.brokers.values()):
                if row.broker_id == self.me or row.fenced:
                    continue
                try:
                    answer = await self._client.get(
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
            self._refresh_wanted.set()
            await asyncio.sleep(0.05)

    def _url_of(self, broker_id: int | None) -> str | None:
        if broker_id is None or broker_id == self.me:
            return None
        row = self.brokers.get(broker_id)
        return None if row is None else row.url

    def _not_leader(self, handle: PartitionHandle, replica: Replica | None, what: str) -> NotLeaderError:
        topic = f"{handle.topic}-{handle.partition}"
        if replica is None or replica.handle is not handle:
            # Created a moment ago: this broker has not read its leadership yet.
            self._refresh_wanted.set()
            return NotLeaderError(
                f"broker {self.me} does not know the leader of {topic} yet: retry",
                leader_id=None, leader_url=None,
            )
        leader = replica.leader_id
        where = f"led by broker {leader}" if leader is not None else "without a leader at the moment"
        return NotLeaderError(
            f"broker {self.me} cannot {what} {topic}: it is {where}", leader_id=leader,
            leader_url=self._url_of(leader),
        )

    def check_append(self, handle: PartitionHandle, *, acks_all: bool) -> None:
        replica = self.replicas.get((handle.topic, handle.partition))
        if replica is None or replica.handle is not handle or replica.role is not Role.LEADER:
            raise self._not_leader(handle, replica, "accept writes for")
        if self.fenced or time.monotonic() - self._last_heartbeat > self._session_s:
            raise NotLeaderError(
                f"broker {self.me} is fenced (its session with the catalog lapsed): retry",
                leader_id=None, leader_url=None,
            )
        if acks_all:
            needed = self.min_insync.get(handle.topic, self.settings.min_insync_replicas)
            if len(replica.isr) < needed:
                raise NotEnoughReplicasError(
                    f"{handle.topic}-{handle.partition} has {len(replica.isr)} in-sync replicas "
                    f"{list(replica.isr)}; min.insync.replicas is {needed}",
                    isr=list(replica.isr), min_insync_replicas=needed,
                )

    def after_append(self, handle: PartitionHandle) -> None:
        replica = self.replicas.get((handle.topic, handle.partition))
        if replica is not None and replica.role is Role.LEADER and replica.handle is handle:
            self._update_high_watermark(replica)
        handle.notify()  # followers long-polling at the old log end

    async def wait_replicated(self, handle: PartitionHandle, end_offset: int) -> None:
        """Wait until the ISR has the records below ``end_offset`` (the high watermark covers them).

        Called after the append, so every failure here is ``NotEnoughReplicasAfterAppendError``:
        the records are in this log and may survive, and the answer must never be a redirect.
        """
        replica = self.replicas.get((handle.topic, handle.partition))
        where = f"{handle.topic}-{handle.partition}"

        def after_append(detail: str, **extra: object) -> NotEnoughReplicasAfterAppendError:
            leader = replica.leader_id if replica is not None else None
            return NotEnoughReplicasAfterAppendError(
                f"{detail}; the records were appended on broker {self.me} and may have been written: "
                "an idempotent producer's retry (or one with the same Idempotency-Key) is not duplicated",
                leader_id=leader, leader_url=self._url_of(leader), **extra,
            )

        if replica is None or replica.role is not Role.LEADER:
            raise after_append(f"broker {self.me} stopped leading {where} before the write was replicated")
        epoch = replica.leader_epoch
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._lag_max_s + self._session_s
        event = asyncio.Event()
        handle.add_waiter(event)
        try:
            while True:
                if replica.role is not Role.LEADER or replica.leader_epoch != epoch:
                    raise after_append(f"leadership of {where} moved before the write was replicated")
                if handle.log.high_watermark >= end_offset:
                    needed = self.min_insync.get(handle.topic, self.settings.min_insync_replicas)
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
        replica = self.replicas.get((handle.topic, handle.partition))
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
        log = handle.log
        replica = self.replicas.get((handle.topic, handle.partition))
        if replica is None or replica.role is not Role.FOLLOWER or replica.leader_id is None:
            return log.high_watermark
        url = self._url_of(replica.leader_id)
        if url is None or self._client is None:
            return log.high_watermark
        try:
            answer = await self._client.get(
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

    def leader_high_watermark(self, topic: str, partition: int) -> int:
        """The high watermark of a partition this broker leads (for a follower's ReadIndex)."""
        replica = self.replicas.get((topic, partition))
        if replica is None or replica.role is not Role.LEADER:
            raise NotLeaderError(
                f"broker {self.me} does not lead {topic}-{partition}",
                leader_id=None if replica is None else replica.leader_id,
                leader_url=None if replica is None else self._url_of(replica.leader_id),
            )
        return replica.handle.log.high_watermark

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
        self._refresh_wanted.set()
        return moved

    def _registered_brokers(self) -> set[int]:
        with self.catalog.read() as session:
            return {b.broker_id for b in cluster_catalog.list_brokers(session)}

    def _start_reassignment(self, topic: str, partition: int, replicas: list[int]) -> PartitionLeadership:
        from app.catalog import topics as topics_catalog

        with self._begin() as session:
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

    # -- view ---------------------------------------------------------------------------------------

    def view(self) -> ClusterView:
        under = sorted(
            key for key, r in self.replicas.items()
            if r.replicas and (len(r.isr) < len(r.replicas) or r.leader_id is None)
        )
        brokers = sorted(self.brokers.values(), key=lambda b: b.broker_id)
        return ClusterView(self.controller_id, brokers, under)


def _append_batches(log: Any, data: bytes) -> None:
    """Append a leader's batches with their own offsets and epochs (skipping any already here)."""
    for pos, header in iter_batches(data):
        if header.last_offset < log.log_end_offset:
            continue
        if header.base_offset < log.log_end_offset == log.log_start_offset:
            # an empty log restarted at an offset inside this batch: start it at the batch
            log.truncate_fully_and_start_at(header.base_offset)
        log.append_batch(data[pos : pos + header.size], assign_offsets=False)
