"""``/v1/connectors`` and ``/v1/connector-plugins``: Kafka Connect's REST API, path for path.

The JSON shapes are Kafka Connect's, so its tooling ports by a ``/v1`` prefix; errors are tidelog's
problem+json. Thin handlers over ``app.connect.ConnectService``. ACL (docs/connect.md): every route
is on the CLUSTER resource, DESCRIBE to read and ALTER to change.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import StreamingResponse

from app.bounds import INT32_MAX, INT64_MAX, INT64_MIN
from app.connect import ConnectService
from app.deps import JsonBody
from app.error_codes import ErrorCode
from app.errors import error_responses
from app.groups.service import GroupService
from app.sse import SSE_HEADERS, format_event

router = APIRouter(prefix="/v1", tags=["connect"])

Name = Annotated[str, Path(min_length=1, max_length=255, description="The connector's name.")]
TaskId = Annotated[int, Path(ge=0, le=INT32_MAX, description="The task's id (0, 1, …).")]
ConfigValue = str | Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)] | float | bool | None
ConfigMap = dict[str, ConfigValue]
_UNKNOWN = error_responses(ErrorCode.UNKNOWN_CONNECTOR)
_CONFIG_ERRORS = (ErrorCode.INVALID_CONNECTOR_CONFIG, ErrorCode.UNKNOWN_CONNECTOR_PLUGIN)


def get_connect_service(request: Request) -> ConnectService:
    service: ConnectService = request.app.state.connect_service
    return service


def get_group_service(request: Request) -> GroupService:
    service: GroupService = request.app.state.group_service
    return service


ConnectDep = Annotated[ConnectService, Depends(get_connect_service)]
GroupsDep = Annotated[GroupService, Depends(get_group_service)]


class ConnectorTaskId(BaseModel):
    connector: str
    task: int


class ConnectorInfo(BaseModel):
    name: str
    config: dict[str, str | None] = Field(description="PASSWORD settings show as [hidden].")
    tasks: list[ConnectorTaskId]
    type: Literal["source", "sink"]


class CreateConnectorIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "name": "lines",
                "config": {"connector.class": "file-source", "file": "/var/log/app.log", "topic": "lines"},
            }
        },
    )

    name: str = Field(min_length=1, max_length=255)
    config: ConfigMap
    initial_state: Literal["RUNNING", "PAUSED", "STOPPED"] = Field(
        "RUNNING", description="KIP-980: the state the connector starts in."
    )


class StateOut(BaseModel):
    state: str = Field(description="UNASSIGNED, RUNNING, PAUSED, STOPPED, FAILED or RESTARTING.")
    worker_id: str
    trace: str | None = Field(None, description="The failure, when FAILED.")


class TaskStateOut(StateOut):
    id: int


class ConnectorStatus(BaseModel):
    name: str
    connector: StateOut
    tasks: list[TaskStateOut]
    type: Literal["source", "sink"]


class TaskInfo(BaseModel):
    id: ConnectorTaskId
    config: dict[str, str | None]


class OffsetEntry(BaseModel):
    partition: dict[str, Any]
    offset: dict[str, Any] | None


class ConnectorOffsets(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "offsets": [{"partition": {"filename": "/var/log/app.log"}, "offset": {"position": 4096}}]
            }
        }
    )

    offsets: list[OffsetEntry]


class Message(BaseModel):
    message: str


class ActiveTopics(BaseModel):
    topics: list[str]


class PluginInfo(BaseModel):
    class_: str = Field(alias="class")
    type: Literal["source", "sink"]
    version: str


@router.get("/connectors", response_model=None, responses=error_responses())
async def list_connectors(
    connect: ConnectDep,
    expand: Annotated[list[Literal["status", "info"]] | None, Query(description="KIP-465")] = None,
) -> list[str] | dict[str, dict[str, Any]]:
    """The connectors' names; with ``expand=status`` and/or ``expand=info``, each one's details."""
    if expand:
        return await connect.expanded(expand)
    return await connect.names()


@router.post(
    "/connectors",
    status_code=status.HTTP_201_CREATED,
    response_model=ConnectorInfo,
    dependencies=[JsonBody],
    responses=error_responses(ErrorCode.CONNECTOR_EXISTS, *_CONFIG_ERRORS),
)
async def create_connector(body: CreateConnectorIn, connect: ConnectDep) -> dict[str, Any]:
    """Create a connector (409 40930 when the name is taken, 422 42230 for an invalid config)."""
    return await connect.create(body.name, body.config, body.initial_state)


@router.get("/connectors/{name}", response_model=ConnectorInfo, responses=_UNKNOWN)
async def get_connector(name: Name, connect: ConnectDep) -> dict[str, Any]:
    """The connector's config and tasks."""
    return await connect.info(name)


