"""Retention (retention.ms, retention.bytes) and compaction (cleanup.policy=compact)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from storage import CompactionStats, LogConfig, PartitionLog, RecordIn, iter_batches
from storage.errors import OffsetOutOfRangeError

DAY_MS = 86_400_000
NOW_MS = 1_700_000_000_000


class FakeClock:
    def __init__(self) -> None:
        self.now = NOW_MS / 1000

    def __call__(self) -> float:
        return self.now


def kv(key: str | None, value: str | None, ts: int = NOW_MS) -> RecordIn:
    return RecordIn(
        value=None if value is None else value.encode(),
        key=None if key is None else key.encode(),
        timestamp=ts,
    )


def contents(log: PartitionLog) -> list[tuple[int, bytes | None, bytes | None]]:
    log.update_high_watermark(log.log_end_offset)
    return [
        (r.offset, r.key, r.value)
        for r in log.read_records(log.log_start_offset, max_records=10**6, max_bytes=1 << 30)
    ]


# ------------------------------------------------------------------------------------ retention


def test_retention_ms_deletes_old_closed_segments(tmp_path: Path) -> None:
    clock = FakeClock()
    cfg = LogConfig(segment_bytes=500, retention_ms=DAY_MS)
    log = PartitionLog.open(tmp_path / "t-0", cfg, clock=clock)
    for i in range(20):
        log.append_records([kv(None, f"old{i}", NOW_MS - 3 * DAY_MS)] * 3)
    old_end = log.log_end_offset
    for i in range(20):
        log.append_records([kv(None, f"new{i}", NOW_MS)] * 3)
    n = log.segment_count
    deleted = log.enforce_retention()
    assert deleted > 0
    assert log.segment_count == n - deleted
    assert log.log_start_offset <= old_end  # only whole old segments went
    assert log.log_start_offset > 0
    values = [v for _o, _k, v in contents(log)]
    assert all(v is not None and v.startswith(b"new") for v in values[-60:])
    with pytest.raises(OffsetOutOfRangeError):
        log.read(0, 100)
    start = log.log_start_offset
    log.close()
    log = PartitionLog.open(tmp_path / "t-0", cfg, clock=clock)
    assert log.log_start_offset == start  # persisted in log-start-offset-checkpoint
    log.close()


def test_retention_never_deletes_active_segment(tmp_path: Path) -> None:
    cfg = LogConfig(retention_ms=1)
    log = PartitionLog.open(tmp_path / "t-0", cfg, clock=FakeClock())
    log.append_records([kv(None, "x", 0)])
    assert log.enforce_retention(NOW_MS) == 0
    assert log.segment_count == 1
    log.roll()
    assert log.enforce_retention(NOW_MS) == 1
    assert (log.log_start_offset, log.log_end_offset) == (1, 1)
    log.close()


def test_retention_bytes(tmp_path: Path) -> None:
    cfg = LogConfig(segment_bytes=1000, retention_bytes=3000, retention_ms=-1)
    log = PartitionLog.open(tmp_path / "t-0", cfg, clock=FakeClock())
    for i in range(100):
        log.append_records([kv(None, "v" * 50 + str(i))])
    before = log.size_bytes
    deleted = log.enforce_retention()
    assert deleted > 0
    assert log.size_bytes >= 3000 - 1000 or log.segment_count == 1
    assert log.size_bytes < before
    assert log.size_bytes - log._view.segments[0].size < 3000
    log.close()


def test_log_start_only_moves_forward_and_compact_only_skips_retention(tmp_path: Path) -> None:
    cfg = LogConfig(segment_bytes=300, retention_ms=1, cleanup_policy="compact")
    log = PartitionLog.open(tmp_path / "t-0", cfg, clock=FakeClock())
    for i in range(20):
        log.append_records([kv(f"k{i}", "v", 0)])
    assert log.enforce_retention() == 0  # cleanup.policy=compact: no time retention
    log.update_config(cfg.replace(cleanup_policy="compact,delete"))
    assert log.enforce_retention() > 0
    start = log.log_start_offset
    assert start > 0
    log.enforce_retention()
    assert log.log_start_offset >= start
    log.close()


# ------------------------------------------------------------------------------------ compaction


def compacting_log(path: Path, **overrides: object) -> PartitionLog:
    cfg = LogConfig(segment_bytes=400, cleanup_policy="compact", min_cleanable_dirty_ratio=0.0)
    return PartitionLog.open(path, cfg.replace(**overrides), clock=FakeClock())


def test_compaction_keeps_last_value_per_key_with_offsets(tmp_path: Path) -> None:
    log = compacting_log(tmp_path / "t-0")
    expected: dict[bytes, tuple[int, bytes]] = {}
    for i in range(60):
        key = f"k{i % 6}"
        r = log.append_records([kv(key, f"v{i}")])
        expected[key.encode()] = (r.base_offset, f"v{i}".encode())
    log.roll()
    before = contents(log)
    stats = log.compact(NOW_MS)
    assert isinstance(stats, CompactionStats)
    assert stats.records_removed == 54
    after = contents(log)
    assert sorted((o, k, v) for k, (o, v) in expected.items()) == after
    assert after == [row for row in before if expected[row[1]][0] == row[0]]  # type: ignore[index]
    assert log.size_bytes < sum(1 for _ in before) * 70
    # reading a compacted-away offset returns the next surviving record
    first_survivor = after[0][0]
    got = log.read_records(0, max_records=1, max_bytes=1)
    assert got[0].offset == first_survivor
    assert log.compact(NOW_MS) is None  # nothing dirty any more
    log.close()
    log = compacting_log(tmp_path / "t-0")
    assert contents(log) == after
    log.close()


def test_compaction_never_touches_active_segment_and_keeps_null_keys(tmp_path: Path) -> None:
    log = compacting_log(tmp_path / "t-0", segment_bytes=10_000_000)
    for i in range(10):
        log.append_records([kv("same", str(i)), kv(None, f"nokey{i}")])
    assert log.compact(NOW_MS) is None  # everything is in the active segment
    log.roll()
    log.append_records([kv("same", "active")])
    log.compact(NOW_MS)
    rows = contents(log)
    assert [v for _o, k, v in rows if k is None] == [f"nokey{i}".encode() for i in range(10)]
    assert [v for _o, k, v in rows if k == b"same"] == [b"9", b"active"]
    log.close()


def test_tombstones_kept_for_delete_retention_then_dropped(tmp_path: Path) -> None:
    log = compacting_log(tmp_path / "t-0", delete_retention_ms=DAY_MS)
    log.append_records([kv("a", "1"), kv("b", "1")])
    log.append_records([kv("a", None)])
    log.roll()
    log.compact(NOW_MS)
    assert [(k, v) for _o, k, v in contents(log)] == [(b"b", b"1"), (b"a", None)]
    log.append_records([kv("c", "1")])
    log.roll()
    stats = log.compact(NOW_MS + 2 * DAY_MS)
    assert stats is not None
    assert stats.tombstones_removed == 1
    assert [(k, v) for _o, k, v in contents(log)] == [(b"b", b"1"), (b"c", b"1")]
    log.close()


def test_min_cleanable_dirty_ratio(tmp_path: Path) -> None:
    log = compacting_log(tmp_path / "t-0", min_cleanable_dirty_ratio=0.5)
    for i in range(40):
        log.append_records([kv(f"k{i % 4}", str(i))])
    log.roll()
    assert log.compact(NOW_MS) is not None  # all dirty
    size = log.size_bytes
    log.append_records([kv("k1", "x")])
    log.roll()
    assert log.compact(NOW_MS) is None  # a sliver of dirty bytes: ratio below 0.5
    assert log.size_bytes > size
    log.close()


def test_min_compaction_lag(tmp_path: Path) -> None:
    log = compacting_log(tmp_path / "t-0", min_compaction_lag_ms=DAY_MS)
    for i in range(20):
        log.append_records([kv("k", str(i), NOW_MS - 1000)])
    log.roll()
    assert log.compact(NOW_MS) is None
    assert log.compact(NOW_MS + 2 * DAY_MS) is not None
    log.close()


def test_rewritten_batches_keep_base_offset_and_range(tmp_path: Path) -> None:
    log = compacting_log(tmp_path / "t-0", segment_bytes=100_000)
    log.append_records([kv("a", "1"), kv("b", "1"), kv("a", "2"), kv("c", "1")])
    log.append_records([kv("c", "2")])
    log.roll()
    log.compact(NOW_MS)
    log.update_high_watermark(log.log_end_offset)
    batches = [h for _p, h in iter_batches(log.read(0, 1 << 20).data)]
    assert (batches[0].base_offset, batches[0].last_offset, batches[0].record_count) == (0, 3, 2)
    assert [(o, k) for o, k, _v in contents(log)] == [(1, b"b"), (2, b"a"), (4, b"c")]
    log.close()


def test_compaction_merges_small_segments(tmp_path: Path) -> None:
    # Like Kafka, segments are grouped by their size before cleaning (up to segment.bytes), so
    # the small segments one pass leaves behind are merged by the next.
    log = compacting_log(tmp_path / "t-0", segment_bytes=300)
    for i in range(60):
        log.append_records([kv(f"k{i % 3}", str(i))])
    log.roll()
    assert log.compact(NOW_MS) is not None
    for i in range(60):
        log.append_records([kv(f"k{i % 3}", str(i))])
    log.roll()
    stats = log.compact(NOW_MS)
    assert stats is not None
    assert stats.segments_after < stats.segments_before
    assert len(contents(log)) == 3
    log.close()


CRASH_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    import storage.cleaner as cleaner
    from storage import LogConfig, PartitionLog

    stage = sys.argv[2]
    original = cleaner._swap_files

    def crashing_swap(directory, base, replaces):
        if stage == "after-manifest":
            os._exit(3)  # the manifest is durable, nothing renamed yet
        for old in replaces[1:]:
            for ext in (".log", ".index", ".timeindex"):
                p = directory / f"{old:020d}{ext}"
                if p.exists():
                    p.unlink()
        os._exit(3)  # half the old files gone, cleaned files not renamed

    cleaner._swap_files = crashing_swap
    cfg = LogConfig(segment_bytes=400, cleanup_policy="compact", min_cleanable_dirty_ratio=0.0)
    log = PartitionLog.open(Path(sys.argv[1]), cfg)
    if stage == "before-manifest":
        cleaner.write_atomic = lambda *a, **k: os._exit(3)
    log.compact()
    """
)


