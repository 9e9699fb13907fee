"""Idempotent producers against a model of Kafka's rules: next batches, retries of recent and old
batches, sequence gaps, fenced and bumped epochs, with clean and unclean reopens in between (the
state must survive both: snapshot, or rebuild from the log)."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from storage import LogConfig, PartitionLog, RecordIn
from storage.errors import OutOfOrderSequenceError, ProducerFencedError, UnknownProducerIdError

CFG = LogConfig(segment_bytes=600)  # rolls often: snapshots at rolls, replay of the tail


@dataclass
class ModelProducer:
    epoch: int = 0
    next_seq: int = 0
    batches: list[tuple[int, int, int, int]] = field(default_factory=list)  # first, last seq, base, last


class IdempotentProducerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="tidelog-producers-"))
        self.path = self.tmp / "t-0"
        self.producers: dict[int, ModelProducer] = {}
        self.log_end = 0
        self.log: PartitionLog

    @initialize()
    def open_log(self) -> None:
        self.log = PartitionLog.open(self.path, CFG)

    def teardown(self) -> None:
        if hasattr(self, "log") and not self.log.closed:
            self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _append(self, pid: int, epoch: int, seq: int, count: int) -> object:
        try:
            return self.log.append_records(
                [RecordIn(value=b"x" * 20) for _ in range(count)],
                producer_id=pid,
                producer_epoch=epoch,
                base_sequence=seq,
            )
        except (OutOfOrderSequenceError, ProducerFencedError, UnknownProducerIdError) as exc:
            return type(exc)

    def _accept(self, pid: int, epoch: int, seq: int, count: int) -> None:
        result = self._append(pid, epoch, seq, count)
        assert not isinstance(result, type), result
        assert result.base_offset == self.log_end and not result.duplicate  # type: ignore[attr-defined]
        model = self.producers.setdefault(pid, ModelProducer(epoch=epoch))
        if epoch != model.epoch:
            model.epoch, model.batches = epoch, []
        model.batches = [*model.batches, (seq, seq + count - 1, self.log_end, self.log_end + count - 1)][-5:]
        model.next_seq = seq + count
        self.log_end += count

    @rule(pid=st.integers(1, 3), count=st.integers(1, 4))
    def next_batch(self, pid: int, count: int) -> None:
        model = self.producers.get(pid)
        self._accept(pid, model.epoch if model else 0, model.next_seq if model else 0, count)

    @rule(pid=st.integers(1, 3), back=st.integers(0, 7))
    def retry(self, pid: int, back: int) -> None:
        model = self.producers.get(pid)
        if model is None or not model.batches:
            return
        if back < len(model.batches):
            first, last, base, last_offset = model.batches[-1 - back]
            result = self._append(pid, model.epoch, first, last - first + 1)
            assert not isinstance(result, type), result
            assert result.duplicate  # type: ignore[attr-defined]
            assert (result.base_offset, result.last_offset) == (base, last_offset)  # type: ignore[attr-defined]
        else:  # older than the five cached batches: Kafka answers out of order
            first = max(0, model.batches[0][0] - 3)
            if first < model.batches[0][0]:
                assert self._append(pid, model.epoch, first, 1) is OutOfOrderSequenceError

    @rule(pid=st.integers(1, 3), gap=st.integers(1, 5))
    def sequence_gap(self, pid: int, gap: int) -> None:
        model = self.producers.get(pid)
        if model is None:
            assert self._append(pid, 0, gap, 1) is UnknownProducerIdError
        else:
            assert self._append(pid, model.epoch, model.next_seq + gap, 1) is OutOfOrderSequenceError
        assert self.log.log_end_offset == self.log_end

    @rule(pid=st.integers(1, 3))
    def fenced(self, pid: int) -> None:
        model = self.producers.get(pid)
        if model is not None and model.epoch > 0:
            assert self._append(pid, model.epoch - 1, model.next_seq, 1) is ProducerFencedError

    @rule(pid=st.integers(1, 3), start_at_zero=st.booleans())
    def bump_epoch(self, pid: int, start_at_zero: bool) -> None:
        model = self.producers.get(pid)
        if model is None:
            return
        if start_at_zero:
            self._accept(pid, model.epoch + 1, 0, 1)
        else:
            assert self._append(pid, model.epoch + 1, 1, 1) is OutOfOrderSequenceError

    @rule(clean=st.booleans())
    def reopen(self, clean: bool) -> None:
        if clean:
            self.log.close()
        else:
            self.log.flush()
            self.log.abandon()
        self.log = PartitionLog.open(self.path, CFG)
        assert self.log.log_end_offset == self.log_end


IdempotentProducerMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestIdempotentProducers = IdempotentProducerMachine.TestCase
