"""The hot loop of record decoding, apart so that it can be compiled.

Plain, fully typed Python with no dynamic tricks: ``python -m tidelog._codec._accelerate`` compiles a copy
of this file with mypyc into ``tidelog/_codec/_decode_native`` (about three times faster), and
``tidelog._codec.decoder`` uses that copy when it was built from this very source. Without it, this module
runs as it is. The record layout is documented in ``tidelog._codec.batch``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tidelog._codec._varint import read_varint
from tidelog._codec.errors import CorruptRecordError

__all__ = ["decode_headers", "decode_section", "scan_section"]

R = TypeVar("R")
Header = tuple[str, bytes | None]


def decode_section(
    data: bytes,
    pos: int,
    end: int,
    count: int,
    base_offset: int,
    base_ts: int,
    ts_scale: int,
    new: Callable[[int, int, bytes | None, bytes | None, tuple[Header, ...], int], R],
) -> list[R]:
    """Decode ``count`` records from ``data[pos:end]``, each made by ``new(offset, timestamp, key,
    value, headers, attributes)``: the hot loop.

    A record's timestamp is ``base_ts + delta * ts_scale`` (``ts_scale`` 0 for LogAppendTime batches,
    whose records all read as ``base_ts``). Reading past ``data`` raises ``IndexError``, which the
    caller reports as a ``CorruptRecordError``.

    Each varint is read inline: one byte when its high bit is clear, two bytes when the second byte's
    is, and ``read_varint`` otherwise. The zig-zag value z of a length L >= 0 is 2L, of -1 (null) is 1;
    any other odd z is a negative length and corrupt.
    """
    records: list[R] = []
    push = records.append
    read = read_varint
    empty: tuple[Header, ...] = ()
    for _ in range(count):
        # length
        z = data[pos]
        if z < 0x80:
            pos += 1
        else:
            b = data[pos + 1]
            if b < 0x80:
                z = (z & 0x7F) | (b << 7)
                pos += 2
            else:
                length, pos = read(data, pos)
                z = length << 1 if length >= 0 else 1
        if z & 1:
            raise CorruptRecordError("a record declares a negative length")
        record_end = pos + (z >> 1)
        attributes = data[pos]
        # timestamp delta
        z = data[pos + 1]
        if z == 0:
            ts = base_ts
            pos += 2
        elif z < 0x80:
            ts = base_ts + ((z >> 1) ^ -(z & 1)) * ts_scale
            pos += 2
        else:
            delta, pos = read(data, pos + 1)
            ts = base_ts + delta * ts_scale
        # offset delta
        z = data[pos]
        if z < 0x80:
            pos += 1
        else:
            b = data[pos + 1]
            if b < 0x80:
                z = (z & 0x7F) | (b << 7)
                pos += 2
            else:
                delta, pos = read(data, pos)
                z = delta << 1 if delta >= 0 else 1
        if z & 1:
            raise CorruptRecordError("a record has a negative offset delta")
        offset = base_offset + (z >> 1)
        # key
        z = data[pos]
        if z == 1:
            key = None
            pos += 1
        else:
            if z < 0x80:
                pos += 1
            else:
                b = data[pos + 1]
                if b < 0x80:
                    z = (z & 0x7F) | (b << 7)
                    pos += 2
                else:
                    n, pos = read(data, pos)
                    z = n << 1 if n >= 0 else 3
            if z & 1:
                raise CorruptRecordError("a record key has a negative length other than -1")
            n = pos + (z >> 1)
            key = data[pos:n]
            pos = n
        # value
        z = data[pos]
        if z == 1:
            value = None
            pos += 1
        else:
            if z < 0x80:
                pos += 1
            else:
                b = data[pos + 1]
                if b < 0x80:
                    z = (z & 0x7F) | (b << 7)
                    pos += 2
                else:
                    n, pos = read(data, pos)
                    z = n << 1 if n >= 0 else 3
            if z & 1:
                raise CorruptRecordError("a record value has a negative length other than -1")
            n = pos + (z >> 1)
            value = data[pos:n]
            pos = n
        # headers
        if data[pos] == 0:
            headers = empty
            pos += 1
        else:
            headers, pos = decode_headers(data, pos, record_end)
        if pos != record_end:
            raise CorruptRecordError(
                f"record at offset {offset} declares {record_end - pos} bytes more than it holds"
                if pos < record_end
                else f"record at offset {offset} overruns its declared length by {pos - record_end} bytes"
            )
        push(new(offset, ts, key, value, headers, attributes))
    if pos != end:
        raise CorruptRecordError(
            f"{end - pos} bytes left over after the last of {count} records"
            if pos < end
            else f"the records overrun their batch by {pos - end} bytes"
        )
    return records


def decode_headers(data: bytes, pos: int, record_end: int) -> tuple[tuple[Header, ...], int]:
    """Decode a record's header count and headers at ``data[pos]``; one-byte lengths take a fast path."""
    z = data[pos]
    if z < 0x80 and not z & 1:
        count = z >> 1
        pos += 1
    else:
        count, pos = read_varint(data, pos)
    if not 0 <= count <= record_end - pos:
        raise CorruptRecordError(f"a record declares {count} headers")
    headers: list[Header] = []
    push = headers.append
    try:
        for _ in range(count):
            z = data[pos]
            if z < 0x80 and not z & 1:
                start = pos + 1
                pos = start + (z >> 1)
            else:
                n, start = read_varint(data, pos)
                if n < 0:
                    raise CorruptRecordError(f"a header key declares length {n}")
                pos = start + n
            hkey = data[start:pos].decode()
            z = data[pos]
            if z == 1:
                push((hkey, None))
                pos += 1
            elif z < 0x80 and not z & 1:
                start = pos + 1
                pos = start + (z >> 1)
                push((hkey, data[start:pos]))
            else:
                n, start = read_varint(data, pos)
                if n < 0:
                    raise CorruptRecordError(f"a header value declares length {n}")
                pos = start + n
                push((hkey, data[start:pos]))
    except UnicodeDecodeError as exc:
        raise CorruptRecordError(f"a header key is not valid UTF-8: {exc}") from None
    if pos > record_end:
        raise CorruptRecordError("a record's headers run past the end of the record")
    return tuple(headers), pos


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """The zig-zag varint at ``data[pos]`` and the position after it; at most 10 bytes, fits int64."""
    b = data[pos]
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), pos + 1
    z = b & 0x7F
    shift = 7
    pos += 1
    for _ in range(9):
        b = data[pos]
        pos += 1
        z |= (b & 0x7F) << shift
        if b < 0x80:
            if z >> 64:
                raise CorruptRecordError("a varint does not fit in 64 bits")
            return (z >> 1) ^ -(z & 1), pos
        shift += 7
    raise CorruptRecordError("a varint is longer than 10 bytes")


