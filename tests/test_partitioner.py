"""Kafka's partitioner, reproduced: murmur2 test vectors from Kafka's own UtilsTest, and sticky null keys."""

from __future__ import annotations

import random

import pytest

from app.broker.partitioner import StickyPartitioner, murmur2, partition_for_key, to_positive

# org.apache.kafka.common.utils.UtilsTest#testMurmur2
KAFKA_MURMUR2_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (bytes([ord("a"), ord("b"), ord("c")]), 479470107),
]


@pytest.mark.parametrize(("data", "expected"), KAFKA_MURMUR2_VECTORS)
def test_murmur2_matches_kafka_utils_test(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


def test_murmur2_of_every_tail_length_is_a_signed_int32() -> None:
    # Lengths 0..9 exercise the word loop and each fall-through branch of the tail switch.
    values = [murmur2(bytes(range(n))) for n in range(10)]
    assert all(-(2**31) <= v < 2**31 for v in values)
    assert len(set(values)) == len(values)


def test_to_positive_masks_the_sign_bit_like_kafka() -> None:
    assert to_positive(-973932308) == -973932308 & 0x7FFFFFFF
    assert to_positive(-(2**31)) == 0  # Math.abs would overflow here; Kafka masks instead
    assert to_positive(5) == 5


@pytest.mark.parametrize("partitions", [1, 3, 7, 12, 100])
def test_partition_for_key_is_to_positive_murmur2_mod_n(partitions: int) -> None:
    for key, hashed in KAFKA_MURMUR2_VECTORS:
        assert partition_for_key(key, partitions) == (hashed & 0x7FFFFFFF) % partitions
    # "21" → -973932308 → 1173551340 → partition 1173551340 % 3 == 0 (worked by hand).
    assert partition_for_key(b"21", 3) == 1173551340 % 3 == 0


def test_sticky_partition_holds_until_a_batch_is_sent_then_moves() -> None:
    sticky = StickyPartitioner(random.Random(7))
    first = sticky.partition("t", 5)
    assert all(sticky.partition("t", 5) == first for _ in range(20))
    seen = {first}
    previous = first
    for _ in range(50):
        sticky.batch_sent("t", 5)
        current = sticky.partition("t", 5)
        assert current != previous  # a new batch always goes elsewhere
        assert 0 <= current < 5
        seen.add(current)
        previous = current
    assert seen == set(range(5))


def test_sticky_partition_is_per_topic_and_handles_one_partition() -> None:
    sticky = StickyPartitioner(random.Random(1))
    assert sticky.partition("single", 1) == 0
    sticky.batch_sent("single", 1)
    assert sticky.partition("single", 1) == 0
    a = sticky.partition("a", 1000)
    b = sticky.partition("b", 1000)
    sticky.batch_sent("a", 1000)
    assert sticky.partition("b", 1000) == b
    assert sticky.partition("a", 1000) != a


def test_sticky_partition_rechosen_when_partition_count_shrinks_below_it() -> None:
    sticky = StickyPartitioner(random.Random(3))
    sticky._sticky["t"] = 9
    assert 0 <= sticky.partition("t", 4) < 4
