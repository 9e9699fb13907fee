"""The storage engine's own errors. It knows nothing of HTTP; ``app/errors.py`` translates.

    StorageError                     (= tidelog._codec.CodecError)
     ├── CorruptRecordError          bytes that fail the length, magic or CRC check      (codec's)
     │    ├── InvalidRecordsError    a produced batch whose records fail ``scan_batch``   (codec's)
     │    └── RecordsTooLargeError   records that decompress past the bound               (codec's)
     ├── InvalidRecordError          a well-formed batch the log refuses (bad timestamp, empty, …) (codec's)
     │    └── RecordTooLargeError    a batch over max.message.bytes
     ├── UnsupportedCompressionError a codec this build does not read or write (snappy)  (codec's)
     ├── OffsetOutOfRangeError       an offset below log_start_offset or above log_end_offset
     ├── ProducerStateError
     │    ├── OutOfOrderSequenceError  a gap in an idempotent producer's sequences
     │    ├── ProducerFencedError      an epoch older than the producer's current one
     │    └── UnknownProducerIdError   a non-zero first sequence from a producer the log does not know
     ├── LogClosedError              an operation on a closed log
     ├── StorageWriteError           a write of an append failed (EIO, …); the log is as it was before
     │    │                          the append, nothing of it is readable (retriable)
     │    └── StorageFullError       … because the disk is full (ENOSPC/EDQUOT): retry once space is freed
     └── LogReadOnlyError            an fsync failed (or a failed write could not be undone): the log
                                     refuses writes until ``PartitionLog.revalidate`` succeeds

The record batch codec lives in the client distribution (``tidelog._codec``) and has its own error tree;
this tree is built on it rather than translating: ``StorageError`` is the codec's ``CodecError`` and the
three codec errors are re-exported, so an error the codec raises deep inside a log read is a
``StorageError`` with no wrapper on the hot path, and ``app/errors.py``'s table keeps one entry per class.
"""

from __future__ import annotations

from tidelog._codec.errors import CodecError as StorageError
from tidelog._codec.errors import (
    CorruptRecordError,
    InvalidRecordError,
    InvalidRecordsError,
    RecordsTooLargeError,
    UnsupportedCompressionError,
)

__all__ = [
    "CorruptRecordError",
    "InvalidRecordError",
    "InvalidRecordsError",
    "LogClosedError",
    "LogReadOnlyError",
    "OffsetOutOfRangeError",
    "OutOfOrderSequenceError",
    "ProducerFencedError",
    "ProducerStateError",
    "RecordTooLargeError",
    "RecordsTooLargeError",
    "StorageError",
    "StorageFullError",
    "StorageWriteError",
    "UnknownProducerIdError",
    "UnsupportedCompressionError",
]


class RecordTooLargeError(InvalidRecordError):
    """A batch larger than the log's ``max.message.bytes``."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"record batch of {size} bytes is larger than max.message.bytes={limit}")
        self.size = size
        self.limit = limit


class OffsetOutOfRangeError(StorageError):
    """An offset outside ``[log_start_offset, log_end_offset]``."""

    def __init__(self, offset: int, log_start_offset: int, log_end_offset: int) -> None:
        super().__init__(
            f"offset {offset} is outside the log's range [{log_start_offset}, {log_end_offset}]"
        )
        self.offset = offset
        self.log_start_offset = log_start_offset
        self.log_end_offset = log_end_offset


class ProducerStateError(StorageError):
    """Base class of idempotent-producer errors."""


class OutOfOrderSequenceError(ProducerStateError):
    """A batch whose first sequence does not follow the producer's last one."""


class ProducerFencedError(ProducerStateError):
    """A batch with an epoch older than the producer's current epoch."""


class UnknownProducerIdError(ProducerStateError):
    """A batch from a producer id the log has no state for, not starting at sequence 0."""


class LogClosedError(StorageError):
    """An operation on a log that has been closed."""


class StorageWriteError(StorageError):
    """A write of an append failed; the log was put back as it was before the append (retriable)."""

    def __init__(self, message: str, *, errno_: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno_


class StorageFullError(StorageWriteError):
    """A write failed for want of space (ENOSPC, EDQUOT); retrying succeeds once space is freed."""


class LogReadOnlyError(StorageError):
    """The log refuses writes: an fsync failed, so what the page cache holds may never reach the disk.

    Retrying the fsync would report success for data that may be lost (PostgreSQL's "fsyncgate"),
    so the log stays read-only until ``PartitionLog.revalidate`` re-reads it from its recovery point,
    writes the unflushed tail again and fsyncs it successfully.
    """