@router.delete("/connectors/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=_UNKNOWN)
async def delete_connector(name: Name, connect: ConnectDep) -> Response:
    """Delete the connector; its tasks stop. Source offsets are kept for a connector of the same name."""
    await connect.delete(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/connectors/{name}/config", response_model=dict[str, str | None], responses=_UNKNOWN)
async def get_connector_config(name: Name, connect: ConnectDep) -> dict[str, str | None]:
    """The connector's config (PASSWORD settings as [hidden])."""
    return await connect.config(name)


@router.put(
    "/connectors/{name}/config",
    response_model=ConnectorInfo,
    dependencies=[JsonBody],
    responses={201: {"model": ConnectorInfo, "description": "Created"}, **error_responses(*_CONFIG_ERRORS)},
)
async def put_connector_config(
    name: Name, body: ConfigMap, connect: ConnectDep, response: Response
) -> dict[str, Any]:
    """Create the connector with this config (201), or replace its config (200). A ``[hidden]`` value
    keeps the stored secret."""
    info, created = await connect.put_config(name, body)
    if created:
        response.status_code = status.HTTP_201_CREATED
    return info


@router.patch(
    "/connectors/{name}/config",
    response_model=ConnectorInfo,
    dependencies=[JsonBody],
    responses=error_responses(ErrorCode.UNKNOWN_CONNECTOR, *_CONFIG_ERRORS),
)
async def patch_connector_config(name: Name, body: ConfigMap, connect: ConnectDep) -> dict[str, Any]:
    """Merge these settings into the config (KIP-477); a ``null`` removes a setting."""
    return await connect.patch_config(name, body)


@router.get(
    "/connectors/{name}/status",
    response_model=ConnectorStatus,
    response_model_exclude_none=True,
    responses=_UNKNOWN,
)
async def get_connector_status(name: Name, connect: ConnectDep) -> dict[str, Any]:
    """The state of the connector and of each task, with the trace of a failure."""
    return await connect.status(name)


@router.get("/connectors/{name}/tasks", response_model=list[TaskInfo], responses=_UNKNOWN)
async def get_connector_tasks(name: Name, connect: ConnectDep) -> list[dict[str, Any]]:
    """Each task's id and config."""
    return await connect.tasks(name)


@router.get(
    "/connectors/{name}/tasks/{task_id}/status",
    response_model=TaskStateOut,
    response_model_exclude_none=True,
    responses=error_responses(ErrorCode.UNKNOWN_CONNECTOR, ErrorCode.UNKNOWN_CONNECTOR_TASK),
)
async def get_task_status(name: Name, task_id: TaskId, connect: ConnectDep) -> dict[str, Any]:
    """One task's state."""
    return await connect.task_status(name, task_id)


@router.post(
    "/connectors/{name}/restart",
    response_model=ConnectorStatus,
    response_model_exclude_none=True,
    status_code=status.HTTP_202_ACCEPTED,
    responses={204: {"description": "Only the connector was restarted"}, **_UNKNOWN},
)
async def restart_connector(
    name: Name,
    connect: ConnectDep,
    include_tasks: Annotated[bool, Query(alias="includeTasks")] = False,
    only_failed: Annotated[bool, Query(alias="onlyFailed")] = False,
) -> Any:
    """Restart the connector (204), or with ``includeTasks``/``onlyFailed`` (KIP-745) also its (failed)
    tasks, answering 202 with the status showing RESTARTING."""
    answer = await connect.restart(name, include_tasks=include_tasks, only_failed=only_failed)
    if answer is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return answer


@router.post(
    "/connectors/{name}/tasks/{task_id}/restart",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(ErrorCode.UNKNOWN_CONNECTOR, ErrorCode.UNKNOWN_CONNECTOR_TASK),
)
async def restart_task(name: Name, task_id: TaskId, connect: ConnectDep) -> Response:
    """Restart one task."""
    await connect.restart_task(name, task_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _target(
    connect: ConnectService, name: str, state: Literal["RUNNING", "PAUSED", "STOPPED"]
) -> Response:
    await connect.set_target_state(name, state)
    return Response(status_code=status.HTTP_202_ACCEPTED)


@router.put("/connectors/{name}/pause", status_code=status.HTTP_202_ACCEPTED, responses=_UNKNOWN)
async def pause_connector(name: Name, connect: ConnectDep) -> Response:
    """Pause the connector's tasks (they stay assigned, state PAUSED)."""
    return await _target(connect, name, "PAUSED")


@router.put("/connectors/{name}/stop", status_code=status.HTTP_202_ACCEPTED, responses=_UNKNOWN)
async def stop_connector(name: Name, connect: ConnectDep) -> Response:
    """Stop the connector (KIP-875): its tasks shut down; its offsets may then be altered."""
    return await _target(connect, name, "STOPPED")


@router.put("/connectors/{name}/resume", status_code=status.HTTP_202_ACCEPTED, responses=_UNKNOWN)
async def resume_connector(name: Name, connect: ConnectDep) -> Response:
    """Resume a paused or stopped connector."""
    return await _target(connect, name, "RUNNING")


@router.get("/connectors/{name}/offsets", response_model=ConnectorOffsets, responses=_UNKNOWN)
async def get_connector_offsets(name: Name, connect: ConnectDep, groups: GroupsDep) -> dict[str, Any]:
    """Source offsets per source partition, or a sink's committed offsets (group ``connect-<name>``)."""

    async def group_offsets(group: str) -> Any:
        from app.groups.errors import UnknownGroupError

        try:
            return await groups.offsets(group)
        except UnknownGroupError:
            return []  # the sink has not consumed yet

    return await connect.offsets(name, group_offsets)


async def _alter_group(groups: GroupService, group: str, changes: list[tuple[str, int, int | None]]) -> None:
    # The group's own reset (it refuses while the group still has members, as Kafka does); an offset
    # of null leaves the partition's commit as it is (the group has no per-partition delete).
    for topic, partition, offset in changes:
        if offset is not None:
            await groups.reset_offsets(
                group, topics=[topic], partitions=[partition], to="offset", value=offset, dry_run=False
            )


@router.patch(
    "/connectors/{name}/offsets",
    response_model=Message,
    dependencies=[JsonBody],
    responses=error_responses(
        ErrorCode.UNKNOWN_CONNECTOR,
        ErrorCode.CONNECTOR_NOT_STOPPED,
        ErrorCode.GROUP_NOT_EMPTY,
        ErrorCode.UNKNOWN_TOPIC,
        ErrorCode.UNKNOWN_PARTITION,
    ),
)
async def alter_connector_offsets(
    name: Name, body: ConnectorOffsets, connect: ConnectDep, groups: GroupsDep
) -> dict[str, str]:
    """Alter offsets of a STOPPED connector (KIP-875); an offset of ``null`` forgets a source partition."""
    entries = [e.model_dump() for e in body.offsets]
    await connect.alter_offsets(name, entries, lambda g, c: _alter_group(groups, g, c))
    return {"message": "The offsets for this connector have been altered successfully"}


@router.delete(
    "/connectors/{name}/offsets",
    response_model=Message,
    responses=error_responses(ErrorCode.UNKNOWN_CONNECTOR, ErrorCode.CONNECTOR_NOT_STOPPED),
)
async def reset_connector_offsets(name: Name, connect: ConnectDep, groups: GroupsDep) -> dict[str, str]:
    """Forget every offset of a STOPPED connector: it starts over."""

    async def delete_group(group: str) -> None:
        from app.groups.errors import UnknownGroupError

        with contextlib.suppress(UnknownGroupError):
            await groups.delete(group)

    await connect.reset_offsets(name, delete_group)
    return {"message": "The offsets for this connector have been reset successfully"}


@router.get("/connectors/{name}/topics", response_model=dict[str, ActiveTopics], responses=_UNKNOWN)
async def get_connector_topics(name: Name, connect: ConnectDep) -> dict[str, dict[str, list[str]]]:
    """The topics the connector used since its last reset (KIP-558)."""
    return await connect.topics(name)


@router.put("/connectors/{name}/topics/reset", responses=_UNKNOWN)
async def reset_connector_topics(name: Name, connect: ConnectDep) -> Response:
    """Empty the connector's set of active topics."""
    await connect.reset_topics(name)
    return Response(status_code=status.HTTP_200_OK)


@router.get("/connector-plugins", response_model=list[PluginInfo], responses=error_responses())
async def list_connector_plugins(connect: ConnectDep) -> list[dict[str, str]]:
    """The installed connector types (built-ins and the ``tidelog.connectors`` entry points)."""
    return connect.list_plugins()


@router.get(
    "/connector-plugins/{plugin}/config",
    response_model=list[dict[str, Any]],
    responses=error_responses(ErrorCode.UNKNOWN_CONNECTOR_PLUGIN),
)
async def get_connector_plugin_config(
    plugin: Annotated[str, Path(max_length=255)], connect: ConnectDep
) -> list[dict[str, Any]]:
    """Every setting of a connector type (KIP-769), the runtime's common ones included."""
    return connect.plugin_config(plugin)


@router.put(
    "/connector-plugins/{plugin}/config/validate",
    response_model=dict[str, Any],
    dependencies=[JsonBody],
    responses=error_responses(ErrorCode.UNKNOWN_CONNECTOR_PLUGIN),
)
async def validate_connector_config(
    plugin: Annotated[str, Path(max_length=255)], body: ConfigMap, connect: ConnectDep
) -> dict[str, Any]:
    """Validate a config: Kafka's ConfigInfos, with ``error_count`` and each setting's errors."""
    return connect.validate(plugin, body)


@router.get(
    "/connect/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`status` events: one connector's status, when it changes",
        },
        **error_responses(),
    },
)
async def connect_events(request: Request, connect: ConnectDep) -> StreamingResponse:
    """Server-Sent Events of status changes: a ``status`` event (ConnectorStatus) per connector at the
    start and whenever its status changes, a ``deleted`` event (``{"name"}``) when one is deleted."""
    stopping: asyncio.Event = request.app.state.stopping

    async def events() -> Any:
        last: dict[str, dict[str, Any]] = {}
        quiet = 0
        yield b"retry: 1000\n\n"
        while not stopping.is_set():
            current = await connect.snapshot()
            for name, body in current.items():
                if last.get(name) != body:
                    quiet = 0
                    yield format_event("status", orjson.dumps(body))
            for name in set(last) - set(current):
                yield format_event("deleted", orjson.dumps({"name": name}))
            last = current
            try:
                await asyncio.wait_for(stopping.wait(), 0.5)
            except TimeoutError:
                quiet += 1
                if quiet % 30 == 0:  # a comment every ~15 s keeps proxies from closing an idle stream
                    yield b": keep-alive\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)
