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
from tidelog._codec._varint import INT64_MAX, INT64_MIN
from tidelog._codec.batch import (
    BATCH_OVERHEAD,
    COMPRESSION_MASK,
    CONTROL_BIT,
    MIN_RECORD_SIZE,
    TIMESTAMP_TYPE_BIT,
    TRANSACTIONAL_BIT,
    BatchHeader,
    Buffer,
    Record,
    new_record,
)
from tidelog._codec.compression import (
    MAX_DECOMPRESSED_BYTES,
    Compression,
    decompress,
    unsupported_codec_error,
)
from tidelog._codec.errors import CorruptRecordError, InvalidRecordsError
from tidelog._codec.scanner import check_fields, check_frame, iter_batches, parse_header, validate_frame

__all__ = ["DECODER", "decode_batch", "decode_records", "scan_batch", "validate_batch"]

_log = logging.getLogger(__name__)


def _load_decoder() -> tuple[Any, str]:
    """Return the record decoding module to use (``decode_section``, ``scan_section``) and its name.

    That is the mypyc-compiled copy of ``tidelog._codec._decode`` (``python -m
    tidelog._codec._accelerate``) when one was built from the current source, else the Python
    module. A compiled copy of an older source is ignored, so editing ``_decode.py`` can never leave
    a stale decoder in use.
    """
    try:
        native = importlib.import_module("tidelog._codec._decode_native")
    except ImportError:
        return _decoder_module, "python"
    built_from = getattr(native, "SOURCE_SHA256", None)
    source = Path(_decoder_module.__file__)
    current = hashlib.sha256(source.read_bytes()).hexdigest() if source.suffix == ".py" else None
    if not str(native.__file__).endswith((".so", ".pyd")) or built_from != current:
        _log.warning("ignoring %s: not built from the current tidelog/_codec/_decode.py", native.__file__)
        return _decoder_module, "python"
    return native, "mypyc"


_decoder, DECODER = _load_decoder()
_decode_section: Callable[..., list[Any]] = _decoder.decode_section
_scan_section: Callable[..., int] = _decoder.scan_section
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


def _always(data: bytes, start: int, stop: int) -> bool:
    return True


def scan_batch(
    buf: Buffer,
    pos: int = 0,
    *,
    earliest_ts: int = INT64_MIN,
    latest_ts: int = INT64_MAX,
    need_key: bool = False,
    json_ok: Callable[[bytes, int, int], bool] = _always,
    max_decompressed: int = MAX_DECOMPRESSED_BYTES,
) -> BatchHeader:
    """Return the header of the produced batch at ``buf[pos]`` after checking it and every record in it.

    The checks a log makes before appending a batch a client built, in one pass over the records that
    builds no record objects (``tidelog._codec._decode.scan_section``, compiled with the decoder): the
    frame, CRC-32C and counts (``validate_batch``); at least one record, ``last_offset_delta`` equal to
    ``record_count - 1`` and offset deltas exactly 0..n-1 (a produced batch is dense); a records section
    that decompresses to at most ``max_decompressed`` bytes (no compression bomb); each record's
    framing, timestamps within ``[earliest_ts, latest_ts]`` and a ``max_timestamp`` equal to the largest
    record timestamp (CreateTime batches), keys when ``need_key``, and JSON-format keys and values that
    pass ``json_ok``. No transactional or control batches. Raises ``CorruptRecordError`` naming the
    check, ``UnsupportedCompressionError`` for snappy.
    """
    header = parse_header(buf, pos)
    validate_frame(header, buf, pos)
    count = header.record_count
    if count < 1 or header.last_offset_delta != count - 1:
        raise CorruptRecordError(
            f"a produced batch must hold dense offsets: {count} records, "
            f"last offset delta {header.last_offset_delta}"
        )
    if header.attributes & (TRANSACTIONAL_BIT | CONTROL_BIT):
        raise CorruptRecordError("transactional and control batches are not supported")
    codec = header.attributes & COMPRESSION_MASK
    end = pos + header.size
    if codec:
        if codec == Compression.SNAPPY:
            raise unsupported_codec_error(codec)
        data = decompress(codec, memoryview(buf)[pos + BATCH_OVERHEAD : end], max_size=max_decompressed)
        start, stop = 0, len(data)
    elif isinstance(buf, bytes):
        data, start, stop = buf, pos + BATCH_OVERHEAD, end
    else:
        data = bytes(memoryview(buf)[pos + BATCH_OVERHEAD : end])
        start, stop = 0, len(data)
    if count * MIN_RECORD_SIZE > stop - start:
        raise InvalidRecordsError(f"the batch claims {count} records in {stop - start} bytes of records")
    log_append_time = bool(header.attributes & TIMESTAMP_TYPE_BIT)
    try:
        max_ts = _scan_section(
            data,
            start,
            stop,
            count,
            header.base_timestamp,
            INT64_MIN if log_append_time else earliest_ts,
            INT64_MAX if log_append_time else latest_ts,
            need_key,
            json_ok,
        )
    except IndexError:
        raise InvalidRecordsError("a record runs past the end of the batch") from None
    except InvalidRecordsError:
        raise
    except CorruptRecordError as exc:
        raise InvalidRecordsError(str(exc)) from None
    if not log_append_time and max_ts != header.max_timestamp:
        raise InvalidRecordsError(
            f"the batch's max_timestamp {header.max_timestamp} is not its largest record timestamp {max_ts}"
        )
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
