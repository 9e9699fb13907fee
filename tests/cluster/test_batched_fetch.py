"""The leader's side of a follower's batched fetch (one request for every partition it follows),
on real partition logs without processes, and the frames it travels in."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.broker.partitions import PartitionHandle
from app.catalog.cluster import BrokerRow, PartitionLeadership
from app.cluster.fetch_wire import decode_fetched, encode_fetched
from app.cluster.manager import ClusterManager
from app.cluster.partition import FetchPartition, PartitionFetched
from app.cluster.replica import FollowerState, Replica, Role
from app.config import Settings
from storage import LogConfig, PartitionLog, RecordIn, iter_batches

ME = 1
FOLLOWER = 2


@pytest.fixture
def handles(tmp_path: Path) -> Iterator[list[PartitionHandle]]:
    opened = []
    for p in range(3):
        log = PartitionLog.open(tmp_path / f"t-{p}", LogConfig())
        for i in range(5 * p):  # partition 0 empty, 1 with 5 records, 2 with 10
            log.append_records([RecordIn(value=f"p{p}-{i}".encode())])
        opened.append(PartitionHandle("t", p, tmp_path / f"t-{p}", log))
    yield opened
    for h in opened:
        h.log.close()


def _leader(handles: list[PartitionHandle]) -> ClusterManager:
    settings = Settings(cluster=True, catalog_url="postgresql://unused/db", broker_id=ME)
    manager = ClusterManager(settings, catalog=None)  # type: ignore[arg-type]
    manager.state.brokers = {b: BrokerRow(b, f"http://broker-{b}", 1, 0, False) for b in (0, 1, 2)}
    manager.state.fenced = False
    manager.state.last_heartbeat = time.monotonic()
    for handle in handles:
        meta = PartitionLeadership(7, "t", handle.partition, ME, (1, 2), (1, 2), 3, 4)
        replica = Replica(handle, meta)
        replica.role, replica.leader_id, replica.leader_epoch = Role.LEADER, ME, 3
        replica.replicas, replica.isr, replica.partition_epoch = (1, 2), (1, 2), 4
        replica.followers = {FOLLOWER: FollowerState()}
        replica.servable = True
        manager.state.replicas[("t", handle.partition)] = replica
    return manager


def _want(partition: int, offset: int, epoch: int = 3, max_bytes: int = 1 << 20) -> FetchPartition:
    return FetchPartition("t", partition, epoch, offset, max_bytes)


def _offsets(data: bytes) -> list[int]:
    return [o for _, h in iter_batches(data) for o in range(h.base_offset, h.last_offset + 1)]


async def test_one_fetch_answers_every_partition_with_its_own_records_and_errors(
    handles: list[PartitionHandle],
) -> None:
    manager = _leader(handles)
    answers = await manager.serve_replica_fetches(
        replica_id=FOLLOWER, max_bytes=1 << 24, max_wait_ms=0,
        partitions=[_want(0, 0), _want(1, 2), _want(2, 0), _want(2, 99), _want(1, 0, epoch=2)],
    )
    assert [(a.partition, a.error) for a in answers] == [
        (0, None), (1, None), (2, None), (2, "offset_out_of_range"), (1, "not_leader"),
    ]
    assert answers[0].data == b"" and answers[0].log_end_offset == 0
    assert _offsets(answers[1].data) == [2, 3, 4]
    assert _offsets(answers[2].data) == list(range(10))
    assert (answers[3].log_start_offset, answers[3].log_end_offset) == (0, 10)
    # The fetch offsets were recorded (the follower's position moves the high watermark); the
    # refused fetch at a stale epoch recorded nothing.
    assert manager.state.replicas[("t", 1)].followers[FOLLOWER].log_end_offset == 2
    assert manager.state.replicas[("t", 2)].followers[FOLLOWER].log_end_offset == 0


async def test_the_answer_waits_until_any_partition_has_records(handles: list[PartitionHandle]) -> None:
    manager = _leader(handles)
    loop = asyncio.get_running_loop()
    started = loop.time()
    fetch = asyncio.ensure_future(manager.serve_replica_fetches(
        replica_id=FOLLOWER, max_bytes=1 << 24, max_wait_ms=5000,
        partitions=[_want(0, 0), _want(1, 5), _want(2, 10)],
    ))
    await asyncio.sleep(0.2)
    assert not fetch.done()  # every partition is at its end: the leader waits
    handles[1].log.append_records([RecordIn(value=b"new")])
    handles[1].notify()
    answers = await asyncio.wait_for(fetch, 2)
    assert loop.time() - started < 2
    assert [_offsets(a.data) for a in answers] == [[], [5], []]


async def test_the_answer_keeps_within_its_byte_budget_but_never_starves_the_first(
    handles: list[PartitionHandle],
) -> None:
    manager = _leader(handles)
    answers = await manager.serve_replica_fetches(
        replica_id=FOLLOWER, max_bytes=1, max_wait_ms=0, partitions=[_want(2, 0), _want(1, 0)],
    )
    assert _offsets(answers[0].data)  # at least one batch of the first partition with data
    assert answers[1].data == b"" and answers[1].error is None


def test_frames_round_trip_and_a_truncated_answer_is_refused() -> None:
    answers = [
        PartitionFetched("a", 0, None, b"\x00" * 70, 10, 0, 12, 3),
        PartitionFetched("b.c", 7, "not_leader", b"", -1, -1, -1, -1),
    ]
    body = encode_fetched(answers)
    assert list(decode_fetched(body)) == answers
    with pytest.raises(ValueError):
        list(decode_fetched(body[:30]))
