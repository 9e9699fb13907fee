"""``scan_batch``: the checks of a produced batch, in one pass that builds no records, against the decoder."""

from __future__ import annotations

import struct

import crc32c
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.codec.test_records import HYPOTHESIS, NOW, compiled_decoder, records_in
from tidelog._codec import Compression, RecordIn, decode_batch, encode_batch, scan_batch
from tidelog._codec.errors import CodecError, CorruptRecordError, InvalidRecordsError, RecordsTooLargeError

__all__ = ["compiled_decoder"]  # the module-scoped fixture that builds the mypyc copy

BINARY_ONLY = 0  # attributes 0: key and value in the binary format, so no JSON claims to check


def _recrc(data: bytes) -> bytes:
    return data[:17] + struct.pack(">I", crc32c.crc32c(data[21:])) + data[21:]


def test_a_good_batch_passes_and_its_header_comes_back() -> None:
    records = [RecordIn(b"v", b"k", [("h", b"x")], NOW), RecordIn(None, None, (), NOW + 5)]
    batch = encode_batch(records, base_offset=0, now_ms=NOW)
    header = scan_batch(batch)
    assert (header.record_count, header.max_timestamp) == (2, NOW + 5)


@pytest.mark.parametrize("codec", [Compression.GZIP, Compression.LZ4, Compression.ZSTD])
def test_compressed_batches_are_scanned_within_the_bound(codec: Compression) -> None:
    records = [RecordIn(b"x" * 1000) for _ in range(50)]
    batch = encode_batch(records, base_offset=0, now_ms=NOW, compression=codec)
    assert scan_batch(batch).record_count == 50
    with pytest.raises(RecordsTooLargeError):
        scan_batch(batch, max_decompressed=10_000)


def test_each_check_names_what_failed() -> None:
    plain = encode_batch([RecordIn(b"1", None, (), NOW)], base_offset=0, now_ms=NOW)
    with pytest.raises(InvalidRecordsError, match="compacted"):
        scan_batch(plain, need_key=True)
    with pytest.raises(InvalidRecordsError, match="timestamp"):
        scan_batch(plain, latest_ts=NOW - 1)
    with pytest.raises(InvalidRecordsError, match="JSON"):
        json = encode_batch([RecordIn(b"{", None, (), NOW, 2 << 2)], base_offset=0, now_ms=NOW)
        scan_batch(json, json_ok=lambda data, start, stop: False)
    lying = _recrc(plain[:35] + struct.pack(">q", NOW + 1) + plain[43:])  # max_timestamp too high
    with pytest.raises(InvalidRecordsError, match="max_timestamp"):
        scan_batch(lying)
    with pytest.raises(CorruptRecordError):
        scan_batch(plain[:21] + bytes([plain[21] | 0x10]) + plain[22:])  # transactional, bad CRC too
    with pytest.raises(CorruptRecordError, match="transactional"):
        scan_batch(_recrc(plain[:22] + bytes([plain[22] | 0x10]) + plain[23:]))


@given(records=st.lists(records_in, min_size=1, max_size=12))
@HYPOTHESIS
def test_every_batch_the_encoder_builds_passes(records: list[RecordIn]) -> None:
    # Random attribute bits would claim formats the random bytes are not in: binary keys and values.
    records = [RecordIn(r.value, r.key, r.headers, r.timestamp, BINARY_ONLY) for r in records]
    batch = encode_batch(records, base_offset=0, now_ms=NOW)
    assert scan_batch(batch).record_count == len(records)


@given(
    records=st.lists(records_in, min_size=1, max_size=6),
    at=st.integers(min_value=61, max_value=400),
    garbage=st.binary(min_size=1, max_size=8),
)
@HYPOTHESIS
def test_what_the_scan_accepts_the_decoder_reads(records: list[RecordIn], at: int, garbage: bytes) -> None:
    """A batch damaged past the header, CRC recomputed: if the scan passes it, decoding it succeeds with
    dense offsets, so no batch the broker appends can break a later fetch."""
    records = [RecordIn(r.value, r.key, r.headers, NOW, BINARY_ONLY) for r in records]
    batch = encode_batch(records, base_offset=0, now_ms=NOW)
    at = min(at, len(batch) - 1)
    damaged = _recrc(batch[:at] + garbage + batch[at + len(garbage) :])
    try:
        header = scan_batch(damaged)
    except CodecError:
        return
    decoded = decode_batch(damaged)
    assert [r.offset for r in decoded] == list(range(header.record_count))


@pytest.mark.slow
def test_the_compiled_scanner_matches_the_python_one(compiled_decoder: object) -> None:
    from tidelog._codec import _decode

    native = compiled_decoder.scan_section  # type: ignore[attr-defined]
    records = [RecordIn(b"v" * i, b"k", [("h", b"x")] * (i % 3), NOW + i) for i in range(40)]
    batch = encode_batch(records, base_offset=0, now_ms=NOW)
    args = (batch, 61, len(batch), 40, NOW, NOW - 10, NOW + 100, True, lambda d, a, b: True)
    assert native(*args) == _decode.scan_section(*args) == NOW + 39
    for at in range(61, len(batch), 7):
        damaged = batch[:at] + b"\x7f\x80" + batch[at + 2 :]
        outcomes = []
        for scan in (_decode.scan_section, native):
            try:
                outcomes.append(scan(damaged, *args[1:]))
            except (CorruptRecordError, IndexError) as exc:
                outcomes.append(type(exc))
        assert outcomes[0] == outcomes[1]


@given(
    text=st.one_of(
        st.binary(max_size=12),
        st.text(max_size=8).map(lambda t: ('"' + t + '"').encode("utf-8", "surrogatepass")),
        st.integers().map(lambda i: str(i).encode()),
        st.sampled_from([b"01", b"-", b"-0", b'"\\n"', b'"a"b"', b"1e5", b" 1"]),
    )
)
@HYPOTHESIS
def test_what_the_plain_json_check_accepts_every_json_parser_accepts(text: bytes) -> None:
    import json

    from tidelog._codec._decode import _is_utf8, _plain_json

    if _is_utf8(text, 0, len(text)) and _plain_json(text, 0, len(text)):
        json.loads(text)  # raises if the fast check let invalid JSON through
