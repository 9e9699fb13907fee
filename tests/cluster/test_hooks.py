"""The Broker's clustered-mode hooks (``ClusterManager`` and its ``PartitionReplicas``) on a real
partition log, without processes: who may append, who may serve which offset, and the high
watermark as the ISR's smallest log end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.broker.partitions import PartitionHandle
from app.catalog.cluster import BrokerRow, PartitionLeadership
from app.cluster.errors import NotEnoughReplicasError, NotLeaderError
from app.cluster.manager import ClusterManager
from app.cluster.replica import FollowerState, Replica, Role
from app.config import Settings
from storage import LogConfig, PartitionLog, RecordIn

ME = 1


@pytest.fixture
def handle(tmp_path: Path) -> Iterator[PartitionHandle]:
    log = PartitionLog.open(tmp_path / "t-0", LogConfig())
    for i in range(10):
        log.append_records([RecordIn(value=f"v{i}".encode())])
    yield PartitionHandle("t", 0, tmp_path / "t-0", log)
    log.close()


def _manager(min_insync: int = 2) -> ClusterManager:
    settings = Settings(cluster=True, catalog_url="postgresql://unused/db", broker_id=ME,
                        min_insync_replicas=min_insync)
    manager = ClusterManager(settings, catalog=None)  # type: ignore[arg-type]
    manager.state.brokers = {b: BrokerRow(b, f"http://broker-{b}", 1, 0, False) for b in (0, 1, 2)}
    manager.state.fenced = False
    manager.state.last_heartbeat = time.monotonic()
    return manager


def _replica(manager: ClusterManager, handle: PartitionHandle, role: Role, leader: int,
             isr: tuple[int, ...] = (0, 1, 2)) -> Replica:
    meta = PartitionLeadership(7, "t", 0, leader, (0, 1, 2), isr, 3, 4)
    replica = Replica(handle, meta)
    replica.role, replica.leader_id, replica.leader_epoch = role, leader, 3
    replica.replicas, replica.isr, replica.partition_epoch = (0, 1, 2), isr, 4
    replica.servable = True
    manager.replicas[("t", 0)] = replica
    return replica


def test_a_follower_serves_up_to_its_high_watermark_and_redirects_beyond(handle: PartitionHandle) -> None:
    manager = _manager()
    _replica(manager, handle, Role.FOLLOWER, leader=0)
    handle.log.update_high_watermark(6)
    manager.check_fetch(handle, 6)
    manager.check_fetch(handle, None)
    with pytest.raises(NotLeaderError) as caught:
        manager.check_fetch(handle, 7)  # the leader has it; this follower does not know it is committed
    assert caught.value.leader_url == "http://broker-0" and caught.value.leader_id == 0
    with pytest.raises(NotLeaderError):
        manager.check_append(handle, acks_all=False)


def test_a_replica_not_yet_known_committed_redirects_reads(handle: PartitionHandle) -> None:
    manager = _manager()
    replica = _replica(manager, handle, Role.FOLLOWER, leader=2)
    replica.servable = False
    with pytest.raises(NotLeaderError) as caught:
        manager.check_fetch(handle, 0)
    assert caught.value.leader_url == "http://broker-2"
    replica.role = Role.NONE
    replica.servable = True
    with pytest.raises(NotLeaderError):
        manager.check_fetch(handle, 0)


def test_leader_appends_checks_min_insync_and_refuses_once_fenced(handle: PartitionHandle) -> None:
    manager = _manager(min_insync=2)
    replica = _replica(manager, handle, Role.LEADER, leader=ME, isr=(1, 2))
    manager.check_append(handle, acks_all=True)
    replica.isr = (1,)
    with pytest.raises(NotEnoughReplicasError):
        manager.check_append(handle, acks_all=True)
    manager.check_append(handle, acks_all=False)  # acks=1 ignores min.insync.replicas
    manager.state.fenced = True
    with pytest.raises(NotLeaderError) as caught:
        manager.check_append(handle, acks_all=False)
    assert caught.value.leader_url is None
    manager.state.fenced = False
    manager.state.last_heartbeat = time.monotonic() - 60  # the catalog session lapsed: no more writes
    with pytest.raises(NotLeaderError):
        manager.check_append(handle, acks_all=False)


def test_high_watermark_is_the_smallest_log_end_of_the_isr(handle: PartitionHandle) -> None:
    manager = _manager()
    replica = _replica(manager, handle, Role.LEADER, leader=ME, isr=(0, 1, 2))
    replica.followers = {0: FollowerState(), 2: FollowerState()}
    handle.log.truncate_to(10)
    assert handle.log.log_end_offset == 10
    # Unknown follower positions: the high watermark does not move.
    before = handle.log.high_watermark
    manager.partitions.update_high_watermark(replica)
    assert handle.log.high_watermark == before
    replica.record_fetch(0, 8)
    replica.record_fetch(2, 4)
    manager.partitions.update_high_watermark(replica)
    assert handle.log.high_watermark == max(before, 4)
    replica.record_fetch(2, 10)
    manager.partitions.update_high_watermark(replica)
    assert handle.log.high_watermark == 8
    # A follower that left the ISR no longer holds it back.
    replica.isr = (1, 2)
    manager.partitions.update_high_watermark(replica)
    assert handle.log.high_watermark == 10


def test_lagging_followers_are_found_by_last_caught_up_time(handle: PartitionHandle) -> None:
    manager = _manager()
    replica = _replica(manager, handle, Role.LEADER, leader=ME, isr=(0, 1, 2))
    replica.followers = {0: FollowerState(), 2: FollowerState()}
    replica.record_fetch(0, handle.log.log_end_offset)  # caught up now
    replica.followers[2].last_caught_up = time.monotonic() - 100
    assert replica.lagging(ME, lag_max_s=30) == [2]