def _is_utf8(data: bytes, start: int, stop: int) -> bool:
    """True when ``data[start:stop]`` is UTF-8; ASCII (the common case) is checked without a copy."""
    for i in range(start, stop):
        if data[i] >= 0x80:
            try:
                data[start:stop].decode()
            except UnicodeDecodeError:
                return False
            return True
    return True


def _plain_json(data: bytes, start: int, stop: int) -> bool:
    """True when ``data[start:stop]`` is certainly one JSON value of the plainest kinds: a string with
    no escape and no control character, or an integer of at most 18 digits without leading zeros
    (within 64 bits, so every reader can hold it). False means "ask the full parser", not
    "invalid": the scan checks most produced values without calling out."""
    if stop - start < 1:
        return False
    first = data[start]
    if first == 0x22:  # "
        if stop - start < 2 or data[stop - 1] != 0x22:
            return False
        for i in range(start + 1, stop - 1):
            b = data[i]
            if b == 0x22 or b == 0x5C or b < 0x20:  # a quote, a backslash, a control character
                return False
        return True
    i = start + 1 if first == 0x2D else start  # -
    if i >= stop or (data[i] == 0x30 and stop - i > 1):  # nothing after the sign, or a leading zero
        return False
    if stop - i > 18:  # possibly beyond 64 bits: the full parser decides
        return False
    for j in range(i, stop):
        b = data[j]
        if b < 0x30 or b > 0x39:
            return False
    return True


