"""Walking record batches: headers parsed, frames, CRCs and counts checked, without decoding records.

What a log scans on recovery and index rebuilds, and what a fetch walks to cut at a batch boundary.
The layout is in ``tidelog._codec.batch``.
"""

from __future__ import annotations

from collections.abc import Iterator

from tidelog._codec.batch import (
    BATCH_HEADER,
    BATCH_OVERHEAD,
    COMPRESSION_MASK,
    CRC_START,
    KNOWN_CODECS,
    LENGTH_AND_MAGIC,
    LENGTH_OFFSET,
    LOG_OVERHEAD,
    MAGIC,
    MIN_BATCH_LENGTH,
    BatchHeader,
    Buffer,
    crc32c,
    new_header,
)
from tidelog._codec.errors import CorruptRecordError

__all__ = ["check_fields", "check_frame", "iter_batches", "parse_header", "validate_frame"]



def parse_header(buf: Buffer, pos: int = 0) -> BatchHeader:
    """Return the header of the batch at ``buf[pos]`` without checking its CRC or length.

    Raises ``CorruptRecordError`` when fewer than 61 bytes remain.
    """
    if pos < 0 or len(buf) - pos < BATCH_OVERHEAD:
        raise CorruptRecordError(
            f"truncated batch header at position {pos}: {BATCH_OVERHEAD} bytes needed, "
            f"{max(len(buf) - pos, 0)} available"
        )
    return new_header(*BATCH_HEADER.unpack_from(buf, pos))


def validate_frame(header: BatchHeader, buf: Buffer, pos: int) -> None:
    """Check the frame (magic, length), the CRC-32C and the counts of the batch ``header`` heads."""
    check_frame(header, buf, pos)
    actual = crc32c(memoryview(buf)[pos + CRC_START : pos + header.batch_length + LOG_OVERHEAD])
    if actual != header.crc:
        raise CorruptRecordError(
            f"CRC-32C mismatch in the batch at position {pos} (base offset {header.base_offset}): "
            f"stored {header.crc:#010x}, computed {actual:#010x}"
        )
    check_fields(header, pos)


def check_frame(header: BatchHeader, buf: Buffer, pos: int) -> None:
    """Check magic 2 and a declared length that is at least the minimum and fits in ``buf``."""
    if header.magic != MAGIC:
        raise CorruptRecordError(f"batch at position {pos} has magic {header.magic}, expected {MAGIC}")
    if header.batch_length < MIN_BATCH_LENGTH:
        raise CorruptRecordError(
            f"batch at position {pos} declares length {header.batch_length}, "
            f"below the minimum {MIN_BATCH_LENGTH}"
        )
    if pos + header.size > len(buf):
        raise CorruptRecordError(
            f"truncated batch at position {pos}: {header.size} bytes declared, {len(buf) - pos} available"
        )


def check_fields(header: BatchHeader, pos: int) -> None:
    """Check non-negative counts and a compression codec id that Kafka defines."""
    if header.record_count < 0 or header.last_offset_delta < 0:
        raise CorruptRecordError(
            f"batch at position {pos} has record count {header.record_count} "
            f"and last offset delta {header.last_offset_delta}"
        )
    if header.attributes & COMPRESSION_MASK not in KNOWN_CODECS:
        raise CorruptRecordError(
            f"batch at position {pos} names unknown compression codec {header.attributes & COMPRESSION_MASK}"
        )


def iter_batches(buf: Buffer) -> Iterator[tuple[int, BatchHeader]]:
    """Yield ``(position, header)`` for every whole batch in ``buf``, in order.

    A truncated last batch (fewer bytes than its header or its declared length) is not yielded, just
    as a Kafka fetch may end in a partial batch. Bytes that cannot start a batch (wrong magic, a length
    below the minimum) raise ``CorruptRecordError``. CRCs are not checked here; ``validate_batch`` and
    ``decode_batch`` do that.
    """
    pos = 0
    end = len(buf)
    unpack_length_and_magic = LENGTH_AND_MAGIC.unpack_from
    while end - pos >= BATCH_OVERHEAD:
        batch_length, magic = unpack_length_and_magic(buf, pos + LENGTH_OFFSET)
        if magic != MAGIC:
            raise CorruptRecordError(f"batch at position {pos} has magic {magic}, expected {MAGIC}")
        if batch_length < MIN_BATCH_LENGTH:
            raise CorruptRecordError(
                f"batch at position {pos} declares length {batch_length}, "
                f"below the minimum {MIN_BATCH_LENGTH}"
            )
        size = batch_length + LOG_OVERHEAD
        if pos + size > end:
            return
        yield pos, new_header(*BATCH_HEADER.unpack_from(buf, pos))
        pos += size

