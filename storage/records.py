"""Record batches: Kafka's record batch v2 (magic 2), byte for byte, and the records inside them.

Every byte of partition data is a sequence of record batches laid end to end. A batch is what a
producer sends, what the log appends in one write, what a fetch returns without re-encoding.

Batch layout (big-endian; offsets in bytes from the start of the batch)::

     0  base_offset            int64   offset of the first record; patched by the log on append
     8  batch_length           int32   bytes that follow this field (total size - 12)
    12  partition_leader_epoch int32   epoch of the leader that appended it; patched like base_offset
    16  magic                  int8    always 2
    17  crc                    uint32  CRC-32C (Castagnoli) of bytes [21, end): attributes to last record
    21  attributes             int16   bits 0-2 compression (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd),
                                       bit 3 timestamp type (0 CreateTime, 1 LogAppendTime),
                                       bit 4 transactional, bit 5 control batch; other bits 0
    23  last_offset_delta      int32   last record's offset minus base_offset (kept by compaction)
    27  base_timestamp         int64   first record's timestamp (epoch ms)
    35  max_timestamp          int64   largest record timestamp, or the log-append time (bit 3 set)
    43  producer_id            int64   idempotent producer id, -1 for none
    51  producer_epoch         int16   its epoch, -1 for none
    53  base_sequence          int32   sequence number of the first record, -1 for none
    57  record_count           int32   number of records that follow
    61  records                        record_count records, compressed as one unit when bits 0-2 != 0

The CRC covers every byte after the CRC field and nothing before it: ``base_offset``,
``batch_length``, ``partition_leader_epoch`` and ``magic`` are outside its coverage. That is what lets
the log assign offsets and stamp the leader epoch by patching bytes 0-7 and 12-15 of a batch a
producer built, without recomputing the checksum (``with_base_offset``). Changing the timestamp type
or the max timestamp (``with_log_append_time``) touches covered bytes and recomputes it.

Record layout (inside the possibly compressed records section; "varint" is a zig-zag varint with
7 bits per byte, low group first, as in Kafka's ``ByteUtils``; ints are at most 5 bytes, longs 10)::

    length             varint   bytes of the record after this field
    attributes         int8     unused by Kafka; tidelog keeps the key and value format here
                                (bits 0-1 key format, bits 2-3 value format), read back as 0..255
    timestamp_delta    varlong  timestamp minus the batch's base_timestamp
    offset_delta       varint   offset minus the batch's base_offset (strictly increasing)
    key_length         varint   -1 for a null key
    key                bytes
    value_length       varint   -1 for a null value (a tombstone)
    value              bytes
    header_count       varint
    headers            header_count times:
        header_key_length    varint   then the key, UTF-8
        header_value_length  varint   -1 for a null value, then the value bytes

Header keys may repeat; order is kept. An empty key or value (length 0) is distinct from a null one
(length -1). Varint examples: 0 -> ``00``, -1 -> ``01``, 1 -> ``02``, 63 -> ``7e``, 64 -> ``80 01``,
300 -> ``d8 04``.

Timestamps are epoch milliseconds in int64. ``base_timestamp`` is the first record's timestamp (as
Kafka's ``MemoryRecordsBuilder`` writes it), so deltas may be negative; a timestamp or a delta that
does not fit in int64 is refused. When a batch's timestamp type is LogAppendTime, every record's
timestamp reads as the batch's ``max_timestamp``; the deltas keep the producer's create times, as in
Kafka.

Offsets: a produced batch holds dense offset deltas 0..n-1 and ``last_offset_delta = n - 1``.
Compaction rewrites a batch with the deltas of its surviving records (gaps allowed, still strictly
increasing) and keeps the original ``last_offset_delta``, so the batch still spans its original
offset range; it may even keep a batch with no records at all (``record_count`` 0, header only).

CRC-32C is the Castagnoli CRC (polynomial 0x1EDC6F41, reflected 0x82F63B78, initial value and final
XOR 0xFFFFFFFF; "123456789" checks as 0xE3069283), computed by the C-backed ``crc32c`` package.

Example: one record, key ``b"k"``, value ``b"value"``, header ``("h", b"v")``, base offset 100,
leader epoch 7, timestamp 1700000000000 (0x18bcfe56800), no compression, no producer id::

    00 00 00 00 00 00 00 64   base_offset 100
    00 00 00 42               batch_length 66 (78 bytes in all)
    00 00 00 07               partition_leader_epoch 7
    02                        magic 2
    62 50 34 06               crc, CRC-32C of the 57 bytes from the next one to the end
    00 00                     attributes: no compression, CreateTime
    00 00 00 00               last_offset_delta 0
    00 00 01 8b cf e5 68 00   base_timestamp
    00 00 01 8b cf e5 68 00   max_timestamp
    ff ff ff ff ff ff ff ff   producer_id -1
    ff ff                     producer_epoch -1
    ff ff ff ff               base_sequence -1
    00 00 00 01               record_count 1
    20                        record length 16
    00 00 00                  attributes 0, timestamp delta 0, offset delta 0
    02 6b                     key length 1, "k"
    0a 76 61 6c 75 65         value length 5, "value"
    02 02 68 02 76            1 header: key length 1, "h", value length 1, "v"

Compression (``storage.compression``): the records section is compressed as a whole, and
``batch_length`` and the CRC describe the compressed bytes. gzip is an RFC 1952 stream (level 6), lz4
an LZ4 frame with independent 64 KiB blocks (Kafka's Java reader decodes blocks independently), zstd a
zstd frame (level 3). Snappy is refused with ``UnsupportedCompressionError``.

What is checked: ``validate_batch`` checks the frame (61 bytes at least, magic 2, ``batch_length`` at
least 49 and within the buffer), then the CRC, then that ``record_count`` and ``last_offset_delta`` are
not negative and the codec id is one Kafka defines. Decoding also checks every record: lengths are
not negative (except -1 for null), each record ends exactly where its length says, the records fill
the section exactly, header keys are UTF-8. Any failure is a ``CorruptRecordError`` naming it.

Threads: every function here is pure over its arguments (zstd contexts are kept per thread), so
readers in many threads can decode at once.

Speed: encoding and decoding are per-record Python loops tuned for CPython (one- and two-byte varint
fast paths inlined, table lookups for encoding, one ``b"".join`` per batch). The decoding loop lives in
``storage._decode``, plain typed Python that ``python -m storage._accelerate`` can compile with mypyc
(about three times faster); ``DECODER`` says which one runs. ``Record`` and
``RecordIn`` are frozen dataclasses; a frozen dataclass's generated ``__init__`` costs about three
times a plain one, so the decoder builds records through ``_RecordBuilder`` and ``RecordIn`` has its
own ``__init__`` (see both).
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from itertools import pairwise
from pathlib import Path
from typing import Any, Final, TypeVar, cast, final

import crc32c as _crc32c_mod

from storage import _decode as _decoder_module
from storage._varint import (
    INT32_MAX,
    INT64_MAX,
    INT64_MIN,
    TABLE_SIZE,
    VARINT_BYTES,
    encode_varint,
)
from storage.compression import Compression, compress, decompress, unsupported_codec_error
from storage.errors import CorruptRecordError, InvalidRecordError, UnsupportedCompressionError

__all__ = [
    "BATCH_HEADER",
    "BATCH_OVERHEAD",
    "MAGIC",
    "BatchHeader",
    "Buffer",
    "Compression",
    "Header",
    "Record",
    "RecordIn",
    "TimestampType",
    "decode_batch",
    "decode_records",
    "encode_batch",
    "iter_batches",
    "parse_header",
    "validate_batch",
    "with_base_offset",
    "with_log_append_time",
]

Buffer = bytes | bytearray | memoryview
_T = TypeVar("_T")
Header = tuple[str, bytes | None]

_crc32c: Callable[..., int] = _crc32c_mod.crc32c

MAGIC: Final = 2

# The 61-byte batch header. One struct for parsing; encoding packs the two halves on either side of
# the CRC (its coverage starts at byte 21) so the checksum can be computed before the prefix exists.
BATCH_HEADER: Final = struct.Struct(
    ">"
    "q"  # base_offset             0  outside the CRC
    "i"  # batch_length            8  outside the CRC; = total size - 12
    "i"  # partition_leader_epoch 12  outside the CRC
    "b"  # magic                  16  outside the CRC; always 2
    "I"  # crc                    17  CRC-32C of bytes [21, end)
    "h"  # attributes             21  first covered byte
    "i"  # last_offset_delta      23
    "q"  # base_timestamp         27
    "q"  # max_timestamp          35
    "q"  # producer_id            43
    "h"  # producer_epoch         51
    "i"  # base_sequence          53
    "i"  # record_count           57
)
BATCH_OVERHEAD: Final = BATCH_HEADER.size  # 61
_CRC_PREFIX = struct.Struct(">qiibI")  # bytes [0, 21): base_offset .. crc
_CRC_COVERED = struct.Struct(">hiqqqhii")  # bytes [21, 61): attributes .. record_count
_CRC_START: Final = _CRC_PREFIX.size  # 21
_LENGTH_OFFSET: Final = 8
_MAGIC_OFFSET: Final = 16
_LEADER_EPOCH_OFFSET: Final = 12
_LOG_OVERHEAD: Final = 12  # base_offset + batch_length: the bytes batch_length does not count
_MIN_BATCH_LENGTH: Final = BATCH_OVERHEAD - _LOG_OVERHEAD  # 49
_INT64 = struct.Struct(">q")
_INT32 = struct.Struct(">i")
_LENGTH_AND_MAGIC = struct.Struct(">i4xb")  # batch_length at 8, magic at 16

assert BATCH_OVERHEAD == 61
assert _CRC_START + _CRC_COVERED.size == BATCH_OVERHEAD

_COMPRESSION_MASK: Final = 0x07
_TIMESTAMP_TYPE_BIT: Final = 0x08
_TRANSACTIONAL_BIT: Final = 0x10
_CONTROL_BIT: Final = 0x20
_KNOWN_CODECS: Final = frozenset(int(c) for c in Compression)

_MIN_RECORD_SIZE: Final = 7  # length, attributes, ts delta, offset delta, key len, value len, header count


class TimestampType(IntEnum):
    """Bit 3 of a batch's attributes: whose clock the record timestamps come from."""

    CREATE_TIME = 0
    LOG_APPEND_TIME = 1


