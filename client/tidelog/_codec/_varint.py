"""Zig-zag varints as Kafka writes them inside records (``ByteUtils.writeVarint/Varlong``).

A signed value ``v`` is first zig-zag mapped to an unsigned one, ``(v << 1) ^ (v >> 63)``, so that small
magnitudes of either sign are small (0→0, -1→1, 1→2, -2→3, …), then written 7 bits at a time, least
significant group first, with the high bit of each byte set while more bytes follow. An int32 takes at
most 5 bytes, an int64 at most 10.

The hot loops of ``tidelog._codec`` inline the one- and two-byte cases; these functions are the
general (and slow) path, plus the tables that make encoding a lookup.
"""

from __future__ import annotations

from tidelog._codec.errors import CorruptRecordError

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "INT64_MAX",
    "INT64_MIN",
    "TABLE_SIZE",
    "VARINT_BYTES",
    "encode_varint",
    "read_varint",
]

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_MAX_VARLONG_BYTES = 10


def _encode_unsigned(z: int) -> bytes:
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


# VARINT_BYTES[z] is the encoding of the zig-zag value z, for every z < TABLE_SIZE (every signed value
# in [-8192, 8191], i.e. all one- and two-byte varints).
TABLE_SIZE = 1 << 14
VARINT_BYTES: list[bytes] = [_encode_unsigned(z) for z in range(TABLE_SIZE)]


def encode_varint(value: int) -> bytes:
    """Return the zig-zag varint encoding of a signed 64-bit ``value``."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise OverflowError(f"{value} does not fit in a signed 64-bit varlong")
    z = (value << 1) ^ (value >> 63)
    if z < TABLE_SIZE:
        return VARINT_BYTES[z]
    return _encode_unsigned(z)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Return ``(value, next_pos)`` for the zig-zag varint at ``data[pos]``.

    Raises ``CorruptRecordError`` when the varint runs past the end of ``data`` or past 10 bytes.
    """
    z = 0
    shift = 0
    end = len(data)
    for _ in range(_MAX_VARLONG_BYTES):
        if pos >= end:
            raise CorruptRecordError("a varint runs past the end of the record data")
        b = data[pos]
        pos += 1
        z |= (b & 0x7F) << shift
        if b < 0x80:
            if z >> 64:
                raise CorruptRecordError("a varint does not fit in 64 bits")
            return (z >> 1) ^ -(z & 1), pos
        shift += 7
    raise CorruptRecordError("a varint is longer than 10 bytes")
