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

Compression (``tidelog._codec.compression``): the records section is compressed as a whole, and
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
``tidelog._codec._decode``, plain typed Python that ``python -m tidelog._codec._accelerate`` can compile
with mypyc (about three times faster); ``tidelog._codec.decoder.DECODER`` says which one runs. ``Record`` and
``RecordIn`` are frozen dataclasses; a frozen dataclass's generated ``__init__`` costs about three
times a plain one, so the decoder builds records through ``_RecordBuilder`` and ``RecordIn`` has its
own ``__init__`` (see both).

Where the code is: this module holds the layout (``BATCH_HEADER``), the header and record types and
their fast constructors; ``tidelog._codec.encoder`` builds and patches batches,
``tidelog._codec.scanner`` walks batches and checks their frames and CRCs, ``tidelog._codec.decoder``
reads the records out; the errors are ``tidelog._codec.errors``. The broker's ``storage`` package
re-exports all of it (``storage.records``), so the log and the client share one codec.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Final, TypeVar, cast, final

import crc32c as _crc32c_mod

from tidelog._codec.compression import Compression
from tidelog._codec.errors import UnsupportedCompressionError

__all__ = [
    "BATCH_HEADER",
    "BATCH_OVERHEAD",
    "MAGIC",
    "BatchHeader",
    "Buffer",
    "Header",
    "Record",
    "RecordIn",
    "TimestampType",
]

Buffer = bytes | bytearray | memoryview
_T = TypeVar("_T")
Header = tuple[str, bytes | None]

crc32c: Callable[..., int] = _crc32c_mod.crc32c

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
CRC_PREFIX = struct.Struct(">qiibI")  # bytes [0, 21): base_offset .. crc
CRC_COVERED = struct.Struct(">hiqqqhii")  # bytes [21, 61): attributes .. record_count
CRC_START: Final = CRC_PREFIX.size  # 21
LENGTH_OFFSET: Final = 8
MAGIC_OFFSET: Final = 16
LEADER_EPOCH_OFFSET: Final = 12
LOG_OVERHEAD: Final = 12  # base_offset + batch_length: the bytes batch_length does not count
MIN_BATCH_LENGTH: Final = BATCH_OVERHEAD - LOG_OVERHEAD  # 49
INT64 = struct.Struct(">q")
INT32 = struct.Struct(">i")
LENGTH_AND_MAGIC = struct.Struct(">i4xb")  # batch_length at 8, magic at 16

assert BATCH_OVERHEAD == 61
assert CRC_START + CRC_COVERED.size == BATCH_OVERHEAD

COMPRESSION_MASK: Final = 0x07
TIMESTAMP_TYPE_BIT: Final = 0x08
TRANSACTIONAL_BIT: Final = 0x10
CONTROL_BIT: Final = 0x20
KNOWN_CODECS: Final = frozenset(int(c) for c in Compression)

MIN_RECORD_SIZE: Final = 7  # length, attributes, ts delta, offset delta, key len, value len, header count


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


new_record: Callable[[int, int, bytes | None, bytes | None, tuple[Header, ...], int], Record] = (
    _verified_builder(_RecordBuilder, Record, (1, 2, b"k", None, (("h", b"v"),), 3))
)




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
        return self.batch_length + LOG_OVERHEAD

    @property
    def compression(self) -> Compression:
        """The codec of the records section; an unknown id raises ``UnsupportedCompressionError``."""
        codec = self.attributes & COMPRESSION_MASK
        if codec not in KNOWN_CODECS:
            raise UnsupportedCompressionError(f"unknown compression codec id {codec}")
        return Compression(codec)

    @property
    def timestamp_type(self) -> TimestampType:
        """CreateTime or LogAppendTime (bit 3 of the attributes)."""
        return (
            TimestampType.LOG_APPEND_TIME
            if self.attributes & TIMESTAMP_TYPE_BIT
            else TimestampType.CREATE_TIME
        )

    @property
    def is_transactional(self) -> bool:
        """Bit 4: the batch belongs to a transaction."""
        return bool(self.attributes & TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        """Bit 5: a control batch (transaction marker), not user data."""
        return bool(self.attributes & CONTROL_BIT)


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


new_header: Callable[..., BatchHeader] = _verified_builder(
    _BatchHeaderBuilder, BatchHeader, (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)
)


