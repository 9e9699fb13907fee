"""Record batches: the codec of the client distribution (``tidelog._codec``), re-exported for the log.

The wire and on-disk format is specified field by field in ``tidelog._codec.batch``. The broker and the
client share one codec, so the bytes a producer builds are the bytes the log appends and a fetch
returns; the codec's errors are ``storage.errors``' own (see there).
"""

from tidelog._codec import (
    BATCH_HEADER,
    BATCH_OVERHEAD,
    DECODER,
    MAGIC,
    BatchHeader,
    Buffer,
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
    scan_batch,
    validate_batch,
    with_base_offset,
    with_log_append_time,
)

__all__ = [
    "BATCH_HEADER",
    "BATCH_OVERHEAD",
    "DECODER",
    "MAGIC",
    "BatchHeader",
    "Buffer",
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
    "scan_batch",
    "validate_batch",
    "with_base_offset",
    "with_log_append_time",
]
