"""``/v1/groups``: consumer groups — membership, heartbeats, polling, seeks, commits, offsets, resets.

Thin handlers over ``app.groups.service.GroupService``; the protocol is in docs/groups.md. Any broker
process sharing the catalog can serve any of these requests for any member.
"""

from __future__ import annotations

import functools
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from app.broker.formats import render_record
from app.config import Settings
from app.deps import SettingsDep
from app.error_codes import ErrorCode
from app.errors import error_responses
from app.errors_base import InvalidParameterError
from app.groups.model import JoinRequest, MemberView, OffsetCommit
from app.groups.patterns import MAX_TOPIC_PATTERN_LENGTH
from app.groups.service import GroupService, OffsetLag
from app.limits import parked, until_stopping
from app.routes.records import FetchedRecord
from app.routes.topics import JsonBody

router = APIRouter(prefix="/v1/groups", tags=["groups"])

GroupId = Annotated[str, Path(min_length=1, max_length=255, description="The consumer group's id.")]
MemberId = Annotated[str, Path(min_length=1, max_length=64, description="A member id from the join.")]


def get_group_service(request: Request) -> GroupService:
    service: GroupService = request.app.state.group_service
    return service


GroupServiceDep = Annotated[GroupService, Depends(get_group_service)]


class TopicPartitionOut(BaseModel):
    topic: str
    partition: int


def _tps(pairs: tuple[tuple[str, int], ...]) -> list[TopicPartitionOut]:
    return [TopicPartitionOut(topic=t, partition=p) for t, p in pairs]


class JoinIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"example": {"topics": ["orders"], "assignor": "cooperative-sticky"}},
    )

    topics: list[str] | None = Field(
        None, max_length=10_000, description="Topics to subscribe to (or give topic_pattern)."
    )
    topic_pattern: str | None = Field(
        None,
        max_length=MAX_TOPIC_PATTERN_LENGTH,
        description="An RE2 regular expression matched against whole topic names (linear time).",
    )
    assignor: Literal["range", "roundrobin", "cooperative-sticky", "streams"] = "range"
    session_timeout_ms: int | None = Field(
        None, description="Default 45000, within group.min/max.session.timeout.ms (else 422 42207)."
    )
    rebalance_timeout_ms: int | None = Field(
        None, gt=0, description="How long a revoked partition waits for its old owner. Default: the session."
    )
    instance_id: str | None = Field(
        None, min_length=1, max_length=255, description="Static membership (KIP-345): group.instance.id."
    )
    auto_offset_reset: Literal["earliest", "latest", "none"] = "latest"


class JoinOut(BaseModel):
    member_id: str
    generation: int
    state: str
    assignment: list[TopicPartitionOut]
    heartbeat_interval_ms: int
    session_timeout_ms: int


class HeartbeatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    generation: int | None = Field(
        None, description="Acknowledges every revocation up to this generation (the member let go)."
    )


class HeartbeatOut(BaseModel):
    generation: int
    state: str
    assignment: list[TopicPartitionOut]
    revoking: list[TopicPartitionOut] = Field(
        description="Partitions being moved away: no longer fetched, still committable until handed over."
    )
    heartbeat_interval_ms: int


class SeekIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: str
    partition: int = Field(ge=0)
    to: Literal["earliest", "latest", "offset", "timestamp"]
    value: int | None = Field(None, description="The offset, or the timestamp (epoch ms).")


class SeekOut(BaseModel):
    topic: str
    partition: int
    position: int


class OffsetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0, description="The next offset to consume (last processed + 1), as in Kafka.")
    metadata: str | None = Field(None, max_length=4096)


class CommitIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "member_id": "http-…",
                "generation": 3,
                "offsets": [{"topic": "orders", "partition": 0, "offset": 42}],
            }
        },
    )

    member_id: str | None = Field(None, description="Omit only while the group has no members.")
    generation: int | None = None
    offsets: list[OffsetIn] = Field(min_length=1)


class OffsetOut(BaseModel):
    topic: str
    partition: int
    offset: int
    metadata: str | None
    committed_at_ms: int
    high_watermark: int | None
    lag: int | None


class OffsetsOut(BaseModel):
    group_id: str
    offsets: list[OffsetOut]


class ResetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topics: list[str] = Field(min_length=1)
    partitions: list[int] | None = Field(None, description="Default: every partition of each topic.")
    to: Literal["earliest", "latest", "timestamp", "offset", "shift_by"]
    value: int | None = Field(None, description="Timestamp (ms), offset, or shift (may be negative).")
    dry_run: bool = False


class ResetEntryOut(BaseModel):
    topic: str
    partition: int
    previous_offset: int | None
    offset: int


class ResetOut(BaseModel):
    group_id: str
    dry_run: bool
    offsets: list[ResetEntryOut]


class MemberOut(BaseModel):
    member_id: str
    instance_id: str | None
    client_kind: str
    topics: list[str] | None
    topic_pattern: str | None
    session_timeout_ms: int
    last_seen_ms: int
    generation: int = Field(description="The latest generation the member has been told about.")
    assignment: list[TopicPartitionOut]
    revoking: list[TopicPartitionOut]


class GroupOut(BaseModel):
    group_id: str
    state: Literal["Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"]
    protocol: str | None = Field(description="The assignor of the group's members.")
    generation: int
    members: list[MemberOut]
    offsets: list[OffsetOut]
    total_lag: int = Field(description="Sum of the lag of every committed partition.")


class GroupSummaryOut(BaseModel):
    group_id: str
    state: str
    protocol: str | None
    generation: int
    members: int


class GroupListOut(BaseModel):
    groups: list[GroupSummaryOut]


def _offset_out(lag: OffsetLag) -> OffsetOut:
    return OffsetOut(
        topic=lag.topic,
        partition=lag.partition,
        offset=lag.offset,
        metadata=lag.metadata,
        committed_at_ms=lag.committed_at_ms,
        high_watermark=lag.high_watermark,
        lag=lag.lag,
    )


def _bounded(name: str, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise InvalidParameterError(f"{name}={value} is outside [{low}, {high}]", limit=high)
    return value


def join_request(body: JoinIn, client_kind: str) -> JoinRequest:
    return JoinRequest(
        topics=tuple(body.topics) if body.topics is not None else None,
        topic_pattern=body.topic_pattern,
        assignor=body.assignor,
        session_timeout_ms=body.session_timeout_ms,
        rebalance_timeout_ms=body.rebalance_timeout_ms,
        instance_id=body.instance_id,
        auto_offset_reset=body.auto_offset_reset,
        client_kind=client_kind,
    )


def _join_out(view: MemberView) -> JoinOut:
    return JoinOut(
        member_id=view.member_id,
        generation=view.generation,
        state=view.state,
        assignment=_tps(view.assignment),
        heartbeat_interval_ms=view.heartbeat_interval_ms,
        session_timeout_ms=view.session_timeout_ms,
    )


@router.get("", response_model=GroupListOut, responses=error_responses())
async def list_groups(service: GroupServiceDep) -> GroupListOut:
    """Every consumer group with its state, assignor, generation and member count."""
    groups = await service.list_groups()
    return GroupListOut(
        groups=[
            GroupSummaryOut(
                group_id=g.group_id,
                state=g.state,
                protocol=g.protocol,
                generation=g.generation,
                members=g.members,
            )
            for g in groups
        ]
    )


@router.get("/{group}", response_model=GroupOut, responses=error_responses(ErrorCode.UNKNOWN_GROUP))
async def describe_group(group: GroupId, service: GroupServiceDep) -> GroupOut:
    """The group's state, protocol, members with their assignments, committed offsets and lag."""
    description, lags = await service.describe(group)
    return GroupOut(
        group_id=description.group_id,
        state=description.state,
        protocol=description.protocol,
        generation=description.generation,
        members=[
            MemberOut(
                member_id=m.member_id,
                instance_id=m.instance_id,
                client_kind=m.client_kind,
                topics=list(m.topics) if m.topics is not None else None,
                topic_pattern=m.topic_pattern,
                session_timeout_ms=m.session_timeout_ms,
                last_seen_ms=m.last_seen_ms,
                generation=m.known_generation,
                assignment=_tps(m.assignment),
                revoking=_tps(m.revoking),
            )
            for m in description.members
        ],
        offsets=[_offset_out(lag) for lag in lags],
        total_lag=sum(lag.lag or 0 for lag in lags),
    )


@router.delete(
    "/{group}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(ErrorCode.UNKNOWN_GROUP, ErrorCode.GROUP_NOT_EMPTY),
)
async def delete_group(group: GroupId, service: GroupServiceDep) -> Response:
    """Delete a group without members, with its committed offsets (409 40903 while it has members)."""
    await service.delete(group)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{group}/members",
    status_code=status.HTTP_201_CREATED,
    response_model=JoinOut,
    dependencies=[JsonBody],
    responses=error_responses(
        ErrorCode.INVALID_REQUEST, ErrorCode.INVALID_SESSION_TIMEOUT, ErrorCode.UNSUPPORTED_MEDIA_TYPE
    ),
)
async def join_group(group: GroupId, body: JoinIn, service: GroupServiceDep) -> JoinOut:
    """Join the group (created on first join); answers the member id, generation and assignment.

    A static member (``instance_id``) that rejoins within its session timeout gets its partitions
    back without a rebalance, under a new member id (the old one is fenced).
    """
    view = await service.join(group, join_request(body, "http"))
    return _join_out(view)


