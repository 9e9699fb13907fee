"""The record batch codec: Kafka's record batch v2 (magic 2), shared by the client and the broker's log.

The format is specified in ``tidelog._codec.batch``'s docstring. Pure functions over bytes, no I/O; the
per-record decoding loop can be compiled with mypyc (``python -m tidelog._codec._accelerate``) and runs
as Python otherwise, so installing the client needs no compiler.

    batch        the layout (``BATCH_HEADER``), ``BatchHeader``, ``RecordIn``, ``Record``, ``TimestampType``
    encoder      ``encode_batch``, ``with_base_offset``, ``with_log_append_time``
    scanner      ``parse_header``, ``iter_batches``, frame and CRC checks
    decoder      ``decode_batch``, ``decode_records``, ``validate_batch``, ``DECODER``
    compression  ``Compression`` and the gzip / lz4 / zstd codecs
    errors       ``CodecError`` and its subclasses
"""

from tidelog._codec.batch import (
    BATCH_HEADER,
    BATCH_OVERHEAD,
    MAGIC,
    BatchHeader,
    Buffer,
    Header,
    Record,
    RecordIn,
    TimestampType,
)
from tidelog._codec.compression import Compression
from tidelog._codec.decoder import DECODER, decode_batch, decode_records, scan_batch, validate_batch
from tidelog._codec.encoder import encode_batch, with_base_offset, with_log_append_time
from tidelog._codec.errors import (
    CodecError,
    CorruptRecordError,
    InvalidRecordError,
    InvalidRecordsError,
    RecordsTooLargeError,
    UnsupportedCompressionError,
)
from tidelog._codec.scanner import iter_batches, parse_header

__all__ = [
    "BATCH_HEADER",
    "BATCH_OVERHEAD",
    "DECODER",
    "MAGIC",
    "BatchHeader",
    "Buffer",
    "CodecError",
    "Compression",
    "CorruptRecordError",
    "Header",
    "InvalidRecordError",
    "InvalidRecordsError",
    "Record",
    "RecordIn",
    "RecordsTooLargeError",
    "TimestampType",
    "UnsupportedCompressionError",
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
