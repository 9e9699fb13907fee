"""A full or failing disk never loses or corrupts the log (issue 11, item 1), through the FileOps seam.

For each kind of append (plain, one that rolls a segment, idempotent, a follower's batch with a new
leader epoch) the test first counts the writes that append makes, then for every one of them and for
ENOSPC, EIO and a short write followed by ENOSPC: fails exactly that write, and checks that the append
raised, the log is exactly as before (segment bytes, in-memory index, offsets, records), the next
append after the disk heals gets the very next offset, and the log reopens — cleanly and after a
crash — with every appended record and nothing else.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

import pytest

from storage import LogConfig, PartitionLog, RecordIn, encode_batch
from storage.errors import LogReadOnlyError, StorageFullError, StorageWriteError
from tests.storage.faults import EIO, ENOSPC, SHORT_ONLY, SHORT_THEN_ENOSPC, FaultyFileOps, WriteFault

CFG = LogConfig(segment_bytes=4096, index_interval_bytes=0)
CLOCK = lambda: 1_700_000_000.0  # noqa: E731 - a fixed clock: same bytes on every run

Append = Callable[[PartitionLog, int], object]


def _records(start: int, n: int = 3) -> list[RecordIn]:
    return [RecordIn(value=b"v%d" % (start + i) + b"x" * 200, key=b"k%d" % (start + i)) for i in range(n)]


def _plain(log: PartitionLog, start: int) -> object:
    return log.append_records(_records(start))


def _idempotent(log: PartitionLog, start: int) -> object:
    return log.append_records(_records(start), producer_id=7, producer_epoch=0, base_sequence=start)


def _follower(log: PartitionLog, start: int) -> object:
    batch = encode_batch(_records(start), base_offset=start, now_ms=1, partition_leader_epoch=5 + start)
    return log.append_batch(batch, assign_offsets=False)


def _roll(log: PartitionLog, start: int) -> object:
    # big enough that every append after the first rolls the 4 KiB segment
    return log.append_records([RecordIn(value=b"r%d" % start + b"y" * 3000, key=b"k")])


KINDS: dict[str, Append] = {"plain": _plain, "roll": _roll, "idempotent": _idempotent, "follower": _follower}
FAULTS = {"enospc": ENOSPC, "eio": EIO, "short-then-enospc": SHORT_THEN_ENOSPC}


def _open(path: Path, ops: FaultyFileOps) -> PartitionLog:
    return PartitionLog.open(path, CFG, clock=CLOCK, file_ops=ops)


def _prepared(path: Path, append: Append) -> tuple[PartitionLog, FaultyFileOps]:
    ops = FaultyFileOps()
    log = _open(path, ops)
    for _ in range(2):
        append(log, log.log_end_offset)
    log.flush()
    return log, ops


def _values(log: PartitionLog) -> list[bytes | None]:
    log.update_high_watermark(log.log_end_offset)
    return [r.value for r in log.read_records(0, max_records=10_000, max_bytes=1 << 20)]


def _segment_bytes(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.glob("*.log"))}


def _writes_of(tmp_path: Path, append: Append) -> int:
    log, ops = _prepared(tmp_path / "count", append)
    before = ops.writes
    append(log, log.log_end_offset)
    count = ops.writes - before
    log.close()
    return count


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_failing_write_of_an_append_leaves_the_log_as_before(tmp_path: Path, kind: str) -> None:
    append = KINDS[kind]
    writes = _writes_of(tmp_path, append)
    assert writes >= (3 if kind == "roll" else 1), f"{kind}: only {writes} writes counted"
    refused = 0
    added = 1 if kind == "roll" else 3
    for index in range(writes):
        for name, fault in FAULTS.items():
            path = tmp_path / f"{kind}-{index}-{name}"
            log, ops = _prepared(path, append)
            end, values, files = log.log_end_offset, _values(log), _segment_bytes(path)
            index_entries = len(log._view.segments[-1].offset_index)
            ops.fail_write(index, fault)
            where = f"{kind}, write {index} of {writes}, {name}"
            expected = StorageWriteError if fault is EIO else StorageFullError
            try:
                append(log, end)
            except expected:
                refused += 1
            else:
                # Only a write the append does not depend on may fail without failing it (the
                # producer snapshot of a roll): then the batch is whole, and the log reopens with it.
                assert log.log_end_offset == end + added and len(_values(log)) == len(values) + added, where
                ops.heal()
                log.close()
                reopened = _open(path, FaultyFileOps())
                assert len(_values(reopened)) == len(values) + added, where
                reopened.close()
                continue
            assert log.log_end_offset == end, where
            assert _values(log) == values, where
            after = _segment_bytes(path)
            for file, content in files.items():
                assert after[file] == content, f"{where}: {file} changed"
            assert all(not after[f] for f in after if f not in files), f"{where}: bytes in a new segment"
            if kind != "roll":
                assert len(log._view.segments[-1].offset_index) == index_entries, f"{where}: index entry"
            # the disk heals: the next append takes the very next offset, nothing is lost or reused
            ops.heal()
            append(log, end)
            assert log.log_end_offset == end + added, where
            wanted = _values(log)
            log.flush()
            log.abandon()  # as a crash: recovery from the recovery point
            crashed = _open(path, FaultyFileOps())
            assert _values(crashed) == wanted, where
            crashed.close()
            reopened = _open(path, FaultyFileOps())
            assert _values(reopened) == wanted, where
            reopened.close()
    # the segment write itself, at least, always fails the append
    assert refused >= len(FAULTS) * (writes - 1 if kind == "roll" else writes), refused


def test_a_short_write_that_completes_is_a_whole_append(tmp_path: Path) -> None:
    log, ops = _prepared(tmp_path / "p", _plain)
    ops.fail_write(0, SHORT_ONLY)
    result = log.append_records(_records(6))
    assert result.base_offset == 6 and log.log_end_offset == 9
    assert _values(log)[-1] == _records(6)[-1].value
    log.close()
    reopened = _open(tmp_path / "p", FaultyFileOps())
    assert reopened.log_end_offset == 9
    reopened.close()


def test_every_write_fails_while_the_disk_is_full_and_resumes_when_space_returns(tmp_path: Path) -> None:
    log, ops = _prepared(tmp_path / "p", _roll)
    ops.full = True
    for _ in range(5):
        with pytest.raises(StorageFullError):
            _roll(log, log.log_end_offset)
    assert log.log_end_offset == 2
    ops.heal()
    assert _roll(log, 2) is not None and log.log_end_offset == 3
    log.close()
    reopened = _open(tmp_path / "p", FaultyFileOps())
    assert [v[:2] for v in _values(reopened) if v] == [b"r0", b"r1", b"r2"]
    reopened.close()


def test_a_failed_fsync_makes_the_log_read_only_until_it_is_revalidated(tmp_path: Path) -> None:
    log, ops = _prepared(tmp_path / "p", _plain)
    durable = log.recovery_point
    log.append_records(_records(6))
    ops.fsync_error = errno.EIO
    with pytest.raises(LogReadOnlyError):
        log.flush()
    ops.fsync_error = None
    # never retried as if it had worked: the second flush fails too, and nothing became durable
    with pytest.raises(LogReadOnlyError):
        log.flush()
    assert log.recovery_point == durable and log.read_only
    with pytest.raises(LogReadOnlyError):
        log.append_records(_records(9))
    assert _values(log)[-1] == _records(6)[-1].value  # reads go on
    # re-validation while the disk still fails keeps the log read-only
    ops.fsync_error = errno.EIO
    with pytest.raises(LogReadOnlyError):
        log.revalidate()
    assert log.read_only
    ops.fsync_error = None
    writes, fsyncs = ops.writes, ops.fsyncs
    log.revalidate()
    assert not log.read_only
    assert ops.writes > writes and ops.fsyncs > fsyncs, "the unflushed tail was not written again"
    assert log.recovery_point == log.log_end_offset == 9
    assert log.append_records(_records(9)).base_offset == 9
    log.flush()
    values = _values(log)
    log.close()
    reopened = _open(tmp_path / "p", FaultyFileOps())
    assert _values(reopened) == values and len(values) == 12
    reopened.close()


def test_a_failed_write_that_cannot_be_undone_makes_the_log_read_only(tmp_path: Path) -> None:
    log, ops = _prepared(tmp_path / "p", _plain)
    values = _values(log)
    ops.fail_write(0, WriteFault(short=50, then_full=True))
    ops.ftruncate_error = errno.EIO
    with pytest.raises(LogReadOnlyError):
        log.append_records(_records(6))
    assert log.read_only and log.log_end_offset == 6 and _values(log) == values
    ops.heal()
    log.revalidate()  # the torn tail is cut by recovery
    assert log.log_end_offset == 6 and _values(log) == values
    assert log.append_records(_records(6)).base_offset == 6
    log.close()


def test_closing_a_read_only_log_leaves_it_to_recovery(tmp_path: Path) -> None:
    log, ops = _prepared(tmp_path / "p", _plain)
    log.append_records(_records(6))
    ops.fsync_error = errno.EIO
    with pytest.raises(LogReadOnlyError):
        log.close()
    assert log.closed
    assert not (tmp_path / "p" / ".clean_shutdown").exists()
    reopened = _open(tmp_path / "p", FaultyFileOps())
    assert not reopened.recovered_cleanly and reopened.log_end_offset == 9
    reopened.close()
