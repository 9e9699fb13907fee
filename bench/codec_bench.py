"""`python -m bench.codec_bench`: record-batch encode and decode speed, in records per second.

Batches of 1,000 records with 100-byte values (JSON-like text, so the codecs have something to
compress), no key, no headers, for each codec; then a variant with a 16-byte key and two headers;
then 1,000 batches of one record each (per-batch costs), whose "batch bytes" is the whole buffer.
Each figure is the median of several timed rounds; the min-max spread is printed beside it.
Rounds are timed in CPU time of this process (``time.process_time``), not wall time: the project's
machine is shared, and CPU time is what the codec costs, whatever else runs. The load average at the
start is printed so a reader can judge the noise.

Targets (issue #2, in-process on the project's 2-core machine): append >= 1,000,000 records/s, which
needs encoding well above that, and sequential decoded reads >= 2,000,000 records/s.

The first line names the record decoder in use: "python", or "mypyc" after
``python -m tidelog._codec._accelerate`` compiled it (``--remove`` undoes that), so both can be measured.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from storage import (
    Compression,
    RecordIn,
    decode_batch,
    decode_records,
    encode_batch,
    iter_batches,
    validate_batch,
)
from tidelog._codec import DECODER

ENCODE_TARGET = 1_000_000
DECODE_TARGET = 2_000_000
CODECS = (Compression.NONE, Compression.GZIP, Compression.LZ4, Compression.ZSTD)
NOW_MS = 1_700_000_000_000


def make_value(i: int) -> bytes:
    """A 100-byte value that looks like an application event."""
    text = b'{"id":%08d,"user":"user-%05d","kind":"page_view","path":"/items/%06d"' % (
        i,
        i % 9973,
        i * 7,
    )
    return (text + b',"pad":"' + b"x" * 100)[:98] + b'"}'


def make_records(count: int, *, keyed: bool) -> list[RecordIn]:
    if not keyed:
        return [RecordIn(value=make_value(i)) for i in range(count)]
    return [
        RecordIn(
            value=make_value(i),
            key=b"customer-%07d" % (i % 50_000),
            headers=(("trace-id", b"%016x" % i), ("source", b"web")),
        )
        for i in range(count)
    ]


@dataclass(frozen=True)
class Rate:
    median: float
    low: float
    high: float

    def cell(self) -> str:
        return f"{self.median / 1e6:6.2f} M/s ({self.low / 1e6:.2f}-{self.high / 1e6:.2f})"


def measure(fn: Callable[[], object], records_per_call: int, *, rounds: int, seconds: float) -> Rate:
    """Records/s of ``fn`` over ``rounds`` rounds of about ``seconds`` each (bounded by time)."""
    fn()  # warm up
    rates = []
    for _ in range(rounds):
        calls = 0
        start = time.process_time()
        deadline = start + seconds
        while True:
            fn()
            calls += 1
            now = time.process_time()
            if now >= deadline:
                break
        rates.append(calls * records_per_call / (now - start))
    return Rate(statistics.median(rates), min(rates), max(rates))


def run(batch_records: int, rounds: int, seconds: float) -> list[tuple[str, str, int, Rate, Rate, Rate]]:
    rows = []
    for keyed in (False, True):
        records = make_records(batch_records, keyed=keyed)
        shape = "key+2 headers" if keyed else "value only"
        for codec in CODECS:
            batch = encode_batch(records, now_ms=NOW_MS, compression=codec)

            def encode(records: Sequence[RecordIn] = records, codec: Compression = codec) -> bytes:
                return encode_batch(records, base_offset=1000, now_ms=NOW_MS, compression=codec)

            def decode(batch: bytes = batch) -> object:
                return decode_batch(batch)

            def validate(batch: bytes = batch) -> object:
                return validate_batch(batch)

            enc = measure(encode, batch_records, rounds=rounds, seconds=seconds)
            dec = measure(decode, batch_records, rounds=rounds, seconds=seconds)
            val = measure(validate, batch_records, rounds=rounds, seconds=seconds / 2)
            rows.append((shape, codec.name.lower(), len(batch), enc, dec, val))
    # One record per batch, as HTTP produce requests of a single record leave them: per-batch costs
    # (header, CRC, list building) dominate.
    singles = make_records(batch_records, keyed=False)
    buf = b"".join(encode_batch([r], base_offset=i, now_ms=NOW_MS) for i, r in enumerate(singles))

    def encode_singles(records: Sequence[RecordIn] = singles) -> object:
        return [encode_batch([r], base_offset=i, now_ms=NOW_MS) for i, r in enumerate(records)]

    def decode_singles(buf: bytes = buf) -> object:
        return decode_records(buf)

    def validate_singles(buf: bytes = buf) -> object:
        return [validate_batch(buf, pos) for pos, _ in iter_batches(buf)]

    enc = measure(encode_singles, batch_records, rounds=rounds, seconds=seconds)
    dec = measure(decode_singles, batch_records, rounds=rounds, seconds=seconds)
    val = measure(validate_singles, batch_records, rounds=rounds, seconds=seconds / 2)
    rows.append(("1 record per batch", "none", len(buf), enc, dec, val))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.codec_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1000, help="records per batch (default 1000)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per figure (default 5)")
    parser.add_argument("--seconds", type=float, default=0.6, help="CPU-seconds per round (default 0.6)")
    args = parser.parse_args(argv)

    load = os.getloadavg()[0]
    rows = run(args.batch, args.rounds, args.seconds)
    print(
        f"record-batch codec: {args.batch} records of 100-byte values per batch, median of {args.rounds} "
        f"rounds of {args.seconds} CPU-seconds; load average {load:.2f} on {os.cpu_count()} CPUs at start; "
        f"record decoder: {DECODER}"
    )
    print()
    print("| records | codec | batch bytes | encode (min-max) | decode (min-max) | validate CRC |")
    print("|---|---|---:|---:|---:|---:|")
    for shape, codec, size, enc, dec, val in rows:
        mbps = val.median * size / args.batch / 1e6
        print(f"| {shape} | {codec} | {size:,} | {enc.cell()} | {dec.cell()} | {mbps:,.0f} MB/s |")
    plain = rows[0]
    print()
    for label, rate, target in (("encode", plain[3], ENCODE_TARGET), ("decode", plain[4], DECODE_TARGET)):
        if rate.median >= target:
            verdict = "meets it"
        else:
            verdict = f"misses by {(1 - rate.median / target) * 100:.0f}%"
        print(
            f"{label}, uncompressed: {rate.median / 1e6:.2f} M records/s; "
            f"target {target / 1e6:.1f} M: {verdict}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