@pytest.mark.parametrize("stage", ["before-manifest", "after-manifest", "mid-swap"])
def test_crash_during_compaction_loses_nothing(tmp_path: Path, stage: str) -> None:
    path = tmp_path / "t-0"
    log = compacting_log(path, segment_bytes=150)  # small segments: compaction merges groups of them
    for i in range(60):
        log.append_records([kv(f"k{i % 6}", f"v{i}")])
    log.roll()
    before = contents(log)
    log.close()
    proc = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(path), stage],
        cwd=Path(__file__).parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 3, proc.stderr.decode()
    log = compacting_log(path)
    after = contents(log)
    assert not list(path.glob("*.cleaned")) and not (path / "compaction-swap").exists()
    last = {k: (o, v) for o, k, v in before}
    survivors = sorted((o, k, v) for k, (o, v) in last.items())
    assert set(survivors) <= set(after) <= set(before)  # nothing needed was lost, nothing invented
    assert after == sorted(after)
    if stage == "before-manifest":
        assert after == before
    else:
        assert len(after) < len(before)  # the committed swap was completed on open
    log.compact(NOW_MS)
    assert contents(log) == survivors
    log.close()


def test_offset_map_is_bounded_and_passes_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import storage.cleaner as cleaner

    monkeypatch.setattr(cleaner, "MAX_OFFSET_MAP_KEYS", 3)
    log = compacting_log(tmp_path / "t-0", segment_bytes=200)
    for i in range(40):
        log.append_records([kv(f"k{i % 8}", str(i))])
    log.roll()
    end = log.log_end_offset
    first = log.compact(NOW_MS)
    assert first is not None and first.cleaned_up_to < end  # stopped early: too many keys
    passes = 1
    while log.compact(NOW_MS) is not None:
        passes += 1
        assert passes < 40
    assert passes > 1
    rows = contents(log)
    assert sorted(k for _o, k, _v in rows) == sorted(f"k{i}".encode() for i in range(8))
    assert [v for _o, _k, v in rows] == [str(i).encode() for i in range(32, 40)]
    log.close()


