"""The binary batch format on the client side: records → one record batch v2, fetched batches → records.

``application/vnd.tidelog.batch`` (docs/records.md): a produce body is record batches v2 laid end to
end, what the broker's log stores; a fetch answers the stored batches as they are, the first of
which may begin before the requested offset (its earlier records are skipped here, as Kafka's
clients do). Each record's attributes byte carries its key and value format (bits 0-1 and 2-3:
0 binary, 1 string, 2 json), so a record produced in binary reads back exactly as one produced
in JSON.
"""

from __future__ import annotations

import base64
import json
import struct
import time
from collections.abc import Mapping, Sequence
from typing import Any

from tidelog._codec import RecordIn, TimestampType, decode_batch, encode_batch, iter_batches
from tidelog._records import OutgoingRecord
from tidelog._types import FetchResult, HeaderValue, Record, TopicPartition, json_dumps_compact

__all__ = ["BATCH_MEDIA_TYPE", "decode_fetch", "decode_fetch_many", "encode_records"]

BATCH_MEDIA_TYPE = "application/vnd.tidelog.batch"

_FORMAT_BITS = {"binary": 0, "string": 1, "json": 2}
_TIMESTAMP_TYPE_NAMES = {
    TimestampType.CREATE_TIME: "CreateTime",
    TimestampType.LOG_APPEND_TIME: "LogAppendTime",
}


def _field_bytes(value: Any, fmt: str) -> bytes | None:
    """The stored bytes of a key or value in its JSON shape (``OutgoingRecord.body``)."""
    if value is None:
        return None
    if fmt == "binary":
        return base64.b64decode(value)
    if fmt == "string":
        return str(value).encode("utf-8")
    return json_dumps_compact(value)


def _header_bytes(value: HeaderValue) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return value.encode("utf-8")


def encode_records(
    records: Sequence[OutgoingRecord],
    *,
    key_format: str,
    value_format: str,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
) -> tuple[bytes, list[int]]:
    """One record batch of ``records`` and each record's timestamp (now for those without one)."""
    now_ms = int(time.time() * 1000)
    attributes = _FORMAT_BITS[key_format] | (_FORMAT_BITS[value_format] << 2)
    batch: list[RecordIn] = []
    timestamps: list[int] = []
    for record in records:
        body = record.body
        ts = body.get("timestamp")
        timestamp = ts if isinstance(ts, int) else now_ms
        timestamps.append(timestamp)
        batch.append(
            RecordIn(
                _field_bytes(body.get("value"), value_format),
                _field_bytes(body.get("key"), key_format),
                [(name, _header_bytes(v)) for name, v in record.headers],
                timestamp,
                attributes,
            )
        )
    data = encode_batch(
        batch,
        base_offset=0,
        now_ms=now_ms,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
    )
    return data, timestamps


def _shown(data: bytes | None, bits: int, asked: str | None) -> Any:
    """A stored key or value as the JSON fetch shows it: in its format, bytes when ``binary`` asked."""
    if data is None:
        return None
    if asked == "binary":
        return data
    if bits == 2:
        try:
            return json.loads(data)
        except ValueError:
            return base64.b64encode(data).decode("ascii")
    if bits == 1:
        return data.decode("utf-8", "replace")
    return base64.b64encode(data).decode("ascii")


def decode_fetch(
    data: bytes,
    *,
    topic: str,
    partition: int,
    offset: int,
    next_offset: int,
    high_watermark: int,
    log_start_offset: int,
    max_records: int | None,
    key_format: str | None = None,
    value_format: str | None = None,
    header_format: str | None = None,
) -> FetchResult:
    """The records of fetched batches from ``offset`` (at most ``max_records``), and where to go on."""
    out: list[Record] = []
    limit = max_records if max_records is not None else -1
    binary_headers = header_format == "binary"
    for pos, header in iter_batches(data):
        if header.is_control or header.next_offset <= offset:
            continue
        kind = _TIMESTAMP_TYPE_NAMES[header.timestamp_type]
        for r in decode_batch(data, pos):
            if r.offset < offset or r.offset >= high_watermark:
                continue
            if len(out) == limit:
                return FetchResult(out, out[-1].offset + 1, high_watermark, log_start_offset)
            attributes = r.attributes
            out.append(
                Record(
                    topic=topic,
                    partition=partition,
                    offset=r.offset,
                    timestamp=r.timestamp,
                    timestamp_type=kind,
                    key=_shown(r.key, attributes & 0b11, key_format),
                    value=_shown(r.value, (attributes >> 2) & 0b11, value_format),
                    headers=tuple(
                        (name, v if v is None or binary_headers else v.decode("utf-8", "replace"))
                        for name, v in r.headers
                    ),
                )
            )
    return FetchResult(out, max(next_offset, offset), high_watermark, log_start_offset)


_FRAME = struct.Struct(">iiqqqi")  # partition, error_code, high_watermark, log_start, next_offset, length
_TOPIC_LENGTH = struct.Struct(">h")


def decode_fetch_many(
    data: bytes,
    offsets: Mapping[TopicPartition, int],
    *,
    max_records: int | None,
) -> dict[TopicPartition, FetchResult | Exception]:
    """The frames of a binary ``POST /v1/fetch`` answer (docs/records.md), one per partition."""
    from tidelog._errors import error_from_response

    out: dict[TopicPartition, FetchResult | Exception] = {}
    pos = 0
    view = memoryview(data)
    while pos < len(data):
        (n,) = _TOPIC_LENGTH.unpack_from(data, pos)
        topic = bytes(view[pos + 2 : pos + 2 + n]).decode("utf-8")
        pos += 2 + n
        partition, code, hw, log_start, next_offset, length = _FRAME.unpack_from(data, pos)
        pos += _FRAME.size
        payload = bytes(view[pos : pos + length])
        pos += length
        tp = TopicPartition(topic, partition)
        if code:
            body = json.loads(payload)
            out[tp] = error_from_response(code // 100, {**body, "detail": body.get("message", "")})
            continue
        out[tp] = decode_fetch(
            payload,
            topic=topic,
            partition=partition,
            offset=offsets.get(tp, 0),
            next_offset=next_offset,
            high_watermark=hw,
            log_start_offset=log_start,
            max_records=max_records,
        )
    return out
