"""The record-batch codec (tidelog._codec): Kafka's record batch v2 layout, round-trips, damage detection,
patching, and the compiled decoder."""

from __future__ import annotations

import dataclasses
import gzip
import struct
from collections.abc import Sequence

import lz4.frame
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tidelog._codec import (
    BATCH_OVERHEAD,
    BatchHeader,
    Compression,
    Header,
    Record,
    RecordIn,
    TimestampType,
    decode_batch,
    decode_records,
    encode_batch,
    iter_batches,
    parse_header,
    validate_batch,
    with_base_offset,
    with_log_append_time,
)
from tidelog._codec._varint import encode_varint, read_varint
from tidelog._codec.errors import CorruptRecordError, InvalidRecordError, UnsupportedCompressionError

CODECS = [Compression.NONE, Compression.GZIP, Compression.LZ4, Compression.ZSTD]
HYPOTHESIS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = 1_700_000_000_000


# --------------------------------------------------------------------------- an independent CRC-32C


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def reference_crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit from its definition."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFFFFFF


def test_reference_crc32c_matches_the_standard_check_value() -> None:
    assert reference_crc32c(b"123456789") == 0xE3069283


# ----------------------------------------------------------------------------- known-answer layout


def test_encode_matches_a_batch_built_by_hand_from_kafkas_spec() -> None:
    # One record: key b"k", value b"value", one header ("h", b"v"), at the batch's base timestamp.
    record_body = (
        b"\x00"  # attributes int8
        + b"\x00"  # timestamp delta varlong 0
        + b"\x00"  # offset delta varint 0
        + b"\x02k"  # key length 1 (zig-zag 2), key
        + b"\x0avalue"  # value length 5 (zig-zag 10), value
        + b"\x02"  # header count 1
        + b"\x02h"  # header key length 1, "h"
        + b"\x02v"  # header value length 1, b"v"
    )
    assert len(record_body) == 16
    records_section = b"\x20" + record_body  # record length 16 (zig-zag 32)
    covered_header = struct.pack(
        ">hiqqqhii",
        0x0008,  # attributes: no compression, LogAppendTime
        0,  # last offset delta
        NOW,  # base timestamp
        NOW + 5,  # max timestamp (the log-append time)
        4242,  # producer id
        3,  # producer epoch
        17,  # base sequence
        1,  # record count
    )
    crc = reference_crc32c(covered_header + records_section)
    expected = (
        struct.pack(">qiibI", 100, 49 + len(records_section), 7, 2, crc) + covered_header + records_section
    )

    batch = encode_batch(
        [RecordIn(value=b"value", key=b"k", headers=[("h", b"v")], timestamp=NOW)],
        base_offset=100,
        now_ms=NOW + 5,
        timestamp_type=TimestampType.LOG_APPEND_TIME,
        producer_id=4242,
        producer_epoch=3,
        base_sequence=17,
        partition_leader_epoch=7,
    )

    assert batch == expected
    assert len(batch) == 61 + 17
    # Field offsets of the 61-byte header, as Kafka's DefaultRecordBatch defines them.
    assert struct.unpack_from(">q", batch, 0)[0] == 100  # base offset
    assert struct.unpack_from(">i", batch, 8)[0] == len(batch) - 12  # batch length
    assert struct.unpack_from(">i", batch, 12)[0] == 7  # partition leader epoch
    assert batch[16] == 2  # magic
    assert struct.unpack_from(">I", batch, 17)[0] == reference_crc32c(batch[21:])  # CRC covers [21, end)
    assert struct.unpack_from(">h", batch, 21)[0] == 0x0008  # attributes
    assert struct.unpack_from(">i", batch, 23)[0] == 0  # last offset delta
    assert struct.unpack_from(">q", batch, 27)[0] == NOW  # base timestamp
    assert struct.unpack_from(">q", batch, 35)[0] == NOW + 5  # max timestamp
    assert struct.unpack_from(">q", batch, 43)[0] == 4242  # producer id
    assert struct.unpack_from(">h", batch, 51)[0] == 3  # producer epoch
    assert struct.unpack_from(">i", batch, 53)[0] == 17  # base sequence
    assert struct.unpack_from(">i", batch, 57)[0] == 1  # record count

    header = validate_batch(batch)
    assert header == BatchHeader(100, len(batch) - 12, 7, 2, crc, 8, 0, NOW, NOW + 5, 4242, 3, 17, 1)
    assert decode_batch(expected) == [Record(100, NOW + 5, b"k", b"value", (("h", b"v"),), 0)]


def test_batch_header_properties() -> None:
    batch = encode_batch(
        [RecordIn(b"a"), RecordIn(b"b"), RecordIn(b"c")],
        base_offset=40,
        now_ms=NOW,
        compression=Compression.ZSTD,
        is_transactional=True,
    )
    header = parse_header(batch)
    assert header.last_offset == 42
    assert header.next_offset == 43
    assert header.size == len(batch)
    assert header.compression is Compression.ZSTD
    assert header.timestamp_type is TimestampType.CREATE_TIME
    assert header.is_transactional
    assert not header.is_control
    control = parse_header(encode_batch([RecordIn(b"x")], now_ms=NOW, is_control=True))
    assert control.is_control
    assert not control.is_transactional


# -------------------------------------------------------------------------------------------- varints


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
@HYPOTHESIS
def test_varint_round_trip(value: int) -> None:
    encoded = encode_varint(value)
    assert read_varint(encoded + b"\xff", 0) == (value, len(encoded))
    assert len(encoded) <= 10


