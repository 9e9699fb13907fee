"""The replica fetchers (Kafka's ReplicaFetcherThread): one task per leader this broker follows
partitions of, fetching all of them in one request.

A partition's fetcher state starts when the metadata loop makes this broker its follower at a leader
epoch (``start``) and ends when that role or epoch changes (``stop``, which returns only once no
append of that partition is in flight). Before its first fetch at an epoch, and after the leader
called its offset out of range, a partition is truncated where its log diverges from the leader's,
by leader epoch (OffsetsForLeaderEpoch, KIP-101/279). Then the leader's task sends one
``POST /internal/v1/replication/fetch`` for every partition it follows from that leader (the
framing is in ``fetch_wire.py``), which the leader answers as soon as any of them has records past
the follower's log end, or after ``replica.fetch.wait.max.ms``; a partition added or removed
meanwhile cuts that wait short. Each partition's batches are appended with their own offsets and
epochs, under the partition's write lock and only while the role and leader epoch it was started for
still hold; it follows the leader's high watermark (never beyond its own log end) and its log start
(DeleteRecords). A follower whose log end fell below the leader's log start (retention or compaction
at the leader) restarts its log, empty, at that start. A partition the leader does not lead (any
more) asks for a metadata refresh and waits ``refresh_s`` before it is fetched again. A full or
failing disk is recorded in ``Broker.storage_health`` (KIP-112 in ``lifecycle``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

import httpx

from app.cluster.fetch_wire import decode_fetched
from app.cluster.partition import PartitionFetched
from app.cluster.replica import Replica, Role
from app.cluster.state import INTERNAL_PREFIX, ClusterState
from storage import PartitionLog, iter_batches
from storage import errors as storage_errors

__all__ = ["ReplicaFetcher", "append_batches"]

logger = logging.getLogger("tidelog.cluster")

#: The most a follower asks for of one partition in one fetch (Kafka's replica.fetch.max.bytes).
FETCH_MAX_BYTES = 4 * 1024 * 1024
#: The most one fetch answer carries in all (Kafka's replica.fetch.response.max.bytes).
FETCH_RESPONSE_MAX_BYTES = 16 * 1024 * 1024


class _Followed:
    """A partition this broker follows at one leader epoch."""

    __slots__ = ("busy", "epoch", "leader_id", "must_truncate", "not_before", "replica")

    def __init__(self, replica: Replica, epoch: int) -> None:
        self.replica = replica
        self.epoch = epoch
        self.leader_id = replica.leader_id
        self.must_truncate = True
        #: Loop time before which this partition is left out of fetches (after an error).
        self.not_before = 0.0
        #: Held while an answer for this partition is applied; ``stop`` waits for it.
        self.busy = asyncio.Lock()

    def current(self) -> bool:
        replica = self.replica
        return replica.role is Role.FOLLOWER and replica.leader_epoch == self.epoch


class ReplicaFetcher:
    """The fetch tasks of this broker, one per leader (see the module docstring)."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self._followed: dict[tuple[str, int], _Followed] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._changed: dict[int, asyncio.Event] = {}

    def start(self, replica: Replica, epoch: int) -> None:
        """Follow ``replica``'s leader at leader epoch ``epoch`` (until ``stop``)."""
        entry = _Followed(replica, epoch)
        self._followed[replica.key] = entry
        leader = entry.leader_id
        if leader is None:
            return
        self._changed.setdefault(leader, asyncio.Event()).set()
        task = self._tasks.get(leader)
        if task is None or task.done():
            self._tasks[leader] = asyncio.get_running_loop().create_task(self._run(leader))

    async def stop(self, replica: Replica) -> None:
        """Stop following ``replica``; returns once no answer of it is being applied."""
        entry = self._followed.get(replica.key)
        if entry is None or entry.replica is not replica:
            return
        del self._followed[replica.key]
        if entry.leader_id is not None and entry.leader_id in self._changed:
            self._changed[entry.leader_id].set()
        async with entry.busy:
            pass

    def following(self) -> list[tuple[str, int]]:
        """The partitions being fetched, by (topic, partition)."""
        return sorted(self._followed)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    # -- one leader's task --------------------------------------------------------------------------

    def _entries_of(self, leader: int) -> list[_Followed]:
        return [e for e in self._followed.values() if e.leader_id == leader and e.current()]

    async def _run(self, leader: int) -> None:
        state = self.state
        loop = asyncio.get_running_loop()
        changed = self._changed.setdefault(leader, asyncio.Event())
        rotation = 0
        while not state.closing:
            entries = self._entries_of(leader)
            if not entries:
                # No await since the check: a start() for this leader after it makes a new task.
                if self._tasks.get(leader) is asyncio.current_task():
                    del self._tasks[leader]
                return
            changed.clear()
            url = state.url_of(leader)
            if url is None:
                await self._sleep_or_change(changed, state.refresh_s)
                continue
            now = loop.time()
            ready = [e for e in entries if e.not_before <= now]
            if not ready:
                await self._sleep_or_change(changed, min(e.not_before for e in entries) - now)
                continue
            # Truncation first (by leader epoch), each partition on its own, at once.
            truncating = [e for e in ready if e.must_truncate]
            if truncating:
                await asyncio.gather(*(self._truncate_entry(e, url) for e in truncating))
                ready = [e for e in ready if not e.must_truncate and e.current() and e.not_before <= now]
                if not ready:
                    continue
            # Rotate the order, so that the byte budget of an answer does not always go to the same
            # partitions first (Kafka's fetch sessions do the same).
            rotation = (rotation + 1) % len(ready)
            ready = ready[rotation:] + ready[:rotation]
            try:
                answers = await self._fetch(url, ready, changed)
            except asyncio.CancelledError:
                raise
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                logger.debug("replica fetch from broker %s failed: %s", leader, exc)
                await self._sleep_or_change(changed, state.refresh_s)
                continue
            if answers is None:
                continue  # the set of partitions changed while the fetch waited
            by_key = {e.replica.key: e for e in ready}
            for answer in answers:
                entry = by_key.get((answer.topic, answer.partition))
                if entry is not None:
                    await self._apply(entry, answer)

    async def _sleep_or_change(self, changed: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), max(0.0, seconds))

    async def _fetch(
        self, url: str, entries: Iterable[_Followed], changed: asyncio.Event
    ) -> list[PartitionFetched] | None:
        """One fetch of ``entries``; None when the followed set changed before it was answered."""
        state = self.state
        wait_ms = state.settings.replica_fetch_wait_max_ms
        body = {
            "replica_id": state.me,
            "max_wait_ms": wait_ms,
            "max_bytes": FETCH_RESPONSE_MAX_BYTES,
            "partitions": [
                {"topic": e.replica.handle.topic, "partition": e.replica.handle.partition,
                 "leader_epoch": e.epoch, "offset": e.replica.handle.log.log_end_offset,
                 "max_bytes": FETCH_MAX_BYTES}
                for e in entries
            ],
        }
        request = asyncio.ensure_future(
            state.http().post(f"{url}{INTERNAL_PREFIX}/fetch", json=body, timeout=wait_ms / 1000 + 10)
        )
        interrupt = asyncio.ensure_future(changed.wait())
        try:
            await asyncio.wait({request, interrupt}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            interrupt.cancel()
        if not request.done():
            request.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await request
            return None
        answer = request.result()
        if answer.status_code != 200:
            state.refresh_wanted.set()
            raise httpx.HTTPError(f"the replica fetch answered {answer.status_code}")
        return list(decode_fetched(answer.content))

    async def _truncate_entry(self, entry: _Followed, url: str) -> None:
        state = self.state
        replica = entry.replica
        handle = replica.handle
        base = f"{url}{INTERNAL_PREFIX}/{handle.topic}/{handle.partition}"
        try:
            async with entry.busy:
                if self._followed.get(replica.key) is not entry or not entry.current():
                    return
                await self._truncate_to_leader(replica, base, entry.epoch)
            entry.must_truncate = False
        except asyncio.CancelledError:
            raise
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            logger.debug("epoch-end of %s-%d from broker %s failed: %s", *replica.key, entry.leader_id, exc)
            entry.not_before = asyncio.get_running_loop().time() + state.refresh_s
        except storage_errors.StorageError as exc:
            state.broker.note_storage_failure(handle, exc)
            entry.not_before = asyncio.get_running_loop().time() + state.refresh_s

    async def _apply(self, entry: _Followed, answer: PartitionFetched) -> None:
        """Apply one partition's part of an answer (while it is still followed at that epoch)."""
        state = self.state
        replica = entry.replica
        handle = replica.handle
        log = handle.log
        async with entry.busy:
            if self._followed.get(replica.key) is not entry or not entry.current():
                return
            try:
                if answer.error == "offset_out_of_range":
                    if log.log_end_offset < answer.log_start_offset:
                        await self._restart_at(replica, entry.epoch, answer.log_start_offset)
                    elif answer.log_end_offset < log.log_end_offset:
                        await self._truncate(replica, entry.epoch, answer.log_end_offset)
                    entry.must_truncate = True
                    return
                if answer.error is not None:
                    state.refresh_wanted.set()
                    entry.not_before = asyncio.get_running_loop().time() + state.refresh_s
                    return
                data = answer.data
                if data:
                    async with handle.write_lock:
                        if not entry.current():
                            return
                        await asyncio.to_thread(append_batches, log, data)
                before = log.high_watermark
                log.update_high_watermark(min(answer.high_watermark, log.log_end_offset))
                # DeleteRecords on the leader: follow its log start (never beyond what this replica
                # has and may serve).
                if answer.log_start_offset > log.log_start_offset:
                    await asyncio.to_thread(
                        log.delete_records, min(answer.log_start_offset, log.high_watermark)
                    )
                if log.high_watermark <= answer.high_watermark:
                    replica.servable = True
                if data or log.high_watermark != before:
                    handle.notify()
            except storage_errors.StorageError as exc:  # a full or failing disk: KIP-112
                state.broker.note_storage_failure(handle, exc)
                logger.debug("replica append of %s-%d failed: %s", *replica.key, exc)
                entry.not_before = asyncio.get_running_loop().time() + state.refresh_s
            except Exception:
                logger.warning("replica fetcher of %s-%d failed", *replica.key, exc_info=True)
                entry.not_before = asyncio.get_running_loop().time() + state.refresh_s

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
