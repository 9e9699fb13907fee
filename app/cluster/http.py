"""The internal replication endpoints, and the answer to a request for a partition led elsewhere.

``GET /internal/v1/replication/{topic}/{partition}`` — a follower's fetch (Kafka's replica Fetch):
query ``replica_id``, ``leader_epoch`` (the follower's view; another epoch is refused with 50304
and the leader's ``leader_epoch``), ``offset`` (the follower's log end), ``max_bytes``,
``max_wait_ms`` (long-poll while the leader has nothing past ``offset``). The answer is
``application/octet-stream``: whole record batches exactly as stored, with headers
``X-High-Watermark``, ``X-Log-Start-Offset``, ``X-Log-End-Offset`` and ``X-Leader-Epoch``.
An offset outside the leader's log is 416 with ``log_start_offset`` and ``log_end_offset``.

``POST /internal/v1/replication/fetch`` — the same for every partition a follower follows from this
leader, in one request that waits until any of them has records (the framing is in
``app/cluster/fetch_wire.py``); a partition this broker does not lead, or an offset outside its
log, is an error of that partition's frame, not of the request. The replica fetchers use this one.

``GET /internal/v1/replication/{topic}/{partition}/epoch-end`` — OffsetsForLeaderEpoch (KIP-101):
query ``leader_epoch`` and ``epoch``; answers ``{"epoch", "end_offset"}``.

Both are left out of the OpenAPI document: they are broker-to-broker, not part of the client API.

``POST /v1/topics/{topic}/partitions/{partition}/reassign`` (public, in the spec) starts moving a
partition to a new replica set; 202 with the partition's state while it runs.

A produce or fetch for a partition this broker does not lead (or holds no servable replica of)
raises ``NotLeaderError``; when the leader is known the answer is ``307 Temporary Redirect`` to the
same path and query on the leader's advertised URL (method and body kept, so any HTTP client that
follows redirects lands on the leader), with the problem+json body (error_code 50304, leader_id,
leader_url) for clients that do not follow; without a known leader it is 503 with Retry-After.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from app.cluster.errors import NotLeaderError
from app.cluster.fetch_wire import encode_fetched
from app.cluster.partition import FetchPartition
from app.error_codes import ErrorCode
from app.errors import PROBLEM_JSON, error_responses, problem_body, problem_response
from app.errors_base import TidelogError
from app.topics.errors import InvalidReplicationFactorError

__all__ = ["install_cluster_handlers", "public_router", "router"]

router = APIRouter(prefix="/internal/v1/replication", include_in_schema=False)
public_router = APIRouter(prefix="/v1", tags=["cluster"])


class ReassignRequest(BaseModel):
    replicas: list[int] = Field(
        min_length=1, max_length=1000, description="The new replica set; the first is the preferred leader."
    )


class ReassignmentOut(BaseModel):
    topic: str
    partition: int
    leader: int | None
    leader_epoch: int
    replicas: list[int] = Field(description="Old and new replicas while the reassignment runs.")
    isr: list[int]
    target_replicas: list[int] | None = Field(description="The replica set being moved to.")


@public_router.post(
    "/topics/{topic}/partitions/{partition}/reassign",
    status_code=202,
    response_model=ReassignmentOut,
    responses=error_responses(
        ErrorCode.UNKNOWN_TOPIC, ErrorCode.UNKNOWN_PARTITION, ErrorCode.INVALID_REPLICATION_FACTOR
    ),
)
async def reassign_partition(
    request: Request, topic: str, partition: Annotated[int, Path(ge=0)], body: ReassignRequest
) -> ReassignmentOut:
    """Move a partition's replicas (clustered mode): the new replicas catch up as followers, then
    the controller switches to the new set once all of them are in the ISR (docs/cluster.md)."""
    manager = getattr(request.app.state, "cluster", None)
    if manager is None:
        raise InvalidReplicationFactorError(
            "reassigning replicas needs clustered mode (--cluster): a single broker holds every replica",
            available_brokers=1,
        )
    moved = await manager.reassign(topic, partition, body.replicas)
    return ReassignmentOut(
        topic=moved.topic, partition=moved.partition, leader=moved.leader, leader_epoch=moved.leader_epoch,
        replicas=list(moved.replicas), isr=list(moved.isr),
        target_replicas=None if moved.target_replicas is None else list(moved.target_replicas),
    )


class _NotClustered(TidelogError):
    code = ErrorCode.NOT_FOUND


def _manager(request: Request) -> Any:
    manager = getattr(request.app.state, "cluster", None)
    if manager is None:
        raise _NotClustered("this broker does not run in clustered mode")
    return manager


@router.get("/{topic}/readiness")
async def readiness(request: Request, topic: str, partitions: Annotated[int, Query(ge=1, le=100_000)]) -> Any:
    """Which partitions of a new topic this broker cannot serve yet (``wait_ready`` of the creator).

    Declared before the replica fetch route, whose ``/{topic}/{partition}`` would match it too.
    """
    return {"not_ready": await _manager(request).local_not_ready(topic, partitions)}


@router.get("/{topic}/{partition}")
async def replica_fetch(
    request: Request,
    topic: str,
    partition: int,
    replica_id: Annotated[int, Query(ge=0)],
    leader_epoch: Annotated[int, Query(ge=0)],
    offset: Annotated[int, Query(ge=0)],
    max_bytes: Annotated[int, Query(ge=1, le=64 * 1024 * 1024)] = 4 * 1024 * 1024,
    max_wait_ms: Annotated[int, Query(ge=0, le=30_000)] = 500,
) -> Response:
    result = await _manager(request).serve_replica_fetch(
        topic, partition, replica_id=replica_id, leader_epoch=leader_epoch, offset=offset,
        max_bytes=max_bytes, max_wait_ms=max_wait_ms,
    )
    return Response(
        result.data,
        media_type="application/octet-stream",
        headers={
            "X-High-Watermark": str(result.high_watermark),
            "X-Log-Start-Offset": str(result.log_start_offset),
            "X-Log-End-Offset": str(result.log_end_offset),
            "X-Leader-Epoch": str(result.leader_epoch),
        },
    )


class ReplicaFetchPartition(BaseModel):
    topic: str = Field(min_length=1, max_length=249)
    partition: int = Field(ge=0, le=2**31 - 1)
    leader_epoch: int = Field(ge=0, le=2**31 - 1)
    offset: int = Field(ge=0, le=2**63 - 1)
    max_bytes: int = Field(4 * 1024 * 1024, ge=1, le=64 * 1024 * 1024)


class ReplicaFetchRequest(BaseModel):
    replica_id: int = Field(ge=0, le=2**31 - 1)
    max_wait_ms: int = Field(500, ge=0, le=30_000)
    max_bytes: int = Field(16 * 1024 * 1024, ge=1, le=256 * 1024 * 1024)
    partitions: list[ReplicaFetchPartition] = Field(max_length=100_000)


@router.post("/fetch")
async def replica_fetch_many(request: Request, body: ReplicaFetchRequest) -> Response:
    """A follower's fetch of all the partitions it follows from this leader (Kafka's replica Fetch)."""
    answers = await _manager(request).serve_replica_fetches(
        replica_id=body.replica_id, max_bytes=body.max_bytes, max_wait_ms=body.max_wait_ms,
        partitions=[
            FetchPartition(p.topic, p.partition, p.leader_epoch, p.offset, p.max_bytes)
            for p in body.partitions
        ],
    )
    return Response(encode_fetched(answers), media_type="application/octet-stream")


@router.get("/{topic}/{partition}/high-watermark")
async def high_watermark(request: Request, topic: str, partition: int) -> Any:
    """The leader's high watermark now: a follower serving a stream or a group poll waits until its
    own log covers it (ReadIndex) before it answers."""
    return {"high_watermark": _manager(request).leader_high_watermark(topic, partition)}


@router.get("/{topic}/{partition}/epoch-end")
async def epoch_end(
    request: Request,
    topic: str,
    partition: int,
    leader_epoch: Annotated[int, Query(ge=0)],
    epoch: Annotated[int, Query(ge=-1)],
) -> dict[str, int]:
    found, end = _manager(request).end_offset_for_epoch(
        topic, partition, leader_epoch=leader_epoch, epoch=epoch
    )
    return {"epoch": found, "end_offset": end}


async def _not_leader(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotLeaderError)
    internal = request.url.path.startswith("/internal/")
    if exc.leader_url is None or internal:
        return problem_response(exc.code, exc.detail, extra=exc.extra)
    location = exc.leader_url.rstrip("/") + request.url.path
    if request.url.query:
        location += "?" + request.url.query
    body = problem_body(exc.code, exc.detail, **exc.extra)
    body["status"] = 307
    return JSONResponse(
        jsonable_encoder(body), status_code=307, media_type=PROBLEM_JSON, headers={"Location": location}
    )


def install_cluster_handlers(app: FastAPI) -> None:
    """Register the internal router and the redirect answer of ``NotLeaderError``."""
    app.include_router(router)
    app.include_router(public_router)
    app.add_exception_handler(NotLeaderError, _not_leader)
