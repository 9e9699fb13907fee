"""Crash loop: a child process appends and flushes, reporting fsynced offsets, and is SIGKILLed at
random moments. After every kill the log must reopen with every reported batch present, offsets
dense, record contents intact and no partial batch served."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from storage import LogConfig, PartitionLog, iter_batches

ROOT = Path(__file__).resolve().parents[2]
CFG = LogConfig(segment_bytes=30_000, index_interval_bytes=512)
ITERATIONS = 15
TIME_BUDGET_S = 30.0

CHILD = textwrap.dedent(
    """
    import random, sys
    from pathlib import Path
    from storage import LogConfig, PartitionLog, RecordIn

    rng = random.Random(int(sys.argv[2]))
    log = PartitionLog.open(Path(sys.argv[1]), LogConfig(segment_bytes=30_000, index_interval_bytes=512))
    nxt = log.log_end_offset
    print("start", nxt, flush=True)
    while True:
        n = rng.randint(1, 30)
        recs = [RecordIn(value=b"%d:" % (nxt + i) + b"x" * rng.randint(0, 200), key=b"%d" % (nxt + i))
                for i in range(n)]
        r = log.append_records(recs)
        assert r.base_offset == nxt, (r, nxt)
        nxt = r.last_offset + 1
        if rng.random() < 0.4:
            log.flush(nxt)
            print(nxt, flush=True)
    """
)


def verify(path: Path, fsynced: int) -> int:
    log = PartitionLog.open(path, CFG)
    try:
        end = log.log_end_offset
        assert end >= fsynced, f"fsynced offset {fsynced} lost: log ends at {end}"
        log.update_high_watermark(end)
        offset = 0
        while offset < end:
            data = log.read(offset, 256 * 1024).data
            assert data, f"nothing readable at {offset} < {end}"
            assert sum(h.size for _p, h in iter_batches(data)) == len(data), "partial batch served"
            for record in log.read_records(offset, max_records=10**6, max_bytes=256 * 1024):
                assert record.offset == offset, f"offsets not dense: {record.offset} != {offset}"
                assert record.key == b"%d" % offset
                assert record.value is not None and record.value.startswith(b"%d:" % offset)
                offset += 1
        return end
    finally:
        if random.random() < 0.5:
            log.close()
        else:
            log.abandon()  # the child then opens an uncleanly closed log


@pytest.mark.slow
def test_sigkill_loop_never_loses_fsynced_batches(tmp_path: Path) -> None:
    path = tmp_path / "crash-0"
    rng = random.Random(0xC0FFEE)
    deadline = time.monotonic() + TIME_BUDGET_S
    fsynced = 0
    iterations = 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    while iterations < ITERATIONS and time.monotonic() < deadline:
        iterations += 1
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(rng.randrange(1 << 30))],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert child.stdout is not None
        first = child.stdout.readline()
        assert first.startswith(b"start"), child.stderr.read() if child.stderr else first
        time.sleep(rng.uniform(0.05, 0.6))
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL, err.decode()
        lines = out.split(b"\n")[:-1]  # the last element is an unfinished line or empty
        if lines:
            fsynced = max(fsynced, int(lines[-1]))
        end = verify(path, fsynced)
        assert end >= fsynced
    assert iterations >= 3
    assert fsynced > 0


COMPACTING_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from storage import LogConfig, PartitionLog, RecordIn

    cfg = LogConfig(segment_bytes=4000, cleanup_policy="compact", min_cleanable_dirty_ratio=0.0)
    log = PartitionLog.open(Path(sys.argv[1]), cfg)
    print("start", log.log_end_offset, flush=True)
    i = 0
    while True:
        nxt = log.log_end_offset
        log.append_records([RecordIn(value=b"%d" % o, key=b"k%d" % (o % 20)) for o in range(nxt, nxt + 5)])
        i += 1
        if i % 3 == 0:
            log.flush()
            print(log.log_end_offset, flush=True)
        if i % 7 == 0:
            log.compact()
    """
)


@pytest.mark.slow
def test_sigkill_during_compaction_loses_no_latest_value(tmp_path: Path) -> None:
    path = tmp_path / "compact-0"
    cfg = LogConfig(segment_bytes=4000, cleanup_policy="compact", min_cleanable_dirty_ratio=0.0)
    rng = random.Random(7)
    deadline = time.monotonic() + 20.0
    fsynced = 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    iterations = 0
    while iterations < 8 and time.monotonic() < deadline:
        iterations += 1
        child = subprocess.Popen(
            [sys.executable, "-c", COMPACTING_CHILD, str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert child.stdout is not None
        assert child.stdout.readline().startswith(b"start")
        time.sleep(rng.uniform(0.1, 0.7))
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL, err.decode()
        lines = out.split(b"\n")[:-1]
        if lines:
            fsynced = max(fsynced, int(lines[-1]))
        log = PartitionLog.open(path, cfg)
        try:
            assert not list(path.glob("*.cleaned")) and not (path / "compaction-swap").exists()
            assert log.log_end_offset >= fsynced
            log.update_high_watermark(log.log_end_offset)
            records = log.read_records(0, max_records=10**6, max_bytes=1 << 30)
            offsets = [r.offset for r in records]
            assert offsets == sorted(set(offsets))
            latest: dict[bytes, int] = {}
            for r in records:
                assert r.value == b"%d" % r.offset and r.key == b"k%d" % (r.offset % 20)
                latest[r.key] = r.offset
            for o in range(max(0, fsynced - 20), fsynced):  # the last fsynced record of every key
                assert latest.get(b"k%d" % (o % 20), -1) >= o, f"latest value of offset {o} lost"
        finally:
            log.close()
    assert iterations >= 3 and fsynced > 0
