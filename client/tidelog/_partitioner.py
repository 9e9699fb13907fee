"""Kafka's default partitioning, so a key lands on the partition Kafka's Java client would pick.

Keyed records: ``toPositive(murmur2(key_bytes)) % num_partitions`` (``Utils.murmur2`` and
``BuiltInPartitioner.partitionForKey``). Records without a key use a sticky partition per topic that
moves on only when a batch for it has been sent (KIP-480), so keyless records form full batches.
"""

from __future__ import annotations

import random
import threading

__all__ = ["StickyPartitioner", "murmur2", "partition_for_key"]

_SEED = 0x9747B28C
_M = 0x5BD1E995
_R = 24
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Return Kafka's 32-bit murmur2 hash of ``data`` as a signed int, exactly as ``Utils.murmur2``."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    full = length & ~3
    for i in range(0, full, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * _M) & _MASK
        k ^= k >> _R
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
    # The tail falls through in Java's switch: 3 bytes take all three steps, 1 byte only the last.
    tail = length & 3
    if tail == 3:
        h ^= data[full + 2] << 16
    if tail >= 2:
        h ^= data[full + 1] << 8
    if tail >= 1:
        h ^= data[full]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for_key(key: bytes, num_partitions: int) -> int:
    """Return the partition of ``key`` among ``num_partitions`` (``toPositive(murmur2) % n``)."""
    if num_partitions < 1:
        raise ValueError("num_partitions must be at least 1")
    return (murmur2(key) & 0x7FFFFFFF) % num_partitions


class StickyPartitioner:
    """Chooses partitions for keyless records: one per topic until a batch of it is sent (KIP-480)."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._sticky: dict[str, int] = {}
        self._lock = threading.Lock()

    def partition(self, topic: str, num_partitions: int) -> int:
        """Return the current sticky partition of ``topic``, choosing one if there is none yet."""
        with self._lock:
            current = self._sticky.get(topic)
            if current is None or current >= num_partitions:
                current = self._rng.randrange(num_partitions)
                self._sticky[topic] = current
            return current

    def on_new_batch(self, topic: str, num_partitions: int, sent_partition: int) -> None:
        """Move ``topic`` to another partition after a batch of its sticky one was sent."""
        with self._lock:
            if self._sticky.get(topic) != sent_partition:
                return
            if num_partitions <= 1:
                self._sticky[topic] = 0
                return
            choice = self._rng.randrange(num_partitions - 1)
            self._sticky[topic] = choice if choice < sent_partition else choice + 1
