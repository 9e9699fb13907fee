"""PartitionLog.truncate_fully_and_start_at: a follower's log emptied and restarted at the leader's
log start offset (Kafka's truncateFullyAndStartAt), including reopen and crashes part-way."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, LogConfig, PartitionLog, RecordIn
from storage.checkpoint import write_offset_checkpoint
from storage.errors import OffsetOutOfRangeError
from storage.log import LOG_START_OFFSET_FILE
from storage.segment import LogSegment

SMALL = LogConfig(segment_bytes=400)


class FakeClock:
    def __init__(self, now_s: float = 1_700_000_000.0) -> None:
        self.now = now_s

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "topic-0"


@pytest.fixture
def plog(log_dir: Path) -> Iterator[PartitionLog]:
    log = PartitionLog.open(log_dir, SMALL, clock=FakeClock())
    yield log
    if not log.closed:
        log.close()


def recs(n: int, *, start: int = 0) -> list[RecordIn]:
    return [RecordIn(value=b"v%d" % (start + i), key=b"k%d" % (start + i)) for i in range(n)]


def fill(log: PartitionLog, batches: int, per_batch: int = 5) -> None:
    for b in range(batches):
        log.append_records(recs(per_batch, start=b * per_batch), leader_epoch=1 + b // 4)
    log.update_high_watermark(log.log_end_offset)


def values(log: PartitionLog, offset: int) -> list[bytes | None]:
    return [r.value for r in log.read_records(offset, max_records=10_000, max_bytes=1 << 30)]


def segment_files(log_dir: Path) -> list[str]:
    return sorted(p.name for p in log_dir.iterdir() if p.suffix in (".log", ".index", ".timeindex"))


def assert_empty_at(log: PartitionLog, offset: int) -> None:
    assert (log.log_start_offset, log.log_end_offset, log.high_watermark) == (offset, offset, offset)
    assert log.segment_base_offsets() == [offset]
    assert log.size_bytes == 0
    assert log.read(offset, 1 << 20).data == b""
    assert values(log, offset) == []
    assert log.offset_for_timestamp(EARLIEST_TIMESTAMP) == offset
    assert log.offset_for_timestamp(LATEST_TIMESTAMP) == offset
    assert log.offset_for_timestamp(0) is None
    for below in sorted({0, offset - 1} - {offset}):
        assert below < offset
        with pytest.raises(OffsetOutOfRangeError):
            log.read(below, 1 << 20)
        with pytest.raises(OffsetOutOfRangeError):
            log.read_records(below, max_records=10, max_bytes=1 << 20)


def test_past_the_log_end_leaves_one_empty_segment(plog: PartitionLog, log_dir: Path) -> None:
    fill(plog, 12)
    assert plog.segment_count > 2 and plog.log_end_offset == 60
    assert plog.latest_epoch == 3
    plog.truncate_fully_and_start_at(1000)
    assert_empty_at(plog, 1000)
    assert segment_files(log_dir) == [
        f"{1000:020d}.index", f"{1000:020d}.log", f"{1000:020d}.timeindex"
    ]
    # the leader-epoch cache is cleared: nothing in the new log was written under an old epoch
    assert plog.latest_epoch == -1
    assert plog.end_offset_for_epoch(1) == (-1, -1)
    with pytest.raises(OffsetOutOfRangeError):
        plog.read(1001, 1 << 20)


@pytest.mark.parametrize("offset", [0, 7, 20, 59, 60])
def test_at_or_below_the_log_end_empties_the_log(plog: PartitionLog, offset: int) -> None:
    fill(plog, 12)
    plog.truncate_fully_and_start_at(offset)
    assert_empty_at(plog, offset)
    plog.append_records(recs(2, start=500))
    plog.update_high_watermark(plog.log_end_offset)
    assert values(plog, offset) == [b"v500", b"v501"]


def test_empty_log_at_its_own_base(plog: PartitionLog) -> None:
    plog.truncate_fully_and_start_at(0)
    assert (plog.log_start_offset, plog.log_end_offset, plog.segment_base_offsets()) == (0, 0, [0])


def test_negative_offset_is_refused(plog: PartitionLog) -> None:
    fill(plog, 2)
    with pytest.raises(ValueError):
        plog.truncate_fully_and_start_at(-1)
    assert plog.log_end_offset == 10


def test_append_after_continues_at_the_new_start(plog: PartitionLog) -> None:
    fill(plog, 6)
    plog.truncate_fully_and_start_at(500)
    result = plog.append_records(recs(3, start=500), leader_epoch=9)
    assert (result.base_offset, result.last_offset) == (500, 502)
    assert plog.latest_epoch == 9
    assert plog.end_offset_for_epoch(9) == (9, 503)
    plog.update_high_watermark(plog.log_end_offset)
    assert [r.offset for r in plog.read_records(500, max_records=10, max_bytes=1 << 20)] == [500, 501, 502]
    assert values(plog, 501) == [b"v501", b"v502"]
    # a follower appending the leader's raw batches at the new start (offsets kept)
    other = PartitionLog.open(plog.directory.parent / "leader", SMALL)
    try:
        other.truncate_fully_and_start_at(503)
        other.append_records(recs(2, start=503))
        other.update_high_watermark(other.log_end_offset)
        plog.append_batches(other.read(503, 1 << 20).data)
        plog.update_high_watermark(plog.log_end_offset)
        assert values(plog, 500) == [b"v500", b"v501", b"v502", b"v503", b"v504"]
    finally:
        other.close()


def test_producer_state_is_cleared(plog: PartitionLog) -> None:
    first = plog.append_records(recs(2), producer_id=7, producer_epoch=0, base_sequence=0)
    retry = plog.append_records(recs(2), producer_id=7, producer_epoch=0, base_sequence=0)
    assert retry.duplicate and retry.base_offset == first.base_offset
    plog.truncate_fully_and_start_at(100)
    again = plog.append_records(recs(2), producer_id=7, producer_epoch=0, base_sequence=0)
    assert not again.duplicate and again.base_offset == 100


@pytest.mark.parametrize("crash", [False, True])
def test_reopen_keeps_the_new_start(log_dir: Path, crash: bool) -> None:
    plog = PartitionLog.open(log_dir, SMALL)
    fill(plog, 12)
    plog.close()  # leaves producer snapshots and checkpoints of the old log behind
    plog = PartitionLog.open(log_dir, SMALL)
    plog.truncate_fully_and_start_at(300)
    plog.abandon() if crash else plog.close()
    plog = PartitionLog.open(log_dir, SMALL)
    try:
        assert plog.recovered_cleanly is not crash
        assert_empty_at(plog, 300)
        assert plog.latest_epoch == -1
        plog.append_records(recs(4, start=300), leader_epoch=5)
        plog.update_high_watermark(plog.log_end_offset)
        plog.abandon() if crash else plog.close()
        plog = PartitionLog.open(log_dir, SMALL)
        assert (plog.log_start_offset, plog.log_end_offset) == (300, 304)
        plog.update_high_watermark(plog.log_end_offset)
        assert values(plog, 300) == [b"v300", b"v301", b"v302", b"v303"]
        assert plog.end_offset_for_epoch(5) == (5, 304)
    finally:
        plog.close()


def test_crash_after_the_log_start_checkpoint(log_dir: Path) -> None:
    """Step 1 done, nothing else: the old records are no longer readable, the state is valid."""
    plog = PartitionLog.open(log_dir, SMALL)
    fill(plog, 12)
    plog.flush()
    plog.abandon()
    write_offset_checkpoint(log_dir / LOG_START_OFFSET_FILE, 1000)
    plog = PartitionLog.open(log_dir, SMALL)
    try:
        assert plog.log_start_offset == plog.log_end_offset == 60
        assert values(plog, 60) == []
        with pytest.raises(OffsetOutOfRangeError):
            plog.read(0, 1 << 20)
        # the interrupted operation, done again, completes
        plog.truncate_fully_and_start_at(1000)
        assert_empty_at(plog, 1000)
    finally:
        plog.close()


def test_crash_before_the_old_segments_are_deleted(log_dir: Path) -> None:
    """New empty segment written, old ones still there: recovery keeps only the new one."""
    plog = PartitionLog.open(log_dir, SMALL)
    fill(plog, 12)
    plog.flush()
    old_bases = plog.segment_base_offsets()
    plog.abandon()
    write_offset_checkpoint(log_dir / LOG_START_OFFSET_FILE, 1000)
    LogSegment(log_dir, 1000, index_interval_bytes=4096, max_index_entries=1024, create=True).close()
    assert len(segment_files(log_dir)) == 3 * (len(old_bases) + 1)
    plog = PartitionLog.open(log_dir, SMALL)
    try:
        assert_empty_at(plog, 1000)
        assert segment_files(log_dir) == [
            f"{1000:020d}.index", f"{1000:020d}.log", f"{1000:020d}.timeindex"
        ]
    finally:
        plog.close()


def test_crash_with_every_segment_deleted(log_dir: Path) -> None:
    """Old segments deleted, the new one not yet created: a reopen starts at the checkpointed start."""
    plog = PartitionLog.open(log_dir, SMALL)
    fill(plog, 12)
    plog.abandon()
    write_offset_checkpoint(log_dir / LOG_START_OFFSET_FILE, 40)
    for name in segment_files(log_dir):
        os.unlink(log_dir / name)
    plog = PartitionLog.open(log_dir, SMALL)
    try:
        assert_empty_at(plog, 40)
    finally:
        plog.close()
