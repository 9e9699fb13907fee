"""tidelog storage engine: record batches and the partition log. No HTTP, no SQL."""

from storage.cleaner import CompactionStats
from storage.config import LogConfig
from storage.log import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, AppendResult, PartitionLog, ReadResult
from storage.records import (
    BatchHeader,
    Compression,
    Header,
    Record,
    RecordIn,
    TimestampType,
    decode_batch,
    decode_records,
    encode_batch,
    iter_batches,
    parse_header,
    validate_batch,
    with_base_offset,
    with_log_append_time,
)
from storage.recovery import RecoveryStats

__all__ = [
    "EARLIEST_TIMESTAMP",
    "LATEST_TIMESTAMP",
    "AppendResult",
    "BatchHeader",
    "CompactionStats",
    "Compression",
    "Header",
    "LogConfig",
    "PartitionLog",
    "ReadResult",
    "Record",
    "RecordIn",
    "RecoveryStats",
    "TimestampType",
    "decode_batch",
    "decode_records",
    "encode_batch",
    "iter_batches",
    "parse_header",
    "validate_batch",
    "with_base_offset",
    "with_log_append_time",
]
