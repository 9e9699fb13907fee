"""The storage engine's own errors. It knows nothing of HTTP; ``app/errors.py`` translates.

    StorageError
     ├── CorruptRecordError          bytes that fail the length, magic or CRC check
     ├── InvalidRecordError          a well-formed batch the log refuses (bad timestamp, empty, …)
     │    └── RecordTooLargeError    a batch over max.message.bytes
     ├── UnsupportedCompressionError a codec this build does not read or write (snappy)
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
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every error raised by ``storage``."""


class CorruptRecordError(StorageError):
    """Bytes that are not a valid record batch (short, wrong magic, length or CRC mismatch)."""


class InvalidRecordError(StorageError):
    """A well-formed batch that the log refuses to append."""


class RecordTooLargeError(InvalidRecordError):
    """A batch larger than the log's ``max.message.bytes``."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"record batch of {size} bytes is larger than max.message.bytes={limit}")
        self.size = size
        self.limit = limit


class UnsupportedCompressionError(StorageError):
    """A compression codec that this build does not support."""


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