def test_varint_known_encodings() -> None:
    # Kafka's ByteUtils: zig-zag then base-128, low group first.
    assert encode_varint(0) == b"\x00"
    assert encode_varint(-1) == b"\x01"
    assert encode_varint(1) == b"\x02"
    assert encode_varint(63) == b"\x7e"
    assert encode_varint(-64) == b"\x7f"
    assert encode_varint(64) == b"\x80\x01"
    assert encode_varint(300) == b"\xd8\x04"
    assert encode_varint(2**63 - 1) == b"\xfe" + b"\xff" * 8 + b"\x01"
    assert encode_varint(-(2**63)) == b"\xff" * 9 + b"\x01"


def test_varint_refuses_overlong_and_truncated_input() -> None:
    with pytest.raises(CorruptRecordError):
        read_varint(b"\x80" * 10 + b"\x01", 0)
    with pytest.raises(CorruptRecordError):
        read_varint(b"\x80\x80", 0)
    with pytest.raises(CorruptRecordError):
        read_varint(b"\xff" * 9 + b"\x7f", 0)  # more than 64 bits
    with pytest.raises(OverflowError):
        encode_varint(2**63)


# ------------------------------------------------------------------------------------------ round-trips

timestamps = st.one_of(
    st.none(),
    st.integers(min_value=-(2**62), max_value=2**62 - 1),
    st.sampled_from([0, -1, NOW, 2**62 - 1, -(2**62)]),
)
nullable_bytes = st.one_of(st.none(), st.binary(max_size=64), st.sampled_from([b"", b"\x00"]))
headers = st.lists(
    st.tuples(st.one_of(st.text(max_size=8), st.sampled_from(["", "dup", "ключ"])), nullable_bytes),
    max_size=4,
)
records_in = st.builds(
    RecordIn,
    value=nullable_bytes,
    key=nullable_bytes,
    headers=headers,
    timestamp=timestamps,
    attributes=st.integers(min_value=0, max_value=255),
)


def expected_records(
    records: Sequence[RecordIn], base_offset: int, now_ms: int, timestamp_type: TimestampType
) -> list[Record]:
    return [
        Record(
            offset=base_offset + i,
            timestamp=(
                now_ms
                if timestamp_type is TimestampType.LOG_APPEND_TIME or r.timestamp is None
                else r.timestamp
            ),
            key=r.key,
            value=r.value,
            headers=tuple(r.headers),
            attributes=r.attributes,
        )
        for i, r in enumerate(records)
    ]


@given(
    records=st.lists(records_in, min_size=1, max_size=30),
    codec=st.sampled_from(CODECS),
    base_offset=st.one_of(st.integers(min_value=0, max_value=2**62), st.just(0)),
    timestamp_type=st.sampled_from(list(TimestampType)),
    producer=st.tuples(
        st.integers(min_value=-1, max_value=2**63 - 1),
        st.integers(min_value=-1, max_value=2**15 - 1),
        st.integers(min_value=-1, max_value=2**31 - 1),
    ),
)
@HYPOTHESIS
def test_round_trip(
    records: list[RecordIn],
    codec: Compression,
    base_offset: int,
    timestamp_type: TimestampType,
    producer: tuple[int, int, int],
) -> None:
    producer_id, producer_epoch, base_sequence = producer
    batch = encode_batch(
        records,
        base_offset=base_offset,
        now_ms=NOW,
        compression=codec,
        timestamp_type=timestamp_type,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
    )
    header = validate_batch(batch)
    assert header.size == len(batch)
    assert header.base_offset == base_offset
    assert header.last_offset == base_offset + len(records) - 1
    assert header.record_count == len(records)
    assert header.compression is codec
    assert header.timestamp_type is timestamp_type
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == producer
    stamps = [NOW if r.timestamp is None else r.timestamp for r in records]
    assert header.base_timestamp == stamps[0]
    if timestamp_type is TimestampType.CREATE_TIME:
        assert header.max_timestamp == max(stamps)
    else:
        assert header.max_timestamp == NOW
    expected = expected_records(records, base_offset, NOW, timestamp_type)
    assert decode_batch(batch) == expected
    assert decode_records(batch) == expected
    assert decode_batch(bytearray(batch)) == expected
    assert decode_batch(memoryview(batch)) == expected


@pytest.mark.parametrize("codec", CODECS)
def test_null_and_empty_are_distinct(codec: Compression) -> None:
    records = [
        RecordIn(value=None, key=None),
        RecordIn(value=b"", key=b""),
        RecordIn(value=b"v", key=None, headers=[("h", None), ("h", b""), ("", b"x"), ("h", b"y")]),
        RecordIn(value=None, key=b"tombstone-key", headers=[]),
    ]
    decoded = decode_batch(encode_batch(records, now_ms=NOW, compression=codec))
    assert [(r.key, r.value) for r in decoded] == [
        (None, None),
        (b"", b""),
        (None, b"v"),
        (b"tombstone-key", None),
    ]
    # Repeated header keys keep their order and each their own value.
    assert decoded[2].headers == (("h", None), ("h", b""), ("", b"x"), ("h", b"y"))
    assert decoded[0].headers == ()


@pytest.mark.parametrize("codec", CODECS)
def test_large_varints_and_many_records(codec: Compression) -> None:
    # 20,000 records: offset deltas past the two-byte varint range (8191); a 3-byte length value;
    # a 70 KB value (record length past 2**16); timestamp deltas of every size.
    big = bytes(range(256)) * 275
    records = [
        RecordIn(value=b"%d" % i, key=b"k" if i % 7 == 0 else None, timestamp=NOW + (i * 7919) ** 2)
        for i in range(20_000)
    ]
    records[9_000] = RecordIn(value=big, key=b"x" * 9_000, headers=[("h" * 300, b"y" * 10_000)], timestamp=1)
    records[19_999] = RecordIn(value=b"last", timestamp=-(2**40))
    batch = encode_batch(records, base_offset=2**40, now_ms=NOW, compression=codec)
    decoded = decode_batch(batch)
    assert decoded == expected_records(records, 2**40, NOW, TimestampType.CREATE_TIME)
    assert parse_header(batch).max_timestamp == NOW + (19_998 * 7919) ** 2