@pytest.mark.parametrize("race", ["retention", "truncation"])
def test_compaction_abandons_swap_when_log_changed_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, race: str
) -> None:
    import storage.cleaner as cleaner

    log = compacting_log(tmp_path / "t-0", segment_bytes=150)
    for i in range(30):
        log.append_records([kv(f"k{i % 3}", str(i))])
    log.roll()
    real_clean_group, real_group = cleaner._clean_group, cleaner._group
    groups: list[object] = []
    calls = 0
    after_race: list[tuple[int, bytes | None, bytes | None]] = []

    def recording_group(*args: object, **kwargs: object) -> object:
        result = real_group(*args, **kwargs)  # type: ignore[arg-type]
        groups.extend(result)
        return result

    def racing_clean_group(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        result = real_clean_group(*args, **kwargs)  # type: ignore[arg-type]
        if calls == len(groups):  # every group rewritten; another thread changes the log now
            if race == "retention":
                half = log.size_bytes // 2
                log.update_config(log.config.replace(cleanup_policy="compact,delete", retention_bytes=half))
                assert log.enforce_retention() > 0
            else:
                log.truncate_to(log.segment_base_offsets()[-2] + 1)  # inside the last closed segment
            after_race.extend(contents(log))
        return result

    monkeypatch.setattr(cleaner, "_group", recording_group)
    monkeypatch.setattr(cleaner, "_clean_group", racing_clean_group)
    assert log.compact(NOW_MS) is None
    assert after_race and contents(log) == after_race  # the pass's output was dropped
    everything = log.read_records(
        log.log_start_offset, max_records=10**6, max_bytes=1 << 30, max_offset=2**62
    )
    assert all(r.offset < log.log_end_offset for r in everything)  # nothing truncated came back
    assert not list((tmp_path / "t-0").glob("*.cleaned"))
    monkeypatch.undo()
    assert log.compact(NOW_MS) is not None or log.segment_count == 1
    log.close()


def test_readers_during_compaction_and_retention_see_consistent_data(tmp_path: Path) -> None:
    import threading

    cfg = LogConfig(
        segment_bytes=600,
        cleanup_policy="compact,delete",
        min_cleanable_dirty_ratio=0.0,
        retention_bytes=20_000,
    )
    log = PartitionLog.open(tmp_path / "t-0", cfg, clock=FakeClock())
    stop = threading.Event()
    problems: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            time.sleep(0.002)  # leave the writer some of the GIL
            try:
                got = log.read_records(
                    log.log_start_offset, max_records=10**6, max_bytes=1 << 20, max_offset=log.log_end_offset
                )
            except OffsetOutOfRangeError:
                continue  # retention moved the start between the two calls
            except Exception as exc:  # pragma: no cover - reported by the assertion below
                problems.append(repr(exc))
                return
            offsets = [r.offset for r in got]
            if offsets != sorted(set(offsets)):
                problems.append(f"offsets out of order: {offsets[:10]}")
            for r in got:
                if r.value != str(r.offset).encode():
                    problems.append(f"record {r.offset} holds {r.value!r}")
                    return

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for i in range(200):
        end = log.log_end_offset
        log.append_records([kv(f"k{(end + j) % 7}", str(end + j)) for j in range(3)])
        if i % 20 == 0:
            log.compact(NOW_MS)
            log.enforce_retention(NOW_MS)
    stop.set()
    for t in threads:
        t.join()
    assert not problems, problems[:3]
    log.close()


def test_compaction_bounded_by_max_offset_keeps_what_later_records_would_supersede(tmp_path: Path) -> None:
    """``max_offset`` (the broker's compaction.guard.group bound): a record at or past it never makes
    an earlier one go, so the value as of the bound survives."""
    log = compacting_log(tmp_path / "g-0")
    for i in range(40):
        log.append_records([kv("k", f"v{i}")])
        if i % 5 == 4:
            log.roll()  # segments of five records: bases 0, 5, 10, ...
    log.roll()
    stats = log.compact(NOW_MS, max_offset=22)
    assert isinstance(stats, CompactionStats)
    after = contents(log)
    # Segments ending at or below 20 were cleaned among themselves: only v19 is left of them;
    # everything from 20 on (the segment holding 22 included) is untouched.
    assert after == [(19, b"k", b"v19")] + [(i, b"k", f"v{i}".encode()) for i in range(20, 40)]
    assert log.compact(NOW_MS, max_offset=0) is None
    log.compact(NOW_MS)
    assert contents(log) == [(39, b"k", b"v39")]
    log.close()


def test_delete_records_survives_reopen_and_only_moves_forward(tmp_path: Path) -> None:
    log = PartitionLog.open(tmp_path / "d-0", LogConfig(segment_bytes=200), clock=FakeClock())
    for i in range(30):
        log.append_records([kv(None, f"v{i}")])
    log.update_high_watermark(log.log_end_offset)
    assert log.delete_records(17) == 17
    assert log.delete_records(5) == 17
    with pytest.raises(OffsetOutOfRangeError):
        log.delete_records(31)
    bases = [*log.segment_base_offsets(), 1 << 62]
    assert bases[0] <= 17 < bases[1], "the segments wholly below 17 are gone"
    log.close()
    log = PartitionLog.open(tmp_path / "d-0", LogConfig(segment_bytes=200), clock=FakeClock())
    assert log.log_start_offset == 17
    with pytest.raises(OffsetOutOfRangeError):
        log.read(3, 1000)
    log.update_high_watermark(log.log_end_offset)
    assert log.read_records(17, max_records=100, max_bytes=1 << 20)[0].offset == 17
    log.close()


def test_segment_ms_counts_in_record_time(tmp_path: Path) -> None:
    """Kafka's LogSegment.shouldRoll: batches 10 s apart in record time roll with segment.ms=1000,
    however fast they are appended; a segment with no timestamped batch rolls by the wall clock."""
    clock = FakeClock()
    log = PartitionLog.open(tmp_path / "r-0", LogConfig(segment_ms=1000), clock=clock)
    for i in range(5):
        log.append_records([kv(None, f"v{i}", ts=NOW_MS - 3_600_000 + i * 10_000)])
    assert log.segment_base_offsets() == [0, 1, 2, 3, 4]
    # Within segment.ms of record time: one segment, even when the wall clock moves on.
    clock.now += 60
    log.append_records([kv(None, "same", ts=NOW_MS - 3_600_000 + 40_500)])
    assert log.segment_count == 5
    log.close()


def test_segment_jitter_never_rolls_more_than_segment_ms_early(tmp_path: Path) -> None:
    config = LogConfig(segment_ms=1000, segment_jitter_ms=400)
    log = PartitionLog.open(tmp_path / "j-0", config, clock=FakeClock())
    log.append_records([kv(None, "a", ts=NOW_MS)])
    log.append_records([kv(None, "b", ts=NOW_MS + 599)])  # below segment.ms minus any jitter (< 400)
    assert log.segment_count == 1
    log.append_records([kv(None, "c", ts=NOW_MS + 1001)])  # past segment.ms: rolls whatever the jitter
    assert log.segment_count == 2
    log.close()
