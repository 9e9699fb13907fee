"""The client's partitioner: Kafka's murmur2 vectors and the sticky partitioner (KIP-480)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidelog import murmur2, partition_for_key
from tidelog._partitioner import StickyPartitioner

# org.apache.kafka.common.utils.UtilsTest.testMurmur2 (Kafka's Java client).
KAFKA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("key", "expected"), KAFKA_VECTORS.items())
def test_murmur2_matches_kafka(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


def test_partition_is_to_positive_modulo() -> None:
    # toPositive(-973932308) = -973932308 & 0x7fffffff = 1173551340
    assert partition_for_key(b"21", 7) == 1173551340 % 7
    with pytest.raises(ValueError):
        partition_for_key(b"x", 0)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.integers(min_value=1, max_value=1000))
def test_partition_matches_the_brokers(key: bytes, partitions: int) -> None:
    # The broker has its own implementation (app/broker/partitioner.py); both must agree on every key.
    from app.broker.partitioner import partition_for_key as broker_partition

    assert partition_for_key(key, partitions) == broker_partition(key, partitions)


def test_sticky_partition_stays_until_a_batch_is_sent_then_moves() -> None:
    sticky = StickyPartitioner(random.Random(7))
    first = sticky.partition("t", 4)
    assert all(sticky.partition("t", 4) == first for _ in range(50))
    sticky.on_new_batch("t", 4, first)
    second = sticky.partition("t", 4)
    assert second != first
    # A batch of another partition does not move it.
    sticky.on_new_batch("t", 4, (second + 1) % 4)
    assert sticky.partition("t", 4) == second
    # One partition: nowhere else to go.
    assert sticky.partition("solo", 1) == 0
    sticky.on_new_batch("solo", 1, 0)
    assert sticky.partition("solo", 1) == 0
