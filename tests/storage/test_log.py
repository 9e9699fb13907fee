"""PartitionLog: append, read, offsets, segments, indexes, reopen, truncation, epochs, flush."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import (
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    Compression,
    LogConfig,
    PartitionLog,
    RecordIn,
    TimestampType,
    decode_records,
    encode_batch,
    iter_batches,
)
from storage.errors import (
    CorruptRecordError,
    InvalidRecordError,
    LogClosedError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    StorageError,
)


class FakeClock:
    def __init__(self, now_s: float = 1_700_000_000.0) -> None:
        self.now = now_s

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "topic-0"


@pytest.fixture
def plog(log_dir: Path, clock: FakeClock) -> Iterator[PartitionLog]:
    log = PartitionLog.open(log_dir, LogConfig(), clock=clock)
    yield log
    log.close()


def recs(n: int, *, start: int = 0, size: int = 10, ts: int | None = None) -> list[RecordIn]:
    return [
        RecordIn(value=(b"%d-" % (start + i)).ljust(size, b"x"), key=b"k%d" % (start + i), timestamp=ts)
        for i in range(n)
    ]


def fill(log: PartitionLog, batches: int, per_batch: int = 5, *, size: int = 10) -> None:
    for b in range(batches):
        log.append_records(recs(per_batch, start=b * per_batch, size=size))
    log.update_high_watermark(log.log_end_offset)


def values(log: PartitionLog, offset: int = 0, *, max_records: int = 1_000_000) -> list[bytes | None]:
    return [r.value for r in log.read_records(offset, max_records=max_records, max_bytes=1 << 30)]


def test_append_assigns_dense_offsets(plog: PartitionLog) -> None:
    r1 = plog.append_records(recs(3))
    r2 = plog.append_records(recs(2, start=3))
    assert (r1.base_offset, r1.last_offset, r1.duplicate) == (0, 2, False)
    assert (r2.base_offset, r2.last_offset) == (3, 4)
    assert r1.log_append_time == -1
    assert plog.log_end_offset == 5
    assert plog.log_start_offset == 0


def test_empty_append_is_refused(plog: PartitionLog) -> None:
    with pytest.raises(InvalidRecordError):
        plog.append_records([])


def test_read_respects_high_watermark(plog: PartitionLog) -> None:
    plog.append_records(recs(3))
    plog.append_records(recs(3, start=3))
    assert plog.read(0, 1 << 20).data == b""  # HW still 0
    plog.update_high_watermark(3)
    data = plog.read(0, 1 << 20).data
    assert [r.offset for r in decode_records(data)] == [0, 1, 2]
    assert plog.read(0, 1 << 20, max_offset=6).high_watermark == 3
    assert len(decode_records(plog.read(0, 1 << 20, max_offset=6).data)) == 6


def test_high_watermark_is_clamped_and_monotonic(plog: PartitionLog) -> None:
    plog.append_records(recs(4))
    assert plog.update_high_watermark(100) == 4
    assert plog.update_high_watermark(2) == 4
    assert plog.high_watermark == 4


def test_read_returns_batch_containing_offset_and_at_least_one_batch(plog: PartitionLog) -> None:
    fill(plog, 4, per_batch=10, size=100)
    result = plog.read(15, 1)  # max_bytes smaller than one batch
    batches = list(iter_batches(result.data))
    assert len(batches) == 1
    assert batches[0][1].base_offset == 10
    assert sum(h.size for _p, h in batches) == len(result.data)
    assert (result.log_start_offset, result.log_end_offset, result.high_watermark) == (0, 40, 40)


def test_read_stops_at_max_bytes_on_batch_boundaries(plog: PartitionLog) -> None:
    fill(plog, 10, per_batch=10, size=100)
    sizes = [h.size for _p, h in iter_batches(plog.read(0, 1 << 20).data)]
    data = plog.read(0, sum(sizes[:3]) + sizes[3] // 2).data
    assert len(data) == sum(sizes[:3])
    assert [h.base_offset for _p, h in iter_batches(data)] == [0, 10, 20]


def test_read_out_of_range(plog: PartitionLog) -> None:
    fill(plog, 2)
    with pytest.raises(OffsetOutOfRangeError) as info:
        plog.read(11, 100)
    assert info.value.log_end_offset == 10
    with pytest.raises(OffsetOutOfRangeError):
        plog.read(-1, 100)
    assert plog.read(10, 100).data == b""  # the log end itself is a valid, empty position


def test_read_records_trims_to_offset_and_max_records(plog: PartitionLog) -> None:
    fill(plog, 3, per_batch=10)
    got = plog.read_records(13, max_records=4, max_bytes=1)
    assert [r.offset for r in got] == [13, 14, 15, 16]
    assert got[0].key == b"k13"


def test_segments_roll_on_size_and_reads_cross_segments(log_dir: Path, clock: FakeClock) -> None:
    log = PartitionLog.open(log_dir, LogConfig(segment_bytes=2000), clock=clock)
    fill(log, 40, per_batch=5, size=50)
    assert log.segment_count > 5
    assert sorted(p.name for p in log_dir.glob("*.log"))[0] == "00000000000000000000.log"
    for offset in (0, 37, 101, 199):
        assert log.read_records(offset, max_records=1, max_bytes=1)[0].offset == offset
    assert len(values(log)) == 200
    log.close()


def test_roll_on_segment_ms_by_first_batch_timestamp(log_dir: Path, clock: FakeClock) -> None:
    log = PartitionLog.open(log_dir, LogConfig(segment_ms=60_000), clock=clock)
    log.append_records(recs(2))
    clock.now += 30
    log.append_records(recs(2))
    assert log.segment_count == 1
    clock.now += 31
    log.append_records(recs(2))
    assert log.segment_count == 2
    assert log.segment_base_offsets() == [0, 4]
    log.close()


def test_roll_when_offset_index_is_full(log_dir: Path, clock: FakeClock) -> None:
    cfg = LogConfig(segment_index_bytes=16, index_interval_bytes=1)  # 2 index entries per segment
    log = PartitionLog.open(log_dir, cfg, clock=clock)
    fill(log, 10)
    assert log.segment_count >= 3
    assert len(values(log)) == 50
    log.close()


def test_sparse_index_written_and_used(log_dir: Path, clock: FakeClock) -> None:
    log = PartitionLog.open(log_dir, LogConfig(index_interval_bytes=500), clock=clock)
    fill(log, 50, per_batch=5, size=50)
    log.close()
    index = log_dir / "00000000000000000000.index"
    size = index.stat().st_size
    assert size > 0 and size % 8 == 0
    log = PartitionLog.open(log_dir, LogConfig(index_interval_bytes=500), clock=clock)
    assert log.recovered_cleanly
    assert log.recovery.scanned_bytes == 0
    for offset in range(0, 250, 7):
        assert log.read_records(offset, max_records=1, max_bytes=1)[0].offset == offset
    log.close()


def test_max_message_bytes(log_dir: Path, clock: FakeClock) -> None:
    log = PartitionLog.open(log_dir, LogConfig(max_message_bytes=500), clock=clock)
    with pytest.raises(RecordTooLargeError) as info:
        log.append_records(recs(10, size=100))
    assert info.value.limit == 500
    assert log.log_end_offset == 0
    with pytest.raises(RecordTooLargeError):
        log.append_batch(encode_batch(recs(10, size=100), now_ms=0))
    log.close()


def test_reopen_keeps_everything(log_dir: Path, clock: FakeClock) -> None:
    log = PartitionLog.open(log_dir, LogConfig(segment_bytes=1500), clock=clock)
    fill(log, 30)
    before = values(log)
    log.close()
    assert (log_dir / ".clean_shutdown").exists()
    log = PartitionLog.open(log_dir, LogConfig(segment_bytes=1500), clock=clock)
    assert not (log_dir / ".clean_shutdown").exists()
    assert log.recovered_cleanly
    assert log.log_end_offset == 150
    assert values(log) == before
    r = log.append_records(recs(1))
    assert r.base_offset == 150
    log.close()


def test_closed_log_refuses_operations(plog: PartitionLog) -> None:
    plog.close()
    with pytest.raises(LogClosedError):
        plog.append_records(recs(1))
    with pytest.raises(LogClosedError):
        plog.read(0, 10)
    plog.close()  # idempotent


def test_compressed_append_round_trips(plog: PartitionLog) -> None:
    for codec in (Compression.NONE, Compression.GZIP, Compression.LZ4, Compression.ZSTD):
        plog.append_records(recs(20, size=200), compression=codec)
    plog.update_high_watermark(plog.log_end_offset)
    assert len(values(plog)) == 80
    assert [r.offset for r in plog.read_records(45, max_records=2, max_bytes=1)] == [45, 46]


def test_log_append_time(log_dir: Path, clock: FakeClock) -> None:
    cfg = LogConfig(message_timestamp_type=TimestampType.LOG_APPEND_TIME)
    log = PartitionLog.open(log_dir, cfg, clock=clock)
    r = log.append_records(recs(2, ts=5))
    assert r.log_append_time == int(clock.now * 1000)
    r2 = log.append_batch(encode_batch(recs(2, ts=5), now_ms=0))
    assert r2.log_append_time == int(clock.now * 1000)
    log.update_high_watermark(4)
    assert {x.timestamp for x in log.read_records(0, max_records=10, max_bytes=1 << 20)} == {
        r.log_append_time
    }
    log.close()


def test_append_batch_assigns_offsets(plog: PartitionLog) -> None:
    plog.append_records(recs(3))
    r = plog.append_batch(encode_batch(recs(4), base_offset=999, now_ms=0))
    assert (r.base_offset, r.last_offset) == (3, 6)
    plog.update_high_watermark(7)
    assert [x.offset for x in plog.read_records(0, max_records=10, max_bytes=1 << 20)] == list(range(7))


def test_append_batch_refuses_bad_input(plog: PartitionLog) -> None:
    batch = encode_batch(recs(2), now_ms=0)
    damaged = bytearray(batch)
    damaged[-1] ^= 0xFF
    with pytest.raises(Exception, match="CRC"):
        plog.append_batch(bytes(damaged))
    with pytest.raises(InvalidRecordError):
        plog.append_batch(batch + batch)  # two batches
    assert plog.log_end_offset == 0


def test_append_batch_as_follower_keeps_offsets(plog: PartitionLog) -> None:
    r = plog.append_batch(
        encode_batch(recs(3), base_offset=0, now_ms=0, partition_leader_epoch=4), assign_offsets=False
    )
    assert (r.base_offset, r.last_offset) == (0, 2)
    assert plog.latest_epoch == 4
    with pytest.raises(InvalidRecordError):
        plog.append_batch(encode_batch(recs(1), base_offset=1, now_ms=0), assign_offsets=False)
    plog.append_batch(encode_batch(recs(1), base_offset=3, now_ms=0), assign_offsets=False)
    assert plog.log_end_offset == 4


def test_offset_for_timestamp(log_dir: Path, clock: FakeClock) -> None:
    log = PartitionLog.open(log_dir, LogConfig(segment_bytes=1000, index_interval_bytes=100), clock=clock)
    for i in range(40):
        log.append_records([RecordIn(b"v", timestamp=1000 + 10 * i), RecordIn(b"w", timestamp=1005 + 10 * i)])
    assert log.segment_count > 2
    assert log.offset_for_timestamp(0) == 0
    assert log.offset_for_timestamp(1000) == 0
    assert log.offset_for_timestamp(1001) == 1
    assert log.offset_for_timestamp(1005) == 1
    assert log.offset_for_timestamp(1006) == 2
    assert log.offset_for_timestamp(1200) == 40
    assert log.offset_for_timestamp(1395) == 79
    assert log.offset_for_timestamp(1396) is None
    assert log.offset_for_timestamp(LATEST_TIMESTAMP) == 80
    assert log.offset_for_timestamp(EARLIEST_TIMESTAMP) == 0
    log.close()
    log = PartitionLog.open(log_dir, LogConfig(segment_bytes=1000, index_interval_bytes=100), clock=clock)
    assert log.offset_for_timestamp(1201) == 41
    log.close()


def test_offset_for_timestamp_non_monotonic(plog: PartitionLog) -> None:
    plog.append_records([RecordIn(b"a", timestamp=500), RecordIn(b"b", timestamp=100)])
    plog.append_records([RecordIn(b"c", timestamp=300)])
    assert plog.offset_for_timestamp(200) == 0
    assert plog.offset_for_timestamp(501) is None


def test_truncate_to(log_dir: Path, clock: FakeClock) -> None:
    log = PartitionLog.open(log_dir, LogConfig(segment_bytes=1000), clock=clock)
    fill(log, 30)
    n_segments = log.segment_count
    log.truncate_to(60)
    assert log.log_end_offset == 60
    assert log.high_watermark == 60
    assert log.segment_count < n_segments
    assert [r.offset for r in log.read_records(0, max_records=1000, max_bytes=1 << 20)] == list(range(60))
    r = log.append_records(recs(5, start=1000))
    assert r.base_offset == 60
    log.update_high_watermark(65)
    assert values(log, 60)[0] == b"1000-xxxxx"
    log.close()
    log = PartitionLog.open(log_dir, LogConfig(segment_bytes=1000), clock=clock)
    assert log.log_end_offset == 65
    assert len(values(log)) == 65
    log.close()


def test_truncate_mid_batch_drops_whole_batch(plog: PartitionLog) -> None:
    fill(plog, 3, per_batch=10)
    plog.truncate_to(15)
    assert plog.log_end_offset == 10


def test_truncate_below_log_start_restarts_log(plog: PartitionLog) -> None:
    fill(plog, 3)
    plog.truncate_to(0)
    assert (plog.log_start_offset, plog.log_end_offset) == (0, 0)
    assert plog.append_records(recs(1)).base_offset == 0


def test_leader_epochs(log_dir: Path, clock: FakeClock) -> None:
    log = PartitionLog.open(log_dir, LogConfig(), clock=clock)
    assert log.latest_epoch == -1
    assert log.end_offset_for_epoch(0) == (-1, -1)
    log.append_records(recs(5), leader_epoch=1)
    log.append_records(recs(5), leader_epoch=3)
    log.append_records(recs(5), leader_epoch=3)
    assert log.latest_epoch == 3
    assert log.end_offset_for_epoch(3) == (3, 15)
    assert log.end_offset_for_epoch(2) == (1, 5)
    assert log.end_offset_for_epoch(1) == (1, 5)
    assert log.end_offset_for_epoch(0) == (0, 0)
    assert log.end_offset_for_epoch(7) == (-1, -1)
    log.update_high_watermark(15)
    batches = list(iter_batches(log.read(0, 1 << 20).data))
    assert [h.partition_leader_epoch for _p, h in batches] == [1, 3, 3]
    log.close()
    log = PartitionLog.open(log_dir, LogConfig(), clock=clock)
    assert log.end_offset_for_epoch(2) == (1, 5)
    log.truncate_to(5)
    assert log.latest_epoch == 1
    log.assign_epoch(4, 5)
    assert log.end_offset_for_epoch(4) == (4, 5)
    assert (log_dir / "leader-epoch-checkpoint").read_text().splitlines()[:2] == ["0", "2"]
    log.close()


def test_group_commit_flush_from_many_threads(log_dir: Path, clock: FakeClock) -> None:
    log = PartitionLog.open(log_dir, LogConfig(), clock=clock)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def producer() -> None:
        try:
            for _ in range(20):
                with lock:
                    r = log.append_records(recs(3))
                log.flush(r.last_offset + 1)
                assert log.recovery_point >= r.last_offset + 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=producer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert log.recovery_point == log.log_end_offset == 360
    log.close()


def test_flush_messages_policy(log_dir: Path, clock: FakeClock) -> None:
    log = PartitionLog.open(log_dir, LogConfig(flush_messages=10), clock=clock)
    log.append_records(recs(5))
    assert log.recovery_point == 0
    log.append_records(recs(5))
    assert log.recovery_point == 10
    log.close()


def test_flush_ms_policy(log_dir: Path, clock: FakeClock) -> None:
    log = PartitionLog.open(log_dir, LogConfig(flush_ms=1000), clock=clock)
    log.append_records(recs(5))
    assert log.recovery_point == 0
    assert not log.flush_if_due()
    clock.now += 2
    assert log.flush_if_due()
    assert log.recovery_point == 5
    clock.now += 2
    log.append_records(recs(5))  # due on append as well
    assert log.recovery_point == 10
    log.close()


def test_delete_removes_directory(log_dir: Path, clock: FakeClock) -> None:
    log = PartitionLog.open(log_dir, LogConfig(), clock=clock)
    fill(log, 2)
    log.delete()
    assert not log_dir.exists()


def test_config_from_topic_configs() -> None:
    cfg = LogConfig.from_topic_configs(
        {
            "retention.ms": "1000",
            "cleanup.policy": "compact,delete",
            "min.cleanable.dirty.ratio": "0.1",
            "message.timestamp.type": "LogAppendTime",
            "flush.messages": None,
            "segment.bytes": 1024,
        }
    )
    assert cfg.retention_ms == 1000
    assert cfg.compact and cfg.delete
    assert cfg.min_cleanable_dirty_ratio == 0.1
    assert cfg.message_timestamp_type == TimestampType.LOG_APPEND_TIME
    assert cfg.segment_bytes == 1024
    assert LogConfig.from_topic_configs(cfg.to_topic_configs()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        LogConfig.from_topic_configs({"retention.mss": 1})
    with pytest.raises(ValueError, match=r"cleanup\.policy"):
        LogConfig.from_topic_configs({"cleanup.policy": "shred"})
    with pytest.raises(ValueError, match="integer"):
        LogConfig.from_topic_configs({"retention.ms": "soon"})
    with pytest.raises(ValueError):
        LogConfig(retention_ms=-5)


def test_concurrent_readers_during_appends_and_rolls(log_dir: Path, clock: FakeClock) -> None:
    log = PartitionLog.open(log_dir, LogConfig(segment_bytes=3000, retention_bytes=20_000), clock=clock)
    stop = threading.Event()
    problems: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            start = log.log_start_offset
            try:
                res = log.read(start, 5000, max_offset=log.log_end_offset)
            except OffsetOutOfRangeError:
                continue
            try:
                got = decode_records(res.data)
            except Exception as exc:  # pragma: no cover - the assertion reports it
                problems.append(repr(exc))
                return
            offsets = [r.offset for r in got]
            if offsets != list(range(offsets[0], offsets[0] + len(offsets))) if offsets else False:
                problems.append(f"non-dense read {offsets[:5]}")

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(300):
        log.append_records(recs(5, start=i * 5, size=40))
        if i % 20 == 0:
            log.enforce_retention()
    stop.set()
    for t in threads:
        t.join()
    assert not problems
    assert log.log_start_offset > 0
    log.close()


def test_old_record_timestamps_do_not_roll_every_append(log_dir: Path, clock: FakeClock) -> None:
    """segment.ms counts in record time (Kafka's shouldRoll): old create times do not roll a segment
    per append, and neither does the wall clock once the segment holds timestamped batches."""
    log = PartitionLog.open(log_dir, LogConfig(segment_ms=60_000), clock=clock)
    for _ in range(5):
        log.append_records(recs(2, ts=1000))  # create times from 1970
    assert log.segment_count == 1
    clock.now += 61
    log.append_records(recs(2, ts=1000))
    assert log.segment_count == 1
    log.append_records(recs(2, ts=1000 + 60_001))  # a minute later in record time
    assert log.segment_count == 2
    log.close()


def test_flush_racing_truncation_does_not_claim_new_data_durable(log_dir: Path, clock: FakeClock) -> None:
    log = PartitionLog.open(log_dir, LogConfig(), clock=clock)
    fill(log, 4)
    log.flush()
    assert log.recovery_point == 20
    log.truncate_to(10)
    assert log.recovery_point == 10
    fill(log, 4)
    assert log.recovery_point == 10
    log.flush(15)
    assert log.recovery_point == 30
    log.close()


def test_concurrent_flushes_share_fsyncs(
    log_dir: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os as os_module

    import storage.segment as segment_module

    log = PartitionLog.open(log_dir, LogConfig(), clock=clock)
    calls = 0
    real_fsync = os_module.fsync

    def slow_fsync(fd: int) -> None:
        nonlocal calls
        if os_module.readlink(f"/proc/self/fd/{fd}").endswith(".log"):  # segment data, not checkpoints
            calls += 1
            time.sleep(0.05)  # a slow disk: waiters pile up behind the fsync in flight
        real_fsync(fd)

    monkeypatch.setattr(segment_module.os, "fsync", slow_fsync)
    results: list[int] = []
    barrier = threading.Barrier(8)
    lock = threading.Lock()

    def producer() -> None:
        barrier.wait()
        with lock:
            r = log.append_records(recs(1))
        log.flush(r.last_offset + 1)
        results.append(log.recovery_point)

    threads = [threading.Thread(target=producer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8
    assert log.recovery_point == 8
    assert 1 <= calls <= 4  # eight acks=all appends share a leader's fsync and a follow-up (+ slack)
    monkeypatch.undo()
    log.close()


def test_directory_is_locked_while_open(log_dir: Path, clock: FakeClock) -> None:
    log = PartitionLog.open(log_dir, LogConfig(), clock=clock)
    with pytest.raises(StorageError, match="in use"):
        PartitionLog.open(log_dir, LogConfig(), clock=clock)
    log.close()
    again = PartitionLog.open(log_dir, LogConfig(), clock=clock)
    again.abandon()
    PartitionLog.open(log_dir, LogConfig(), clock=clock).close()


def test_close_releases_descriptors(log_dir: Path, clock: FakeClock) -> None:
    before = len(os.listdir("/proc/self/fd"))
    log = PartitionLog.open(log_dir, LogConfig(segment_bytes=500), clock=clock)
    fill(log, 20)
    assert log.segment_count > 3
    log.enforce_retention(10**15)  # deletes all closed segments: their descriptors go too
    log.close()
    assert len(os.listdir("/proc/self/fd")) == before


def test_append_batch_refuses_malformed_records_under_a_valid_crc(plog: PartitionLog) -> None:
    import struct

    import crc32c

    batch = bytearray(encode_batch(recs(3), now_ms=0))
    batch[62] = 0x7F  # the first record's attributes byte -> its length varint no longer fits
    batch[61] = 0x7F  # a record length far past the batch's end
    struct.pack_into(">I", batch, 17, crc32c.crc32c(bytes(batch[21:])))
    with pytest.raises(CorruptRecordError):
        plog.append_batch(bytes(batch))
    assert plog.log_end_offset == 0


def test_follower_appends_what_the_leader_serves(tmp_path: Path, clock: FakeClock) -> None:
    leader = PartitionLog.open(tmp_path / "leader-0", LogConfig(segment_bytes=800), clock=clock)
    leader.append_records(recs(3), leader_epoch=1)
    leader.append_records(recs(4), leader_epoch=2)
    leader.append_records(recs(2), leader_epoch=2)
    leader.update_high_watermark(leader.log_end_offset)
    follower = PartitionLog.open(tmp_path / "follower-0", LogConfig(segment_bytes=800), clock=clock)
    offset = 0
    while offset < leader.log_end_offset:
        data = leader.read(offset, 500).data
        result = follower.append_batches(data)
        assert result.base_offset == offset
        offset = result.last_offset + 1
    assert follower.log_end_offset == 9
    assert follower.end_offset_for_epoch(1) == (1, 3)
    assert follower.latest_epoch == 2
    follower.update_high_watermark(9)
    assert follower.read(0, 1 << 20).data == leader.read(0, 1 << 20).data
    with pytest.raises(InvalidRecordError):
        follower.append_batches(leader.read(0, 1 << 20).data)  # below the log end
    with pytest.raises(InvalidRecordError):
        follower.append_batches(leader.read(0, 1).data[:-1])  # a partial batch
    leader.close()
    follower.close()