class _MutableRecordIn:
    """``RecordIn``'s slots without the frozen ``__setattr__``: what its ``__init__`` writes through."""

    # The same names as RecordIn's fields (CPython compares the sorted names when switching classes).
    __slots__ = ("attributes", "headers", "key", "timestamp", "value")
    value: bytes | None
    key: bytes | None
    headers: Sequence[Header]
    timestamp: int | None
    attributes: int


_object_setattr = object.__setattr__


@final
@dataclass(frozen=True, slots=True, init=False)
class RecordIn:
    """A record to encode. ``timestamp`` None means the batch's ``now_ms``; ``value`` None is a tombstone.

    ``attributes`` is the record's attribute byte (0..255), which tidelog uses for the key and value format.
    """

    value: bytes | None
    key: bytes | None = None
    headers: Sequence[Header] = ()
    timestamp: int | None = None
    attributes: int = 0

    def __init__(
        self,
        value: bytes | None,
        key: bytes | None = None,
        headers: Sequence[Header] = (),
        timestamp: int | None = None,
        attributes: int = 0,
    ) -> None:
        # The broker builds one RecordIn per produced record, and a frozen dataclass's generated
        # __init__ (one object.__setattr__ call per field) costs twice this: the instance briefly
        # becomes a _MutableRecordIn (same slots), takes plain slot writes, and turns back.
        _object_setattr(self, "__class__", _MutableRecordIn)
        # A plain annotation, not cast(): a function call here would cost a tenth of the whole.
        mutable: _MutableRecordIn = self  # type: ignore[assignment]
        mutable.value = value
        mutable.key = key
        mutable.headers = headers
        mutable.timestamp = timestamp
        mutable.attributes = attributes
        mutable.__class__ = RecordIn  # type: ignore[assignment]


