"""``POST /v1/fetch``: one fetch for many partitions (Kafka's Fetch), in JSON, NDJSON or the batch format.

The body lists (topic, partition, offset, optional max_bytes) and Kafka's ``min_bytes``,
``max_wait_ms`` and ``max_bytes``; the answer comes once ``min_bytes`` are readable across the
partitions or the wait ends (``app/broker/fetch_many.py``). Each partition is answered on its own,
in request order: its records and offsets, or its error (``error_code``, ``message`` and the
error's extras: ``leader_id``/``leader_url`` for a partition led by another broker, KIP-951;
``log_start_offset``/``high_watermark`` for an offset out of range), never a whole-request error
or redirect for one partition's sake.

Answers:

- JSON: ``{"partitions": [{topic, partition, records, next_offset, high_watermark,
  log_start_offset} | {topic, partition, error_code, message, ...}]}``;
- ``Accept: application/x-ndjson``: one such partition object per line;
- ``Accept: application/vnd.tidelog.batch``: per partition, in request order, a frame
  (docs/records.md, "One fetch for many partitions") holding the stored record batches as they are.
"""

from __future__ import annotations

import functools
import struct
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, Request, Response
from pydantic import BaseModel, Field

from app.broker import Broker
from app.broker.batch import BATCH_MEDIA_TYPE
from app.broker.fetch import batches_end_offset, decode_fetched
from app.broker.fetch_many import PartitionData, PartitionFetch, fetch_many
from app.broker.formats import Format, render_records_json
from app.broker.produce import INT32_MAX, INT64_MAX
from app.config import Settings
from app.error_codes import ErrorCode
from app.errors import error_responses
from app.errors_base import InvalidParameterError, TidelogError
from app.limits import parked, until_stopping
from app.metrics import Metrics
from app.openapi import json_lines
from app.routes.records import NDJSON, FetchedRecord
from app.security.acl import Operation, ResourceType
from app.security.authorizer_middleware import require

__all__ = ["router"]

router = APIRouter(tags=["records"])

MiB = 1024 * 1024
_FRAME = struct.Struct(">iiqqqi")  # partition, error_code, high_watermark, log_start, next_offset, length
_TOPIC_LENGTH = struct.Struct(">h")
FormatParam = Literal["json", "string", "binary"]


class FetchPartition(BaseModel):
    topic: str = Field(..., min_length=1, max_length=249)
    partition: int = Field(..., ge=0, le=INT32_MAX)
    offset: int = Field(..., ge=0, le=INT64_MAX, description="First offset to return.")
    max_bytes: int | None = Field(
        None,
        ge=1,
        le=INT32_MAX,
        description="Record batch bytes of this partition (max.partition.fetch.bytes); default 1 MiB.",
    )


class FetchManyRequest(BaseModel):
    partitions: list[FetchPartition] = Field(..., min_length=1, max_length=10_000)
    min_bytes: int = Field(
        1, ge=0, le=INT32_MAX, description="Answer as soon as this many bytes are readable in all."
    )
    max_wait_ms: int = Field(
        0, ge=0, le=INT32_MAX, description="Long-poll up to this long (≤ fetch_max_wait_ms)."
    )
    max_bytes: int = Field(
        50 * MiB,
        ge=1,
        le=INT32_MAX,
        description="Record batch bytes in all (fetch.max.bytes; ≤ fetch_max_bytes).",
    )
    max_records: int = Field(
        500, ge=1, le=INT32_MAX, description="At most this many records per partition (JSON, NDJSON)."
    )
    key_format: FormatParam | None = Field(None, description="Default: as produced (JSON, NDJSON).")
    value_format: FormatParam | None = Field(None, description="Default: as produced (JSON, NDJSON).")
    header_format: Literal["string", "binary"] = "string"


class PartitionRecords(BaseModel):
    topic: str
    partition: int
    records: list[FetchedRecord] | None = Field(None, description="Absent when error_code is set.")
    next_offset: int | None = None
    high_watermark: int | None = None
    log_start_offset: int | None = None
    error_code: int | None = Field(None, description="This partition's error (its records are absent).")
    message: str | None = None
    leader_id: int | None = Field(None, description="With error_code 50304: the partition's leader.")
    leader_url: str | None = Field(None, description="With error_code 50304: the leader's URL.")


class FetchManyResponse(BaseModel):
    partitions: list[PartitionRecords]


def _check_limit(name: str, value: int, limit: int, setting: str) -> None:
    if value > limit:
        raise InvalidParameterError(f"{name} {value} is above the broker's limit {setting}={limit}")


def _error_object(answer: PartitionData, error: TidelogError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "topic": answer.topic,
        "partition": answer.partition,
        "error_code": int(error.code),
        "message": error.detail,
    }
    for key, value in error.extra.items():
        body.setdefault(key, value)
    return body


