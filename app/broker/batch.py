"""Binary produce (``Content-Type: application/vnd.tidelog.batch``): record batches v2 checked whole.

The body is one or more record batches v2 laid end to end (docs/records.md; the layout is
``tidelog._codec.batch``'s), each what the log will store. ``check_batches`` walks them and checks
each one before anything is appended, in one pass over its records that builds no record objects
(``storage.records.scan_batch``, compiled with the decoder): the frame (61 bytes at least, a length
of at least 49 that fits the body, magic 2), the CRC-32C, the counts (at least one record, dense
offset deltas 0..n-1), a bounded decompressed size, every record's framing, timestamps within the
topic's ``message.timestamp.before/after.max.ms`` (KIP-937), keys on compacted topics and valid JSON
where a record's attribute bits claim the JSON format (fetch and SSE splice such values into their
answers as they are), nested at most ``max_json_depth`` levels and with numbers every reader can
hold, as a JSON produce requires (``app/broker/json_limits.py``). The first failure refuses the
whole request with an error naming the batch's index and position, so nothing of it is appended.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import msgspec

from app.broker.errors import (
    BatchDecompressedTooLargeError,
    CorruptBatchError,
    InvalidBatchRecordsError,
    RecordTooLargeError,
)
from app.broker.json_limits import (
    DEFAULT_MAX_JSON_DEPTH,
    NumberOutOfRangeError,
    ValueTooDeepError,
    check_json_text,
)
from app.errors_base import InvalidParameterError
from storage import TimestampType
from storage.config import LogConfig
from storage.errors import InvalidRecordsError, RecordsTooLargeError, StorageError
from storage.records import BATCH_OVERHEAD, BatchHeader, scan_batch

__all__ = ["BATCH_MEDIA_TYPE", "CheckedBatch", "check_batches", "json_ok"]

BATCH_MEDIA_TYPE = "application/vnd.tidelog.batch"

_LENGTH_OFFSET = 8
_LOG_OVERHEAD = 12

_decode_raw = msgspec.json.Decoder(msgspec.Raw).decode


def json_ok(data: bytes, start: int, stop: int, max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> bool:
    """True when ``data[start:stop]`` is one JSON value (the scan has checked its UTF-8 already) that
    every reader can read: nested at most ``max_depth`` levels, with numbers in range
    (``app/broker/json_limits.py``, the same rules as a JSON produce).

    msgspec checks the syntax without building the value, and refuses lone surrogate escapes.
    """
    try:
        _decode_raw(memoryview(data)[start:stop])
        check_json_text(data[start:stop], "a JSON key or value", max_depth)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueTooDeepError, NumberOutOfRangeError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class CheckedBatch:
    """A batch of the body that passed every check: where it is and its header."""

    position: int
    size: int
    header: BatchHeader


def check_batches(
    body: bytes,
    config: LogConfig,
    *,
    now_ms: int,
    max_records: int,
    max_decompressed: int,
    max_depth: int = DEFAULT_MAX_JSON_DEPTH,
) -> list[CheckedBatch]:
    """Every batch of a binary produce body, checked (module docstring); raises at the first failure."""
    if not body:
        raise CorruptBatchError("the request body holds no record batch", batch=0, position=0)
    compacted = "compact" in config.cleanup_policy
    if config.message_timestamp_type is TimestampType.LOG_APPEND_TIME:
        earliest, latest = -(2**63), 2**63 - 1  # the broker's clock replaces the timestamps
    else:
        earliest = now_ms - config.message_timestamp_before_max_ms
        latest = now_ms + config.message_timestamp_after_max_ms
    out: list[CheckedBatch] = []
    pos = 0
    records = 0
    end = len(body)
    while pos < end:
        index = len(out)
        if end - pos < BATCH_OVERHEAD:
            raise CorruptBatchError(
                f"batch {index} at position {pos} is truncated: {end - pos} bytes, a batch header has "
                f"{BATCH_OVERHEAD}",
                batch=index,
                position=pos,
            )
        size = int.from_bytes(body[pos + _LENGTH_OFFSET : pos + _LENGTH_OFFSET + 4], "big", signed=True)
        size += _LOG_OVERHEAD
        if size > config.max_message_bytes and pos + size <= end:
            raise RecordTooLargeError(
                f"batch {index} at position {pos} is {size} bytes, larger than "
                f"max.message.bytes={config.max_message_bytes}",
                limit=config.max_message_bytes,
                batch=index,
                position=pos,
            )
        try:
            header = scan_batch(
                body,
                pos,
                earliest_ts=earliest,
                latest_ts=latest,
                need_key=compacted,
                json_ok=functools.partial(json_ok, max_depth=max_depth),
                max_decompressed=max_decompressed,
            )
        except RecordsTooLargeError as exc:
            raise BatchDecompressedTooLargeError(
                f"batch {index} at position {pos}: {exc}", batch=index, position=pos, limit=max_decompressed
            ) from None
        except InvalidRecordsError as exc:
            where = f"batch {index} at position {pos}"
            raise InvalidBatchRecordsError(f"{where}: {exc}", batch=index, position=pos) from None
        except StorageError as exc:  # a bad frame or CRC; snappy, which this broker does not read
            where = f"batch {index} at position {pos}"
            raise CorruptBatchError(f"{where}: {exc}", batch=index, position=pos) from None
        records += header.record_count
        if records > max_records:
            raise InvalidParameterError(
                f"more than {max_records} records in one request (max_records_per_request)"
            )
        out.append(CheckedBatch(pos, header.size, header))
        pos += header.size
    first = out[0].header
    for i, checked in enumerate(out[1:], start=1):
        header = checked.header
        previous = out[i - 1].header
        if (header.producer_id, header.producer_epoch) != (first.producer_id, first.producer_epoch):
            raise CorruptBatchError(
                f"batch {i} names producer {header.producer_id} epoch {header.producer_epoch}, batch 0 "
                f"producer {first.producer_id} epoch {first.producer_epoch}: one producer per request",
                batch=i,
                position=checked.position,
            )
        if header.producer_id >= 0 and header.base_sequence != (
            (previous.base_sequence + previous.record_count) % (1 << 31)
        ):
            raise CorruptBatchError(
                f"batch {i} starts at sequence {header.base_sequence}, the previous batch ends at "
                f"{previous.base_sequence + previous.record_count - 1}: a request's batches are consecutive",
                batch=i,
                position=checked.position,
            )
    return out
