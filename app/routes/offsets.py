"""Partition offsets: ``GET .../offsets[?timestamp=ms]`` and ``POST .../delete-records`` (DeleteRecords)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.broker import Broker
from app.broker.produce import INT32_MAX, INT64_MAX
from app.deps import JsonBody
from app.error_codes import ErrorCode
from app.errors import error_responses

__all__ = ["router"]

router = APIRouter(tags=["offsets"])

LATEST = -1  # Kafka's ListOffsets sentinels
EARLIEST = -2


class PartitionOffsets(BaseModel):
    log_start_offset: int = Field(..., description="The first offset still in the log.")
    high_watermark: int = Field(..., description="The offset after the last record consumers can read.")
    log_end_offset: int = Field(..., description="The offset the next appended record will get.")
    offset: int | None = Field(
        None,
        description="With ?timestamp: the earliest offset whose timestamp is >= it (null if none); "
        "timestamp=-1 gives the high watermark, -2 the log start (Kafka's LATEST/EARLIEST).",
    )


@router.get(
    "/v1/topics/{topic}/partitions/{partition}/offsets",
    response_model=PartitionOffsets,
    responses=error_responses(ErrorCode.UNKNOWN_TOPIC, ErrorCode.UNKNOWN_PARTITION),
    summary="Offsets of one partition, or the offset of a timestamp",
)
async def get_offsets(
    request: Request,
    topic: Annotated[str, Path(min_length=1, max_length=249)],
    partition: Annotated[int, Path(ge=0, le=INT32_MAX)],
    timestamp: Annotated[
        int | None, Query(ge=EARLIEST, le=INT64_MAX, description="Epoch ms; -1 latest, -2 earliest.")
    ] = None,
) -> JSONResponse:
    """``{log_start_offset, high_watermark, log_end_offset}``, plus ``offset`` when ``timestamp`` is given."""
    broker: Broker = request.app.state.broker
    handle = await broker.partition(topic, partition)
    state = handle.state()
    answer: dict[str, int | None] = {
        "log_start_offset": state.log_start_offset,
        "high_watermark": state.high_watermark,
        "log_end_offset": state.log_end_offset,
    }
    if timestamp == LATEST:
        answer["offset"] = state.high_watermark
    elif timestamp == EARLIEST:
        answer["offset"] = state.log_start_offset
    elif timestamp is not None:
        answer["offset"] = broker.offset_for_timestamp(topic, partition, timestamp)
    return JSONResponse(answer)


class DeleteRecordsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"offset": 1200}})

    offset: int = Field(
        ge=-1,
        le=INT64_MAX,
        description="The new log start: records below it are deleted. -1 means the high watermark "
        "(everything readable), as in Kafka's AdminClient.",
    )


class DeleteRecordsOut(BaseModel):
    topic: str
    partition: int
    low_watermark: int = Field(description="The partition's log start after the deletion.")


@router.post(
    "/v1/topics/{topic}/partitions/{partition}/delete-records",
    response_model=DeleteRecordsOut,
    dependencies=[JsonBody],
    responses=error_responses(
        ErrorCode.UNKNOWN_TOPIC,
        ErrorCode.UNKNOWN_PARTITION,
        ErrorCode.OFFSET_OUT_OF_RANGE,
        ErrorCode.NOT_LEADER,
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        ErrorCode.INVALID_REQUEST,
    ),
    summary="Delete the records below an offset (Kafka's DeleteRecords)",
)
async def delete_records(
    request: Request,
    topic: Annotated[str, Path(min_length=1, max_length=249)],
    partition: Annotated[int, Path(ge=0, le=INT32_MAX)],
    body: DeleteRecordsIn,
) -> DeleteRecordsOut:
    """Move the partition's log start to ``offset`` and delete the whole segments below it.

    The log start only moves forward (an offset at or below it changes nothing) and never beyond
    the high watermark (416, 41601). Reads of earlier offsets then answer 416 with the new log start.
    The new log start is durable before the answer; in a cluster the leader deletes and the
    followers follow on their next fetch.
    """
    broker: Broker = request.app.state.broker
    low = await broker.delete_records(topic, partition, body.offset)
    return DeleteRecordsOut(topic=topic, partition=partition, low_watermark=low)
