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

Compressor and decompressor contexts of zstandard are not thread-safe, so each thread keeps its own.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from enum import IntEnum

import lz4.frame
import zstandard

from storage.errors import CorruptRecordError, UnsupportedCompressionError

__all__ = ["Compression", "compress", "decompress", "unsupported_codec_error"]


class Compression(IntEnum):
    """The compression codec id kept in bits 0-2 of a batch's attributes."""

    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


GZIP_LEVEL = 6
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


def decompress(codec: int, data: bytes | bytearray | memoryview) -> bytes:
    """Return ``data`` decompressed with ``codec``; damaged input raises ``CorruptRecordError``."""
    if codec == Compression.NONE:
        return bytes(data)
    try:
        if codec == Compression.LZ4:
            return bytes(lz4.frame.decompress(data))
        if codec == Compression.ZSTD:
            return _zstd_decompress(data)
        if codec == Compression.GZIP:
            return gzip.decompress(data)
    except (RuntimeError, zstandard.ZstdError, zlib.error, OSError, EOFError) as exc:
        name = Compression(codec).name.lower()
        raise CorruptRecordError(
            f"the {name}-compressed records of a batch do not decompress: {exc}"
        ) from exc
    raise unsupported_codec_error(codec)


def _zstd_decompress(data: bytes | bytearray | memoryview) -> bytes:
    decompressor = _zstd_decompressor()
    try:
        # Fast path: a single frame that records its content size (what this module writes).
        return bytes(decompressor.decompress(data))
    except zstandard.ZstdError:
        pass
    # Frames without a content size, or several frames back to back: stream them.
    out: list[bytes] = []
    view = memoryview(data)
    while len(view):
        dobj = decompressor.decompressobj()
        out.append(dobj.decompress(view))
        if not dobj.eof:
            raise zstandard.ZstdError("truncated zstd frame")
        unused = dobj.unused_data
        view = view[len(view) - len(unused) :] if unused else view[len(view) :]
    return b"".join(out)


def unsupported_codec_error(codec: int) -> UnsupportedCompressionError:
    """Return the error for a codec id this build cannot use: snappy, or an id Kafka does not define."""
    if codec == Compression.SNAPPY:
        return UnsupportedCompressionError("snappy compression is not supported; use gzip, lz4 or zstd")
    return UnsupportedCompressionError(
        f"unknown compression codec id {codec} (known: 0 none, 1 gzip, 3 lz4, 4 zstd)"
    )
