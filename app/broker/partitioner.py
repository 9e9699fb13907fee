"""Which partition a produced record goes to: Kafka's Java client's choice, reproduced.

Keyed records: ``toPositive(murmur2(key_bytes)) % num_partitions``, exactly as Kafka's
``BuiltInPartitioner.partitionForKey`` (and the old ``DefaultPartitioner``) computes it, so a
tidelog topic and a Kafka topic with the same partition count put the same key in the same
partition. The key bytes are the bytes the record is stored with (the UTF-8 of a ``string`` key,
the compact JSON of a ``json`` key, the decoded bytes of a ``binary`` key).

Null keys: a *sticky* partition per topic (KIP-480). Every null-key record of one produce request
(a "batch" in the Java client's sense) goes to the same partition; when the next request comes,
the topic's sticky partition moves to another randomly chosen one. This keeps batches large
(one append per request instead of one per partition) while spreading load over time.
"""

from __future__ import annotations

import random
import struct

__all__ = ["StickyPartitioner", "murmur2", "partition_for_key", "to_positive"]

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS: dict[int, struct.Struct] = {}


def _to_int32(value: int) -> int:
    value &= _MASK
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2(byte[])``: the 32-bit MurmurHash2 of ``data`` as a signed Java int."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    n_words = length // 4
    if n_words:
        words = _WORDS.get(n_words)
        if words is None:
            words = _WORDS.setdefault(n_words, struct.Struct(f"<{n_words}I"))
        for k in words.unpack_from(data):
            k = (k * _M) & _MASK
            k ^= k >> 24
            k = (k * _M) & _MASK
            h = ((h * _M) & _MASK) ^ k
    tail = length & ~3
    remaining = length & 3
    # Java's switch falls through: 3 → 2 → 1, multiplying once at the end.
    if remaining == 3:
        h ^= data[tail + 2] << 16
    if remaining >= 2:
        h ^= data[tail + 1] << 8
    if remaining >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return _to_int32(h)


def to_positive(number: int) -> int:
    """Kafka's ``Utils.toPositive``: ``number & 0x7fffffff`` (not ``abs``, which overflows)."""
    return number & 0x7FFFFFFF


def partition_for_key(key: bytes, num_partitions: int) -> int:
    """The partition Kafka's Java producer picks for ``key`` in a topic of ``num_partitions``."""
    return to_positive(murmur2(key)) % num_partitions


class StickyPartitioner:
    """The null-key partition of each topic: sticky for a batch, then moved (KIP-480).

    Used from the event loop only (no lock needed). ``partition`` gives the current sticky
    partition; ``batch_sent`` moves it to a different partition chosen at random.
    """

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._sticky: dict[str, int] = {}

    def partition(self, topic: str, num_partitions: int) -> int:
        """The topic's current sticky partition (chosen at random the first time)."""
        current = self._sticky.get(topic)
        if current is None or current >= num_partitions:
            current = self._rng.randrange(num_partitions)
            self._sticky[topic] = current
        return current

    def batch_sent(self, topic: str, num_partitions: int) -> None:
        """Move the topic's sticky partition to another one, as the Java client does on a new batch."""
        previous = self._sticky.get(topic)
        if num_partitions <= 1:
            new = 0
        elif previous is None or previous >= num_partitions:
            new = self._rng.randrange(num_partitions)
        else:
            # Draw among the other partitions so a move always lands somewhere else.
            choice = self._rng.randrange(num_partitions - 1)
            new = choice if choice < previous else choice + 1
        self._sticky[topic] = new

    def forget(self, topic: str) -> None:
        """Drop a deleted topic's state."""
        self._sticky.pop(topic, None)
