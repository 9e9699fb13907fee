"""Server-Sent Events: ``GET /v1/topics/{topic}/events`` and ``GET /v1/groups/{group}/events``.

Both answer ``text/event-stream`` (``curl -N`` or a browser's ``EventSource``). The stream logic,
cursor format and backpressure are in ``app/sse.py``; docs/groups.md describes the events.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from pydantic import BaseModel, ValidationError

from app.deps import BrokerDep
from app.error_codes import ErrorCode
from app.errors import error_responses
from app.errors_base import InvalidParameterError
from app.groups.model import OffsetCommit
from app.limits import slot_of
from app.openapi import event_stream
from app.routes.groups import GroupId, GroupServiceDep, JoinIn, TopicPartitionOut, join_request
from app.routes.records import FetchedRecord
from app.sse import (
    EventStreamResponse,
    group_stream,
    parse_cursor,
    parse_start,
    start_positions,
    topic_stream,
)

router = APIRouter(tags=["events"])



class MemberEvent(BaseModel):
    """``event: member``, first on a group stream: who this connection is in the group."""

    member_id: str
    generation: int


class AssignmentEvent(BaseModel):
    """``event: assignment``: the member's partitions changed."""

    generation: int
    assignment: list[TopicPartitionOut]


class StreamErrorEvent(BaseModel):
    """``event: error``: the stream cannot go on (its last event before the server closes it)."""

    error_code: int
    detail: str


_TOPIC_STREAM: dict[int | str, dict[str, Any]] = {
    200: event_stream(
        {"record": FetchedRecord, "error": StreamErrorEvent},
        with_id=("record",),
        description="An endless `text/event-stream` of `record` events.",
    )
}
_GROUP_STREAM: dict[int | str, dict[str, Any]] = {
    200: event_stream(
        {"member": MemberEvent, "assignment": AssignmentEvent, "record": FetchedRecord,
         "error": StreamErrorEvent},
        with_id=("record",),
        description="An endless `text/event-stream`: `member`, then `assignment` and `record` events.",
    )
}
HeartbeatMs = Annotated[
    int, Query(ge=100, le=300_000, description="A `: ping` comment after this much silence.")
]
LastEventIdHeader = Annotated[
    str | None, Header(alias="Last-Event-ID", description="The cursor to resume after (sent by EventSource).")
]
LastEventIdQuery = Annotated[
    str | None,
    Query(
        alias="last_event_id",
        description="Same as the Last-Event-ID header, for clients that cannot set headers.",
    ),
]


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


@router.get(
    "/v1/topics/{topic}/events",
    response_class=EventStreamResponse,
    responses={
        **_TOPIC_STREAM,
        **error_responses(ErrorCode.UNKNOWN_TOPIC, ErrorCode.UNKNOWN_PARTITION),
    },
)
async def topic_events(
    request: Request,
    topic: Annotated[str, Path(min_length=1, max_length=249)],
    broker: BrokerDep,
    partitions: Annotated[str | None, Query(description="Comma-separated partitions; default all.")] = None,
    start: Annotated[
        str, Query(alias="from", description="earliest | latest | timestamp:<epoch ms> (without a cursor).")
    ] = "latest",
    heartbeat_ms: HeartbeatMs = 15_000,
    last_event_id: LastEventIdHeader = None,
    cursor: LastEventIdQuery = None,
) -> EventStreamResponse:
    """Every record of the topic as ``event: record`` (data: the record as fetch returns it).

    Each event's ``id`` is a cursor holding the next offset of every partition of the stream
    (``p0:12,p1:40``): reconnecting with it as ``Last-Event-ID`` resumes right after the last record
    delivered, with no gap and no duplicate. Idle streams get a ``: ping`` comment.
    """
    resolved_start = parse_start(start)
    slot_of(request.scope).stream()  # 503 50312 / 429 42904 beyond max_sse_streams(_per_client)
    await broker.partition(topic, 0)  # 404 for an unknown topic; opens one another broker created
    count = broker.partition_count(topic)
    if partitions is None:
        numbers = list(range(count))
    else:
        try:
            numbers = sorted({int(p) for p in _csv(partitions)})
        except ValueError:
            raise InvalidParameterError(f"partitions={partitions!r}: give comma-separated numbers") from None
        if not numbers:
            raise InvalidParameterError("partitions names no partition")
        for number in numbers:
            await broker.partition(topic, number)  # 404 40402 for a partition the topic lacks
    resume = parse_cursor(last_event_id or cursor or "", topic=topic)
    positions = await start_positions(broker, topic, numbers, resolved_start, resume)
    return EventStreamResponse(topic_stream(broker, topic, positions, heartbeat_s=heartbeat_ms / 1000))


@router.get(
    "/v1/groups/{group}/events",
    response_class=EventStreamResponse,
    responses={
        **_GROUP_STREAM,
        **error_responses(ErrorCode.INVALID_SESSION_TIMEOUT, ErrorCode.NO_COMMITTED_OFFSET),
    },
)
async def group_events(
    request: Request,
    group: GroupId,
    service: GroupServiceDep,
    topics: Annotated[str | None, Query(description="Comma-separated topics to subscribe to.")] = None,
    topic_pattern: Annotated[str | None, Query(description="Or a regular expression of topic names.")] = None,
    assignor: Annotated[
        str, Query(description="range | roundrobin | cooperative-sticky | streams")
    ] = "range",
    session_timeout_ms: Annotated[int | None, Query()] = None,
    rebalance_timeout_ms: Annotated[int | None, Query(gt=0)] = None,
    instance_id: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
    auto_offset_reset: Annotated[str, Query(description="earliest | latest | none")] = "latest",
    heartbeat_ms: HeartbeatMs = 15_000,
    last_event_id: LastEventIdHeader = None,
    cursor: LastEventIdQuery = None,
) -> EventStreamResponse:
    """Make this connection a member of the group for as long as it stays open.

    Events: ``member`` first (``{member_id, generation}``), ``assignment`` whenever the member's
    partitions change (``{generation, assignment}``), ``record`` for each record, whose ``id`` is a
    cursor (``orders/p0:12,…``). A reconnect with ``Last-Event-ID`` first commits those offsets
    (never moving a commit backwards), so EventSource gets at-least-once delivery. The member leaves
    the group when the connection closes (a static ``instance_id`` member stays for its session).
    """
    try:
        body = JoinIn.model_validate(
            {
                "topics": _csv(topics) if topics is not None else None,
                "topic_pattern": topic_pattern,
                "assignor": assignor,
                "session_timeout_ms": session_timeout_ms,
                "rebalance_timeout_ms": rebalance_timeout_ms,
                "instance_id": instance_id,
                "auto_offset_reset": auto_offset_reset,
            }
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidParameterError(problems) from None
    join = join_request(body, "sse")
    resume = parse_cursor(last_event_id or cursor or "")
    slot_of(request.scope).stream()  # 503 50312 / 429 42904 beyond max_sse_streams(_per_client)
    if resume:
        await service.commit_forward(
            group, [OffsetCommit(t, p, offset, "sse Last-Event-ID") for (t, p), offset in resume.items()]
        )
    view = await service.join(group, join)
    return EventStreamResponse(group_stream(service, group, join, view, heartbeat_s=heartbeat_ms / 1000))