def test_extreme_timestamps() -> None:
    for stamps in ([-(2**62), 2**62 - 1], [2**62, 2**62 + 5], [-1, 0, 1], [2**63 - 1, 0]):
        records = [RecordIn(b"v", timestamp=t) for t in stamps]
        decoded = decode_batch(encode_batch(records, now_ms=NOW))
        assert [r.timestamp for r in decoded] == stamps
    # A delta beyond 64 bits, or a timestamp beyond 64 bits, is refused, not wrapped.
    with pytest.raises(InvalidRecordError):
        encode_batch([RecordIn(b"v", timestamp=-(2**63)), RecordIn(b"v", timestamp=2**63 - 1)], now_ms=NOW)
    with pytest.raises(InvalidRecordError):
        encode_batch([RecordIn(b"v", timestamp=2**63)], now_ms=NOW)
    with pytest.raises(InvalidRecordError):
        encode_batch([RecordIn(b"v", timestamp=0), RecordIn(b"v", timestamp=2**63)], now_ms=NOW)


def test_missing_timestamps_take_now_even_after_an_explicit_one() -> None:
    decoded = decode_batch(encode_batch([RecordIn(b"a", timestamp=5), RecordIn(b"b")], now_ms=NOW))
    assert [r.timestamp for r in decoded] == [5, NOW]


def test_decoded_records_are_ordinary_frozen_records() -> None:
    (record,) = decode_batch(encode_batch([RecordIn(b"v", key=b"k", attributes=9)], now_ms=NOW))
    assert type(record) is Record
    assert record == Record(0, NOW, b"k", b"v", (), 9)
    assert hash(record) == hash(Record(0, NOW, b"k", b"v", (), 9))
    assert dataclasses.replace(record, offset=3).offset == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.offset = 1  # type: ignore[misc]


# ----------------------------------------------------------------------------------------- compression


@pytest.mark.parametrize(
    ("codec", "standard_decompress"),
    [
        (Compression.GZIP, gzip.decompress),
        (Compression.LZ4, lz4.frame.decompress),
        (Compression.ZSTD, lambda data: zstandard.ZstdDecompressor().decompress(data)),
    ],
)
def test_compressed_section_is_the_standard_stream_of_the_plain_records(codec, standard_decompress) -> None:  # type: ignore[no-untyped-def]
    records = [RecordIn(value=b"value %d" % i, key=b"key") for i in range(50)]
    plain = encode_batch(records, now_ms=NOW)
    packed = encode_batch(records, now_ms=NOW, compression=codec)
    assert standard_decompress(packed[BATCH_OVERHEAD:]) == plain[BATCH_OVERHEAD:]
    assert len(packed) < len(plain)


def _rebuild(batch: bytes, attributes: int, section: bytes) -> bytes:
    """A batch with ``batch``'s header, new attributes and records section, and a correct CRC."""
    header = parse_header(batch)
    covered = struct.pack(
        ">hiqqqhii",
        attributes,
        header.last_offset_delta,
        header.base_timestamp,
        header.max_timestamp,
        header.producer_id,
        header.producer_epoch,
        header.base_sequence,
        header.record_count,
    )
    crc = reference_crc32c(covered + section)
    prefix = struct.pack(
        ">qiibI", header.base_offset, 49 + len(section), header.partition_leader_epoch, 2, crc
    )
    return prefix + covered + section


def test_decodes_foreign_streams_kafka_writers_produce() -> None:
    records = [RecordIn(value=b"value %d" % i) for i in range(300)]
    plain = encode_batch(records, now_ms=NOW)
    section = plain[BATCH_OVERHEAD:]
    expected = decode_batch(plain)
    # zstd without a content size in the frame header (a streaming writer), split over two frames.
    cctx = zstandard.ZstdCompressor(write_content_size=False)
    half = len(section) // 2
    chunks = []
    for part in (section[:half], section[half:]):
        cobj = cctx.compressobj()
        chunks.append(cobj.compress(part) + cobj.flush())
    assert decode_batch(_rebuild(plain, 4, b"".join(chunks))) == expected
    # gzip as two concatenated members, which Java's GZIPInputStream reads.
    two_members = gzip.compress(section[:half]) + gzip.compress(section[half:])
    assert decode_batch(_rebuild(plain, 1, two_members)) == expected
    # lz4 with linked blocks and a content checksum.
    linked = lz4.frame.compress(section, block_linked=True, content_checksum=True)
    assert decode_batch(_rebuild(plain, 3, linked)) == expected


def test_snappy_is_refused() -> None:
    with pytest.raises(UnsupportedCompressionError, match="snappy"):
        encode_batch([RecordIn(b"v")], now_ms=NOW, compression=Compression.SNAPPY)
    plain = encode_batch([RecordIn(b"v")], now_ms=NOW)
    snappy = _rebuild(plain, 2, plain[BATCH_OVERHEAD:])
    assert validate_batch(snappy).attributes & 7 == 2  # well-formed, just not decodable here
    with pytest.raises(UnsupportedCompressionError, match="snappy"):
        decode_batch(snappy)
    with pytest.raises(UnsupportedCompressionError):
        decode_records(snappy)


def test_unknown_codec_ids_are_corrupt() -> None:
    plain = encode_batch([RecordIn(b"v")], now_ms=NOW)
    for codec_id in (5, 6, 7):
        odd = _rebuild(plain, codec_id, plain[BATCH_OVERHEAD:])
        with pytest.raises(CorruptRecordError, match="compression"):
            validate_batch(odd)
        with pytest.raises(UnsupportedCompressionError):
            _ = parse_header(odd).compression
        with pytest.raises(UnsupportedCompressionError):
            encode_batch([RecordIn(b"v")], now_ms=NOW, compression=codec_id)  # type: ignore[arg-type]


