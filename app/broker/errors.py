"""Domain errors of the data path (produce, fetch, offsets, producers). No HTTP here.

    TidelogError (app.errors_base)
     ├── InvalidRequestError            40001 (app.errors_base)
     ├── InvalidParameterError          42204 (app.errors_base)
     ├── UnknownTopicError              40401 (app.errors_base)
     ├── UnknownPartitionError          40402 (app.errors_base)
     ├── InvalidRecordError             40002 a record that cannot be decoded or stored as declared
     ├── CorruptBatchError              40020 a binary produce batch: bad frame, magic, CRC, header
     ├── InvalidBatchRecordsError       40021 a binary produce batch whose records fail the checks
     ├── BatchDecompressedTooLargeError 41303 a binary batch that decompresses past the bound
     ├── UnknownProducerError           40405 a producer id the catalog never allocated
     ├── ProducerFencedError            40905 an epoch older than the producer's current one
     ├── OutOfOrderSequenceError        40906 a gap in an idempotent producer's sequences
     ├── IdempotencyKeyReusedError      40907 one Idempotency-Key, two different requests
     ├── RecordTooLargeError            41301 a batch over max.message.bytes
     ├── InvalidTimestampError          42210 a timestamp outside message.timestamp.before/after.max.ms
     ├── OffsetOutOfRangeError          41601 carries log_start_offset and high_watermark (also the
     │                                        storage engine's OffsetOutOfRangeError)
     ├── StorageWriteFailedError        50003 a write failed (EIO); nothing was written (retriable)
     ├── PartitionReadOnlyError         50004 an fsync failed: writes refused until re-validated (retriable)
     └── InsufficientStorageError       50701 the disk is full; nothing was written (retriable)
"""

from __future__ import annotations

from app.error_codes import ErrorCode
from app.errors_base import TidelogError
from storage import errors as storage_errors

__all__ = [
    "BatchDecompressedTooLargeError",
    "CorruptBatchError",
    "IdempotencyKeyReusedError",
    "InsufficientStorageError",
    "InvalidBatchRecordsError",
    "InvalidRecordError",
    "InvalidTimestampError",
    "OffsetOutOfRangeError",
    "OutOfOrderSequenceError",
    "PartitionReadOnlyError",
    "ProducerFencedError",
    "RecordTooLargeError",
    "StorageWriteFailedError",
    "UnknownProducerError",
]


class InvalidRecordError(TidelogError):
    code = ErrorCode.INVALID_RECORD


class CorruptBatchError(TidelogError):
    """Extras: ``batch`` (its index in the request body, from 0) and ``position`` (its first byte)."""

    code = ErrorCode.CORRUPT_BATCH


class InvalidBatchRecordsError(TidelogError):
    """Extras as ``CorruptBatchError``."""

    code = ErrorCode.INVALID_BATCH_RECORDS


class BatchDecompressedTooLargeError(TidelogError):
    """Extras as ``CorruptBatchError``, plus ``limit``."""

    code = ErrorCode.BATCH_DECOMPRESSED_TOO_LARGE


class UnknownProducerError(TidelogError):
    code = ErrorCode.UNKNOWN_PRODUCER


class ProducerFencedError(TidelogError):
    code = ErrorCode.PRODUCER_FENCED


class OutOfOrderSequenceError(TidelogError):
    code = ErrorCode.OUT_OF_ORDER_SEQUENCE


class IdempotencyKeyReusedError(TidelogError):
    code = ErrorCode.IDEMPOTENCY_KEY_REUSED


class RecordTooLargeError(TidelogError):
    code = ErrorCode.RECORD_TOO_LARGE


class InvalidTimestampError(TidelogError):
    """A CreateTime record too far in the past or future (KIP-937); names the record's ``index``."""

    code = ErrorCode.INVALID_TIMESTAMP


class OffsetOutOfRangeError(TidelogError, storage_errors.OffsetOutOfRangeError):
    """An offset outside ``[log_start_offset, log_end_offset]``, with the high watermark.

    Also a ``storage.errors.OffsetOutOfRangeError``, so code that catches the engine's error (a
    consumer resetting its position) catches this one too; the problem answer carries ``offset``,
    ``log_start_offset``, ``high_watermark`` and ``log_end_offset``.
    """

    code = ErrorCode.OFFSET_OUT_OF_RANGE

    def __init__(
        self, detail: str, *, offset: int, log_start_offset: int, high_watermark: int, log_end_offset: int
    ) -> None:
        # Neither parent's __init__ fits both: set what each of them sets.
        Exception.__init__(self, detail)
        self.detail = detail
        self.extra = {
            "offset": offset,
            "log_start_offset": log_start_offset,
            "high_watermark": high_watermark,
            "log_end_offset": log_end_offset,
        }
        self.offset = offset
        self.log_start_offset = log_start_offset
        self.high_watermark = high_watermark
        self.log_end_offset = log_end_offset


class InsufficientStorageError(TidelogError):
    """No space left where the write had to go; nothing of the request was written."""

    code = ErrorCode.INSUFFICIENT_STORAGE
    retriable = True


class StorageWriteFailedError(TidelogError):
    """A write failed with an I/O error and was undone; nothing of the request was written."""

    code = ErrorCode.STORAGE_WRITE_FAILED
    retriable = True


class PartitionReadOnlyError(TidelogError):
    """The partition refuses writes after a failed fsync, until the broker has re-validated it."""

    code = ErrorCode.PARTITION_READ_ONLY
    retriable = True
