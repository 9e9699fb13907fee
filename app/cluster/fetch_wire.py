"""The wire format of a follower's batched fetch (``POST /internal/v1/replication/fetch``).

Request: JSON ``{"replica_id", "max_wait_ms", "max_bytes", "partitions": [{"topic", "partition",
"leader_epoch", "offset", "max_bytes"}, ...]}``.

Answer (``application/octet-stream``): one frame per requested partition, in request order::

    frame := meta_length:uint32 (big-endian) · meta (JSON, meta_length bytes) · data (meta.size bytes)
    meta  := {"topic", "partition", "error" (null | "not_leader" | "offset_out_of_range"),
              "size", "high_watermark", "log_start_offset", "log_end_offset", "leader_epoch"}

``data`` is whole record batches exactly as the leader stores them (its offsets and epochs).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import orjson

from app.cluster.partition import PartitionFetched

__all__ = ["decode_fetched", "encode_fetched"]

_LENGTH = struct.Struct(">I")


def encode_fetched(answers: list[PartitionFetched]) -> bytes:
    parts: list[bytes] = []
    for a in answers:
        meta = orjson.dumps({
            "topic": a.topic, "partition": a.partition, "error": a.error, "size": len(a.data),
            "high_watermark": a.high_watermark, "log_start_offset": a.log_start_offset,
            "log_end_offset": a.log_end_offset, "leader_epoch": a.leader_epoch,
        })
        parts += (_LENGTH.pack(len(meta)), meta, a.data)
    return b"".join(parts)


def decode_fetched(body: bytes) -> Iterator[PartitionFetched]:
    """The frames of an answer; ValueError for a truncated or malformed one."""
    view = memoryview(body)
    pos = 0
    while pos < len(body):
        if pos + _LENGTH.size > len(body):
            raise ValueError("truncated frame header")
        (length,) = _LENGTH.unpack_from(body, pos)
        pos += _LENGTH.size
        meta = orjson.loads(view[pos : pos + length])
        pos += length
        size = int(meta["size"])
        if pos + size > len(body):
            raise ValueError("truncated frame data")
        data = bytes(view[pos : pos + size])
        pos += size
        yield PartitionFetched(
            str(meta["topic"]), int(meta["partition"]), meta["error"], data, int(meta["high_watermark"]),
            int(meta["log_start_offset"]), int(meta["log_end_offset"]), int(meta["leader_epoch"]),
        )
