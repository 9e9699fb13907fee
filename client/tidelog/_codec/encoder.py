"""Building record batches (``encode_batch``) and patching the fields a log stamps on append.

The layout, field by field, is in ``tidelog._codec.batch``; this module only writes it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

from tidelog._codec._varint import INT32_MAX, INT64_MAX, INT64_MIN, TABLE_SIZE, VARINT_BYTES, encode_varint
from tidelog._codec.batch import (
    BATCH_OVERHEAD,
    CONTROL_BIT,
    CRC_COVERED,
    CRC_PREFIX,
    INT32,
    INT64,
    KNOWN_CODECS,
    LEADER_EPOCH_OFFSET,
    LENGTH_OFFSET,
    LOG_OVERHEAD,
    MAGIC,
    MAGIC_OFFSET,
    TIMESTAMP_TYPE_BIT,
    TRANSACTIONAL_BIT,
    Buffer,
    Header,
    RecordIn,
    TimestampType,
    crc32c,
)
from tidelog._codec.compression import Compression, compress, unsupported_codec_error
from tidelog._codec.errors import CorruptRecordError, InvalidRecordError
from tidelog._codec.scanner import parse_header, validate_frame

__all__ = ["encode_batch", "with_base_offset", "with_log_append_time"]

_ATTRIBUTE_BYTES: Final = {a: bytes((a,)) for a in range(256)}
_NULL: Final = b"\x01"  # zig-zag varint of -1
_ZERO: Final = b"\x00"  # zig-zag varint of 0
_TWO_BYTE_LIMIT: Final = TABLE_SIZE >> 1  # non-negative values below this are in VARINT_BYTES


def _encode_headers(headers: Sequence[Header]) -> bytes:
    varint_bytes = VARINT_BYTES
    limit = _TWO_BYTE_LIMIT
    n = len(headers)
    parts = [varint_bytes[n << 1] if n < limit else encode_varint(n)]
    push = parts.append
    for hkey, hvalue in headers:
        try:
            kb = hkey.encode()
        except AttributeError:
            raise InvalidRecordError(f"a header key must be a str, not {type(hkey).__name__}") from None
        n = len(kb)
        push(varint_bytes[n << 1] if n < limit else encode_varint(n))
        push(kb)
        if hvalue is None:
            push(_NULL)
        else:
            n = len(hvalue)
            push(varint_bytes[n << 1] if n < limit else encode_varint(n))
            push(hvalue)
    return b"".join(parts)


def encode_batch(
    records: Sequence[RecordIn],
    *,
    base_offset: int = 0,
    now_ms: int,
    compression: Compression = Compression.NONE,
    timestamp_type: TimestampType = TimestampType.CREATE_TIME,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    partition_leader_epoch: int = -1,
    is_transactional: bool = False,
    is_control: bool = False,
    offset_deltas: Sequence[int] | None = None,
    last_offset_delta: int | None = None,
) -> bytes:
    """Return one record batch holding ``records``, with offsets from ``base_offset``.

    Records without a timestamp get ``now_ms``. With ``TimestampType.LOG_APPEND_TIME`` the batch's
    max timestamp is ``now_ms`` and readers see it as every record's timestamp.

    ``offset_deltas`` (strictly increasing, from 0 up) gives each record's offset relative to
    ``base_offset`` instead of 0, 1, 2, …; ``last_offset_delta`` keeps a batch's original offset range
    when its last records are gone. Compaction uses both to rewrite a batch with the offsets of its
    surviving records. With ``last_offset_delta`` given, ``records`` may be empty (an empty batch that
    only keeps an offset range and producer state alive, as Kafka's cleaner writes).

    Raises ``InvalidRecordError`` for values that do not fit the format and
    ``UnsupportedCompressionError`` for snappy.
    """
    count = len(records)
    if count == 0 and last_offset_delta is None:
        raise InvalidRecordError("a record batch needs at least one record")
    codec = int(compression)
    if codec not in KNOWN_CODECS or codec == Compression.SNAPPY:
        raise unsupported_codec_error(codec)
    if offset_deltas is not None:
        _check_offset_deltas(offset_deltas, count)
        deltas: Sequence[int] = offset_deltas
    else:
        deltas = range(count)
    if count:
        first_ts = records[0].timestamp
        base_ts = now_ms if first_ts is None else first_ts
    else:
        base_ts = now_ms
    if not INT64_MIN <= base_ts <= INT64_MAX:
        raise InvalidRecordError(f"timestamp {base_ts} does not fit in 64 bits")
    max_ts = min_ts = base_ts

    varint_bytes = VARINT_BYTES
    two_byte_limit = _TWO_BYTE_LIMIT
    table_size = TABLE_SIZE
    attribute_bytes = _ATTRIBUTE_BYTES
    null = _NULL
    zero = _ZERO
    join = b"".join
    out: list[bytes] = []
    push = out.append
    try:
        for rec, delta in zip(records, deltas, strict=True):
            ts = rec.timestamp
            if ts is None:
                ts = now_ms
            if ts == base_ts:
                tsb = zero
            else:
                if ts > max_ts:
                    max_ts = ts
                elif ts < min_ts:
                    min_ts = ts
                d = ts - base_ts
                z = (d << 1) ^ (d >> 63)
                tsb = varint_bytes[z] if 0 <= z < table_size else encode_varint(d)
            key = rec.key
            if key is None:
                kb = null
            else:
                n = len(key)
                kb = (varint_bytes[n << 1] if n < two_byte_limit else encode_varint(n)) + key
            value = rec.value
            if value is None:
                vb = null
            else:
                n = len(value)
                vb = (varint_bytes[n << 1] if n < two_byte_limit else encode_varint(n)) + value
            headers = rec.headers
            body = join(
                (
                    attribute_bytes[rec.attributes],
                    tsb,
                    varint_bytes[delta << 1] if delta < two_byte_limit else encode_varint(delta),
                    kb,
                    vb,
                    _encode_headers(headers) if headers else zero,
                )
            )
            n = len(body)
            push(varint_bytes[n << 1] if n < two_byte_limit else encode_varint(n))
            push(body)
    except KeyError as exc:
        raise InvalidRecordError(
            f"a record's attributes must be an int in 0..255, not {exc.args[0]!r}"
        ) from None
    except OverflowError as exc:
        raise InvalidRecordError(f"a record timestamp is out of range: {exc}") from None
    except TypeError as exc:
        raise InvalidRecordError(f"a record field has the wrong type: {exc}") from None
    if max_ts > INT64_MAX or min_ts < INT64_MIN:
        bad = max_ts if max_ts > INT64_MAX else min_ts
        raise InvalidRecordError(f"timestamp {bad} does not fit in 64 bits")

    payload = join(out)
    if codec:
        payload = compress(codec, payload)
    attributes = codec
    if timestamp_type == TimestampType.LOG_APPEND_TIME:
        attributes |= TIMESTAMP_TYPE_BIT
        max_ts = now_ms
    if is_transactional:
        attributes |= TRANSACTIONAL_BIT
    if is_control:
        attributes |= CONTROL_BIT
    if last_offset_delta is None:
        last_offset_delta = deltas[-1]
    elif count and last_offset_delta < deltas[-1]:
        raise InvalidRecordError(
            f"last_offset_delta {last_offset_delta} is below the last record's offset delta {deltas[-1]}"
        )
    batch_length = BATCH_OVERHEAD - LOG_OVERHEAD + len(payload)
    try:
        covered = CRC_COVERED.pack(
            attributes,
            last_offset_delta,
            base_ts,
            max_ts,
            producer_id,
            producer_epoch,
            base_sequence,
            count,
        )
        crc = crc32c(payload, crc32c(covered))
        prefix = CRC_PREFIX.pack(base_offset, batch_length, partition_leader_epoch, MAGIC, crc)
    except struct.error as exc:
        raise InvalidRecordError(f"a batch header field is out of range: {exc}") from None
    return join((prefix, covered, payload))


def _check_offset_deltas(offset_deltas: Sequence[int], count: int) -> None:
    if len(offset_deltas) != count:
        raise InvalidRecordError(f"{len(offset_deltas)} offset deltas for {count} records")
    previous = -1
    for delta in offset_deltas:
        if not previous < delta <= INT32_MAX:
            raise InvalidRecordError(f"offset deltas must increase strictly from 0 within int32, got {delta}")
        previous = delta



# ------------------------------------------------------------------------------------------- rewrite


def with_base_offset(batch: Buffer, base_offset: int, partition_leader_epoch: int | None = None) -> bytes:
    """Return ``batch`` with its base offset (and leader epoch, when given) replaced.

    Both fields lie outside the CRC's coverage, so the checksum stays valid and is not recomputed.
    """
    if len(batch) < BATCH_OVERHEAD:
        raise CorruptRecordError(
            f"truncated batch: {len(batch)} bytes, a batch has at least {BATCH_OVERHEAD}"
        )
    view = memoryview(batch)
    try:
        if partition_leader_epoch is None:
            return b"".join((INT64.pack(base_offset), view[LENGTH_OFFSET:]))
        return b"".join(
            (
                INT64.pack(base_offset),
                view[LENGTH_OFFSET:LEADER_EPOCH_OFFSET],
                INT32.pack(partition_leader_epoch),
                view[MAGIC_OFFSET:],
            )
        )
    except struct.error as exc:
        raise InvalidRecordError(f"base offset or leader epoch out of range: {exc}") from None


def with_log_append_time(batch: Buffer, now_ms: int) -> bytes:
    """Return the single batch ``batch`` stamped LogAppendTime at ``now_ms``, with its CRC recomputed.

    Sets attribute bit 3 and the max timestamp (every record then reads as ``now_ms``), as Kafka's broker
    does for ``message.timestamp.type=LogAppendTime``. The batch's CRC is verified first, so a damaged
    batch is refused rather than given a fresh, valid checksum.
    """
    header = parse_header(batch, 0)
    validate_frame(header, batch, 0)
    if header.size != len(batch):
        raise CorruptRecordError(f"expected exactly one batch of {header.size} bytes, got {len(batch)} bytes")
    view = memoryview(batch)
    records = view[BATCH_OVERHEAD:]
    try:
        covered = CRC_COVERED.pack(
            header.attributes | TIMESTAMP_TYPE_BIT,
            header.last_offset_delta,
            header.base_timestamp,
            now_ms,
            header.producer_id,
            header.producer_epoch,
            header.base_sequence,
            header.record_count,
        )
    except struct.error as exc:
        raise InvalidRecordError(f"log-append time {now_ms} out of range: {exc}") from None
    crc = crc32c(records, crc32c(covered))
    prefix = CRC_PREFIX.pack(
        header.base_offset, header.batch_length, header.partition_leader_epoch, MAGIC, crc
    )
    return b"".join((prefix, covered, records))

