"""A hypothesis state machine drives a PartitionLog (tiny segments, so it rolls constantly) through
appends, reads, rolls, truncations, clean and unclean reopens, retention and compaction, and
compares it after every step with a plain in-memory model."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from storage import LogConfig, PartitionLog, RecordIn, iter_batches

KEYS = st.sampled_from([b"a", b"b", b"c", None])
VALUES = st.one_of(st.none(), st.binary(min_size=0, max_size=40))
RECORDS = st.lists(st.tuples(KEYS, VALUES), min_size=1, max_size=6)
NOW_MS = int(time.time() * 1000)
CFG = LogConfig(
    segment_bytes=400,
    index_interval_bytes=100,
    retention_ms=-1,
    cleanup_policy="compact,delete",
    min_cleanable_dirty_ratio=0.0,
    delete_retention_ms=10 * 365 * 86_400_000,  # tombstones stay: the model keeps them too
)

Row = tuple[int, bytes | None, bytes | None]


class PartitionLogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="tidelog-stateful-"))
        self.path = self.tmp / "t-0"
        self.rows: list[Row] = []  # what the log must hold, in offset order
        self.batches: list[tuple[int, int]] = []  # (base, last) of the model's batches
        self.log_start = 0
        self.log_end = 0
        self.log: PartitionLog

    @initialize()
    def open_log(self) -> None:
        self.log = PartitionLog.open(self.path, CFG)

    def teardown(self) -> None:
        if hasattr(self, "log") and not self.log.closed:
            self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------------------------ rules

    @rule(records=RECORDS)
    def append(self, records: list[tuple[bytes | None, bytes | None]]) -> None:
        result = self.log.append_records([RecordIn(value=v, key=k, timestamp=NOW_MS) for k, v in records])
        assert result.base_offset == self.log_end
        assert result.last_offset == self.log_end + len(records) - 1
        for i, (k, v) in enumerate(records):
            self.rows.append((self.log_end + i, k, v))
        self.batches.append((result.base_offset, result.last_offset))
        self.log_end = result.last_offset + 1
        self.log.update_high_watermark(self.log_end)

    @rule(data=st.data())
    def read(self, data: st.DataObject) -> None:
        offset = data.draw(st.integers(self.log_start, self.log_end), label="offset")
        max_records = data.draw(st.integers(1, 50), label="max_records")
        got = self.log.read_records(
            offset, max_records=max_records, max_bytes=data.draw(st.integers(1, 3000))
        )
        want = [row for row in self.rows if row[0] >= offset]
        assert [(r.offset, r.key, r.value) for r in got] == want[: len(got)]
        if want:
            assert got, "at least one batch must be readable"

    @rule()
    def roll(self) -> None:
        self.log.roll()

    @precondition(lambda self: self.log_end > self.log_start)
    @rule(data=st.data())
    def truncate(self, data: st.DataObject) -> None:
        offset = data.draw(st.integers(self.log_start, self.log_end - 1), label="truncate_to")
        bases = self.log.segment_base_offsets()
        self.log.truncate_to(offset)
        if offset <= self.log_start:
            self.rows, self.batches, self.log_start, self.log_end = [], [], offset, offset
        else:
            # a batch straddling ``offset`` goes entirely; the log then ends after the last batch
            # kept in the segment holding ``offset``, or at that segment's base when none is left
            seg_base = max(b for b in bases if b <= offset)
            self.batches = [(b, last) for b, last in self.batches if last < offset]
            in_segment = [last for b, last in self.batches if b >= seg_base]
            self.log_end = in_segment[-1] + 1 if in_segment else seg_base
            self.rows = [row for row in self.rows if row[0] < self.log_end]
        assert self.log.log_end_offset == self.log_end

    @rule(clean=st.booleans())
    def reopen(self, clean: bool) -> None:
        if clean:
            self.log.close()
        else:
            self.log.flush()
            self.log.abandon()
        self.log = PartitionLog.open(self.path, CFG)
        assert self.log.recovered_cleanly == clean
        self.log.update_high_watermark(self.log.log_end_offset)

    @rule(limit=st.integers(0, 3000))
    def retention(self, limit: int) -> None:
        self.log.update_config(CFG.replace(retention_bytes=limit))
        active_base = self.log.segment_base_offsets()[-1]
        deleted = self.log.enforce_retention()
        self.log.update_config(CFG)
        new_start = self.log.log_start_offset
        assert new_start >= self.log_start
        assert (new_start > self.log_start) == (deleted > 0) or new_start == self.log_start
        assert new_start <= active_base
        self.log_start = new_start
        self.rows = [row for row in self.rows if row[0] >= new_start]
        self.batches = [(b, last) for b, last in self.batches if last >= new_start]

    @rule()
    def compact(self) -> None:
        active_base = self.log.segment_base_offsets()[-1]
        before = list(self.rows)
        self.log.compact(NOW_MS)
        self.log.update_high_watermark(self.log.log_end_offset)
        after = self._observed()
        last_of_key = {k: o for o, k, _v in before if k is not None}
        by_offset = {row[0]: row for row in before}
        for row in after:
            assert by_offset.get(row[0]) == row, "compaction changed or invented a record"
        kept = {row[0] for row in after}
        for o, k, _v in before:
            if k is None or o >= active_base or last_of_key[k] == o:
                assert o in kept, f"compaction dropped record {o} it had to keep"
        self.rows = after
        data = self.log.read(self.log_start, 1 << 30).data if self.log_end > self.log_start else b""
        self.batches = self._all_batches() if data else []

    # ------------------------------------------------------------------------------ checks

    def _observed(self) -> list[Row]:
        if self.log.log_end_offset == self.log.log_start_offset:
            return []
        got = self.log.read_records(self.log.log_start_offset, max_records=10**6, max_bytes=1 << 30)
        return [(r.offset, r.key, r.value) for r in got]

    def _all_batches(self) -> list[tuple[int, int]]:
        out = []
        offset = self.log.log_start_offset
        while offset < self.log.log_end_offset:
            data = self.log.read(offset, 1 << 30).data
            if not data:
                break
            for _p, h in iter_batches(data):
                out.append((h.base_offset, h.last_offset))
            offset = out[-1][1] + 1
        return out

    @invariant()
    def offsets_match(self) -> None:
        if not hasattr(self, "log"):
            return
        assert self.log.log_start_offset == self.log_start
        assert self.log.log_end_offset == self.log_end
        assert self.log.high_watermark == self.log_end

    @invariant()
    def contents_match(self) -> None:
        if not hasattr(self, "log"):
            return
        assert self._observed() == self.rows


PartitionLogMachine.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestPartitionLog = PartitionLogMachine.TestCase
