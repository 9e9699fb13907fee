"""tidelog storage engine: record batches and the partition log. No HTTP, no SQL."""

from storage.compression import Compression
from storage.records import (
    BatchHeader,
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

__all__ = [
    "BatchHeader",
    "Compression",
    "Header",
    "Record",
    "RecordIn",
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
