"""``/v1/connect/workers`` and ``/v1/connect/tasks``: what ``tidelog connect`` workers call.

A worker heartbeats every second or so: the answer is the tasks it must run (with their configs, the
assignment's generation, the restart epoch and the connector's target state). Status reports and
source-offset commits carry the generation; a stale one gets 409 40932 and the worker stops the
task. ACL (docs/connect.md): CLUSTER ALTER.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field

from app.bounds import INT32_MAX, INT64_MAX
from app.deps import JsonBody
from app.error_codes import ErrorCode
from app.errors import error_responses
from app.routes.connect import ConnectDep, Name, TaskId

router = APIRouter(prefix="/v1/connect", tags=["connect-workers"])

WorkerId = Annotated[str, Path(min_length=1, max_length=255, description="The worker's id.")]
_STALE = error_responses(ErrorCode.STALE_TASK_GENERATION, ErrorCode.UNKNOWN_CONNECTOR)


class RunningTask(BaseModel):
    connector: str = Field(min_length=1, max_length=255)
    task: int = Field(ge=0, le=INT32_MAX)


class HeartbeatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    running: list[RunningTask] = Field(
        default_factory=list, max_length=100_000, description="The tasks the worker runs now."
    )
    session_timeout_ms: int | None = Field(
        None,
        ge=1000,
        le=300_000,
        description="The worker's lease; default connect_worker_session_timeout_ms.",
    )


class AssignmentOut(BaseModel):
    connector: str
    task: int
    generation: int
    restart_epoch: int
    target_state: str
    connector_config: dict[str, str | None]
    task_config: dict[str, str | None]


class HeartbeatOut(BaseModel):
    assignments: list[AssignmentOut]
    heartbeat_interval_ms: int


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    worker_id: str = Field(min_length=1, max_length=255)
    generation: int = Field(ge=0, le=INT64_MAX)
    state: str
    trace: str | None = Field(None, max_length=100_000)


class OffsetIn(BaseModel):
    partition: dict[str, Any]
    offset: dict[str, Any]


class CommitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    worker_id: str = Field(min_length=1, max_length=255)
    generation: int = Field(ge=0, le=INT64_MAX)
    offsets: list[OffsetIn] = Field(default_factory=list, max_length=100_000)
    topics: list[str] = Field(default_factory=list, max_length=10_000)


@router.post(
    "/workers/{worker_id}/heartbeat",
    response_model=HeartbeatOut,
    dependencies=[JsonBody],
    responses=error_responses(),
)
async def worker_heartbeat(worker_id: WorkerId, body: HeartbeatIn, connect: ConnectDep) -> dict[str, Any]:
    """Renew the worker's lease and get the tasks it must run."""
    running = [(t.connector, t.task) for t in body.running]
    assignments = await connect.heartbeat(worker_id, running, body.session_timeout_ms)
    timeout = body.session_timeout_ms or connect.worker_session_timeout_ms
    return {"assignments": [asdict(a) for a in assignments], "heartbeat_interval_ms": max(200, timeout // 10)}


@router.delete("/workers/{worker_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses())
async def worker_leave(worker_id: WorkerId, connect: ConnectDep) -> Response:
    """A worker leaving cleanly: its tasks are reassigned at once."""
    await connect.leave(worker_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(
    "/tasks/{name}/{task_id}/status",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[JsonBody],
    responses=_STALE,
)
async def report_task_status(name: Name, task_id: TaskId, body: StatusIn, connect: ConnectDep) -> Response:
    """A worker reports a task's state (RUNNING, PAUSED, FAILED with its trace)."""
    await connect.report_status(
        name,
        task_id,
        worker_id=body.worker_id,
        generation=body.generation,
        state=body.state,
        trace=body.trace,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/tasks/{name}/{task_id}/offsets",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[JsonBody],
    responses=_STALE,
)
async def commit_task_offsets(name: Name, task_id: TaskId, body: CommitIn, connect: ConnectDep) -> Response:
    """Store a source task's offsets (the contiguous acknowledged prefix) and the topics it used."""
    await connect.commit_task(
        name,
        task_id,
        worker_id=body.worker_id,
        generation=body.generation,
        offsets=[o.model_dump() for o in body.offsets],
        topics=body.topics,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
