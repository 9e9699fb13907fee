"""Domain errors of the data path (produce, fetch, offsets, producers). No HTTP here.

    TidelogError (app.errors_base)
     ├── InvalidRequestError            40001 (app.errors_base)
     ├── InvalidParameterError          42204 (app.errors_base)
     ├── UnknownTopicError              40401 (app.errors_base)
     ├── UnknownPartitionError          40402 (app.errors_base)
     ├── InvalidRecordError             40002 a record that cannot be decoded or stored as declared
     ├── UnknownProducerError           40405 a producer id the catalog never allocated
     ├── ProducerFencedError            40905 an epoch older than the producer's current one
     ├── OutOfOrderSequenceError        40906 a gap in an idempotent producer's sequences
     ├── IdempotencyKeyReusedError      40907 one Idempotency-Key, two different requests
     ├── RecordTooLargeError            41301 a batch over max.message.bytes
     └── OffsetOutOfRangeError          41601 carries log_start_offset and high_watermark
"""

from __future__ import annotations

from app.error_codes import ErrorCode
from app.errors_base import TidelogError

__all__ = [
    "IdempotencyKeyReusedError",
    "InvalidRecordError",
    "OffsetOutOfRangeError",
    "OutOfOrderSequenceError",
    "ProducerFencedError",
    "RecordTooLargeError",
    "UnknownProducerError",
]


class InvalidRecordError(TidelogError):
    code = ErrorCode.INVALID_RECORD


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


class OffsetOutOfRangeError(TidelogError):
    code = ErrorCode.OFFSET_OUT_OF_RANGE
