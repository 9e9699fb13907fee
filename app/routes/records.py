"""Produce and fetch records: ``/v1/topics/{topic}/records`` and ``.../partitions/{partition}/records``.

Produce bodies are parsed with orjson and checked by hand (``app/broker/produce.py``): the pydantic
models below only describe the body in the OpenAPI spec, they never run on the hot path. Fetch
answers are built with orjson directly (``app/broker/formats.py``), JSON values spliced in as the
bytes they were stored as.

Produce answers:

- JSON body (``Content-Type: application/json``): 200 ``{results: [{partition, offset, timestamp}]}``
  in request order; 207 when some partitions' batches failed and others were appended, with
  ``{partition, error_code, message}`` for each record that failed. With ``acks=0`` offsets and
  timestamps are -1 (the answer does not wait for the append), as in Kafka.
- NDJSON (``Content-Type: application/x-ndjson``): one record object per line, streamed in; the
  formats come from the query (``key_format``, ``value_format``, ``header_format``). Records are
  appended in chunks of up to 1,000 lines (or whatever has arrived when the body pauses), and the
  answer streams one NDJSON line per input line, in input order, as each chunk is acknowledged:
  ``{line, partition, offset, timestamp}`` or ``{line, error_code, message}`` (a bad line does not
  stop the stream). The status is 200 once streaming starts.

Fetch answers ``{records, next_offset, high_watermark, log_start_offset}``; with
``Accept: application/x-ndjson`` one record per line, and the offsets in the headers
``Tidelog-Next-Offset``, ``Tidelog-High-Watermark`` and ``Tidelog-Log-Start-Offset``.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from app.broker import Acks, Broker, ProduceOutcome
from app.broker.errors import InvalidTimestampError
from app.broker.formats import Format, pack_attributes, parse_format, render_records_json
from app.broker.idempotency import StoredAnswer, check_key, request_hash
from app.broker.produce import INT32_MAX, INT64_MAX, ParsedRecords, parse_produce_json, parse_record_json
from app.config import Settings
from app.error_codes import ErrorCode
from app.errors import UnsupportedMediaTypeError, error_responses
from app.errors_base import InvalidParameterError, TidelogError
from app.limits import parked, until_stopping
from app.metrics import Metrics
from app.openapi import json_lines

__all__ = ["router"]

router = APIRouter(tags=["records"])

NDJSON = "application/x-ndjson"
_NDJSON_CHUNK_RECORDS = 1000

# ------------------------------------------------------------------------------- documented schemas


class RecordHeader(BaseModel):
    key: str
    value: str | None = Field(None, description="UTF-8 text, or base64 with header_format=binary.")


class ProduceRecord(BaseModel):
    key: Any = Field(None, description="In key_format; null for no key.")
    value: Any = Field(..., description="In value_format; null is a tombstone.")
    headers: list[RecordHeader] | None = None
    partition: int | None = Field(
        None, ge=0, description="Explicit partition; else by key (murmur2) or sticky."
    )
    timestamp: int | None = Field(None, ge=0, description="Epoch milliseconds; default: now.")


class ProduceRequest(BaseModel):
    records: list[ProduceRecord] = Field(..., min_length=1)
    key_format: Literal["json", "string", "binary"] = "string"
    value_format: Literal["json", "string", "binary"] = "json"
    header_format: Literal["string", "binary"] = "string"
    producer_id: int | None = Field(None, ge=0, description="Idempotent producer id (POST /v1/producers).")
    producer_epoch: int | None = Field(None, ge=0, le=32767)
    sequence: int | None = Field(None, ge=0, description="Sequence number of the first record.")


class ProduceResult(BaseModel):
    partition: int
    offset: int | None = Field(None, description="-1 with acks=0.")
    timestamp: int | None = None
    error_code: int | None = Field(None, description="Set (with message) when the record's batch failed.")
    message: str | None = None


class ProduceAck(BaseModel):
    """An NDJSON produce answer line: the input line ``line`` was appended."""

    line: int
    partition: int
    offset: int = Field(description="-1 with acks=0.")
    timestamp: int


class ProduceLineError(BaseModel):
    """An NDJSON produce answer line: the input line ``line`` was not appended."""

    line: int
    partition: int | None = Field(None, description="Set when the partition's batch failed.")
    error_code: int
    message: str


class ProduceResponse(BaseModel):
    results: list[ProduceResult]


class FetchedRecord(BaseModel):
    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: Literal["CreateTime", "LogAppendTime"]
    key: Any
    value: Any
    headers: list[RecordHeader]


class FetchResponse(BaseModel):
    records: list[FetchedRecord]
    next_offset: int
    high_watermark: int
    log_start_offset: int


def _inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its ``$defs`` inlined (OpenAPI request bodies cannot hold $defs)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


_PRODUCE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _inline_schema(ProduceRequest)},
            NDJSON: json_lines(ProduceRecord, description="One ProduceRecord JSON object per line."),
        },
    }
}
_PRODUCE_RESPONSES: dict[int | str, dict[str, Any]] = {
    207: {
        "model": ProduceResponse,
        "description": "Some partitions' batches failed: see error_code per record.",
    },
    **error_responses(
        ErrorCode.INVALID_REQUEST,
        ErrorCode.INVALID_RECORD,
        ErrorCode.UNKNOWN_TOPIC,
        ErrorCode.UNKNOWN_PARTITION,
        ErrorCode.UNKNOWN_PRODUCER,
        ErrorCode.PRODUCER_FENCED,
        ErrorCode.OUT_OF_ORDER_SEQUENCE,
        ErrorCode.IDEMPOTENCY_KEY_REUSED,
        ErrorCode.RECORD_TOO_LARGE,
        ErrorCode.REQUEST_TOO_LARGE,
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        ErrorCode.STORAGE_ERROR,
        ErrorCode.STORAGE_WRITE_FAILED,
        ErrorCode.PARTITION_READ_ONLY,
        ErrorCode.INSUFFICIENT_STORAGE,
    ),
}
_PRODUCE_RESPONSES[200] = {
    "model": ProduceResponse,
    "description": "Every record appended (offsets in request order), or NDJSON acknowledgements.",
    "content": {NDJSON: json_lines(ProduceAck, ProduceLineError, description="One answer per input line.")},
}

AcksParam = Annotated[
    Literal["0", "1", "all", "-1"],
    Query(description="0: answer before the append; 1: after the append; all (or -1): after the fsync."),
]
FormatParam = Literal["json", "string", "binary"]
TopicParam = Annotated[str, Path(min_length=1, max_length=249)]
PartitionParam = Annotated[int, Path(ge=0, le=INT32_MAX)]

# ----------------------------------------------------------------------------------------- produce


def _acks(value: str) -> Acks:
    return Acks.ALL if value in ("all", "-1") else Acks(value)


def _media_type(request: Request) -> str:
    content_type = request.headers.get("content-type")
    if content_type is None:
        return "application/json"
    media = content_type.split(";", 1)[0].strip().lower()
    if media in ("application/json", NDJSON):
        return media
    raise UnsupportedMediaTypeError(
        f"Content-Type {media!r} is not supported here: send application/json or {NDJSON}"
    )


def _count(request: Request, outcome: ProduceOutcome, topic: str) -> None:
    metrics: Metrics = request.app.state.metrics
    if outcome.appended_records:
        metrics.produced_records.labels(topic).inc(outcome.appended_records)
    if outcome.appended_bytes:
        metrics.produced_bytes.labels(topic).inc(outcome.appended_bytes)


async def _produce_json(
    request: Request,
    broker: Broker,
    topic: str,
    partition: int | None,
    acks: Acks,
    body: bytes,
    key_producer: int = -1,
) -> tuple[StoredAnswer, bool]:
    """The answer, and whether a partition failed with a retriable (5xx) error (records may be written)."""
    settings: Settings = request.app.state.settings
    parsed = parse_produce_json(
        body, max_records=settings.max_records_per_request, now_ms=int(time.time() * 1000)
    )
    outcome = await broker.produce(topic, parsed, acks=acks, partition=partition, key_producer=key_producer)
    _count(request, outcome, topic)
    if outcome.failed:
        retriable = any(r.error_code is not None and r.error_code >= 50000 for r in outcome.results)
        body_out = orjson.dumps({"results": [r.as_json() for r in outcome.results]})
        return StoredAnswer(207, body_out), retriable
    results = [{"partition": p, "offset": o, "timestamp": t} for p, o, t, _, _ in outcome.results]
    return StoredAnswer(200, orjson.dumps({"results": results})), False


async def _produce(
    request: Request,
    topic: str,
    partition: int | None,
    acks_value: str,
    key_format: str | None,
    value_format: str | None,
    header_format: str | None,
    idempotency_key: str | None,
) -> Response:
    broker: Broker = request.app.state.broker
    acks = _acks(acks_value)
    media = _media_type(request)
    if media == NDJSON:
        if idempotency_key is not None:
            # A stream has no single answer to replay: refuse rather than silently ignore the key.
            raise InvalidParameterError(
                "Idempotency-Key applies to JSON produce requests, not to NDJSON streams; "
                "use an idempotent producer (producer_id, producer_epoch, sequence) instead"
            )
        return await _produce_ndjson(
            request, broker, topic, partition, acks, key_format, value_format, header_format
        )
    if key_format is not None or value_format is not None or header_format is not None:
        raise InvalidParameterError(
            "key_format, value_format and header_format go in the JSON body; as query parameters they "
            "apply to NDJSON produce only"
        )
    body = await request.body()
    keys = broker.idempotency
    if idempotency_key is None or not keys.enabled:
        answer, _ = await _produce_json(request, broker, topic, partition, acks, body)
        return Response(answer.body, status_code=answer.status_code, media_type="application/json")
    key = check_key(idempotency_key)
    scope = topic if partition is None else f"{topic}/{partition}"
    digest = request_hash("POST", scope, media, acks.value, body)
    claim = await keys.begin(scope, key, digest)
    if isinstance(claim, StoredAnswer):
        return Response(
            claim.body,
            status_code=claim.status_code,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    try:
        answer, retriable = await _produce_json(
            request, broker, topic, partition, acks, body, key_producer=claim.producer_id
        )
    except BaseException as exc:
        if isinstance(exc, TidelogError) and int(exc.code) < 50000:
            # Refused as a whole (4xx): nothing appended, free the key for a corrected retry.
            await keys.release(scope, key)
        else:
            # 5xx, a timeout, a lost client: records may have been written. The retry takes the
            # claim over at once and re-runs the same idempotent batches (no duplicate).
            await asyncio.shield(keys.keep(scope, key))
        raise
    if retriable:
        # A partition failed with a retriable error: answered, not stored, so that a retry re-runs
        # every batch (the written ones come back as duplicates with their original offsets).
        await keys.keep(scope, key)
    else:
        await keys.complete(scope, key, answer)
    return Response(answer.body, status_code=answer.status_code, media_type="application/json")


@router.post(
    "/v1/topics/{topic}/records",
    response_model=ProduceResponse,
    responses=_PRODUCE_RESPONSES,
    openapi_extra=_PRODUCE_BODY,
    summary="Produce records to a topic",
)
async def produce(
    request: Request,
    topic: TopicParam,
    acks: AcksParam = "all",
    key_format: Annotated[FormatParam | None, Query(description="NDJSON produce only.")] = None,
    value_format: Annotated[FormatParam | None, Query(description="NDJSON produce only.")] = None,
    header_format: Annotated[Literal["string", "binary"] | None, Query(description="NDJSON only.")] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    """Append records; each goes to its ``partition``, else by key (Kafka's murmur2), else sticky."""
    return await _produce(
        request, topic, None, acks, key_format, value_format, header_format, idempotency_key
    )


@router.post(
    "/v1/topics/{topic}/partitions/{partition}/records",
    response_model=ProduceResponse,
    responses=_PRODUCE_RESPONSES,
    openapi_extra=_PRODUCE_BODY,
    summary="Produce records to one partition",
)
async def produce_to_partition(
    request: Request,
    topic: TopicParam,
    partition: PartitionParam,
    acks: AcksParam = "all",
    key_format: Annotated[FormatParam | None, Query(description="NDJSON produce only.")] = None,
    value_format: Annotated[FormatParam | None, Query(description="NDJSON produce only.")] = None,
    header_format: Annotated[Literal["string", "binary"] | None, Query(description="NDJSON only.")] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    """Append records to one partition; with ``producer_id``/``producer_epoch``/``sequence``, idempotently."""
    return await _produce(
        request, topic, partition, acks, key_format, value_format, header_format, idempotency_key
    )


class _NdjsonAnswer(Response):
    """A streamed answer that never reads the request itself (the body is still being consumed)."""

    media_type = NDJSON

    def __init__(self, lines: AsyncIterator[bytes]) -> None:
        # Like StreamingResponse: no body attribute, so no Content-Length header (chunked answer).
        self.status_code = 200
        self.background = None
        self.init_headers(None)
        self._lines = lines

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        async for chunk in self._lines:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _produce_ndjson(
    request: Request,
    broker: Broker,
    topic: str,
    partition: int | None,
    acks: Acks,
    key_format_name: str | None,
    value_format_name: str | None,
    header_format: str | None,
) -> Response:
    settings: Settings = request.app.state.settings
    key_format = parse_format(key_format_name, default=Format.STRING, field="key_format")
    value_format = parse_format(value_format_name, default=Format.JSON, field="value_format")
    header_binary = header_format == "binary"
    attributes = pack_attributes(key_format, value_format)
    # Unknown topic or partition: a proper 404 before the stream starts.
    if partition is None:
        await broker.partition(topic, 0)
    else:
        await broker.partition(topic, partition)
    max_records = settings.max_records_per_request

    async def lines() -> AsyncIterator[bytes]:
        pending: list[tuple[int, bytes]] = []
        buffer = b""
        line_no = 0
        total = 0
        async for chunk in _body_chunks(request):
            buffer += chunk
            if b"\n" not in buffer:
                continue
            *complete, buffer = buffer.split(b"\n")
            for raw in complete:
                line_no += 1
                if raw.strip():
                    pending.append((line_no, raw))
            while pending:
                batch, pending = pending[:_NDJSON_CHUNK_RECORDS], pending[_NDJSON_CHUNK_RECORDS:]
                total += len(batch)
                yield await _ack_chunk(batch, total > max_records)
        if buffer.strip():
            pending.append((line_no + 1, buffer))
        if pending:
            total += len(pending)
            yield await _ack_chunk(pending, total > max_records)

    async def _ack_chunk(batch: list[tuple[int, bytes]], over_limit: bool) -> bytes:
        out: list[bytes] = []
        parsed = ParsedRecords()
        numbers: list[int] = []
        errors: dict[int, bytes] = {}
        now_ms = int(time.time() * 1000)
        for number, raw in batch:
            try:
                if over_limit:
                    raise InvalidParameterError(
                        f"more than {max_records} records in one request (max_records_per_request)"
                    )
                record, asked = parse_record_json(
                    raw,
                    f"line {number}",
                    key_format=key_format,
                    value_format=value_format,
                    header_binary=header_binary,
                    attributes=attributes,
                    now_ms=now_ms,
                )
            except TidelogError as exc:
                errors[number] = _error_line(number, int(exc.code), exc.detail)
                continue
            parsed.records.append(record)
            parsed.partitions.append(asked)
            numbers.append(number)
        results: dict[int, bytes] = {}
        while parsed.records:
            try:
                outcome = await broker.produce(topic, parsed, acks=acks, partition=partition)
            except InvalidTimestampError as exc:
                # One line's timestamp is out of bounds (KIP-937): that line gets the error, the
                # others are produced (the check runs before anything is appended).
                index = exc.extra.get("index")
                if not isinstance(index, int) or not 0 <= index < len(numbers):
                    raise
                number = numbers.pop(index)
                parsed.records.pop(index)
                parsed.partitions.pop(index)
                detail = exc.detail.replace(f"records[{index}]", f"line {number}", 1)
                errors[number] = _error_line(number, int(exc.code), detail)
                continue
            except TidelogError as exc:
                for number in numbers:
                    results[number] = _error_line(number, int(exc.code), exc.detail)
            else:
                _count(request, outcome, topic)
                for number, result in zip(numbers, outcome.results, strict=True):
                    results[number] = orjson.dumps({"line": number, **result.as_json()})
            break
        for number, _ in batch:
            out.append(errors.get(number) or results[number])
        return b"\n".join(out) + b"\n"

    return _NdjsonAnswer(lines())


async def _body_chunks(request: Request) -> AsyncIterator[bytes]:
    """The request body as it arrives; ends quietly when the client goes away mid-stream."""
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect:
        return


def _error_line(number: int, code: int, message: str) -> bytes:
    return orjson.dumps({"line": number, "error_code": code, "message": message})


# ------------------------------------------------------------------------------------------- fetch


def _check_limit(name: str, value: int, limit: int, setting: str) -> None:
    if value > limit:
        raise InvalidParameterError(f"{name} {value} is above the broker's limit {setting}={limit}")


@router.get(
    "/v1/topics/{topic}/partitions/{partition}/records",
    response_model=FetchResponse,
    responses={
        200: {
            "model": FetchResponse,
            "description": "Records from offset, never past the high watermark (NDJSON: one per line).",
            "content": {NDJSON: json_lines(FetchedRecord, description="One record per line.")},
        },
        **error_responses(
            ErrorCode.INVALID_RECORD,
            ErrorCode.UNKNOWN_TOPIC,
            ErrorCode.UNKNOWN_PARTITION,
            ErrorCode.OFFSET_OUT_OF_RANGE,
            ErrorCode.STORAGE_ERROR,
        ),
    },
    summary="Fetch records from one partition (long-poll)",
)
async def fetch(
    request: Request,
    topic: TopicParam,
    partition: PartitionParam,
    offset: Annotated[
        int | None, Query(ge=0, le=INT64_MAX, description="First offset to return; default the log start.")
    ] = None,
    max_records: Annotated[
        int, Query(ge=1, description="At most this many records (≤ fetch_max_records).")
    ] = 500,
    max_bytes: Annotated[
        int, Query(ge=1, description="Record batch bytes to read (at least one batch is returned).")
    ] = 1024 * 1024,
    max_wait_ms: Annotated[
        int, Query(ge=0, description="Long-poll up to this long (≤ fetch_max_wait_ms).")
    ] = 0,
    min_bytes: Annotated[int, Query(ge=0, description="Answer as soon as this many bytes are readable.")] = 1,
    key_format: Annotated[FormatParam | None, Query(description="Default: as produced.")] = None,
    value_format: Annotated[FormatParam | None, Query(description="Default: as produced.")] = None,
    header_format: Annotated[Literal["string", "binary"], Query()] = "string",
    replica: Annotated[
        Literal["leader", "any"],
        Query(
            description="Clustered mode: `leader` (default) reads from the partition's leader (a follower "
            "redirects, 307), so every acknowledged write is seen; `any` lets a follower answer from its "
            "own log (KIP-392), which may lag the leader's high watermark by the replication delay."
        ),
    ] = "leader",
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Records of one partition from ``offset``; 416 (41601) outside [log start, log end]."""
    settings: Settings = request.app.state.settings
    broker: Broker = request.app.state.broker
    _check_limit("max_records", max_records, settings.fetch_max_records, "fetch_max_records")
    _check_limit("max_bytes", max_bytes, settings.fetch_max_bytes, "fetch_max_bytes")
    _check_limit("max_wait_ms", max_wait_ms, settings.fetch_max_wait_ms, "fetch_max_wait_ms")
    _check_limit("min_bytes", min_bytes, settings.fetch_max_bytes, "fetch_max_bytes")
    ndjson = accept is not None and NDJSON in accept.lower()
    kf = None if key_format is None else Format[key_format.upper()]
    vf = None if value_format is None else Format[value_format.upper()]
    read = functools.partial(
        broker.fetch, topic, partition, offset,
        max_records=max_records, max_bytes=max_bytes, min_bytes=min_bytes,
        leader_only=replica == "leader",
    )
    with parked(request.scope, max_wait_ms):  # a long poll waits outside the in-flight limit
        result = await until_stopping(request.app.state.stopping, read(max_wait_ms=max_wait_ms))
    if result is None:  # the broker is stopping: answer now with what there is
        result = await read(max_wait_ms=0)
    rendered = render_records_json(
        topic,
        partition,
        result.records,
        result.timestamp_types,
        key_format=kf,
        value_format=vf,
        header_format_binary=header_format == "binary",
    )
    metrics: Metrics = request.app.state.metrics
    if result.records:
        metrics.fetched_records.labels(topic).inc(len(result.records))
        metrics.fetched_bytes.labels(topic).inc(result.bytes_read)
    if ndjson:
        headers = {
            "Tidelog-Next-Offset": str(result.next_offset),
            "Tidelog-High-Watermark": str(result.high_watermark),
            "Tidelog-Log-Start-Offset": str(result.log_start_offset),
        }
        body = b"\n".join(rendered) + b"\n" if rendered else b""
        return Response(body, media_type=NDJSON, headers=headers)
    # The records are JSON text already: splice them into the answer.
    body = b"".join(
        (
            b'{"records":[',
            b",".join(rendered),
            b'],"next_offset":%d,"high_watermark":%d,"log_start_offset":%d}'
            % (result.next_offset, result.high_watermark, result.log_start_offset),
        )
    )
    return Response(body, media_type="application/json")
