"""The producer's sans-I/O core (tidelog._core.producer): batching, one batch in flight per
partition, retry backoff, sequences, splitting, and what each failure becomes, with no broker."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tidelog import (
    NotLeaderError,
    OutOfOrderSequenceError,
    OverloadedError,
    RecordTooLargeError,
    TopicPartition,
    UnknownProducerError,
)
from tidelog._core.producer import Accumulator, Batch, OnError, ProducerCore
from tidelog._records import OutgoingRecord

P0, P1 = TopicPartition("t", 0), TopicPartition("t", 1)


def _record(size: int = 10) -> OutgoingRecord:
    return OutgoingRecord(body={"value": "x"}, headers=[], size=size)


def _core(**changes: object) -> ProducerCore:
    options: dict[str, object] = dict(
        acks="all", linger_ms=5, batch_size=100, max_batch_records=3, idempotent=None, key_format="string",
        value_format="json", delivery_timeout_ms=1000, max_in_flight=5, max_pending_records=100,
        metadata_max_age_ms=1000, retry_backoff_ms=100,
    )  # fmt: skip
    options.update(changes)
    return ProducerCore(**options)  # type: ignore[arg-type]


def _batch(n: int) -> Batch[int]:
    return Batch(tp=P0, created=0.0, records=[_record()] * n, futures=list(range(n)), callbacks=[None] * n)


def _append(acc: Accumulator[int], tp: TopicPartition, n: int, now: float = 0.0, size: int = 10) -> None:
    for i in range(n):
        acc.append(tp, _record(size), lambda _b, i=i: i, None, now)  # type: ignore[misc]


def test_batches_close_on_count_size_or_linger_and_one_per_partition_is_in_flight() -> None:
    acc: Accumulator[int] = Accumulator(batch_size=100, max_batch_records=3, linger_s=0.005)
    _append(acc, P0, 7)  # 3 + 3 + 1
    _append(acc, P1, 1)
    assert [len(q) for q in acc.queues.values()] == [3, 1]
    first = acc.take_ready(now=0.0, flushing=False, max_in_flight=5)
    assert [(b.tp, len(b.records)) for b in first] == [(P0, 3)]  # P1's batch is still lingering
    assert acc.take_ready(now=0.0, flushing=False, max_in_flight=5) == []  # P0 has one in flight
    later = acc.take_ready(now=0.01, flushing=False, max_in_flight=5)
    assert [(b.tp, len(b.records)) for b in later] == [(P1, 1)]
    acc.finish(first[0])
    assert [len(b.records) for b in acc.take_ready(0.01, False, 5)] == [3]
    assert acc.pending_records == 8 - 3 and not acc.idle


def test_a_retried_batch_waits_for_its_backoff_and_keeps_its_records() -> None:
    acc: Accumulator[int] = Accumulator(batch_size=100, max_batch_records=3, linger_s=0.0)
    _append(acc, P0, 2)
    (batch,) = acc.take_ready(0.0, False, 5)
    acc.retry_later(batch, at=1.0)
    _append(acc, P0, 1, now=0.5)  # a sealed batch takes no new record
    assert acc.take_ready(0.5, True, 5) == [] and acc.next_wakeup() == 1.0
    (again,) = acc.take_ready(1.0, False, 5)
    assert again is batch and len(again.records) == 2


@given(st.lists(st.sampled_from([P0, P1]), min_size=1, max_size=60), st.integers(1, 4))
@settings(max_examples=100, deadline=None)
def test_every_record_leaves_once_and_in_order_per_partition(
    order: list[TopicPartition], slots: int
) -> None:
    acc: Accumulator[int] = Accumulator(batch_size=1000, max_batch_records=4, linger_s=0.0)
    for i, tp in enumerate(order):
        acc.append(tp, _record(), lambda _b, i=i: i, None, 0.0)  # type: ignore[misc]
    sent: dict[TopicPartition, list[int]] = {P0: [], P1: []}
    while not acc.idle:
        ready = acc.take_ready(0.0, True, slots)
        assert ready and len(ready) <= slots and len({b.tp for b in ready}) == len(ready)
        for batch in ready:
            sent[batch.tp] += batch.futures
            acc.finish(batch)
    for tp in (P0, P1):
        assert sent[tp] == [i for i, p in enumerate(order) if p == tp]


def test_sequences_are_fixed_once_kept_on_retry_wrap_and_rewind_on_split() -> None:
    core = _core()
    core.reset_producer(7, 0)
    batch = _batch(4)
    core.assign_sequence(batch)
    core.assign_sequence(batch)  # a retry: unchanged
    assert (batch.base_sequence, batch.producer_id, core.next_sequence[P0]) == (0, 7, 4)
    halves = core.split(batch)
    assert [len(h.records) for h in halves] == [2, 2] and core.next_sequence[P0] == 0
    core.next_sequence[P0] = (1 << 31) - 1
    core.assign_sequence(halves[0])
    assert halves[0].base_sequence == (1 << 31) - 1 and core.next_sequence[P0] == 1


def test_each_failure_becomes_what_kafka_does_with_it() -> None:
    core = _core()
    batch = _batch(2)
    assert core.decide(batch, UnknownProducerError("x", status=404), 0.1)[0] is OnError.REINIT
    assert core.decide(batch, RecordTooLargeError("x", status=413), 0.1)[0] is OnError.SPLIT
    assert core.decide(batch, OutOfOrderSequenceError("x", status=409), 0.1)[0] is OnError.FAIL
    assert core.decide(batch, NotLeaderError("x", status=503), 0.1) == (OnError.RETRY, 0.1 + 0.1)
    overloaded = OverloadedError("x", status=503, retry_after=2.0)
    assert core.decide(batch, overloaded, 0.1) == (OnError.RETRY, 2.1)
    assert core.decide(batch, NotLeaderError("x", status=503), 1.0)[0] is OnError.FAIL  # delivery timeout
    single = _batch(1)
    assert core.decide(single, RecordTooLargeError("x", status=413), 0.1)[0] is OnError.FAIL


def test_idempotence_needs_acks_all() -> None:
    assert _core().idempotent and not _core(acks=1).idempotent
    try:
        _core(acks=1, idempotent=True)
    except ValueError as error:
        assert "acks='all'" in str(error)
    else:
        raise AssertionError("an idempotent producer with acks=1 was accepted")
