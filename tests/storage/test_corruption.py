"""Recovery from damaged files: flipped bytes, torn tails, missing or broken indexes, bad checkpoints."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from storage import LogConfig, PartitionLog, RecordIn, decode_records, iter_batches
from storage.errors import CorruptRecordError

CFG = LogConfig(segment_bytes=2000, index_interval_bytes=200)
T0 = int(time.time() * 1000) - 60_000  # recent: old timestamps would roll on segment.ms


def recs(start: int, n: int = 4) -> list[RecordIn]:
    return [
        RecordIn(value=f"value-{start + i}".encode().ljust(40, b"."), timestamp=T0 + start + i)
        for i in range(n)
    ]


def write_log(
    path: Path, batches: int = 30, *, clean: bool = False, flush: bool = False
) -> PartitionLog | None:
    log = PartitionLog.open(path, CFG)
    for b in range(batches):
        log.append_records(recs(b * 4))
    if flush:
        log.flush()
    if clean:
        log.close()
        return None
    log.abandon()  # as after a crash: no clean marker, no final checkpoint
    return None


def segment_files(path: Path) -> list[Path]:
    return sorted(path.glob("*.log"))


def check_dense(log: PartitionLog) -> list[int]:
    log.update_high_watermark(log.log_end_offset)
    offsets = [r.offset for r in log.read_records(0, max_records=10**6, max_bytes=1 << 30)]
    assert offsets == list(range(log.log_end_offset))
    for r in log.read_records(0, max_records=10**6, max_bytes=1 << 30):
        assert r.value == f"value-{r.offset}".encode().ljust(40, b".")
    return offsets


def batch_positions(path: Path) -> list[tuple[int, int]]:
    data = path.read_bytes()
    return [(pos, h.size) for pos, h in iter_batches(data)]


def test_unclean_open_without_damage_keeps_everything(tmp_path: Path) -> None:
    write_log(tmp_path / "t")
    log = PartitionLog.open(tmp_path / "t", CFG)
    assert not log.recovered_cleanly
    assert log.recovery.truncated_bytes == 0
    assert log.log_end_offset == 120
    check_dense(log)
    log.close()


def test_unclean_open_scans_only_since_recovery_point(tmp_path: Path) -> None:
    log = PartitionLog.open(tmp_path / "t", CFG)
    for b in range(60):
        log.append_records(recs(b * 4))
    log.flush()
    log.roll()
    log.append_records(recs(240))
    log.flush()
    log.append_records(recs(244))
    n = log.segment_count
    log.abandon()
    log = PartitionLog.open(tmp_path / "t", CFG)
    assert n > 3
    assert log.recovery.scanned_segments == 1
    assert log.log_end_offset == 248
    check_dense(log)
    log.close()


def test_flipped_byte_in_tail_truncates_there(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_log(tmp_path / "t")
    last = segment_files(tmp_path / "t")[-1]
    positions = batch_positions(last)
    pos, size = positions[-2]
    data = bytearray(last.read_bytes())
    data[pos + size - 3] ^= 0x55
    last.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="storage"):
        log = PartitionLog.open(tmp_path / "t", CFG)
    assert "CRC" in caplog.text
    assert log.recovery.truncated_bytes == size + positions[-1][1]
    assert last.stat().st_size == pos
    offsets = check_dense(log)
    assert offsets and offsets[-1] == log.log_end_offset - 1 < 119
    assert log.append_records(recs(log.log_end_offset)).base_offset == len(offsets)
    log.close()


def test_flipped_byte_mid_log_truncates_and_drops_later_segments(tmp_path: Path) -> None:
    write_log(tmp_path / "t")
    # Rolled segments are fsynced and sit below the recovery point, so they are trusted; without
    # the checkpoint (a crash before the first roll's flush finished) every segment is scanned.
    (tmp_path / "t" / "recovery-point-offset-checkpoint").unlink()
    files = segment_files(tmp_path / "t")
    assert len(files) >= 4
    victim = files[1]
    pos, _size = batch_positions(victim)[1]
    with open(victim, "r+b") as f:
        f.seek(pos + 30)  # inside the CRC-covered header fields
        byte = f.read(1)
        f.seek(pos + 30)
        f.write(bytes([byte[0] ^ 0xFF]))
    log = PartitionLog.open(tmp_path / "t", CFG)
    assert log.segment_count == 2
    assert [p.name for p in segment_files(tmp_path / "t")] == [files[0].name, files[1].name]
    assert victim.stat().st_size == pos
    check_dense(log)
    log.close()


def test_damage_below_recovery_point_is_caught_when_read(tmp_path: Path) -> None:
    write_log(tmp_path / "t", clean=True)
    victim = segment_files(tmp_path / "t")[0]
    pos, size = batch_positions(victim)[0]
    with open(victim, "r+b") as f:
        f.seek(pos + size - 2)
        f.write(b"\xff\xfe")
    log = PartitionLog.open(tmp_path / "t", CFG)
    assert log.recovery.scanned_bytes == 0  # clean shutdown: nothing rescanned
    with pytest.raises(CorruptRecordError):
        log.read_records(0, max_records=1, max_bytes=1)
    log.close()


def test_torn_partial_batch_at_end_is_dropped(tmp_path: Path) -> None:
    write_log(tmp_path / "t")
    last = segment_files(tmp_path / "t")[-1]
    good = last.stat().st_size
    with open(last, "ab") as f:
        f.write(b"\x00\x00\x00\x00\x00\x00\x00\x78\x00\x00\x01\x00partial")
    log = PartitionLog.open(tmp_path / "t", CFG)
    assert last.stat().st_size == good
    assert log.log_end_offset == 120
    check_dense(log)
    log.close()


def test_zero_filled_tail_is_dropped(tmp_path: Path) -> None:
    # a crash after the file grew but before the data reached the disk leaves zeroes
    write_log(tmp_path / "t")
    last = segment_files(tmp_path / "t")[-1]
    good = last.stat().st_size
    with open(last, "ab") as f:
        f.write(bytes(4096))
    log = PartitionLog.open(tmp_path / "t", CFG)
    assert last.stat().st_size == good
    check_dense(log)
    log.close()


def test_batch_with_offsets_going_backwards_is_invalid(tmp_path: Path) -> None:
    write_log(tmp_path / "t", batches=3)
    last = segment_files(tmp_path / "t")[-1]
    data = last.read_bytes()
    (pos0, size0), (pos1, _size1) = batch_positions(last)[:2]
    # append a copy of the first batch (valid CRC, but offsets 0..3 again)
    last.write_bytes(data + data[pos0 : pos0 + size0])
    log = PartitionLog.open(tmp_path / "t", CFG)
    assert log.log_end_offset == 12
    assert last.stat().st_size == len(data)
    check_dense(log)
    assert pos1 == size0
    log.close()


@pytest.mark.parametrize("clean", [True, False])
def test_deleted_index_is_rebuilt(tmp_path: Path, clean: bool) -> None:
    write_log(tmp_path / "t", batches=60, clean=clean, flush=True)
    files = segment_files(tmp_path / "t")
    idx = files[0].with_suffix(".index")
    original = idx.read_bytes()
    assert original
    idx.unlink()
    files[0].with_suffix(".timeindex").unlink()
    log = PartitionLog.open(tmp_path / "t", CFG)
    assert idx.read_bytes() == original
    assert log.offset_for_timestamp(T0 + 5) == 5
    check_dense(log)
    log.close()


def test_truncated_index_is_rebuilt(tmp_path: Path) -> None:
    write_log(tmp_path / "t", batches=60, clean=True)
    idx = segment_files(tmp_path / "t")[0].with_suffix(".index")
    original = idx.read_bytes()
    with open(idx, "r+b") as f:
        f.truncate(len(original) - 3)
    log = PartitionLog.open(tmp_path / "t", CFG)
    assert log.recovery.rebuilt_indexes == 1
    assert idx.read_bytes() == original
    check_dense(log)
    log.close()


def test_index_pointing_past_the_log_is_rebuilt(tmp_path: Path) -> None:
    write_log(tmp_path / "t", batches=60, clean=True)
    seg = segment_files(tmp_path / "t")[0]
    idx = seg.with_suffix(".index")
    original = idx.read_bytes()
    with open(idx, "ab") as f:
        f.write((10_000).to_bytes(4, "big") + (seg.stat().st_size + 100).to_bytes(4, "big"))
    log = PartitionLog.open(tmp_path / "t", CFG)
    assert idx.read_bytes() == original
    check_dense(log)
    log.close()


def test_index_entries_pointing_inside_batches_do_not_break_reads(tmp_path: Path) -> None:
    # entries that pass the cheap open-time checks but point at wrong positions: a lookup is
    # only a starting point, checked against the batch found there
    write_log(tmp_path / "t", batches=60, clean=True)
    idx = segment_files(tmp_path / "t")[0].with_suffix(".index")
    entries = idx.read_bytes()
    shifted = b"".join(
        entries[i : i + 4] + (int.from_bytes(entries[i + 4 : i + 8], "big") + 7).to_bytes(4, "big")
        for i in range(0, len(entries), 8)
    )
    idx.write_bytes(shifted)
    log = PartitionLog.open(tmp_path / "t", CFG)
    check_dense(log)
    for offset in range(0, 60):
        assert log.read_records(offset, max_records=1, max_bytes=1)[0].offset == offset
    log.close()


def test_corrupt_checkpoints_are_ignored(tmp_path: Path) -> None:
    write_log(tmp_path / "t", clean=True)
    (tmp_path / "t" / "recovery-point-offset-checkpoint").write_text("0 99999 deadbeef\n")
    (tmp_path / "t" / "log-start-offset-checkpoint").write_bytes(os.urandom(7))
    (tmp_path / "t" / ".clean_shutdown").unlink()
    log = PartitionLog.open(tmp_path / "t", CFG)
    assert log.log_start_offset == 0
    assert log.recovery.scanned_segments == log.segment_count  # no trusted recovery point: full scan
    check_dense(log)
    log.close()


def test_corrupt_producer_snapshot_falls_back_to_log(tmp_path: Path) -> None:
    log = PartitionLog.open(tmp_path / "t", CFG)
    log.append_records(recs(0), producer_id=4, producer_epoch=0, base_sequence=0)
    log.close()
    for snap in (tmp_path / "t").glob("*.snapshot"):
        snap.write_bytes(b"garbage")
    log = PartitionLog.open(tmp_path / "t", CFG)
    assert log.append_records(recs(0), producer_id=4, producer_epoch=0, base_sequence=0).duplicate
    log.close()


def test_read_never_serves_a_partial_batch(tmp_path: Path) -> None:
    write_log(tmp_path / "t", batches=10, clean=True)
    log = PartitionLog.open(tmp_path / "t", CFG)
    for max_bytes in (1, 50, 133, 400, 1000, 5000):
        for offset in range(0, 40, 3):
            data = log.read(offset, max_bytes).data
            assert sum(h.size for _p, h in iter_batches(data)) == len(data)
            assert decode_records(data)[0].offset <= offset
    log.close()
