"""Fetch results: raw batches read from a partition log, decoded and trimmed to what was asked, or
kept as they are for a binary fetch (``application/vnd.tidelog.batch``)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from storage import Record, TimestampType, decode_batch, iter_batches

__all__ = ["BatchFetchResult", "FetchResult", "batches_end_offset", "decode_fetched"]

# base_offset (0), batch_length (8) and, 15 bytes on, last_offset_delta (23) of a batch header
_BASE_LENGTH = struct.Struct(">qi")
_LAST_OFFSET_DELTA = struct.Struct(">i")
_LOG_OVERHEAD = 12


@dataclass(frozen=True, slots=True)
class BatchFetchResult:
    """A binary fetch: whole stored batches from the one holding ``offset``, and where to continue."""

    data: bytes
    offset: int
    next_offset: int
    high_watermark: int
    log_start_offset: int


def batches_end_offset(data: bytes) -> int:
    """The offset after the last whole batch of ``data`` (whole batches, as ``PartitionLog.read`` gives).

    Only the 12-byte prefixes and the last offset deltas are read: the batches were checked when
    they were appended.
    """
    unpack = _BASE_LENGTH.unpack_from
    end = -1
    pos = 0
    n = len(data)
    while pos + 27 <= n:
        base, length = unpack(data, pos)
        end = base + _LAST_OFFSET_DELTA.unpack_from(data, pos + 23)[0] + 1
        pos += length + _LOG_OVERHEAD
    return end


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What a fetch returns: records in ``[offset, high_watermark)``, and where to continue.

    ``timestamp_types[i]`` is the timestamp type of ``records[i]``'s batch (CreateTime, or
    LogAppendTime on topics with ``message.timestamp.type=LogAppendTime``). ``bytes_read`` is the
    size of the record batches the records came from.
    """

    records: list[Record]
    next_offset: int
    high_watermark: int
    log_start_offset: int
    timestamp_types: list[TimestampType] = field(default_factory=list)
    bytes_read: int = 0


def decode_fetched(
    data: bytes, *, offset: int, high_watermark: int, max_records: int
) -> tuple[list[Record], list[TimestampType], int]:
    """Decode whole batches read from ``offset``: records in [offset, HW), at most ``max_records``.

    Returns the records, their timestamp types and the next offset to fetch. The next offset
    skips control batches and offsets removed by compaction at the end of a batch, so a consumer
    never asks again for a range that holds nothing.
    """
    records: list[Record] = []
    types: list[TimestampType] = []
    next_offset = offset
    for pos, header in iter_batches(data):
        if header.base_offset >= high_watermark or len(records) >= max_records:
            break
        if header.is_control:
            next_offset = max(next_offset, min(header.next_offset, high_watermark))
            continue
        timestamp_type = header.timestamp_type
        room = max_records - len(records)
        batch = decode_batch(data, pos)
        if header.base_offset < offset or header.last_offset >= high_watermark:
            batch = [r for r in batch if offset <= r.offset < high_watermark]
        if len(batch) > room:
            batch = batch[:room]
            records.extend(batch)
            types.extend([timestamp_type] * room)
            next_offset = batch[-1].offset + 1
            break
        records.extend(batch)
        types.extend([timestamp_type] * len(batch))
        next_offset = max(next_offset, min(header.next_offset, high_watermark))
    return records, types, next_offset
