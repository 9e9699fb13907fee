"""``/v1/topics``: list, create, describe, grow and delete topics, and read or change their configs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from app.bounds import INT16_MAX, INT32_MAX, spec_bounds
from app.deps import JsonBody, TopicServiceDep
from app.error_codes import ErrorCode
from app.errors import error_responses
from app.security.acl import Operation, ResourceType
from app.security.authorizer_middleware import authorize, authorized_operations, require
from app.topics import TopicConfigs, TopicInfo
from app.topics.service import TopicService

# JsonBody lives in app.deps; re-exported here for routes that imported it from this module first.
__all__ = ["IncludeAuthorizedOperations", "JsonBody", "router"]


#: ``?include_authorized_operations=true`` (KIP-430): the caller's operations on the resource.
IncludeAuthorizedOperations = Annotated[
    bool, Query(description="Add `authorized_operations`: what the caller may do here (KIP-430).")
]

router = APIRouter(prefix="/v1/topics", tags=["topics"])

ConfigValueOut = int | float | str | None


class TopicSummary(BaseModel):
    name: str
    topic_id: str
    partition_count: int
    replication_factor: int
    records: int | None = Field(
        None,
        description="Only with `stats=true`: records held (high watermark - log start offset, summed "
        "over the partitions this broker holds a replica of); null when it holds none.",
    )


class TopicList(BaseModel):
    topics: list[TopicSummary]
    total: int = Field(description="Topics matching `name_contains`, before `offset` and `limit`.")


class PartitionOut(BaseModel):
    partition: int
    leader: int | None
    replicas: list[int]
    isr: list[int]
    leader_epoch: int
    log_start_offset: int
    high_watermark: int
    log_end_offset: int


class TopicOut(BaseModel):
    name: str
    topic_id: str | None = Field(description="Null in a validate_only answer: nothing was created.")
    partition_count: int
    replication_factor: int
    partitions: list[PartitionOut]
    configs: dict[str, ConfigValueOut] = Field(description="Effective value of every topic config.")
    defaults: list[str] = Field(description="The configs at the broker default (not set on the topic).")
    not_ready_partitions: list[int] | None = Field(
        None,
        description="Only in a 202 answer (clustered mode): the partitions that some live broker could not "
        "serve yet when `timeout_ms` ran out. They become usable once their leader is elected.",
    )
    authorized_operations: list[str] | None = Field(
        None,
        exclude_if=lambda v: v is None,
        description="With include_authorized_operations: what the caller may do to the topic.",
    )


READY_TIMEOUT = Annotated[
    int,
    Query(
        ge=0,
        le=300_000,
        description="Clustered mode: how long to wait until every new partition has a leader accepting "
        "acks=all and every live broker knows it (201); past it the answer is 202 with "
        "`not_ready_partitions`. A single node answers at once.",
    ),
]


class TopicConfigsOut(BaseModel):
    topic: str
    configs: dict[str, ConfigValueOut] = Field(description="Effective value of every topic config.")
    defaults: list[str] = Field(description="The configs at the broker default (not set on the topic).")


class CreateTopic(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "example": {"name": "orders", "partitions": 3, "configs": {"retention.ms": 86400000}}
        },
    )

    name: str = Field(description="1 to 249 of ASCII letters, digits, '.', '_' and '-'; not '.' or '..'.")
    partitions: Annotated[int, spec_bounds(1, INT32_MAX)] | None = Field(
        None,
        description="Default: the broker's num_partitions; at most max_partitions_per_topic (else 42203).",
    )
    replication_factor: Annotated[int, spec_bounds(1, INT16_MAX)] | None = Field(
        None, description="Must be 1 on a single broker (else 42205)."
    )
    configs: dict[str, Any] = Field(
        default_factory=dict, description="Topic config overrides, name → value (see docs/configuration.md)."
    )


class UpdateTopic(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    partitions: Annotated[int, spec_bounds(1, INT32_MAX)] = Field(
        description="The new partition count; it can only be raised (else 42203)."
    )


class UpdateTopicConfigs(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"example": {"configs": {"retention.ms": 3600000, "segment.ms": None}}},
    )

    configs: dict[str, Any] = Field(
        description="Configs to change, merged into the topic's; null resets one to the broker default."
    )


def _topic_out(info: TopicInfo) -> TopicOut:
    return TopicOut(
        name=info.name,
        topic_id=info.topic_id,
        partition_count=info.partition_count,
        replication_factor=info.replication_factor,
        partitions=[
            PartitionOut(
                partition=p.partition,
                leader=p.leader,
                replicas=p.replicas,
                isr=p.isr,
                leader_epoch=p.leader_epoch,
                log_start_offset=p.log_start_offset,
                high_watermark=p.high_watermark,
                log_end_offset=p.log_end_offset,
            )
            for p in info.partitions
        ],
        configs=info.configs,
        defaults=info.defaults,
    )


def _configs_out(configs: TopicConfigs) -> TopicConfigsOut:
    return TopicConfigsOut(topic=configs.topic, configs=configs.configs, defaults=configs.defaults)


@router.get("", response_model=TopicList, responses=error_responses())
async def list_topics(
    request: Request,
    service: TopicServiceDep,
    name_contains: Annotated[
        str | None, Query(max_length=249, description="Only topics whose name contains this text.")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Topics to skip, by name.")] = 0,
    limit: Annotated[
        int | None, Query(ge=1, le=10_000, description="Most topics in the answer (default: all).")
    ] = None,
    stats: Annotated[bool, Query(description="Add each listed topic's record count.")] = False,
) -> TopicList:
    """Every topic the caller may DESCRIBE, by name; filtered by `name_contains` and paged by
    `offset`/`limit`."""
    topics = [
        t for t in await service.list_topics()
        if authorize(request.scope, Operation.DESCRIBE, ResourceType.TOPIC, t.name)
    ]
    if name_contains:
        topics = [t for t in topics if name_contains in t.name]
    page = topics[offset : None if limit is None else offset + limit]
    counts = service.record_counts([t.name for t in page]) if stats else {}
    return TopicList(
        topics=[
            TopicSummary(
                name=t.name,
                topic_id=t.topic_id,
                partition_count=t.partition_count,
                replication_factor=t.replication_factor,
                records=counts.get(t.name),
            )
            for t in page
        ],
        total=len(topics),
    )


@router.post(
    "",
    response_model=TopicOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[JsonBody],
    responses={
        200: {"model": TopicOut, "description": "validate_only: what would be created (nothing was)."},
        202: {
            "model": TopicOut,
            "description": "Created, but some partitions were not ready within timeout_ms.",
        },
        **error_responses(
            ErrorCode.INVALID_REQUEST,
            ErrorCode.TOPIC_EXISTS,
            ErrorCode.INVALID_CONFIG,
            ErrorCode.INVALID_TOPIC_NAME,
            ErrorCode.INVALID_PARTITIONS,
            ErrorCode.INVALID_REPLICATION_FACTOR,
            ErrorCode.REQUEST_TOO_LARGE,
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            ErrorCode.INSUFFICIENT_STORAGE,
        ),
    },
)
async def create_topic(
    request: Request,
    body: CreateTopic,
    service: TopicServiceDep,
    response: Response,
    validate_only: Annotated[bool, Query(description="Validate and answer 200 without creating.")] = False,
    timeout_ms: READY_TIMEOUT = 30_000,
) -> TopicOut:
    """Create a topic: 201 once it is usable through every broker, 202 if that took longer than
    `timeout_ms`, or 200 with what would be created under validate_only."""
    require(request.scope, Operation.CREATE, ResourceType.TOPIC, body.name, or_cluster=True)
    info = await service.create_topic(
        body.name,
        partitions=body.partitions,
        replication_factor=body.replication_factor,
        configs=body.configs,
        validate_only=validate_only,
    )
    if validate_only:
        response.status_code = status.HTTP_200_OK
        return _topic_out(info)
    return await _when_ready(service, info, timeout_ms, response)


async def _when_ready(
    service: TopicService, info: TopicInfo, timeout_ms: int, response: Response
) -> TopicOut:
    pending = await service.wait_ready(info.name, info.partition_count, timeout_ms)
    if not pending:
        return _topic_out(await service.get_topic(info.name))
    response.status_code = status.HTTP_202_ACCEPTED
    out = _topic_out(info)
    out.not_ready_partitions = pending
    return out


@router.get("/{topic}", response_model=TopicOut, responses=error_responses(ErrorCode.UNKNOWN_TOPIC))
async def get_topic(
    request: Request, topic: str, service: TopicServiceDep,
    include_authorized_operations: IncludeAuthorizedOperations = False,
) -> TopicOut:
    """The topic's partitions (leader, replicas, ISR, offsets) and effective configs."""
    out = _topic_out(await service.get_topic(topic))
    if include_authorized_operations:
        out.authorized_operations = authorized_operations(request.scope, ResourceType.TOPIC, topic)
    return out


