"""Idempotent-producer state: duplicates, sequence gaps, fencing, persistence across restarts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from storage import LogConfig, PartitionLog, RecordIn, encode_batch
from storage.errors import OutOfOrderSequenceError, ProducerFencedError, UnknownProducerIdError


def recs(n: int) -> list[RecordIn]:
    return [RecordIn(value=b"v%d" % i, timestamp=1000) for i in range(n)]


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "t-0"


def test_duplicate_batch_returns_original_offsets(log_dir: Path) -> None:
    log = PartitionLog.open(log_dir, LogConfig())
    r1 = log.append_records(recs(3), producer_id=7, producer_epoch=0, base_sequence=0)
    log.append_records(recs(2))  # someone else in between
    again = log.append_records(recs(3), producer_id=7, producer_epoch=0, base_sequence=0)
    assert again.duplicate
    assert (again.base_offset, again.last_offset) == (r1.base_offset, r1.last_offset) == (0, 2)
    assert log.log_end_offset == 5
    r2 = log.append_records(recs(2), producer_id=7, producer_epoch=0, base_sequence=3)
    assert (r2.base_offset, r2.duplicate) == (5, False)
    log.close()


def test_only_the_last_five_batches_are_deduplicated(log_dir: Path) -> None:
    log = PartitionLog.open(log_dir, LogConfig())
    for i in range(7):
        log.append_records(recs(1), producer_id=1, producer_epoch=0, base_sequence=i)
    assert log.append_records(recs(1), producer_id=1, producer_epoch=0, base_sequence=2).duplicate
    with pytest.raises(OutOfOrderSequenceError):
        log.append_records(recs(1), producer_id=1, producer_epoch=0, base_sequence=1)
    log.close()


def test_sequence_gap_is_out_of_order(log_dir: Path) -> None:
    log = PartitionLog.open(log_dir, LogConfig())
    log.append_records(recs(2), producer_id=1, producer_epoch=0, base_sequence=0)
    with pytest.raises(OutOfOrderSequenceError, match="expected sequence 2"):
        log.append_records(recs(1), producer_id=1, producer_epoch=0, base_sequence=3)
    assert log.log_end_offset == 2
    log.close()


def test_unknown_producer_must_start_at_zero(log_dir: Path) -> None:
    log = PartitionLog.open(log_dir, LogConfig())
    with pytest.raises(UnknownProducerIdError):
        log.append_records(recs(1), producer_id=9, producer_epoch=0, base_sequence=5)
    log.close()


def test_older_epoch_is_fenced_and_new_epoch_restarts_at_zero(log_dir: Path) -> None:
    log = PartitionLog.open(log_dir, LogConfig())
    log.append_records(recs(2), producer_id=1, producer_epoch=1, base_sequence=0)
    with pytest.raises(ProducerFencedError):
        log.append_records(recs(1), producer_id=1, producer_epoch=0, base_sequence=2)
    with pytest.raises(OutOfOrderSequenceError, match="new epoch"):
        log.append_records(recs(1), producer_id=1, producer_epoch=2, base_sequence=2)
    r = log.append_records(recs(1), producer_id=1, producer_epoch=2, base_sequence=0)
    assert r.base_offset == 2
    with pytest.raises(ProducerFencedError):
        log.append_records(recs(1), producer_id=1, producer_epoch=1, base_sequence=2)
    log.close()


def test_sequence_wraps_at_int32_max(log_dir: Path) -> None:
    log = PartitionLog.open(log_dir, LogConfig())
    # an epoch bump is required to start anywhere but 0, so reach the top through state replay
    log.append_records(recs(1), producer_id=3, producer_epoch=0, base_sequence=0)
    entry = log._producers.producers[3]
    from storage.producer_state import BatchMetadata

    entry.batches.append(BatchMetadata(2**31 - 3, 2**31 - 2, 0, 0))
    r = log.append_records(recs(3), producer_id=3, producer_epoch=0, base_sequence=2**31 - 1)
    assert not r.duplicate
    log.append_records(recs(1), producer_id=3, producer_epoch=0, base_sequence=2)
    log.close()


def test_append_batch_is_deduplicated_too(log_dir: Path) -> None:
    log = PartitionLog.open(log_dir, LogConfig())
    batch = encode_batch(recs(4), now_ms=0, producer_id=5, producer_epoch=0, base_sequence=0)
    first = log.append_batch(batch)
    second = log.append_batch(batch)
    assert second.duplicate and second.base_offset == first.base_offset
    assert log.log_end_offset == 4
    log.close()


def test_state_survives_clean_restart(log_dir: Path) -> None:
    log = PartitionLog.open(log_dir, LogConfig())
    log.append_records(recs(2), producer_id=1, producer_epoch=0, base_sequence=0)
    log.close()
    assert list(log_dir.glob("*.snapshot"))
    log = PartitionLog.open(log_dir, LogConfig())
    assert log.append_records(recs(2), producer_id=1, producer_epoch=0, base_sequence=0).duplicate
    with pytest.raises(OutOfOrderSequenceError):
        log.append_records(recs(1), producer_id=1, producer_epoch=0, base_sequence=5)
    log.close()


def test_state_rebuilt_from_log_after_crash(log_dir: Path) -> None:
    log = PartitionLog.open(log_dir, LogConfig(segment_bytes=400))
    for seq in range(0, 30, 3):
        log.append_records(recs(3), producer_id=1, producer_epoch=0, base_sequence=seq)
    log.append_records(recs(3), producer_id=2, producer_epoch=4, base_sequence=0)
    assert log.segment_count > 2
    log.flush()
    log.abandon()  # no snapshot at the end, no clean marker
    log = PartitionLog.open(log_dir, LogConfig(segment_bytes=400))
    assert not log.recovered_cleanly
    dup = log.append_records(recs(3), producer_id=1, producer_epoch=0, base_sequence=27)
    assert dup.duplicate and dup.base_offset == 27
    assert log.append_records(recs(3), producer_id=2, producer_epoch=4, base_sequence=0).duplicate
    with pytest.raises(ProducerFencedError):
        log.append_records(recs(1), producer_id=2, producer_epoch=3, base_sequence=3)
    log.close()


def test_state_follows_truncation(log_dir: Path) -> None:
    log = PartitionLog.open(log_dir, LogConfig())
    log.append_records(recs(2), producer_id=1, producer_epoch=0, base_sequence=0)
    log.append_records(recs(2), producer_id=1, producer_epoch=0, base_sequence=2)
    log.truncate_to(2)
    # the second batch is gone, so it is not a duplicate any more: it is appended again
    r = log.append_records(recs(2), producer_id=1, producer_epoch=0, base_sequence=2)
    assert (r.base_offset, r.duplicate) == (2, False)
    log.close()


def test_idle_producers_expire(log_dir: Path) -> None:
    log = PartitionLog.open(log_dir, LogConfig())
    log.append_records(recs(2), producer_id=1, producer_epoch=0, base_sequence=0)
    now = int(time.time() * 1000)
    log.enforce_retention(now + 60_000)
    assert log.append_records(recs(2), producer_id=1, producer_epoch=0, base_sequence=0).duplicate
    log.enforce_retention(now + 2 * 86_400_000)
    with pytest.raises(UnknownProducerIdError):
        log.append_records(recs(1), producer_id=1, producer_epoch=0, base_sequence=2)
    log.close()