@pytest.mark.parametrize("codec", [Compression.GZIP, Compression.LZ4, Compression.ZSTD])
def test_damaged_compressed_section_is_corrupt(codec: Compression) -> None:
    plain = encode_batch([RecordIn(b"v" * 100)], now_ms=NOW)
    garbage = _rebuild(plain, int(codec), b"\x00\x01\x02 not a compressed stream")
    with pytest.raises(CorruptRecordError):
        decode_batch(garbage)
    packed = encode_batch([RecordIn(b"v" * 100)] * 20, now_ms=NOW, compression=codec)
    truncated_stream = _rebuild(packed, int(codec), packed[BATCH_OVERHEAD:-5])
    with pytest.raises(CorruptRecordError):
        decode_batch(truncated_stream)


# ------------------------------------------------------------------------------------ damage detection


def _small_batch(codec: Compression = Compression.NONE) -> bytes:
    return encode_batch(
        [
            RecordIn(value=b"first value", key=b"k1", headers=[("trace", b"abc")]),
            RecordIn(value=None, key=b"k2", timestamp=NOW - 10),
            RecordIn(value=b"third", attributes=5),
        ],
        base_offset=1000,
        now_ms=NOW,
        compression=codec,
        producer_id=7,
        producer_epoch=1,
        base_sequence=0,
    )


@pytest.mark.parametrize("codec", CODECS)
def test_every_flipped_byte_in_the_crc_coverage_is_detected(codec: Compression) -> None:
    batch = _small_batch(codec)
    for position in range(21, len(batch)):
        for flip in (0x01, 0x80):
            damaged = bytearray(batch)
            damaged[position] ^= flip
            with pytest.raises(CorruptRecordError, match="CRC"):
                validate_batch(bytes(damaged))
            with pytest.raises(CorruptRecordError):
                decode_batch(bytes(damaged))


def test_flipped_crc_magic_and_length_are_detected() -> None:
    batch = _small_batch()
    for position in [*range(8, 12), 16, *range(17, 21)]:
        damaged = bytearray(batch)
        damaged[position] ^= 0x04
        with pytest.raises(CorruptRecordError):
            validate_batch(bytes(damaged))


def test_base_offset_and_leader_epoch_are_outside_the_crc() -> None:
    batch = _small_batch()
    for position in [*range(0, 8), *range(12, 16)]:
        patched = bytearray(batch)
        patched[position] ^= 0xFF
        validate_batch(bytes(patched))  # still valid: that is what makes offset patching possible


@pytest.mark.parametrize("codec", CODECS)
def test_truncated_buffers_are_refused(codec: Compression) -> None:
    batch = _small_batch(codec)
    for length in range(len(batch)):
        with pytest.raises(CorruptRecordError, match="truncated"):
            validate_batch(batch[:length])
        with pytest.raises(CorruptRecordError):
            decode_batch(batch[:length])
        assert list(iter_batches(batch[:length])) == []
        assert decode_records(batch[:length]) == []


def test_iter_batches_yields_only_whole_batches() -> None:
    first = encode_batch([RecordIn(b"a"), RecordIn(b"b")], base_offset=0, now_ms=NOW)
    second = encode_batch([RecordIn(b"c")], base_offset=2, now_ms=NOW, compression=Compression.LZ4)
    third = encode_batch([RecordIn(b"d" * 50)], base_offset=3, now_ms=NOW)
    buf = first + second + third
    assert [(pos, h.base_offset) for pos, h in iter_batches(buf)] == [
        (0, 0),
        (len(first), 2),
        (len(first) + len(second), 3),
    ]
    for cut in range(1, len(third)):
        partial = buf[: len(buf) - cut]
        assert [h.base_offset for _, h in iter_batches(partial)] == [0, 2]
        assert [r.value for r in decode_records(partial)] == [b"a", b"b", b"c"]
    assert list(iter_batches(b"")) == []


def test_iter_batches_refuses_bytes_that_cannot_start_a_batch() -> None:
    batch = _small_batch()
    wrong_magic = bytearray(batch)
    wrong_magic[16] = 1
    with pytest.raises(CorruptRecordError, match="magic"):
        list(iter_batches(batch + bytes(wrong_magic)))
    short_length = bytearray(batch)
    struct.pack_into(">i", short_length, 8, 20)
    with pytest.raises(CorruptRecordError, match="length"):
        list(iter_batches(bytes(short_length)))
    with pytest.raises(CorruptRecordError, match="length"):
        validate_batch(bytes(short_length))


@given(section=st.binary(min_size=0, max_size=200), count=st.integers(min_value=0, max_value=40))
@HYPOTHESIS
def test_garbage_records_with_a_valid_crc_raise_only_corrupt_record_error(section: bytes, count: int) -> None:
    # A batch whose CRC is right but whose records section is arbitrary bytes: the decoder must either
    # decode it or raise CorruptRecordError, never another exception.
    header = struct.pack(">hiqqqhii", 0, max(count - 1, 0), NOW, NOW, -1, -1, -1, count)
    crc = reference_crc32c(header + section)
    batch = struct.pack(">qiibI", 0, 49 + len(section), 0, 2, crc) + header + section
    try:
        records = decode_batch(batch)
    except CorruptRecordError:
        return
    assert len(records) == count


