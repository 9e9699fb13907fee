"""Server-Sent Events: the cursor format, event framing, and the topic and group streams.

Cursor (the ``id:`` of every event, sent back by clients as ``Last-Event-ID``): comma-separated
entries ``[<topic>/]p<partition>:<next offset>``, one per partition of the stream, e.g.
``p0:12,p1:40`` on a topic stream and ``orders/p0:12,audit/p3:7`` on a group stream. Topic names
never contain ``/``, ``,`` or ``:`` (Kafka's ``[a-zA-Z0-9._-]``), so the format is unambiguous.

Both streams are async generators under a ``StreamingResponse``. What one stream holds is bounded
by ``sse_max_buffer_bytes`` (``max_chunk_bytes`` here): it fetches at most that many bytes of
record batches at a time (at least one batch), renders them event by event and hands them to the
server in chunks of about that size, fetching again only once the last chunk was handed over.
uvicorn writes a chunk whole and then waits while the socket's write buffer is above its
high-water mark (64 KiB), so a stream whose client stops reading holds one fetched batch, the
events not yet sent of it, and one chunk in the write buffer. A client that reads nothing for
``sse_send_timeout_ms`` has its connection aborted by ``tidelog serve``'s protocol
(``app/server.py``); it resumes with its ``Last-Event-ID`` as after any disconnect: every event's
id is the cursor after it, and an event cut in half is never delivered by an SSE parser.

A disconnect cancels the generator (Starlette listens for ``http.disconnect``); the group stream
then leaves its group.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING

import anyio
import orjson
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from app.broker.formats import render_record
from app.error_codes import ErrorCode
from app.errors_base import InvalidParameterError, TidelogError
from app.groups.assignors import TopicPartition
from app.groups.errors import UnknownMemberError
from app.groups.model import JoinRequest, MemberView
from storage.errors import OffsetOutOfRangeError, StorageError

if TYPE_CHECKING:
    from app.broker import Broker
    from app.groups.service import FetchedRecord, GroupService

__all__ = [
    "SSE_HEADERS",
    "EventStreamResponse",
    "encode_cursor",
    "format_event",
    "group_stream",
    "parse_cursor",
    "parse_start",
    "start_positions",
    "topic_stream",
]

logger = logging.getLogger("tidelog.sse")

#: Headers of every stream: no caching, and no buffering by proxies such as nginx.
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
#: The reconnection delay EventSource should use (ms), sent once at the start of a stream.
RETRY_MS = 1000
BATCH_RECORDS = 500
TOPIC_CHECK_S = 1.0
#: The default of ``sse_max_buffer_bytes``.
MAX_CHUNK_BYTES = 256 * 1024
#: Stream fetches running at once, per event loop. A fetch decodes whole batches (a producer's
#: batch may be 1 MiB), so 2,000 streams starting together would otherwise hold 2,000 decoded
#: batches at the same moment, a peak the allocator keeps long after. A fetch takes milliseconds.
FETCHES_AT_ONCE = 4
_fetch_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _fetch_slot() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _fetch_slots.get(loop)
    if slots is None:
        slots = _fetch_slots[loop] = asyncio.Semaphore(FETCHES_AT_ONCE)
    return slots


def encode_cursor(positions: Mapping[TopicPartition, int], *, with_topic: bool) -> str:
    """The cursor of ``positions`` (next offset per partition)."""
    parts = []
    for (topic, partition), offset in sorted(positions.items()):
        prefix = f"{topic}/" if with_topic else ""
        parts.append(f"{prefix}p{partition}:{offset}")
    return ",".join(parts)


def parse_cursor(cursor: str, *, topic: str | None = None) -> dict[TopicPartition, int]:
    """The positions in a cursor; entries without a topic belong to ``topic``. Raises on bad input."""
    positions: dict[TopicPartition, int] = {}
    cursor = cursor.strip()
    if not cursor:
        return positions
    for entry in cursor.split(","):
        try:
            where, offset_text = entry.strip().rsplit(":", 1)
            entry_topic, _, partition_text = where.rpartition("/")
            if not partition_text.startswith("p"):
                raise ValueError(entry)
            partition = int(partition_text[1:])
            offset = int(offset_text)
        except ValueError:
            raise InvalidParameterError(
                f"Last-Event-ID {cursor!r} is not a tidelog cursor ([topic/]p<partition>:<offset>,…)"
            ) from None
        name = entry_topic or topic
        if name is None or partition < 0 or offset < 0:
            raise InvalidParameterError(f"Last-Event-ID entry {entry!r} names no topic or is negative")
        positions[(name, partition)] = offset
    return positions


def format_event(event: str, data: bytes, event_id: str | None = None) -> bytes:
    """One SSE event; ``data`` is a single line of JSON."""
    head = f"event: {event}\n"
    if event_id is not None:
        head += f"id: {event_id}\n"
    return head.encode() + b"data: " + data + b"\n\n"


def _record_event(item: FetchedRecord, event_id: str) -> bytes:
    rendered = render_record(
        item.topic, item.partition, item.record, timestamp_type=item.timestamp_type, raw_json=True
    )
    return format_event("record", orjson.dumps(rendered), event_id)


async def start_positions(
    broker: Broker,
    topic: str,
    partitions: list[int],
    start: str,
    cursor: Mapping[TopicPartition, int],
    resets: list[bytes] | None = None,
) -> dict[TopicPartition, int]:
    """Where a topic stream starts: the cursor's offsets, else ``start`` (earliest|latest|timestamp:<ms>).

    Offsets are clamped into ``[log_start_offset, high_watermark]``: a cursor older than the
    retention resumes at the log start (those records are gone), one past the high watermark (a log
    that lost unflushed records in a crash, or a cursor of another incarnation of the topic) at the
    high watermark. Never silently: each clamped position adds an ``event: cursor_reset`` to
    ``resets``, which the stream sends first. A ``timestamp:`` after the last record starts at
    the high watermark (Kafka's offsetsForTimes finds nothing: the next record is the first).
    """
    positions: dict[TopicPartition, int] = {}
    for partition in partitions:
        handle = await broker.partition(topic, partition)
        state = handle.state()
        low, high = state.log_start_offset, state.high_watermark
        tp = (topic, partition)
        if tp in cursor:
            positions[tp] = min(max(cursor[tp], low), high)
            if positions[tp] != cursor[tp] and resets is not None:
                resets.append(_cursor_reset(topic, partition, cursor[tp], positions[tp], low, high))
        elif start == "earliest":
            positions[tp] = low
        elif start == "latest":
            positions[tp] = high
        else:
            found = broker.offset_for_timestamp(topic, partition, int(start.removeprefix("timestamp:")))
            positions[tp] = high if found is None else found
    return positions


def _cursor_reset(topic: str, partition: int, asked: int, offset: int, low: int, high: int) -> bytes:
    past = asked > high
    detail = (
        f"the cursor's offset {asked} of partition {partition} is past its high watermark {high}: "
        f"resuming at {offset}"
        if past
        else f"the cursor's offset {asked} of partition {partition} is below its log start {low} "
        f"(retention removed those records): resuming at {offset}"
    )
    payload = {
        "error_code": int(ErrorCode.OFFSET_OUT_OF_RANGE),
        "topic": topic,
        "partition": partition,
        "requested_offset": asked,
        "offset": offset,
        "log_start_offset": low,
        "high_watermark": high,
        "detail": detail,
    }
    return format_event("cursor_reset", orjson.dumps(payload))


def parse_start(value: str) -> str:
    """Validate ``from``: earliest, latest or timestamp:<epoch ms>."""
    if value in ("earliest", "latest"):
        return value
    if value.startswith("timestamp:"):
        try:
            if int(value.removeprefix("timestamp:")) >= 0:
                return value
        except ValueError:
            pass
    raise InvalidParameterError(f"from={value!r}: use earliest, latest or timestamp:<epoch ms>")


class _Pacer:
    """How many records one stream fetches at a time: as many as filled its last chunk.

    A fetch returns at least one whole batch, and a producer's batch can be far larger than
    ``max_chunk_bytes`` (a 1 MiB batch of 4 KB records). The records of a fetch beyond the first
    full chunk are dropped before the chunk is handed over, and read again (``records_per_chunk``
    at a time) once the client has taken it: they are never held while a send waits, so a client
    that stops reading pins one chunk and the records in it, however large the batches. (Holding
    them while the client seems to keep up does not work: the kernel's socket buffers take the
    first chunks of a client that reads nothing at once.)
    """

    __slots__ = ("records_per_chunk",)

    def __init__(self) -> None:
        self.records_per_chunk = BATCH_RECORDS


async def _deliver(
    broker: Broker,
    positions: dict[TopicPartition, int],
    *,
    with_topic: bool,
    max_chunk_bytes: int,
    pacer: _Pacer,
) -> AsyncIterator[bytes]:
    """Fetch one round from ``positions`` (advancing them), yielding chunks of about
    ``max_chunk_bytes`` (a single larger event is a chunk of its own)."""
    from app.groups.service import FetchedRecord

    for tp in sorted(positions, key=lambda tp: (tp[1], tp[0])):
        if await broker.confirmed_high_watermark(await broker.partition(*tp)) <= positions[tp]:
            continue
        try:
            async with _fetch_slot():
                result = await broker.fetch(
                    *tp, positions[tp], max_records=pacer.records_per_chunk, max_bytes=max_chunk_bytes,
                    max_wait_ms=0,
                )
        except OffsetOutOfRangeError as exc:
            # Retention removed records the stream had not reached: continue at the log start.
            positions[tp] = exc.log_start_offset
            continue
        if not result.records:
            positions[tp] = result.next_offset
            continue
        records, types = result.records, result.timestamp_types
        next_offset = result.next_offset
        fetched = len(records)
        del result
        chunk: list[bytes] = []
        size = 0
        for index, record in enumerate(records):
            positions[tp] = record.offset + 1
            cursor = encode_cursor(positions, with_topic=with_topic)
            chunk.append(_record_event(FetchedRecord(tp[0], tp[1], record, types[index]), cursor))
            size += len(chunk[-1])
            if size >= max_chunk_bytes:
                pacer.records_per_chunk = index + 1
                if index + 1 < fetched:
                    next_offset = positions[tp]  # the rest is read again once this chunk is taken
                break
        else:
            if fetched >= pacer.records_per_chunk:  # small records: fetch more of them next time
                pacer.records_per_chunk = min(BATCH_RECORDS, pacer.records_per_chunk * 2)
        positions[tp] = max(positions[tp], next_offset)
        del records, types  # nothing of the fetch is held while the chunk waits to be sent
        yield b"".join(chunk)
        # A send to a client that has gone returns at once, and so may a fetch: without a
        # checkpoint here a stream whose client left would render the whole log without ever
        # letting the event loop run (and Starlette see the disconnect that cancels it).
        await asyncio.sleep(0)


class EventStreamResponse(StreamingResponse):
    """A ``text/event-stream`` answer whose generator is always closed when the answer ends.

    Starlette cancels the sending task when the client disconnects, which can leave the generator
    suspended at a ``yield``; closing it here runs its ``finally`` (a group stream leaves its group)
    at once instead of whenever the generator is garbage-collected.
    """

    def __init__(self, content: AsyncIterator[bytes], status_code: int = 200) -> None:
        super().__init__(
            content, status_code=status_code, media_type="text/event-stream", headers=SSE_HEADERS
        )
        self._events = content

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                aclose = getattr(self._events, "aclose", None)
                if aclose is not None:
                    await aclose()


async def topic_stream(
    broker: Broker,
    topic: str,
    positions: dict[TopicPartition, int],
    *,
    heartbeat_s: float,
    max_chunk_bytes: int = MAX_CHUNK_BYTES,
    resets: list[bytes] | None = None,
) -> AsyncIterator[bytes]:
    """Every record of ``positions``' partitions from there on, as ``event: record``; ``: ping``
    comments every ``heartbeat_s`` of silence; first the ``cursor_reset`` events of ``resets``."""
    yield f"retry: {RETRY_MS}\n: stream of {topic}\n\n".encode() + b"".join(resets or ())
    pacer = _Pacer()
    last_sent = time.monotonic()
    try:
        while True:
            idle = heartbeat_s - (time.monotonic() - last_sent)
            if idle <= 0:
                yield b": ping\n\n"
                last_sent = time.monotonic()
                continue
            # Wait in slices of at most a second: ``wait_for_data`` wakes on a topic's deletion but
            # returns only at its timeout, so each slice ends by checking the topic still exists.
            if not await broker.wait_for_data(positions, min(idle, TOPIC_CHECK_S)):
                await broker.partition(topic, next(iter(positions))[1])  # UnknownTopicError once deleted
                continue
            deliver = _deliver(
                broker, positions, with_topic=False, max_chunk_bytes=max_chunk_bytes, pacer=pacer
            )
            async for chunk in deliver:
                yield chunk
                last_sent = time.monotonic()
    except TidelogError as exc:  # the topic was deleted under the stream, …
        yield _error_event(int(exc.code), exc.detail)
    except StorageError as exc:  # … or its log closed (deleted, broker shutting down)
        yield _error_event(int(ErrorCode.NOT_READY), f"the stream's log is no longer readable: {exc}")


async def group_stream(
    service: GroupService,
    group_id: str,
    request: JoinRequest,
    view: MemberView,
    *,
    heartbeat_s: float,
    max_chunk_bytes: int = MAX_CHUNK_BYTES,
    check_topics: Callable[[set[str]], None] | None = None,
) -> AsyncIterator[bytes]:
    """The member ``view`` (joined by the caller) for the life of the connection: delivers its
    partitions' records, follows rebalances by heartbeating, and leaves when the client goes.

    ``check_topics`` is given the topics of the member's partitions at every heartbeat and may raise
    (the caller's TOPIC READ): the stream then ends with an ``error`` event and the member leaves.

    A static member (``instance_id``) does not leave on disconnect: it keeps its partitions for its
    session timeout, so a client that reconnects in time gets them back without a rebalance.
    """
    member_id = view.member_id
    positions: dict[TopicPartition, int] = {}
    pacer = _Pacer()
    try:
        yield f"retry: {RETRY_MS}\n".encode() + _member_event(view)
        assignment: tuple[TopicPartition, ...] | None = None
        next_sync = 0.0
        last_sent = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= next_sync:
                try:
                    state = await service.sync(group_id, member_id, positions)
                except UnknownMemberError:
                    # Expired (the process stalled past the session timeout): join again.
                    view = await service.join(group_id, request)
                    member_id = view.member_id
                    positions = {}
                    assignment = None
                    yield _member_event(view)
                    continue
                except TidelogError as exc:
                    if not exc.retriable:
                        raise
                    # The catalog is busy or briefly unreachable: keep the stream, try again soon.
                    next_sync = now + RETRY_MS / 1000
                    continue
                view = state.view
                if check_topics is not None:
                    check_topics({topic for topic, _ in view.assignment})
                next_sync = now + view.heartbeat_interval_ms / 1000
                if view.assignment != assignment:
                    assignment = view.assignment
                    resolved = await service.resolve_positions(state.positions, view.auto_offset_reset)
                    positions = {tp: positions.get(tp, resolved[tp]) for tp in assignment}
                    payload = {
                        "generation": view.generation,
                        "assignment": [{"topic": t, "partition": p} for t, p in assignment],
                    }
                    yield format_event("assignment", orjson.dumps(payload))
                    last_sent = time.monotonic()
            wait = min(next_sync, last_sent + heartbeat_s) - time.monotonic()
            if wait > 0 and positions:
                if await service.broker.wait_for_data(positions, wait):
                    deliver = _deliver(
                        service.broker, positions, with_topic=True, max_chunk_bytes=max_chunk_bytes,
                        pacer=pacer,
                    )
                    async for chunk in deliver:
                        yield chunk
                        last_sent = time.monotonic()
                    continue
            elif wait > 0:
                await anyio.sleep(wait)
            if time.monotonic() - last_sent >= heartbeat_s:
                yield b": ping\n\n"
                last_sent = time.monotonic()
    except TidelogError as exc:
        yield _error_event(int(exc.code), exc.detail)
    except StorageError as exc:
        yield _error_event(int(ErrorCode.NOT_READY), f"a log of the stream is no longer readable: {exc}")
    finally:
        if request.instance_id is None:
            # The client is gone (or the stream failed): leave, shielded from the cancellation that
            # ended the stream, so the others rebalance now rather than after the session timeout.
            with anyio.CancelScope(shield=True):
                try:
                    await service.leave(group_id, member_id)
                except UnknownMemberError:
                    pass
                except Exception:
                    logger.exception("member %s of group %s could not leave", member_id, group_id)


def _error_event(code: int, detail: str) -> bytes:
    return format_event("error", orjson.dumps({"error_code": code, "detail": detail}))


def _member_event(view: MemberView) -> bytes:
    return format_event("member", orjson.dumps({"member_id": view.member_id, "generation": view.generation}))
