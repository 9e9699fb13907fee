"""The record batch codec's errors. Pure data errors: no I/O, no HTTP.

    CodecError
     ├── CorruptRecordError          bytes that fail the length, magic or CRC check, or records that
     │                               do not fill their batch as declared
     │    ├── InvalidRecordsError    a batch whose frame and CRC are right but whose records are not
     │    │                          (``scan_batch``: framing, offsets, timestamps, keys, JSON)
     │    └── RecordsTooLargeError   records that decompress past the allowed size (a compression bomb)
     ├── InvalidRecordError          values that cannot be encoded (a timestamp past int64, an empty batch)
     └── UnsupportedCompressionError a codec this build does not read or write (snappy)

The broker's ``storage`` package re-exports these as its own (``storage.errors``): its ``StorageError``
is ``CodecError``, so ``except StorageError`` catches a damaged batch exactly as before the codec moved.
"""

from __future__ import annotations

__all__ = [
    "CodecError",
    "CorruptRecordError",
    "InvalidRecordError",
    "InvalidRecordsError",
    "RecordsTooLargeError",
    "UnsupportedCompressionError",
]


class CodecError(Exception):
    """Base class of every error raised by the record batch codec."""


class CorruptRecordError(CodecError):
    """Bytes that are not a valid record batch (short, wrong magic, length or CRC mismatch)."""


class InvalidRecordsError(CorruptRecordError):
    """A batch with a sound frame and CRC whose records fail ``scan_batch``'s checks."""


class RecordsTooLargeError(CorruptRecordError):
    """A compressed records section that decompresses to more than the allowed size."""


class InvalidRecordError(CodecError):
    """A record or batch that cannot be encoded, or a well-formed batch that a log refuses."""


class UnsupportedCompressionError(CodecError):
    """A compression codec that this build does not support."""