def test_corrupt_records_with_a_valid_crc_are_reported_clearly() -> None:
    good = encode_batch([RecordIn(b"abc")], now_ms=NOW)
    section = bytearray(good[BATCH_OVERHEAD:])
    # section: length(1) attributes ts od keylen(-1) valuelen(3) "abc" headers(0)
    too_long = bytearray(section)
    too_long[0] += 2  # declares one byte more than the record holds
    with pytest.raises(CorruptRecordError, match="bytes"):
        decode_batch(_rebuild(good, 0, bytes(too_long) + b"\x00"))
    negative_key = bytearray(section)
    negative_key[4] = 0x03  # key length -2
    with pytest.raises(CorruptRecordError, match="negative"):
        decode_batch(_rebuild(good, 0, bytes(negative_key)))
    bad_utf8 = encode_batch([RecordIn(b"v", headers=[("é", b"x")])], now_ms=NOW)
    section = bytearray(bad_utf8[BATCH_OVERHEAD:])
    index = section.index("é".encode())
    section[index] = 0xFF
    with pytest.raises(CorruptRecordError, match="UTF-8"):
        decode_batch(_rebuild(bad_utf8, 0, bytes(section)))
    with pytest.raises(CorruptRecordError, match="left over"):
        decode_batch(_rebuild(good, 0, bytes(good[BATCH_OVERHEAD:]) + b"\x00" * 8))


# ------------------------------------------------------------------------------------------- patching


@pytest.mark.parametrize("codec", CODECS)
def test_with_base_offset_keeps_the_crc_valid(codec: Compression) -> None:
    batch = _small_batch(codec)
    patched = with_base_offset(batch, 5_000_000_000)
    header = validate_batch(patched)
    assert header.base_offset == 5_000_000_000
    assert header.partition_leader_epoch == -1
    assert header.crc == parse_header(batch).crc
    assert [r.offset for r in decode_batch(patched)] == [5_000_000_000, 5_000_000_001, 5_000_000_002]
    assert [r.value for r in decode_batch(patched)] == [r.value for r in decode_batch(batch)]
    with_epoch = with_base_offset(bytearray(batch), 12, partition_leader_epoch=9)
    header = validate_batch(with_epoch)
    assert (header.base_offset, header.partition_leader_epoch) == (12, 9)
    assert len(with_epoch) == len(batch)
    with pytest.raises(CorruptRecordError):
        with_base_offset(batch[:60], 1)


@pytest.mark.parametrize("codec", CODECS)
def test_with_log_append_time(codec: Compression) -> None:
    batch = _small_batch(codec)
    stamped = with_log_append_time(batch, NOW + 1234)
    header = validate_batch(stamped)
    assert header.timestamp_type is TimestampType.LOG_APPEND_TIME
    assert header.max_timestamp == NOW + 1234
    assert header.base_timestamp == parse_header(batch).base_timestamp
    assert header.compression is codec
    assert header.producer_id == 7
    assert len(stamped) == len(batch)
    decoded = decode_batch(stamped)
    assert [r.timestamp for r in decoded] == [NOW + 1234] * 3
    assert [(r.key, r.value, r.headers) for r in decoded] == [
        (r.key, r.value, r.headers) for r in decode_batch(batch)
    ]
    # Stamping twice just moves the time.
    assert parse_header(with_log_append_time(stamped, NOW + 1)).max_timestamp == NOW + 1


def test_with_log_append_time_refuses_damaged_or_partial_input() -> None:
    batch = _small_batch()
    damaged = bytearray(batch)
    damaged[-1] ^= 1
    with pytest.raises(CorruptRecordError, match="CRC"):
        with_log_append_time(bytes(damaged), NOW)  # a damaged batch must not get a fresh valid CRC
    with pytest.raises(CorruptRecordError):
        with_log_append_time(batch + batch, NOW)
    with pytest.raises(CorruptRecordError):
        with_log_append_time(batch[:-1], NOW)


# -------------------------------------------------------------------------------------- decode_records


@given(
    sizes=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=6),
    codec=st.sampled_from(CODECS),
    min_offset=st.integers(min_value=0, max_value=40),
    span=st.one_of(st.none(), st.integers(min_value=0, max_value=40)),
)
@HYPOTHESIS
def test_decode_records_bounds(
    sizes: list[int], codec: Compression, min_offset: int, span: int | None
) -> None:
    batches = []
    offset = 3
    for size in sizes:
        batches.append(
            encode_batch(
                [RecordIn(b"%d" % (offset + i)) for i in range(size)],
                base_offset=offset,
                now_ms=NOW,
                compression=codec,
            )
        )
        offset += size
    max_offset = None if span is None else min_offset + span
    decoded = decode_records(b"".join(batches), min_offset=min_offset, max_offset=max_offset)
    upper = offset if max_offset is None else min(max_offset, offset)
    expected = list(range(max(min_offset, 3), upper))
    assert [r.offset for r in decoded] == expected
    assert [r.value for r in decoded] == [b"%d" % o for o in expected]


def test_decode_records_skips_batches_below_min_offset_by_header_only() -> None:
    first = bytearray(encode_batch([RecordIn(b"a"), RecordIn(b"b")], base_offset=0, now_ms=NOW))
    first[-1] ^= 0xFF  # damage its records: only decoding it would notice
    second = encode_batch([RecordIn(b"c")], base_offset=2, now_ms=NOW)
    third = bytearray(encode_batch([RecordIn(b"d")], base_offset=3, now_ms=NOW))
    third[-1] ^= 0xFF  # past max_offset: never decoded either
    buf = bytes(first) + second + bytes(third)
    assert [r.value for r in decode_records(buf, min_offset=2, max_offset=3)] == [b"c"]
    with pytest.raises(CorruptRecordError):
        decode_records(buf)


