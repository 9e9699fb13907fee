"""Compression codecs of record batches: the ``Compression`` ids of Kafka and their C-backed codecs.

Only the records section of a batch (every byte after the 61-byte header) is compressed, as one unit,
exactly as in Kafka:

- GZIP (1): an RFC 1952 gzip stream (zlib, level 6 like Kafka's ``compression.gzip.level`` default).
  Decoding accepts concatenated gzip members, as Java's ``GZIPInputStream`` does.
- SNAPPY (2): not supported by this build; both directions raise ``UnsupportedCompressionError``.
- LZ4 (3): one LZ4 *frame* (the standard frame format, as Kafka writes since magic 1 with the
  corrected header checksum), independent 64 KiB blocks and no content size, the shape Kafka's
  ``KafkaLZ4BlockOutputStream`` produces; level 0, the fast mode (Kafka's default level 9 is the
  slow high-compression mode, a poor trade for a Python broker).
- ZSTD (4): one or more zstd frames, level 3 (Kafka's ``compression.zstd.level`` default). Frames
  without a content size in their header (what Kafka's streaming writer emits) are decoded too.

Decoding reads every frame (or gzip member) in the section, refuses trailing bytes that are not one,
and refuses output past ``MAX_DECOMPRESSED_BYTES``, so a small hostile batch cannot expand into
gigabytes of memory: sizes a frame header declares are checked before decoding, and frames without
one are decoded with a bound.

Compressor and decompressor contexts of zstandard are not thread-safe, so each thread keeps its own.
"""

from __future__ import annotations

import threading
import zlib
from enum import IntEnum

import lz4.frame
import zstandard

from tidelog._codec.errors import CorruptRecordError, RecordsTooLargeError, UnsupportedCompressionError

__all__ = [
    "MAX_DECOMPRESSED_BYTES",
    "Compression",
    "compress",
    "decompress",
    "unsupported_codec_error",
]


class Compression(IntEnum):
    """The compression codec id kept in bits 0-2 of a batch's attributes."""

    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


GZIP_LEVEL = 6
# The most bytes one batch's records may decompress to. Kafka has no such limit, but a broker that
# decodes what producers send must not let a few kilobytes expand into gigabytes.
MAX_DECOMPRESSED_BYTES = 128 * 1024 * 1024
LZ4_LEVEL = 0
ZSTD_LEVEL = 3

_local = threading.local()


def _zstd_compressor() -> zstandard.ZstdCompressor:
    compressor: zstandard.ZstdCompressor | None = getattr(_local, "zstd_c", None)
    if compressor is None:
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        _local.zstd_c = compressor
    return compressor


def _zstd_decompressor() -> zstandard.ZstdDecompressor:
    decompressor: zstandard.ZstdDecompressor | None = getattr(_local, "zstd_d", None)
    if decompressor is None:
        decompressor = zstandard.ZstdDecompressor()
        _local.zstd_d = decompressor
    return decompressor


def compress(codec: int, data: bytes) -> bytes:
    """Return ``data`` compressed with ``codec`` (``Compression.NONE`` returns it unchanged)."""
    if codec == Compression.NONE:
        return data
    if codec == Compression.LZ4:
        return bytes(
            lz4.frame.compress(
                data,
                compression_level=LZ4_LEVEL,
                block_size=lz4.frame.BLOCKSIZE_MAX64KB,
                block_linked=False,
                store_size=False,
            )
        )
    if codec == Compression.ZSTD:
        return bytes(_zstd_compressor().compress(data))
    if codec == Compression.GZIP:
        # wbits=31: a gzip header and trailer around the deflate stream, as gzip.compress writes.
        return zlib.compress(data, GZIP_LEVEL, 31)
    raise unsupported_codec_error(codec)


def decompress(
    codec: int, data: bytes | bytearray | memoryview, *, max_size: int = MAX_DECOMPRESSED_BYTES
) -> bytes:
    """Return ``data`` decompressed with ``codec``, at most ``max_size`` bytes of it.

    Damaged input, trailing bytes after the last frame, and output past ``max_size`` (a compression
    bomb) raise ``CorruptRecordError``.
    """
    if codec == Compression.NONE:
        return bytes(data)
    try:
        if codec == Compression.LZ4:
            return _lz4_decompress(data, max_size)
        if codec == Compression.ZSTD:
            return _zstd_decompress(data, max_size)
        if codec == Compression.GZIP:
            return _gzip_decompress(data, max_size)
    except (RuntimeError, zstandard.ZstdError, zlib.error, OSError, EOFError, ValueError) as exc:
        name = Compression(codec).name.lower()
        raise CorruptRecordError(
            f"the {name}-compressed records of a batch do not decompress: {exc}"
        ) from exc
    raise unsupported_codec_error(codec)