def scan_section(
    data: bytes,
    pos: int,
    end: int,
    count: int,
    base_ts: int,
    earliest_ts: int,
    latest_ts: int,
    need_key: bool,
    json_ok: Callable[[bytes, int, int], bool],
) -> int:
    """Check ``count`` records in ``data[pos:end]`` without building them; return the largest timestamp.

    What a log checks before it appends a batch it did not encode (Kafka's LogValidator): every
    varint fits, lengths are -1 (null) or within the record, offset deltas are exactly 0..count-1,
    each record ends where its length says and the records fill the section, header keys are UTF-8
    and header values -1 or within the record, timestamps lie in ``[earliest_ts, latest_ts]``
    (KIP-937's bounds), a key is present when ``need_key`` (compacted topics), a key or value
    whose attribute bits claim the JSON format (2) is UTF-8 and one JSON value (the plainest strings
    and integers are recognised here, anything else must pass ``json_ok(data, start, stop)``), and
    one that claims the string format (1) is UTF-8 (readers show both as they are). Raises
    ``CorruptRecordError`` naming the record's index; reading past ``data`` raises ``IndexError``.
    """
    max_ts = -(2**63)
    for index in range(count):
        length, pos = _varint(data, pos)
        if length < 0 or pos + length > end:
            raise CorruptRecordError(f"record {index} declares length {length}, outside its batch")
        record_end = pos + length
        if length < 6:
            raise CorruptRecordError(f"record {index} declares length {length}, below the minimum 6")
        attributes = data[pos]
        delta, pos = _varint(data, pos + 1)
        ts = base_ts + delta
        if not earliest_ts <= ts <= latest_ts:
            raise CorruptRecordError(
                f"record {index} has timestamp {ts}, outside [{earliest_ts}, {latest_ts}] "
                "(message.timestamp.before/after.max.ms)"
            )
        if ts > max_ts:
            max_ts = ts
        offset_delta, pos = _varint(data, pos)
        if offset_delta != index:
            raise CorruptRecordError(f"record {index} has offset delta {offset_delta}, expected {index}")
        for part in range(2):
            n, pos = _varint(data, pos)
            if n == -1:
                if part == 0 and need_key:
                    raise CorruptRecordError(f"record {index} has no key, but the topic is compacted")
                continue
            if n < 0 or pos + n > record_end:
                raise CorruptRecordError(f"record {index} has a {('key', 'value')[part]} of length {n}")
            bits = (attributes >> (2 * part)) & 0b11
            if bits == 2 and not (
                _is_utf8(data, pos, pos + n)
                and (_plain_json(data, pos, pos + n) or json_ok(data, pos, pos + n))
            ):
                raise CorruptRecordError(
                    f"record {index}'s {('key', 'value')[part]} is not valid JSON, "
                    "but its attributes claim the JSON format"
                )
            if bits == 1 and not _is_utf8(data, pos, pos + n):
                raise CorruptRecordError(
                    f"record {index}'s {('key', 'value')[part]} is not UTF-8, "
                    "but its attributes claim the string format"
                )
            pos += n
        header_count, pos = _varint(data, pos)
        if not 0 <= header_count <= record_end - pos:
            raise CorruptRecordError(f"record {index} declares {header_count} headers")
        for _ in range(header_count):
            n, pos = _varint(data, pos)
            if n < 0 or pos + n > record_end:
                raise CorruptRecordError(f"record {index} has a header key of length {n}")
            if not _is_utf8(data, pos, pos + n):
                raise CorruptRecordError(f"record {index} has a header key that is not UTF-8")
            pos += n
            n, pos = _varint(data, pos)
            if n < -1 or pos + n > record_end:
                raise CorruptRecordError(f"record {index} has a header value of length {n}")
            if n > 0:
                pos += n
        if pos != record_end:
            raise CorruptRecordError(
                f"record {index} declares {record_end - pos} bytes more than it holds"
                if pos < record_end
                else f"record {index} overruns its declared length by {pos - record_end} bytes"
            )
    if pos != end:
        raise CorruptRecordError(f"{end - pos} bytes left over after the last of {count} records")
    return max_ts