def test_compaction_shaped_batches_keep_offset_gaps_and_range() -> None:
    survivors = [RecordIn(b"v1", key=b"a"), RecordIn(b"v7", key=b"b")]
    batch = encode_batch(survivors, base_offset=100, now_ms=NOW, offset_deltas=[1, 7], last_offset_delta=9)
    header = validate_batch(batch)
    assert (header.record_count, header.last_offset, header.next_offset) == (2, 109, 110)
    assert [r.offset for r in decode_batch(batch)] == [101, 107]
    assert [r.offset for r in decode_records(batch, min_offset=102)] == [107]
    empty = encode_batch([], base_offset=100, now_ms=NOW, last_offset_delta=9, producer_id=5)
    assert validate_batch(empty).record_count == 0
    assert decode_batch(empty) == []
    assert parse_header(empty).next_offset == 110
    with pytest.raises(InvalidRecordError):
        encode_batch(survivors, now_ms=NOW, offset_deltas=[3, 3])
    with pytest.raises(InvalidRecordError):
        encode_batch(survivors, now_ms=NOW, offset_deltas=[0])
    with pytest.raises(InvalidRecordError):
        encode_batch(survivors, now_ms=NOW, offset_deltas=[0, 4], last_offset_delta=3)


# ----------------------------------------------------------------------------------- invalid input


def test_invalid_records_are_refused_with_clear_errors() -> None:
    with pytest.raises(InvalidRecordError, match="at least one record"):
        encode_batch([], now_ms=NOW)
    with pytest.raises(InvalidRecordError, match="attributes"):
        encode_batch([RecordIn(b"v", attributes=256)], now_ms=NOW)
    with pytest.raises(InvalidRecordError, match="attributes"):
        encode_batch([RecordIn(b"v", attributes=-1)], now_ms=NOW)
    with pytest.raises(InvalidRecordError, match="type"):
        encode_batch([RecordIn("text")], now_ms=NOW)  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError, match="header key"):
        encode_batch([RecordIn(b"v", headers=[(b"bytes-key", b"v")])], now_ms=NOW)  # type: ignore[list-item]
    with pytest.raises(InvalidRecordError, match="out of range"):
        encode_batch([RecordIn(b"v")], now_ms=NOW, producer_epoch=2**15)
    with pytest.raises(InvalidRecordError, match="out of range"):
        with_base_offset(encode_batch([RecordIn(b"v")], now_ms=NOW), 2**63)


def test_parse_header_needs_61_bytes() -> None:
    with pytest.raises(CorruptRecordError, match="61 bytes needed"):
        parse_header(b"\x00" * 60)
    batch = _small_batch()
    assert parse_header(b"xx" + batch, 2) == parse_header(batch)
    assert validate_batch(b"xx" + batch, 2) == parse_header(batch)
    assert decode_batch(b"xx" + batch + b"yy", 2) == decode_batch(batch)


def test_header_alias_is_a_pair() -> None:
    header: Header = ("k", None)
    decoded = decode_batch(encode_batch([RecordIn(b"v", headers=[header])], now_ms=NOW))
    assert decoded[0].headers == (header,)


