"""The replica fetcher (Kafka's ReplicaFetcherThread): one task per partition this broker follows.

A fetcher first truncates its log where it diverges from the leader's, by leader epoch
(OffsetsForLeaderEpoch, KIP-101/279), then long-polls the leader's internal endpoint for raw batches
and appends them with their own offsets and epochs, under the partition's write lock and only while
the role and leader epoch it was started for still hold. It follows the leader's high watermark
(never beyond its own log end) and its log start (DeleteRecords). A follower whose log end fell below
the leader's log start (retention or compaction at the leader) restarts its log, empty, at that start.
A full or failing disk is recorded in ``Broker.storage_health`` (KIP-112 in ``lifecycle``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx

from app.cluster.replica import Replica, Role
from app.cluster.state import INTERNAL_PREFIX, ClusterState
from storage import PartitionLog, iter_batches
from storage import errors as storage_errors

__all__ = ["ReplicaFetcher", "append_batches"]

logger = logging.getLogger("tidelog.cluster")

#: The most a follower asks for in one fetch.
FETCH_MAX_BYTES = 4 * 1024 * 1024


class ReplicaFetcher:
    """Starts and stops the fetch task of each followed partition (see the module docstring)."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state

    def start(self, replica: Replica, epoch: int) -> None:
        """Follow ``replica``'s leader at leader epoch ``epoch`` (the task stops when either changes)."""
        replica.fetcher = asyncio.get_running_loop().create_task(self._follow(replica, epoch))

    async def stop(self, replica: Replica) -> None:
        task, replica.fetcher = replica.fetcher, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _follow(self, replica: Replica, epoch: int) -> None:
        state = self.state
        handle = replica.handle
        log = handle.log
        topic, partition = replica.key
        must_truncate = True
        client = state.http()
        wait_ms = state.settings.replica_fetch_wait_max_ms
        while replica.role is Role.FOLLOWER and replica.leader_epoch == epoch and not state.closing:
            url = state.url_of(replica.leader_id)
            if url is None:
                await asyncio.sleep(state.refresh_s)
                continue
            base = f"{url}{INTERNAL_PREFIX}/{topic}/{partition}"
            try:
                if must_truncate:
                    await self._truncate_to_leader(replica, base, epoch)
                    must_truncate = False
                answer = await client.get(
                    base,
                    params={"replica_id": state.me, "leader_epoch": epoch, "offset": log.log_end_offset,
                            "max_bytes": FETCH_MAX_BYTES, "max_wait_ms": wait_ms},
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
                    state.refresh_wanted.set()
                    await asyncio.sleep(state.refresh_s)
                    continue
                high_watermark = int(answer.headers["x-high-watermark"])
                data = answer.content
                if data:
                    async with handle.write_lock:
                        if replica.role is not Role.FOLLOWER or replica.leader_epoch != epoch:
                            return
                        await asyncio.to_thread(append_batches, log, data)
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
                await asyncio.sleep(state.refresh_s)
            except storage_errors.StorageError as exc:  # a full or failing disk: KIP-112
                state.broker.note_storage_failure(handle, exc)
                logger.debug("replica append of %s-%d failed: %s", topic, partition, exc)
                await asyncio.sleep(state.refresh_s)
            except Exception:
                logger.warning("replica fetcher of %s-%d failed", topic, partition, exc_info=True)
                await asyncio.sleep(state.refresh_s)

    async def _truncate_to_leader(self, replica: Replica, base: str, epoch: int) -> None:
        """Find where this log diverges from the leader's by leader epoch (KIP-101/279); cut it there."""
        log = replica.handle.log
        latest = log.latest_epoch
        if latest < 0:
            return  # nothing written under any epoch: the fetch offset check covers the rest
        answer = await self.state.http().get(
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


def append_batches(log: PartitionLog, data: bytes) -> None:
    """Append a leader's batches with their own offsets and epochs (skipping any already here)."""
    for pos, header in iter_batches(data):
        if header.last_offset < log.log_end_offset:
            continue
        if header.base_offset < log.log_end_offset == log.log_start_offset:
            # an empty log restarted at an offset inside this batch: start it at the batch
            log.truncate_fully_and_start_at(header.base_offset)
        log.append_batch(data[pos : pos + header.size], assign_offsets=False)