def _too_large(max_size: int) -> CorruptRecordError:
    return RecordsTooLargeError(f"the records of a batch decompress to more than {max_size} bytes")


# Each byte of an LZ4 block expands to at most 255 bytes (a match length grows by 255 per byte).
_LZ4_MAX_RATIO = 256


def _lz4_decompress(data: bytes | bytearray | memoryview, max_size: int) -> bytes:
    out: list[bytes] = []
    total = 0
    remaining: bytes | bytearray | memoryview = data
    while len(remaining):
        declared = lz4.frame.get_frame_info(remaining)["content_size"]
        if declared > max_size - total:
            raise _too_large(max_size)
        decompressor = lz4.frame.LZ4FrameDecompressor()
        if len(remaining) * _LZ4_MAX_RATIO <= max_size - total:
            chunk = decompressor.decompress(remaining)  # cannot exceed the limit: no bound needed
        else:
            chunk = decompressor.decompress(remaining, max_length=max_size - total + 1)
        total += len(chunk)
        if total > max_size:
            raise _too_large(max_size)
        if not decompressor.eof:
            raise ValueError("truncated lz4 frame")
        out.append(chunk)
        remaining = decompressor.unused_data or b""
    return out[0] if len(out) == 1 else b"".join(out)


def _zstd_decompress(data: bytes | bytearray | memoryview, max_size: int) -> bytes:
    decompressor = _zstd_decompressor()
    out: list[bytes] = []
    total = 0
    remaining: bytes | bytearray | memoryview = data
    while len(remaining):
        declared = zstandard.frame_content_size(remaining)
        if declared < 0:
            # No content size in the frame header (Kafka's streaming writer): feed the input in small
            # pieces so that the output can be checked against the limit as it grows.
            chunk, remaining = _zstd_unsized_frame(decompressor, remaining, total, max_size)
            total += len(chunk)
            out.append(chunk)
            continue
        if declared > max_size - total:
            raise _too_large(max_size)
        dobj = decompressor.decompressobj()
        chunk = dobj.decompress(remaining)
        if not dobj.eof:
            raise ValueError("truncated zstd frame")
        total += len(chunk)
        out.append(chunk)
        remaining = dobj.unused_data
    return out[0] if len(out) == 1 else b"".join(out)


# zstd's best ratio is about 40,000:1 (RLE blocks), so 1 KiB of input yields at most ~44 MB.
_ZSTD_FEED = 1024


def _zstd_unsized_frame(
    decompressor: zstandard.ZstdDecompressor, data: bytes | bytearray | memoryview, total: int, max_size: int
) -> tuple[bytes, bytes]:
    """Decode the frame at the start of ``data``; return its output and the bytes after it."""
    dobj = decompressor.decompressobj()
    view = memoryview(data)
    pieces: list[bytes] = []
    size = total
    pos = 0
    while not dobj.eof and pos < len(view):
        piece = dobj.decompress(view[pos : pos + _ZSTD_FEED])
        pos += _ZSTD_FEED
        size += len(piece)
        if size > max_size:
            raise _too_large(max_size)
        pieces.append(piece)
    if not dobj.eof:
        raise ValueError("truncated zstd frame")
    return b"".join(pieces), dobj.unused_data + bytes(view[pos:])


def _gzip_decompress(data: bytes | bytearray | memoryview, max_size: int) -> bytes:
    # Concatenated members are read one after the other, as Java's GZIPInputStream does.
    out: list[bytes] = []
    total = 0
    remaining: bytes | bytearray | memoryview = data
    while len(remaining):
        dobj = zlib.decompressobj(31)
        chunk = dobj.decompress(remaining, max_size - total + 1)
        total += len(chunk)
        if total > max_size:
            raise _too_large(max_size)
        if not dobj.eof:
            raise ValueError("truncated gzip stream")
        out.append(chunk)
        remaining = dobj.unused_data
    return out[0] if len(out) == 1 else b"".join(out)


def unsupported_codec_error(codec: int) -> UnsupportedCompressionError:
    """Return the error for a codec id this build cannot use: snappy, or an id Kafka does not define."""
    if codec == Compression.SNAPPY:
        return UnsupportedCompressionError("snappy compression is not supported; use gzip, lz4 or zstd")
    return UnsupportedCompressionError(
        f"unknown compression codec id {codec} (known: 0 none, 1 gzip, 3 lz4, 4 zstd)"
    )