def test_record_in_behaves_as_a_frozen_dataclass() -> None:
    record = RecordIn(b"v", key=b"k")
    assert record == RecordIn(value=b"v", key=b"k", headers=(), timestamp=None, attributes=0)
    assert record != RecordIn(b"v")
    assert type(record) is RecordIn
    assert [f.name for f in dataclasses.fields(RecordIn)] == [
        "value",
        "key",
        "headers",
        "timestamp",
        "attributes",
    ]
    assert dataclasses.replace(record, timestamp=5) == RecordIn(b"v", b"k", (), 5, 0)
    assert repr(RecordIn(None)) == "RecordIn(value=None, key=None, headers=(), timestamp=None, attributes=0)"
    assert hash(RecordIn(b"v")) == hash(RecordIn(b"v"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.value = b"w"  # type: ignore[misc]
    with pytest.raises(TypeError):
        RecordIn()  # type: ignore[call-arg]


def test_the_worked_example_in_the_format_documentation_is_exact() -> None:
    import tidelog._codec.batch

    doc = tidelog._codec.batch.__doc__ or ""
    block = doc[doc.index("Example: one record") : doc.index("Compression (``tidelog._codec.compression``)")]
    hex_bytes = []
    for line in block.splitlines()[3:]:
        # each line: hex pairs, then three or more spaces, then the comment
        cells = line.strip().split("   ")[0].split()
        hex_bytes += [c for c in cells if len(c) == 2]
    documented = bytes.fromhex("".join(hex_bytes))
    batch = encode_batch(
        [RecordIn(value=b"value", key=b"k", headers=[("h", b"v")], timestamp=1_700_000_000_000)],
        base_offset=100,
        now_ms=1_700_000_000_000,
        partition_leader_epoch=7,
    )
    assert documented == batch
    assert reference_crc32c(batch[21:]) == 0x62503406


def test_codec_bench_runs_at_a_tiny_scale(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import codec_bench

    assert codec_bench.main(["--batch", "20", "--rounds", "1", "--seconds", "0.01"]) == 0
    out = capsys.readouterr().out
    assert out.count("| value only |") == 4
    assert out.count("| key+2 headers |") == 4
    assert "decode, uncompressed:" in out


@given(
    records=st.lists(records_in, min_size=1, max_size=5),
    edits=st.lists(
        st.tuples(
            st.sampled_from(["flip", "insert", "delete"]), st.integers(min_value=0), st.integers(0, 255)
        ),
        min_size=1,
        max_size=4,
    ),
)
@HYPOTHESIS
def test_mutated_records_with_a_valid_crc_raise_only_corrupt_record_error(
    records: list[RecordIn], edits: list[tuple[str, int, int]]
) -> None:
    # Structure-aware damage: start from a real records section, change bytes in it, give the batch a
    # correct CRC again (as a buggy or hostile producer could), and decode.
    batch = encode_batch(records, now_ms=NOW)
    section = bytearray(batch[BATCH_OVERHEAD:])
    for kind, where, byte in edits:
        if kind == "insert":
            section.insert(where % (len(section) + 1), byte)
        elif section:
            index = where % len(section)
            if kind == "flip":
                section[index] ^= byte or 1
            else:
                del section[index]
    mutated = _rebuild(batch, 0, bytes(section))
    try:
        decoded = decode_batch(mutated)
    except CorruptRecordError:
        return
    assert len(decoded) == len(records)
    assert all(type(r) is Record for r in decoded)


def test_records_survive_pickling() -> None:
    import pickle

    records = decode_batch(_small_batch())
    assert pickle.loads(pickle.dumps(records)) == records
    assert pickle.loads(pickle.dumps(RecordIn(b"v", key=b"k"))) == RecordIn(b"v", key=b"k")


@pytest.mark.parametrize(
    ("codec", "pack"),
    [
        (Compression.GZIP, gzip.compress),
        (Compression.LZ4, lambda data: lz4.frame.compress(data, store_size=True)),
        (Compression.LZ4, lambda data: lz4.frame.compress(data, store_size=False)),
        (Compression.ZSTD, lambda data: zstandard.ZstdCompressor().compress(data)),
        (Compression.ZSTD, lambda data: zstandard.ZstdCompressor(write_content_size=False).compress(data)),
    ],
)
def test_decompression_is_bounded_and_strict(codec, pack) -> None:  # type: ignore[no-untyped-def]
    from tidelog._codec.compression import decompress

    zeros = bytes(100_000)
    packed = pack(zeros)
    assert decompress(codec, packed) == zeros
    assert decompress(codec, packed, max_size=100_000) == zeros
    with pytest.raises(CorruptRecordError, match="more than 99999 bytes"):
        decompress(codec, packed, max_size=99_999)
    with pytest.raises(CorruptRecordError, match="more than 100000 bytes"):
        decompress(codec, packed + pack(b"x"), max_size=100_000)
    assert decompress(codec, packed + pack(b"tail")) == zeros + b"tail"  # every frame is read
    with pytest.raises(CorruptRecordError, match="decompress"):
        decompress(codec, packed + b"trailing junk")
    with pytest.raises(CorruptRecordError, match="decompress"):
        decompress(codec, packed[: len(packed) // 2])


def test_fallback_constructors_build_the_same_objects() -> None:
    from tidelog._codec import batch as codec

    made = object.__new__(RecordIn)
    codec._plain_record_in_init(made, b"v", key=b"k", timestamp=3)
    assert made == RecordIn(b"v", key=b"k", timestamp=3)

    def refuses(*args: object) -> object:
        raise TypeError("no")

    assert codec._verified_builder(refuses, Record, (1, 2, None, None, (), 0)) is Record
    assert codec._verified_builder(lambda *a: a, Record, (1, 2, None, None, (), 0)) is Record
    assert (
        codec._verified_builder(codec._RecordBuilder, Record, (1, 2, None, None, (), 0))
        is codec._RecordBuilder
    )
    header = codec.new_header(*range(13))
    assert type(header) is BatchHeader
    assert header == BatchHeader(*range(13))


def test_validate_batch_can_check_the_records_too() -> None:
    good = _small_batch(Compression.LZ4)
    assert validate_batch(good, check_records=True) == validate_batch(good)
    broken = bytearray(encode_batch([RecordIn(b"abc")], now_ms=NOW)[BATCH_OVERHEAD:])
    broken[0] += 2  # a record length that does not match the record, under a valid CRC
    batch = _rebuild(_small_batch(), 0, bytes(broken))
    validate_batch(batch)  # the header and CRC alone look fine
    with pytest.raises(CorruptRecordError):
        validate_batch(batch, check_records=True)
    plain = encode_batch([RecordIn(b"v")], now_ms=NOW)
    with pytest.raises(UnsupportedCompressionError):
        validate_batch(_rebuild(plain, 2, plain[BATCH_OVERHEAD:]), check_records=True)
    # Records whose offsets run past the header's last offset.
    header = parse_header(plain)
    beyond = encode_batch([RecordIn(b"a"), RecordIn(b"b")], now_ms=NOW, offset_deltas=[0, 5])
    section = beyond[BATCH_OVERHEAD:]
    covered = struct.pack(">hiqqqhii", 0, 1, header.base_timestamp, header.max_timestamp, -1, -1, -1, 2)
    crc = reference_crc32c(covered + section)
    lying = struct.pack(">qiibI", 0, 49 + len(section), -1, 2, crc) + covered + section
    with pytest.raises(CorruptRecordError, match="past its last offset"):
        validate_batch(lying, check_records=True)


def test_validate_batch_with_records_refuses_offsets_that_do_not_increase() -> None:
    plain = encode_batch([RecordIn(b"a"), RecordIn(b"b")], now_ms=NOW)
    section = bytearray(plain[BATCH_OVERHEAD:])
    # second record: length, attributes, ts delta, then its offset delta (1, zig-zag 2) -> 0
    second = 1 + section[0] // 2
    assert section[second + 3] == 0x02
    section[second + 3] = 0x00
    batch = _rebuild(plain, 0, bytes(section))
    assert [r.offset for r in decode_batch(batch)] == [0, 0]
    with pytest.raises(CorruptRecordError, match="do not increase"):
        validate_batch(batch, check_records=True)


@given(
    batches=st.lists(
        st.tuples(
            st.sets(st.integers(min_value=0, max_value=9), max_size=6),  # surviving offset deltas
            st.integers(min_value=0, max_value=3),  # extra room after the last survivor
            st.sampled_from(CODECS),
        ),
        min_size=1,
        max_size=6,
    ),
    min_offset=st.integers(min_value=0, max_value=70),
    span=st.one_of(st.none(), st.integers(min_value=0, max_value=70)),
)
@HYPOTHESIS
def test_decode_records_bounds_over_compacted_batches(
    batches: list[tuple[set[int], int, Compression]], min_offset: int, span: int | None
) -> None:
    # Compaction-shaped batches: gaps inside, a kept offset range past the last survivor, even no
    # survivors at all. The model is the plain list of surviving offsets.
    buf = []
    model: list[int] = []
    base = 0
    for survivors, room, codec in batches:
        deltas = sorted(survivors)
        last_delta = (deltas[-1] if deltas else 0) + room
        buf.append(
            encode_batch(
                [RecordIn(b"%d" % (base + d), key=b"k") for d in deltas],
                base_offset=base,
                now_ms=NOW,
                compression=codec,
                offset_deltas=deltas,
                last_offset_delta=last_delta,
            )
        )
        model += [base + d for d in deltas]
        base += last_delta + 1
    max_offset = None if span is None else min_offset + span
    decoded = decode_records(b"".join(buf), min_offset=min_offset, max_offset=max_offset)
    high = base if max_offset is None else max_offset
    expected = [o for o in model if min_offset <= o < high]
    assert [r.offset for r in decoded] == expected
    assert [r.value for r in decoded] == [b"%d" % o for o in expected]
    for pos, header in iter_batches(b"".join(buf)):
        validate_batch(b"".join(buf), pos, check_records=True)
        assert header.record_count <= header.last_offset_delta + 1


# ------------------------------------------------------------------------- the compiled decoder (optional)


def test_the_loader_uses_a_compiled_decoder_only_when_built_from_the_current_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import hashlib
    import sys
    import types
    from pathlib import Path

    from tidelog._codec import _decode
    from tidelog._codec import decoder as codec

    current = hashlib.sha256(Path(_decode.__file__).read_bytes()).hexdigest()

    def fake(sha: str, file: str) -> types.ModuleType:
        module = types.ModuleType("tidelog._codec._decode_native")
        module.__file__ = file
        module.SOURCE_SHA256 = sha  # type: ignore[attr-defined]
        module.decode_section = lambda *args: ["compiled"]  # type: ignore[attr-defined]
        return module

    monkeypatch.setitem(
        sys.modules, "tidelog._codec._decode_native", fake(current, "/x/_decode_native.cpython-311.so")
    )
    module, name = codec._load_decoder()
    assert name == "mypyc"
    assert module.decode_section() == ["compiled"]
    monkeypatch.setitem(
        sys.modules, "tidelog._codec._decode_native", fake("0" * 64, "/x/_decode_native.cpython-311.so")
    )
    assert codec._load_decoder() == (_decode, "python")  # stale: built from another source
    monkeypatch.setitem(sys.modules, "tidelog._codec._decode_native", fake(current, "/x/_decode_native.py"))
    assert codec._load_decoder() == (_decode, "python")  # not compiled at all
    monkeypatch.setitem(sys.modules, "tidelog._codec._decode_native", None)  # makes the import fail
    assert codec._load_decoder() == (_decode, "python")


@pytest.fixture(scope="module")
def compiled_decoder(tmp_path_factory: pytest.TempPathFactory) -> object:
    """``tidelog/_codec/_decode.py`` compiled with mypyc into a throwaway package, as ``_accelerate`` does."""
    import importlib
    import shutil
    import sys
    import sysconfig
    from pathlib import Path

    if shutil.which("gcc") is None and shutil.which("cc") is None:
        pytest.skip("no C compiler: the compiled decoder is optional")
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        pytest.skip("no Python headers: the compiled decoder is optional")
    from tidelog._codec import _accelerate

    root = tmp_path_factory.mktemp("accel")
    package = root / "tidelog_accel_probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    _accelerate.build(package)
    sys.path.insert(0, str(root))
    try:
        return importlib.import_module("tidelog_accel_probe._decode_native")
    finally:
        sys.path.remove(str(root))


def _section(batch: bytes) -> tuple[bytes, int, int, int, int, int]:
    header = parse_header(batch)
    return batch, BATCH_OVERHEAD, len(batch), header.record_count, header.base_offset, header.base_timestamp


@pytest.mark.slow
@given(records=st.lists(records_in, min_size=1, max_size=20), garbage=st.binary(max_size=60))
@HYPOTHESIS
def test_the_compiled_decoder_matches_the_python_one(
    compiled_decoder: object, records: list[RecordIn], garbage: bytes
) -> None:
    from tidelog._codec import _decode
    from tidelog._codec.batch import new_record as _new_record

    native = compiled_decoder.decode_section  # type: ignore[attr-defined]
    batch, pos, end, count, base, base_ts = _section(encode_batch(records, base_offset=7, now_ms=NOW))
    expected = _decode.decode_section(batch, pos, end, count, base, base_ts, 1, _new_record)
    assert native(batch, pos, end, count, base, base_ts, 1, _new_record) == expected
    assert native(batch, pos, end, count, base, NOW, 0, _new_record) == _decode.decode_section(
        batch, pos, end, count, base, NOW, 0, _new_record
    )
    # Damaged sections fail the same way in both (CorruptRecordError, or IndexError past the end).
    damaged = batch[:pos] + garbage + batch[pos + len(garbage) :]
    outcomes = []
    for decode in (_decode.decode_section, native):
        try:
            outcomes.append(decode(damaged, pos, len(damaged), count, base, base_ts, 1, _new_record))
        except (CorruptRecordError, IndexError) as exc:
            outcomes.append(type(exc))
    assert outcomes[0] == outcomes[1]