@router.post(
    "/{group}/members/{member_id}/heartbeat",
    response_model=HeartbeatOut,
    responses=error_responses(ErrorCode.UNKNOWN_MEMBER),
)
async def heartbeat(
    group: GroupId, member_id: MemberId, service: GroupServiceDep, body: HeartbeatIn | None = None
) -> HeartbeatOut:
    """Keep the member's session alive; answers its current generation and assignment.

    A member follows rebalances by heartbeating; only a 404 (40403) makes it rejoin.
    """
    view = await service.heartbeat(group, member_id, body.generation if body is not None else None)
    return HeartbeatOut(
        generation=view.generation,
        state=view.state,
        assignment=_tps(view.assignment),
        revoking=_tps(view.revoking),
        heartbeat_interval_ms=view.heartbeat_interval_ms,
    )


@router.delete(
    "/{group}/members/{member_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(ErrorCode.UNKNOWN_MEMBER),
)
async def leave_group(group: GroupId, member_id: MemberId, service: GroupServiceDep) -> Response:
    """Leave the group; the others rebalance at once."""
    await service.leave(group, member_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class PositionOut(BaseModel):
    topic: str
    partition: int
    offset: int = Field(description="The next offset this member will receive.")


class PollOut(BaseModel):
    """A poll's answer. Built with orjson on the hot path; this model only describes it."""

    generation: int
    assignment: list[TopicPartitionOut]
    records: list[FetchedRecord] = Field(description="Records as fetch returns them.")
    positions: list[PositionOut]


@router.get(
    "/{group}/members/{member_id}/records",
    response_class=Response,
    responses={
        200: {
            "model": PollOut,
            "description": "Records of the member's partitions.",
        },
        **error_responses(ErrorCode.UNKNOWN_MEMBER, ErrorCode.NO_COMMITTED_OFFSET),
    },
)
async def poll_records(
    request: Request,
    group: GroupId,
    member_id: MemberId,
    service: GroupServiceDep,
    settings: SettingsDep,
    max_records: Annotated[int, Query(description="At most fetch_max_records.")] = 500,
    max_bytes: Annotated[int, Query(description="At most fetch_max_bytes.")] = 1024 * 1024,
    max_wait_ms: Annotated[int, Query(description="Long-poll; capped at half the session timeout.")] = 1000,
) -> Response:
    """Records from the member's assigned partitions (long-poll, fair across partitions).

    The member's positions advance in the catalog, so its next poll can go to any broker process.
    A poll also counts as a heartbeat.
    """
    _limits(settings, max_records, max_bytes, max_wait_ms)
    poll = functools.partial(service.poll, group, member_id, max_records=max_records, max_bytes=max_bytes)
    with parked(request.scope, max_wait_ms):  # a long poll waits outside the in-flight limit
        result = await until_stopping(request.app.state.stopping, poll(max_wait_ms=max_wait_ms))
    if result is None:  # the broker is stopping: answer now with what there is
        result = await poll(max_wait_ms=0)
    body = {
        "generation": result.view.generation,
        "assignment": [{"topic": t, "partition": p} for t, p in result.view.assignment],
        "records": [
            render_record(r.topic, r.partition, r.record, timestamp_type=r.timestamp_type, raw_json=True)
            for r in result.records
        ],
        "positions": [
            {"topic": t, "partition": p, "offset": offset}
            for (t, p), offset in sorted(result.positions.items())
        ],
    }
    return Response(orjson.dumps(body), media_type="application/json")


def _limits(settings: Settings, max_records: int, max_bytes: int, max_wait_ms: int) -> None:
    _bounded("max_records", max_records, 1, settings.fetch_max_records)
    _bounded("max_bytes", max_bytes, 1, settings.fetch_max_bytes)
    _bounded("max_wait_ms", max_wait_ms, 0, settings.fetch_max_wait_ms)


@router.post(
    "/{group}/members/{member_id}/seek",
    response_model=SeekOut,
    dependencies=[JsonBody],
    responses=error_responses(
        ErrorCode.UNKNOWN_MEMBER,
        ErrorCode.ILLEGAL_GENERATION,
        ErrorCode.UNKNOWN_TOPIC,
        ErrorCode.UNKNOWN_PARTITION,
        ErrorCode.OFFSET_OUT_OF_RANGE,
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    ),
)
async def seek(group: GroupId, member_id: MemberId, body: SeekIn, service: GroupServiceDep) -> SeekOut:
    """Move the member's position in a partition it owns (409 40902 otherwise)."""
    position = await service.seek(group, member_id, body.topic, body.partition, body.to, body.value)
    return SeekOut(topic=body.topic, partition=body.partition, position=position)


@router.post(
    "/{group}/offsets",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    dependencies=[JsonBody],
    responses=error_responses(
        ErrorCode.UNKNOWN_MEMBER,
        ErrorCode.ILLEGAL_GENERATION,
        ErrorCode.GROUP_NOT_EMPTY,
        ErrorCode.UNKNOWN_TOPIC,
        ErrorCode.UNKNOWN_PARTITION,
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    ),
)
async def commit_offsets(group: GroupId, body: CommitIn, service: GroupServiceDep) -> Response:
    """Commit offsets; answers 204 once the catalog transaction is durable.

    A member commits with its ``member_id`` and current ``generation`` only partitions it owns
    (409 40902 otherwise). Without ``member_id`` only while the group has no members (409 40903).
    """
    if body.member_id is not None and body.generation is None:
        raise InvalidParameterError("a commit with member_id needs its generation")
    offsets = [OffsetCommit(o.topic, o.partition, o.offset, o.metadata) for o in body.offsets]
    await service.commit(group, offsets, member_id=body.member_id, generation=body.generation)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{group}/offsets", response_model=OffsetsOut, responses=error_responses(ErrorCode.UNKNOWN_GROUP))
async def get_offsets(group: GroupId, service: GroupServiceDep) -> OffsetsOut:
    """The group's committed offsets with each partition's high watermark and lag."""
    lags = await service.offsets(group)
    return OffsetsOut(group_id=group, offsets=[_offset_out(lag) for lag in lags])


@router.post(
    "/{group}/offsets/reset",
    response_model=ResetOut,
    dependencies=[JsonBody],
    responses=error_responses(
        ErrorCode.GROUP_NOT_EMPTY,
        ErrorCode.UNKNOWN_TOPIC,
        ErrorCode.UNKNOWN_PARTITION,
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    ),
)
async def reset_offsets(group: GroupId, body: ResetIn, service: GroupServiceDep) -> ResetOut:
    """Reset committed offsets like ``kafka-consumer-groups --reset-offsets`` (409 while it has members).

    Targets are clamped into each partition's ``[log_start_offset, high_watermark]``; ``dry_run``
    answers the plan without applying it.
    """
    plan = await service.reset_offsets(
        group,
        topics=body.topics,
        partitions=body.partitions,
        to=body.to,
        value=body.value,
        dry_run=body.dry_run,
    )
    return ResetOut(
        group_id=group,
        dry_run=body.dry_run,
        offsets=[
            ResetEntryOut(
                topic=e.topic, partition=e.partition, previous_offset=e.previous_offset, offset=e.offset
            )
            for e in plan
        ],
    )
