"""``/v1/log-dirs``: the broker's data directory, its disk and every partition's size (DescribeLogDirs).

Kafka's DescribeLogDirs (KIP-113, with KIP-827's total and usable bytes) is asked of each broker; so
is this route: it answers for the broker that serves it, with that broker's id.
"""

from __future__ import annotations

import shutil

from anyio import to_thread
from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy.engine import make_url

from app.deps import BrokerDep, SettingsDep
from app.errors import error_responses

router = APIRouter(prefix="/v1", tags=["cluster"])


class LogDirPartitionOut(BaseModel):
    topic: str
    partition: int
    size_bytes: int = Field(description="Bytes of the partition's segments and indexes on this broker.")
    segment_count: int
    log_start_offset: int
    log_end_offset: int


class LogDirOut(BaseModel):
    path: str = Field(description="The data directory, as the broker resolved it.")
    total_bytes: int = Field(description="Size of the filesystem holding the directory (KIP-827).")
    usable_bytes: int = Field(description="Bytes still free for the broker on that filesystem (KIP-827).")
    size_bytes: int = Field(description="Bytes of every partition in the directory.")
    partitions: list[LogDirPartitionOut]


class LogDirsOut(BaseModel):
    broker_id: int = Field(description="The broker that answered: every broker answers for itself.")
    catalog: str = Field(description="The catalog's database kind: sqlite or postgresql.")
    log_dirs: list[LogDirOut]


@router.get("/log-dirs", response_model=LogDirsOut, responses=error_responses())
async def describe_log_dirs(settings: SettingsDep, broker: BrokerDep) -> LogDirsOut:
    """This broker's data directory: disk size and free space, and each partition's size (KIP-113)."""
    directory = settings.data_dir.resolve()
    usage = await to_thread.run_sync(shutil.disk_usage, directory)
    partitions = [
        LogDirPartitionOut(
            topic=topic,
            partition=partition,
            size_bytes=size,
            segment_count=segments,
            log_start_offset=start,
            log_end_offset=end,
        )
        for topic, partition, size, segments, start, end in sorted(broker.partition_sizes())
    ]
    return LogDirsOut(
        broker_id=settings.broker_id,
        catalog=make_url(settings.effective_catalog_url).get_backend_name(),
        log_dirs=[
            LogDirOut(
                path=str(directory),
                total_bytes=usage.total,
                usable_bytes=usage.free,
                size_bytes=sum(p.size_bytes for p in partitions),
                partitions=partitions,
            )
        ],
    )
