"""Partition offsets: ``GET /v1/topics/{topic}/partitions/{partition}/offsets[?timestamp=ms]``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.broker import Broker
from app.broker.produce import INT32_MAX, INT64_MAX
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
