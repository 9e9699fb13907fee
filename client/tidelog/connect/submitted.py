"""Which source offsets may be stored: Kafka's ``SubmittedRecords`` (KAFKA-12226), pure code.

Records are submitted in the order a source task returned them; each is acknowledged later (its
produce succeeded, or its error was tolerated and, where configured, its dead-letter record was
acknowledged). Per source partition, only the offset of the last record of the contiguous
acknowledged prefix may be stored: a later acknowledged record never moves the offset past an
earlier unacknowledged one, so a crash re-reads from the first record not known to be safe.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from typing import Any

__all__ = ["SubmittedRecord", "SubmittedRecords", "partition_key"]


def partition_key(partition: Mapping[str, Any]) -> str:
    """The canonical JSON of a source partition (the catalog's key for it)."""
    return json.dumps(partition, sort_keys=True, separators=(",", ":"))


class SubmittedRecord:
    __slots__ = ("acked", "offset", "partition")

    def __init__(self, partition: Mapping[str, Any], offset: Mapping[str, Any]) -> None:
        self.partition = dict(partition)
        self.offset = dict(offset)
        self.acked = False

    def ack(self) -> None:
        self.acked = True


class SubmittedRecords:
    def __init__(self) -> None:
        self._pending: dict[str, deque[SubmittedRecord]] = {}

    def submit(self, partition: Mapping[str, Any], offset: Mapping[str, Any]) -> SubmittedRecord:
        record = SubmittedRecord(partition, offset)
        self._pending.setdefault(partition_key(partition), deque()).append(record)
        return record

    def committable(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        """Gives, per source partition whose acknowledged prefix grew, (partition, offset) to store;
        the prefix is removed from the pending records."""
        out: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for key, queue in list(self._pending.items()):
            last: SubmittedRecord | None = None
            while queue and queue[0].acked:
                last = queue.popleft()
            if last is not None:
                out[key] = (last.partition, last.offset)
            if not queue:
                del self._pending[key]
        return out

    @property
    def outstanding(self) -> int:
        """Records submitted and not yet acknowledged."""
        return sum(sum(1 for r in q if not r.acked) for q in self._pending.values())
