"""Which closed segments retention deletes (Kafka's retention.ms and retention.bytes).

Only a prefix of the log goes, oldest first, and never the active segment:

* ``retention.ms``: a segment whose largest record timestamp is more than ``retention.ms`` before
  now (a segment with no timestamps at all counts as expired);
* ``retention.bytes``: while the log stays at or above the limit without the oldest segment,
  that segment goes (Kafka's ``size - retention.bytes >= segment.size``).
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.config import LogConfig
from storage.segment import LogSegment

__all__ = ["segments_to_delete"]


def segments_to_delete(
    segments: Sequence[LogSegment], config: LogConfig, now_ms: int, total_size: int
) -> int:
    """How many segments, from the oldest, are past retention."""
    closed = segments[:-1]
    count = 0
    if config.retention_ms >= 0:
        for seg in closed:
            if now_ms - seg.closed_max_timestamp() > config.retention_ms:
                count += 1
            else:
                break
    if config.retention_bytes >= 0:
        excess = total_size - sum(s.size for s in closed[:count]) - config.retention_bytes
        for seg in closed[count:]:
            if excess - seg.size >= 0:
                excess -= seg.size
                count += 1
            else:
                break
    return count