@router.patch(
    "/{topic}",
    response_model=TopicOut,
    dependencies=[JsonBody],
    responses=error_responses(
        ErrorCode.INVALID_REQUEST,
        ErrorCode.UNKNOWN_TOPIC,
        ErrorCode.INVALID_PARTITIONS,
        ErrorCode.REQUEST_TOO_LARGE,
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    ),
)
async def update_topic(
    topic: str,
    body: UpdateTopic,
    service: TopicServiceDep,
    response: Response,
    timeout_ms: READY_TIMEOUT = 30_000,
) -> TopicOut:
    """Raise the partition count (lowering it is 422, error_code 42203; the same count changes nothing).

    In clustered mode the answer waits, as a creation does, until the new partitions are usable
    through every broker (200), or answers 202 with `not_ready_partitions` after `timeout_ms`.
    """
    info = await service.add_partitions(topic, body.partitions)
    return await _when_ready(service, info, timeout_ms, response)


@router.delete(
    "/{topic}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(ErrorCode.UNKNOWN_TOPIC),
)
async def delete_topic(topic: str, service: TopicServiceDep) -> Response:
    """Delete the topic and all its data."""
    await service.delete_topic(topic)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{topic}/configs", response_model=TopicConfigsOut, responses=error_responses(ErrorCode.UNKNOWN_TOPIC)
)
async def get_topic_configs(topic: str, service: TopicServiceDep) -> TopicConfigsOut:
    """Every config's effective value, and which are at the broker default."""
    return _configs_out(await service.get_configs(topic))


@router.put(
    "/{topic}/configs",
    response_model=TopicConfigsOut,
    dependencies=[JsonBody],
    responses=error_responses(
        ErrorCode.INVALID_REQUEST,
        ErrorCode.UNKNOWN_TOPIC,
        ErrorCode.INVALID_CONFIG,
        ErrorCode.REQUEST_TOO_LARGE,
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    ),
)
async def update_topic_configs(
    topic: str, body: UpdateTopicConfigs, service: TopicServiceDep
) -> TopicConfigsOut:
    """Merge the given configs into the topic's (null resets one); the logs pick them up at once."""
    return _configs_out(await service.update_configs(topic, body.configs))