def _plain_record_in_init(
    self: RecordIn,
    value: bytes | None,
    key: bytes | None = None,
    headers: Sequence[Header] = (),
    timestamp: int | None = None,
    attributes: int = 0,
) -> None:
    # What the dataclass would have generated; used only if this interpreter refuses the switch.
    _object_setattr(self, "value", value)
    _object_setattr(self, "key", key)
    _object_setattr(self, "headers", headers)
    _object_setattr(self, "timestamp", timestamp)
    _object_setattr(self, "attributes", attributes)


try:
    _probe = RecordIn(b"v", b"k", (), 1, 2)
    if type(_probe) is not RecordIn or (_probe.value, _probe.key, _probe.attributes) != (b"v", b"k", 2):
        raise TypeError("__class__ switch produced the wrong object")
except TypeError:
    RecordIn.__init__ = _plain_record_in_init  # type: ignore[method-assign]


@dataclass(frozen=True, slots=True)
class Record:
    """A decoded record: its absolute offset and timestamp, key, value, headers and attribute byte."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...]
    attributes: int


class _RecordBuilder:
    """Builds a ``Record`` at the cost of a plain slots class rather than a frozen dataclass.

    A frozen dataclass's generated ``__init__`` goes through ``object.__setattr__`` once per field (about
    0.7 µs for six fields), which alone would cap decoding near 1.4 M records/s. This class has the same
    slots in the same order, so CPython lets an instance change its ``__class__`` to ``Record``: the
    fields are stored with plain slot writes and the object that comes out is an ordinary ``Record``
    (same type, equality, hash, repr). ``_verified_builder`` checks that at import and falls back to
    ``Record`` itself if an interpreter ever refuses the switch.
    """

    # Same names as Record's fields (CPython compares the sorted names when switching classes).
    __slots__ = ("attributes", "headers", "key", "offset", "timestamp", "value")

    def __init__(
        self,
        offset: int,
        timestamp: int,
        key: bytes | None,
        value: bytes | None,
        headers: tuple[Header, ...],
        attributes: int,
    ) -> None:
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.headers = headers
        self.attributes = attributes
        self.__class__ = Record  # type: ignore[assignment]


def _verified_builder(
    builder: Callable[..., object], target: type[_T], probe: tuple[object, ...]
) -> Callable[..., _T]:
    """Return ``builder`` if it makes ``target`` instances equal to ``target(*probe)``, else ``target``."""
    try:
        made = builder(*probe)
    except TypeError:
        return target
    if type(made) is target and made == target(*probe):
        return cast(Callable[..., _T], builder)
    return target


_new_record: Callable[[int, int, bytes | None, bytes | None, tuple[Header, ...], int], Record] = (
    _verified_builder(_RecordBuilder, Record, (1, 2, b"k", None, (("h", b"v"),), 3))
)


_log = logging.getLogger(__name__)


def _load_decoder() -> tuple[Callable[..., list[Any]], str]:
    """Return the record decoder to use and its name.

    That is the mypyc-compiled copy of ``storage._decode`` (``python -m storage._accelerate``) when one
    was built from the current source, else the Python module. A compiled copy of an older source is
    ignored, so editing ``_decode.py`` can never leave a stale decoder in use.
    """
    try:
        native = importlib.import_module("storage._decode_native")
    except ImportError:
        return _decoder_module.decode_section, "python"
    built_from = getattr(native, "SOURCE_SHA256", None)
    source = Path(_decoder_module.__file__)
    current = hashlib.sha256(source.read_bytes()).hexdigest() if source.suffix == ".py" else None
    if not str(native.__file__).endswith((".so", ".pyd")) or built_from != current:
        _log.warning("ignoring %s: not built from the current storage/_decode.py", native.__file__)
        return _decoder_module.decode_section, "python"
    decode: Callable[..., list[Any]] = native.decode_section
    return decode, "mypyc"


_decode_section, DECODER = _load_decoder()
"""Which record decoder is in use: "mypyc" (compiled) or "python"."""


@dataclass(frozen=True, slots=True)
class BatchHeader:
    """The 61-byte header of a record batch, field for field (see the module docstring)."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int

    @property
    def last_offset(self) -> int:
        """Offset of the batch's last record (compaction may have removed that record)."""
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        """The offset that follows this batch."""
        return self.base_offset + self.last_offset_delta + 1

    @property
    def size(self) -> int:
        """Bytes of the whole batch, including the 12 bytes of base offset and length."""
        return self.batch_length + _LOG_OVERHEAD

    @property
    def compression(self) -> Compression:
        """The codec of the records section; an unknown id raises ``UnsupportedCompressionError``."""
        codec = self.attributes & _COMPRESSION_MASK
        if codec not in _KNOWN_CODECS:
            raise UnsupportedCompressionError(f"unknown compression codec id {codec}")
        return Compression(codec)

    @property
    def timestamp_type(self) -> TimestampType:
        """CreateTime or LogAppendTime (bit 3 of the attributes)."""
        return (
            TimestampType.LOG_APPEND_TIME
            if self.attributes & _TIMESTAMP_TYPE_BIT
            else TimestampType.CREATE_TIME
        )

    @property
    def is_transactional(self) -> bool:
        """Bit 4: the batch belongs to a transaction."""
        return bool(self.attributes & _TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        """Bit 5: a control batch (transaction marker), not user data."""
        return bool(self.attributes & _CONTROL_BIT)


class _BatchHeaderBuilder:
    """Builds a ``BatchHeader`` with plain slot writes, as ``_RecordBuilder`` does for records.

    Scanning a segment (recovery, index rebuilds, fetches of many small batches) parses one header per
    batch; the generated frozen ``__init__`` of thirteen fields would cost more than the parse.
    """

    __slots__ = (
        "attributes",
        "base_offset",
        "base_sequence",
        "base_timestamp",
        "batch_length",
        "crc",
        "last_offset_delta",
        "magic",
        "max_timestamp",
        "partition_leader_epoch",
        "producer_epoch",
        "producer_id",
        "record_count",
    )

    def __init__(
        self,
        base_offset: int,
        batch_length: int,
        partition_leader_epoch: int,
        magic: int,
        crc: int,
        attributes: int,
        last_offset_delta: int,
        base_timestamp: int,
        max_timestamp: int,
        producer_id: int,
        producer_epoch: int,
        base_sequence: int,
        record_count: int,
    ) -> None:
        self.base_offset = base_offset
        self.batch_length = batch_length
        self.partition_leader_epoch = partition_leader_epoch
        self.magic = magic
        self.crc = crc
        self.attributes = attributes
        self.last_offset_delta = last_offset_delta
        self.base_timestamp = base_timestamp
        self.max_timestamp = max_timestamp
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch
        self.base_sequence = base_sequence
        self.record_count = record_count
        self.__class__ = BatchHeader  # type: ignore[assignment]


_new_header: Callable[..., BatchHeader] = _verified_builder(
    _BatchHeaderBuilder, BatchHeader, (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)
)


# --------------------------------------------------------------------------------------------- encode

_ATTRIBUTE_BYTES: Final = {a: bytes((a,)) for a in range(256)}
_NULL: Final = b"\x01"  # zig-zag varint of -1
_ZERO: Final = b"\x00"  # zig-zag varint of 0
_TWO_BYTE_LIMIT: Final = TABLE_SIZE >> 1  # non-negative values below this are in VARINT_BYTES


def _encode_headers(headers: Sequence[Header]) -> bytes:
    varint_bytes = VARINT_BYTES
    limit = _TWO_BYTE_LIMIT
    n = len(headers)
    parts = [varint_bytes[n << 1] if n < limit else encode_varint(n)]
    push = parts.append
    for hkey, hvalue in headers:
        try:
            kb = hkey.encode()
        except AttributeError:
            raise InvalidRecordError(f"a header key must be a str, not {type(hkey).__name__}") from None
        n = len(kb)
        push(varint_bytes[n << 1] if n < limit else encode_varint(n))
        push(kb)
        if hvalue is None:
            push(_NULL)
        else:
            n = len(hvalue)
            push(varint_bytes[n << 1] if n < limit else encode_varint(n))
            push(hvalue)
    return b"".join(parts)


def encode_batch(
    records: Sequence[RecordIn],
    *,
    base_offset: int = 0,
    now_ms: int,
    compression: Compression = Compression.NONE,
    timestamp_type: TimestampType = TimestampType.CREATE_TIME,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    partition_leader_epoch: int = -1,
    is_transactional: bool = False,
    is_control: bool = False,
    offset_deltas: Sequence[int] | None = None,
    last_offset_delta: int | None = None,
) -> bytes:
    """Return one record batch holding ``records``, with offsets from ``base_offset``.

    Records without a timestamp get ``now_ms``. With ``TimestampType.LOG_APPEND_TIME`` the batch's
    max timestamp is ``now_ms`` and readers see it as every record's timestamp.

    ``offset_deltas`` (strictly increasing, from 0 up) gives each record's offset relative to
    ``base_offset`` instead of 0, 1, 2, …; ``last_offset_delta`` keeps a batch's original offset range
    when its last records are gone. Compaction uses both to rewrite a batch with the offsets of its
    surviving records. With ``last_offset_delta`` given, ``records`` may be empty (an empty batch that
    only keeps an offset range and producer state alive, as Kafka's cleaner writes).

    Raises ``InvalidRecordError`` for values that do not fit the format and
    ``UnsupportedCompressionError`` for snappy.
    """
    count = len(records)
    if count == 0 and last_offset_delta is None:
        raise InvalidRecordError("a record batch needs at least one record")
    codec = int(compression)
    if codec not in _KNOWN_CODECS or codec == Compression.SNAPPY:
        raise unsupported_codec_error(codec)
    if offset_deltas is not None:
        _check_offset_deltas(offset_deltas, count)
        deltas: Sequence[int] = offset_deltas
    else:
        deltas = range(count)
    if count:
        first_ts = records[0].timestamp
        base_ts = now_ms if first_ts is None else first_ts
    else:
        base_ts = now_ms
    if not INT64_MIN <= base_ts <= INT64_MAX:
        raise InvalidRecordError(f"timestamp {base_ts} does not fit in 64 bits")
    max_ts = min_ts = base_ts

    varint_bytes = VARINT_BYTES
    two_byte_limit = _TWO_BYTE_LIMIT
    table_size = TABLE_SIZE
    attribute_bytes = _ATTRIBUTE_BYTES
    null = _NULL
    zero = _ZERO
    join = b"".join
    out: list[bytes] = []
    push = out.append
    try:
        for rec, delta in zip(records, deltas, strict=True):
            ts = rec.timestamp
            if ts is None:
                ts = now_ms
            if ts == base_ts:
                tsb = zero
            else:
                if ts > max_ts:
                    max_ts = ts
                elif ts < min_ts:
                    min_ts = ts
                d = ts - base_ts
                z = (d << 1) ^ (d >> 63)
                tsb = varint_bytes[z] if 0 <= z < table_size else encode_varint(d)
            key = rec.key
            if key is None:
                kb = null
            else:
                n = len(key)
                kb = (varint_bytes[n << 1] if n < two_byte_limit else encode_varint(n)) + key
            value = rec.value
            if value is None:
                vb = null
            else:
                n = len(value)
                vb = (varint_bytes[n << 1] if n < two_byte_limit else encode_varint(n)) + value
            headers = rec.headers
            body = join(
                (
                    attribute_bytes[rec.attributes],
                    tsb,
                    varint_bytes[delta << 1] if delta < two_byte_limit else encode_varint(delta),
                    kb,
                    vb,
                    _encode_headers(headers) if headers else zero,
                )
            )
            n = len(body)
            push(varint_bytes[n << 1] if n < two_byte_limit else encode_varint(n))
            push(body)
    except KeyError as exc:
        raise InvalidRecordError(
            f"a record's attributes must be an int in 0..255, not {exc.args[0]!r}"
        ) from None
    except OverflowError as exc:
        raise InvalidRecordError(f"a record timestamp is out of range: {exc}") from None
    except TypeError as exc:
        raise InvalidRecordError(f"a record field has the wrong type: {exc}") from None
    if max_ts > INT64_MAX or min_ts < INT64_MIN:
        bad = max_ts if max_ts > INT64_MAX else min_ts
        raise InvalidRecordError(f"timestamp {bad} does not fit in 64 bits")

    payload = join(out)
    if codec:
        payload = compress(codec, payload)
    attributes = codec
    if timestamp_type == TimestampType.LOG_APPEND_TIME:
        attributes |= _TIMESTAMP_TYPE_BIT
        max_ts = now_ms
    if is_transactional:
        attributes |= _TRANSACTIONAL_BIT
    if is_control:
        attributes |= _CONTROL_BIT
    if last_offset_delta is None:
        last_offset_delta = deltas[-1]
    elif count and last_offset_delta < deltas[-1]:
        raise InvalidRecordError(
            f"last_offset_delta {last_offset_delta} is below the last record's offset delta {deltas[-1]}"
        )
    batch_length = BATCH_OVERHEAD - _LOG_OVERHEAD + len(payload)
    try:
        covered = _CRC_COVERED.pack(
            attributes,
            last_offset_delta,
            base_ts,
            max_ts,
            producer_id,
            producer_epoch,
            base_sequence,
            count,
        )
        crc = _crc32c(payload, _crc32c(covered))
        prefix = _CRC_PREFIX.pack(base_offset, batch_length, partition_leader_epoch, MAGIC, crc)
    except struct.error as exc:
        raise InvalidRecordError(f"a batch header field is out of range: {exc}") from None
    return join((prefix, covered, payload))


def _check_offset_deltas(offset_deltas: Sequence[int], count: int) -> None:
    if len(offset_deltas) != count:
        raise InvalidRecordError(f"{len(offset_deltas)} offset deltas for {count} records")
    previous = -1
    for delta in offset_deltas:
        if not previous < delta <= INT32_MAX:
            raise InvalidRecordError(f"offset deltas must increase strictly from 0 within int32, got {delta}")
        previous = delta


# ---------------------------------------------------------------------------------------------- parse


def parse_header(buf: Buffer, pos: int = 0) -> BatchHeader:
    """Return the header of the batch at ``buf[pos]`` without checking its CRC or length.

    Raises ``CorruptRecordError`` when fewer than 61 bytes remain.
    """
    if pos < 0 or len(buf) - pos < BATCH_OVERHEAD:
        raise CorruptRecordError(
            f"truncated batch header at position {pos}: {BATCH_OVERHEAD} bytes needed, "
            f"{max(len(buf) - pos, 0)} available"
        )
    return _new_header(*BATCH_HEADER.unpack_from(buf, pos))


def validate_batch(buf: Buffer, pos: int = 0, *, check_records: bool = False) -> BatchHeader:
    """Return the header of the batch at ``buf[pos]`` after checking magic, length, counts and CRC-32C.

    With ``check_records`` the records are decoded too, so a batch whose CRC is right but whose
    records are malformed (a buggy or hostile producer) or compressed with snappy is refused as well:
    what a log should do before appending a batch it did not encode itself, as Kafka's broker does.

    Raises ``CorruptRecordError`` naming what is wrong, and with ``check_records``
    ``UnsupportedCompressionError`` for snappy.
    """
    header = parse_header(buf, pos)
    _validate(header, buf, pos)
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


def _validate(header: BatchHeader, buf: Buffer, pos: int) -> None:
    _check_frame(header, buf, pos)
    actual = _crc32c(memoryview(buf)[pos + _CRC_START : pos + header.batch_length + _LOG_OVERHEAD])
    if actual != header.crc:
        raise CorruptRecordError(
            f"CRC-32C mismatch in the batch at position {pos} (base offset {header.base_offset}): "
            f"stored {header.crc:#010x}, computed {actual:#010x}"
        )
    _check_fields(header, pos)


def _check_frame(header: BatchHeader, buf: Buffer, pos: int) -> None:
    if header.magic != MAGIC:
        raise CorruptRecordError(f"batch at position {pos} has magic {header.magic}, expected {MAGIC}")
    if header.batch_length < _MIN_BATCH_LENGTH:
        raise CorruptRecordError(
            f"batch at position {pos} declares length {header.batch_length}, "
            f"below the minimum {_MIN_BATCH_LENGTH}"
        )
    if pos + header.size > len(buf):
        raise CorruptRecordError(
            f"truncated batch at position {pos}: {header.size} bytes declared, {len(buf) - pos} available"
        )


def _check_fields(header: BatchHeader, pos: int) -> None:
    if header.record_count < 0 or header.last_offset_delta < 0:
        raise CorruptRecordError(
            f"batch at position {pos} has record count {header.record_count} "
            f"and last offset delta {header.last_offset_delta}"
        )
    if header.attributes & _COMPRESSION_MASK not in _KNOWN_CODECS:
        raise CorruptRecordError(
            f"batch at position {pos} names unknown compression codec {header.attributes & _COMPRESSION_MASK}"
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
    unpack_length_and_magic = _LENGTH_AND_MAGIC.unpack_from
    while end - pos >= BATCH_OVERHEAD:
        batch_length, magic = unpack_length_and_magic(buf, pos + _LENGTH_OFFSET)
        if magic != MAGIC:
            raise CorruptRecordError(f"batch at position {pos} has magic {magic}, expected {MAGIC}")
        if batch_length < _MIN_BATCH_LENGTH:
            raise CorruptRecordError(
                f"batch at position {pos} declares length {batch_length}, "
                f"below the minimum {_MIN_BATCH_LENGTH}"
            )
        size = batch_length + _LOG_OVERHEAD
        if pos + size > end:
            return
        yield pos, _new_header(*BATCH_HEADER.unpack_from(buf, pos))
        pos += size


# ------------------------------------------------------------------------------------------- rewrite


def with_base_offset(batch: Buffer, base_offset: int, partition_leader_epoch: int | None = None) -> bytes:
    """Return ``batch`` with its base offset (and leader epoch, when given) replaced.

    Both fields lie outside the CRC's coverage, so the checksum stays valid and is not recomputed.
    """
    if len(batch) < BATCH_OVERHEAD:
        raise CorruptRecordError(
            f"truncated batch: {len(batch)} bytes, a batch has at least {BATCH_OVERHEAD}"
        )
    view = memoryview(batch)
    try:
        if partition_leader_epoch is None:
            return b"".join((_INT64.pack(base_offset), view[_LENGTH_OFFSET:]))
        return b"".join(
            (
                _INT64.pack(base_offset),
                view[_LENGTH_OFFSET:_LEADER_EPOCH_OFFSET],
                _INT32.pack(partition_leader_epoch),
                view[_MAGIC_OFFSET:],
            )
        )
    except struct.error as exc:
        raise InvalidRecordError(f"base offset or leader epoch out of range: {exc}") from None


def with_log_append_time(batch: Buffer, now_ms: int) -> bytes:
    """Return the single batch ``batch`` stamped LogAppendTime at ``now_ms``, with its CRC recomputed.

    Sets attribute bit 3 and the max timestamp (every record then reads as ``now_ms``), as Kafka's broker
    does for ``message.timestamp.type=LogAppendTime``. The batch's CRC is verified first, so a damaged
    batch is refused rather than given a fresh, valid checksum.
    """
    header = validate_batch(batch, 0)
    if header.size != len(batch):
        raise CorruptRecordError(f"expected exactly one batch of {header.size} bytes, got {len(batch)} bytes")
    view = memoryview(batch)
    records = view[BATCH_OVERHEAD:]
    try:
        covered = _CRC_COVERED.pack(
            header.attributes | _TIMESTAMP_TYPE_BIT,
            header.last_offset_delta,
            header.base_timestamp,
            now_ms,
            header.producer_id,
            header.producer_epoch,
            header.base_sequence,
            header.record_count,
        )
    except struct.error as exc:
        raise InvalidRecordError(f"log-append time {now_ms} out of range: {exc}") from None
    crc = _crc32c(records, _crc32c(covered))
    prefix = _CRC_PREFIX.pack(
        header.base_offset, header.batch_length, header.partition_leader_epoch, MAGIC, crc
    )
    return b"".join((prefix, covered, records))


# --------------------------------------------------------------------------------------------- decode


def decode_batch(buf: Buffer, pos: int = 0, *, verify_crc: bool = True) -> list[Record]:
    """Return the records of the batch at ``buf[pos]``, in offset order.

    The CRC is checked unless ``verify_crc`` is False. Raises ``CorruptRecordError`` for damaged bytes
    and ``UnsupportedCompressionError`` for snappy.
    """
    header = parse_header(buf, pos)
    if verify_crc:
        _validate(header, buf, pos)
    else:
        _check_frame(header, buf, pos)
        _check_fields(header, pos)
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
        _validate(header, buf, pos)
        records = _decode(buf, pos, header)
        if base < min_offset or (max_offset is not None and last >= max_offset):
            high = INT64_MAX if max_offset is None else max_offset
            records = [r for r in records if min_offset <= r.offset < high]
        out += records
    return out


def _decode(buf: Buffer, pos: int, header: BatchHeader) -> list[Record]:
    codec = header.attributes & _COMPRESSION_MASK
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
    if count * _MIN_RECORD_SIZE > stop - start:
        raise CorruptRecordError(
            f"batch at offset {header.base_offset} claims {count} records in {stop - start} bytes of records"
        )
    if header.attributes & _TIMESTAMP_TYPE_BIT:
        # LogAppendTime: every record reads as the batch's max timestamp; the deltas are parsed, not used.
        base_ts, ts_scale = header.max_timestamp, 0
    else:
        base_ts, ts_scale = header.base_timestamp, 1
    try:
        return _decode_section(data, start, stop, count, header.base_offset, base_ts, ts_scale, _new_record)
    except IndexError:
        raise CorruptRecordError(
            f"a record of the batch at offset {header.base_offset} runs past the end of the batch"
        ) from None
