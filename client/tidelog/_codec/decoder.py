"""Reading records out of batches: ``decode_batch``, ``decode_records``, ``validate_batch``.

The per-record loop is ``tidelog._codec._decode``, compiled with mypyc when
``python -m tidelog._codec._accelerate`` was run (``DECODER`` says which runs). The layout is in
``tidelog._codec.batch``.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

from tidelog._codec import _decode as _decoder_module
from tidelog._codec._varint import INT64_MAX
from tidelog._codec.batch import (
    BATCH_OVERHEAD,
    COMPRESSION_MASK,
    MIN_RECORD_SIZE,
    TIMESTAMP_TYPE_BIT,
    BatchHeader,
    Buffer,
    Record,
    new_record,
)
from tidelog._codec.compression import Compression, decompress, unsupported_codec_error
from tidelog._codec.errors import CorruptRecordError
from tidelog._codec.scanner import check_fields, check_frame, iter_batches, parse_header, validate_frame

__all__ = ["DECODER", "decode_batch", "decode_records", "validate_batch"]

_log = logging.getLogger(__name__)


def _load_decoder() -> tuple[Callable[..., list[Any]], str]:
    """Return the record decoder to use and its name.

    That is the mypyc-compiled copy of ``tidelog._codec._decode`` (``python -m
    tidelog._codec._accelerate``) when one was built from the current source, else the Python
    module. A compiled copy of an older source is ignored, so editing ``_decode.py`` can never leave
    a stale decoder in use.
    """
    try:
        native = importlib.import_module("tidelog._codec._decode_native")
    except ImportError:
        return _decoder_module.decode_section, "python"
    built_from = getattr(native, "SOURCE_SHA256", None)
    source = Path(_decoder_module.__file__)
    current = hashlib.sha256(source.read_bytes()).hexdigest() if source.suffix == ".py" else None
    if not str(native.__file__).endswith((".so", ".pyd")) or built_from != current:
        _log.warning("ignoring %s: not built from the current tidelog/_codec/_decode.py", native.__file__)
        return _decoder_module.decode_section, "python"
    decode: Callable[..., list[Any]] = native.decode_section
    return decode, "mypyc"


_decode_section, DECODER = _load_decoder()
"""Which record decoder is in use: "mypyc" (compiled) or "python"."""



def validate_batch(buf: Buffer, pos: int = 0, *, check_records: bool = False) -> BatchHeader:
    """Return the header of the batch at ``buf[pos]`` after checking magic, length, counts and CRC-32C.

    With ``check_records`` the records are decoded too, so a batch whose CRC is right but whose
    records are malformed (a buggy or hostile producer) or compressed with snappy is refused as well:
    what a log should do before appending a batch it did not encode itself, as Kafka's broker does.

    Raises ``CorruptRecordError`` naming what is wrong, and with ``check_records``
    ``UnsupportedCompressionError`` for snappy.
    """
    header = parse_header(buf, pos)
    validate_frame(header, buf, pos)
    if check_records:
        records = _decode(buf, pos, header)
        if records and records[-1].offset > header.base_offset + header.last_offset_delta:
            raise CorruptRecordError(
                f"batch at position {pos} holds offset {records[-1].offset}, "
                f"past its last offset {header.base_offset + header.last_offset_delta}"
            )
        offsets = [r.offset for r in records]
        if any(a >= b for a, b in pairwise(offsets)):
            raise CorruptRecordError(f"batch at position {pos} has record offsets that do not increase")
    return header



def decode_batch(buf: Buffer, pos: int = 0, *, verify_crc: bool = True) -> list[Record]:
    """Return the records of the batch at ``buf[pos]``, in offset order.

    The CRC is checked unless ``verify_crc`` is False. Raises ``CorruptRecordError`` for damaged bytes
    and ``UnsupportedCompressionError`` for snappy.
    """
    header = parse_header(buf, pos)
    if verify_crc:
        validate_frame(header, buf, pos)
    else:
        check_frame(header, buf, pos)
        check_fields(header, pos)
    return _decode(buf, pos, header)


def decode_records(buf: Buffer, *, min_offset: int = 0, max_offset: int | None = None) -> list[Record]:
    """Return the records of every whole batch in ``buf`` with ``min_offset <= offset < max_offset``.

    Batches that end below ``min_offset`` are skipped after reading their header only; decoding stops
    at the first batch that starts at or past ``max_offset``. A truncated last batch is ignored.
    """
    out: list[Record] = []
    for pos, header in iter_batches(buf):
        base = header.base_offset
        if max_offset is not None and base >= max_offset:
            break
        last = base + header.last_offset_delta
        if last < min_offset:
            continue
        validate_frame(header, buf, pos)
        records = _decode(buf, pos, header)
        if base < min_offset or (max_offset is not None and last >= max_offset):
            high = INT64_MAX if max_offset is None else max_offset
            records = [r for r in records if min_offset <= r.offset < high]
        out += records
    return out


def _decode(buf: Buffer, pos: int, header: BatchHeader) -> list[Record]:
    codec = header.attributes & COMPRESSION_MASK
    end = pos + header.size
    if codec:
        if codec == Compression.SNAPPY:
            raise unsupported_codec_error(codec)
        data = decompress(codec, memoryview(buf)[pos + BATCH_OVERHEAD : end])
        start, stop = 0, len(data)
    elif isinstance(buf, bytes):
        data = buf
        start, stop = pos + BATCH_OVERHEAD, end
    else:
        data = bytes(memoryview(buf)[pos + BATCH_OVERHEAD : end])
        start, stop = 0, len(data)
    count = header.record_count
    if count * MIN_RECORD_SIZE > stop - start:
        raise CorruptRecordError(
            f"batch at offset {header.base_offset} claims {count} records in {stop - start} bytes of records"
        )
    if header.attributes & TIMESTAMP_TYPE_BIT:
        # LogAppendTime: every record reads as the batch's max timestamp; the deltas are parsed, not used.
        base_ts, ts_scale = header.max_timestamp, 0
    else:
        base_ts, ts_scale = header.base_timestamp, 1
    try:
        return _decode_section(data, start, stop, count, header.base_offset, base_ts, ts_scale, new_record)
    except IndexError:
        raise CorruptRecordError(
            f"a record of the batch at offset {header.base_offset} runs past the end of the batch"
        ) from None