def _json_partition(answer: PartitionData, body: FetchManyRequest, metrics: Metrics) -> bytes:
    """One partition's JSON object: its records spliced in as JSON text, or its error."""
    if answer.error is not None:
        return orjson.dumps(_error_object(answer, answer.error))
    try:
        records, types, next_offset = decode_fetched(
            answer.data,
            offset=answer.offset,
            high_watermark=answer.high_watermark,
            max_records=body.max_records,
        )
        rendered = render_records_json(
            answer.topic,
            answer.partition,
            records,
            types,
            key_format=None if body.key_format is None else Format[body.key_format.upper()],
            value_format=None if body.value_format is None else Format[body.value_format.upper()],
            header_format_binary=body.header_format == "binary",
        )
    except TidelogError as exc:  # a record that cannot be shown in an asked format
        return orjson.dumps(_error_object(answer, exc))
    if records:
        metrics.fetched_records.labels(answer.topic).inc(len(records))
        metrics.fetched_bytes.labels(answer.topic).inc(len(answer.data))
    return b"".join(
        (
            b'{"topic":',
            orjson.dumps(answer.topic),
            b',"partition":%d,"records":[' % answer.partition,
            b",".join(rendered),
            b'],"next_offset":%d,"high_watermark":%d,"log_start_offset":%d}'
            % (next_offset, answer.high_watermark, answer.log_start_offset),
        )
    )


def _binary_partition(answer: PartitionData, metrics: Metrics) -> bytes:
    """One partition's frame: topic, partition, error code, offsets, then its batches (or problem JSON)."""
    topic = answer.topic.encode("utf-8")
    if answer.error is not None:
        payload = orjson.dumps(_error_object(answer, answer.error))
        frame = _FRAME.pack(answer.partition, int(answer.error.code), -1, -1, -1, len(payload))
        return b"".join((_TOPIC_LENGTH.pack(len(topic)), topic, frame, payload))
    data = answer.data
    next_offset = answer.offset
    if data:
        next_offset = max(answer.offset, min(batches_end_offset(data), answer.high_watermark))
        metrics.fetched_records.labels(answer.topic).inc(max(0, next_offset - answer.offset))
        metrics.fetched_bytes.labels(answer.topic).inc(len(data))
    frame = _FRAME.pack(
        answer.partition, 0, answer.high_watermark, answer.log_start_offset, next_offset, len(data)
    )
    return b"".join((_TOPIC_LENGTH.pack(len(topic)), topic, frame, data))


@router.post(
    "/v1/fetch",
    response_model=FetchManyResponse,
    responses={
        200: {
            "model": FetchManyResponse,
            "description": "Every asked partition, in request order: its records or its own error "
            f"(NDJSON: one partition object per line; {BATCH_MEDIA_TYPE}: one frame per partition, "
            "docs/records.md).",
            "content": {
                NDJSON: json_lines(PartitionRecords, description="One partition object per line."),
                BATCH_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **error_responses(ErrorCode.INVALID_REQUEST),
    },
    summary="Fetch records from many partitions at once (long-poll)",
)
async def fetch_partitions(
    request: Request, body: FetchManyRequest, accept: Annotated[str | None, Header()] = None
) -> Response:
    """Records of every listed partition; answers once ``min_bytes`` are there or ``max_wait_ms`` ends."""
    settings: Settings = request.app.state.settings
    broker: Broker = request.app.state.broker
    _check_limit("max_records", body.max_records, settings.fetch_max_records, "fetch_max_records")
    _check_limit("max_bytes", body.max_bytes, settings.fetch_max_bytes, "fetch_max_bytes")
    _check_limit("max_wait_ms", body.max_wait_ms, settings.fetch_max_wait_ms, "fetch_max_wait_ms")
    _check_limit("min_bytes", body.min_bytes, settings.fetch_max_bytes, "fetch_max_bytes")
    for i, p in enumerate(body.partitions):
        if p.max_bytes is not None:
            _check_limit(
                f"partitions[{i}].max_bytes", p.max_bytes, settings.fetch_max_bytes, "fetch_max_bytes"
            )
    wanted_types = accept.lower() if accept is not None else ""
    binary = BATCH_MEDIA_TYPE in wanted_types
    if binary and (body.key_format or body.value_format or body.header_format != "string"):
        raise InvalidParameterError(
            f"{BATCH_MEDIA_TYPE} answers carry the stored bytes: no key_format, value_format or header_format"
        )
    wanted = [
        PartitionFetch(p.topic, p.partition, p.offset, p.max_bytes if p.max_bytes is not None else MiB)
        for p in body.partitions
    ]
    def authorize(topic: str) -> None:  # TOPIC READ, per partition (ROUTE_ACLS: BODY)
        require(request.scope, Operation.READ, ResourceType.TOPIC, topic)

    read = functools.partial(
        fetch_many, broker, wanted, min_bytes=body.min_bytes, max_bytes=body.max_bytes, authorize=authorize
    )
    with parked(request.scope, body.max_wait_ms):  # a long poll waits outside the in-flight limit
        answers = await until_stopping(request.app.state.stopping, read(max_wait_ms=body.max_wait_ms))
    if answers is None:  # the broker is stopping: answer now with what there is
        answers = await read(max_wait_ms=0)
    metrics: Metrics = request.app.state.metrics
    if binary:
        return Response(b"".join(_binary_partition(a, metrics) for a in answers), media_type=BATCH_MEDIA_TYPE)
    parts = [_json_partition(a, body, metrics) for a in answers]
    if NDJSON in wanted_types:
        return Response(b"\n".join(parts) + b"\n", media_type=NDJSON)
    return Response(b'{"partitions":[' + b",".join(parts) + b"]}", media_type="application/json")
