"""Consumer groups and Server-Sent Events: ``python -m bench.groups_bench [--write-docs]``.

Starts its own ``tidelog serve`` processes (fresh data directories, SQLite catalog) and measures:

1. **Group polling vs one consumer.** Eight partitions preloaded with 100-byte JSON records. The
   single consumer fetches every partition with the plain fetch endpoint, 1,000 records a request;
   then a group of 4 members (4 client processes, 2 partitions each) polls the same data through
   ``GET /v1/groups/{g}/members/{id}/records`` (1,000 records a poll; every poll is two catalog
   transactions: heartbeat + positions). Per-member throughput is each member's records over its own
   elapsed time; the target is ≥ 80% of the single consumer's. A one-member group polling all eight
   partitions is shown too (the cost of the group path alone, without sharing the broker).
2. **SSE latency.** One subscriber process on ``GET /v1/topics/{t}/events`` while the main process
   produces single-record requests at a steady 1,000 records/s (open-loop schedule, several
   requests in flight); latency is from each produce's acknowledgement (and from its send) to the
   subscriber receiving the record's event, per record, as p50/p99/p99.9.
3. **Idle SSE memory.** A fresh broker's resident memory (RSS, /proc) before and after 1,000 idle
   topic streams are opened (raw sockets, headers read, kept open).

Interleaving: cases 1 repeat ``--repeat`` times, single and group alternating; medians and ranges.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.http_bench import Broker

SECTION = "## Consumer groups and SSE"
DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
PARTITIONS = 8
BATCH = 1000
SENDERS = 4
_PAD = "x" * (100 - len(orjson.dumps({"seq": 0, "pad": ""})) - 5)


def _value(seq: int) -> dict[str, Any]:
    return {"seq": seq, "pad": _PAD}


def _check(answer: httpx.Response, what: str, status: int = 200) -> Any:
    if answer.status_code != status:
        raise RuntimeError(f"{what}: HTTP {answer.status_code}: {answer.text[:300]}")
    return answer.json() if answer.content else None


def _preload(url: str, topic: str, per_partition: int) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        _check(client.post("/v1/topics", json={"name": topic, "partitions": PARTITIONS}), "create", 201)
        for partition in range(PARTITIONS):
            for start in range(0, per_partition, BATCH):
                body = {"records": [{"value": _value(start + i)} for i in range(BATCH)]}
                _check(
                    client.post(f"/v1/topics/{topic}/partitions/{partition}/records?acks=1", json=body),
                    "produce",
                )


# --------------------------------------------------------------------------- 1. throughput


def _single_consumer(url: str, topic: str, per_partition: int) -> float:
    """Records/s of one client fetching every partition through the plain fetch endpoint."""
    total = 0
    with httpx.Client(base_url=url, timeout=60) as client:
        start = time.perf_counter()
        for partition in range(PARTITIONS):
            offset = 0
            while offset < per_partition:
                answer = client.get(
                    f"/v1/topics/{topic}/partitions/{partition}/records",
                    params={"offset": offset, "max_records": BATCH, "max_wait_ms": 0},
                )
                body = orjson.loads(answer.content)
                total += len(body["records"])
                offset = body["next_offset"]
        elapsed = time.perf_counter() - start
    return total / elapsed


def _plain_worker(
    url: str, topic: str, partitions: list[int], per_partition: int, barrier: Any, results: Any
) -> None:
    """One plain consumer process fetching its partitions (the group case without the group)."""
    with httpx.Client(base_url=url, timeout=60) as client:
        client.get("/healthz")
        barrier.wait()
        received = 0
        start = time.perf_counter()
        for partition in partitions:
            offset = 0
            while offset < per_partition:
                answer = client.get(
                    f"/v1/topics/{topic}/partitions/{partition}/records",
                    params={"offset": offset, "max_records": BATCH, "max_wait_ms": 0},
                )
                body = orjson.loads(answer.content)
                received += len(body["records"])
                offset = body["next_offset"]
        elapsed = time.perf_counter() - start
    results.put((received, elapsed))


def _plain_concurrent(url: str, topic: str, consumers: int, per_partition: int) -> list[float]:
    """Per-consumer records/s of ``consumers`` plain consumers splitting the partitions by hand."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(consumers)
    results = ctx.Queue()
    shares = [list(range(PARTITIONS))[k::consumers] for k in range(consumers)]
    workers = [
        ctx.Process(target=_plain_worker, args=(url, topic, share, per_partition, barrier, results))
        for share in shares
    ]
    for worker in workers:
        worker.start()
    rates = []
    for _ in workers:
        received, elapsed = results.get(timeout=600)
        rates.append(received / elapsed)
    for worker in workers:
        worker.join(60)
    return rates


def _member(
    url: str, topic: str, group: str, expected_per_partition: int, barrier: Any, results: Any
) -> None:
    """One group member in its own process: join, wait for the group to settle, poll its share."""
    with httpx.Client(base_url=url, timeout=60) as client:
        joined = _check(
            client.post(
                f"/v1/groups/{group}/members", json={"topics": [topic], "auto_offset_reset": "earliest"}
            ),
            "join",
            201,
        )
        member = joined["member_id"]
        barrier.wait()  # everyone has joined: the next heartbeat shows the final assignment
        beat = _check(client.post(f"/v1/groups/{group}/members/{member}/heartbeat"), "heartbeat")
        expected = expected_per_partition * len(beat["assignment"])
        barrier.wait()
        received = 0
        start = time.perf_counter()
        deadline = start + 300
        while received < expected and time.perf_counter() < deadline:
            answer = client.get(
                f"/v1/groups/{group}/members/{member}/records",
                params={"max_records": BATCH, "max_wait_ms": 500},
            )
            received += len(orjson.loads(answer.content)["records"])
        elapsed = time.perf_counter() - start
        barrier.wait()  # nobody leaves (and rebalances the others) before everyone is done
        client.delete(f"/v1/groups/{group}/members/{member}")
    results.put((received, elapsed))


def _group(url: str, topic: str, group: str, members: int, per_partition: int) -> list[float]:
    """Per-member records/s of a group of ``members`` client processes."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(members)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=_member, args=(url, topic, group, per_partition, barrier, results))
        for _ in range(members)
    ]
    for worker in workers:
        worker.start()
    rates = []
    for _ in range(members):
        received, elapsed = results.get(timeout=600)
        rates.append(received / elapsed)
    for worker in workers:
        worker.join(60)
    return rates


# --------------------------------------------------------------------------- 2. SSE latency


def _subscriber(url: str, topic: str, ready: Any, results: Any, expected: int, timeout_s: float) -> None:
    """Read the topic stream; report (offset, receive time ns) of every record event."""
    import httpx_sse

    received: list[tuple[int, int]] = []
    with (
        httpx.Client(timeout=httpx.Timeout(10.0, read=timeout_s)) as client,
        httpx_sse.connect_sse(
            client, "GET", f"{url}/v1/topics/{topic}/events", params={"from": "latest"}
        ) as source,
    ):
        ready.set()
        deadline = time.monotonic() + timeout_s
        for event in source.iter_sse():
            if event.event == "record":
                now = time.time_ns()
                received.append((orjson.loads(event.data)["offset"], now))
                if len(received) >= expected or time.monotonic() > deadline:
                    break
    results.put(received)


def _producer(
    url: str,
    topic: str,
    rate: float,
    first: int,
    step: int,
    total: int,
    acks: str,
    start_at: float,
    results: Any,
) -> None:
    """One producer process: single-record produces at slots first, first+step, … of the schedule."""
    out: list[tuple[int, int, int]] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(first, total, step):
            delay = start_at + i / rate - time.time()
            if delay > 0:
                time.sleep(delay)
            sent = time.time_ns()
            answer = client.post(
                f"/v1/topics/{topic}/partitions/0/records?acks={acks}",
                json={"records": [{"value": _value(i)}]},
            )
            acked = time.time_ns()
            out.append((orjson.loads(answer.content)["results"][0]["offset"], sent, acked))
    results.put(out)


def _produce_steady(url: str, topic: str, rate: int, seconds: float, acks: str) -> list[tuple[int, int, int]]:
    """(offset, send ns, ack ns) of single-record produces on an open-loop schedule of ``rate``/s.

    SENDERS producer processes take every SENDERS-th slot each, so the rate holds when one request
    is slow, as with independent producers.
    """
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    total = int(rate * seconds)
    start_at = time.time() + 2.0  # every process is up and connected before the first slot
    workers = [
        ctx.Process(target=_producer, args=(url, topic, rate, k, SENDERS, total, acks, start_at, results))
        for k in range(SENDERS)
    ]
    for worker in workers:
        worker.start()
    out: list[tuple[int, int, int]] = []
    for _ in workers:
        out += results.get(timeout=seconds + 120)
    for worker in workers:
        worker.join(30)
    return out


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": pick(0.5), "p99": pick(0.99), "p99.9": pick(0.999), "max": ordered[-1]}


def _sse_latency(url: str, topic: str, rate: int, seconds: float, acks: str) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    results = ctx.Queue()
    expected = int(rate * seconds)
    subscriber = ctx.Process(target=_subscriber, args=(url, topic, ready, results, expected, seconds + 60))
    subscriber.start()
    if not ready.wait(60):
        raise RuntimeError("the SSE subscriber did not connect")
    time.sleep(0.5)
    produced = _produce_steady(url, topic, rate, seconds, acks)
    span_ns = max(a for _, _, a in produced) - min(s for _, s, _ in produced)
    achieved = len(produced) / (span_ns / 1e9)
    received = dict(results.get(timeout=120))
    subscriber.join(30)
    from_ack = [max(0, received[o] - acked) / 1e6 for o, _, acked in produced if o in received]
    from_send = [(received[o] - sent) / 1e6 for o, sent, _ in produced if o in received]
    return {
        "acks": acks,
        "records": len(produced),
        "delivered": len(from_ack),
        "achieved_rate": achieved,
        "from_ack": _percentiles(from_ack),
        "from_send": _percentiles(from_send),
    }


# --------------------------------------------------------------------------- 3. memory


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def _open_idle_streams(port: int, topic: str, count: int) -> list[asyncio.StreamWriter]:
    request = (
        f"GET /v1/topics/{topic}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    writers = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"stream refused: {head[:200]!r}")
        writers.append(writer)
    return writers


def _idle_memory(url: str, port: int, pid: int, count: int) -> dict[str, float]:
    with httpx.Client(base_url=url) as client:
        _check(client.post("/v1/topics", json={"name": "idle", "partitions": 1}), "create", 201)
        # Warm the stream path once so imports and first-use allocations are in the baseline.
        with client.stream("GET", "/v1/topics/idle/events") as response:
            next(response.iter_raw())
    time.sleep(1.0)
    before = _rss(pid)

    async def run() -> float:
        writers = await _open_idle_streams(port, "idle", count)
        await asyncio.sleep(2.0)
        after = _rss(pid)
        async with httpx.AsyncClient(base_url=url) as probe:
            health = await probe.get("/healthz")
            if health.status_code != 200:
                raise RuntimeError("the broker stopped answering with the streams open")
        for writer in writers:
            writer.close()
        return after

    after = asyncio.run(run())
    return {
        "connections": count,
        "before_mb": before / 2**20,
        "after_mb": after / 2**20,
        "per_connection_kb": (after - before) / count / 1024,
    }


# --------------------------------------------------------------------------- main


@dataclass
class Figures:
    single: list[float]
    group_one: list[float]
    group_members: list[list[float]]
    plain_four: list[list[float]]
    latency: list[dict[str, Any]]
    memory: dict[str, float]


def _fmt_range(values: list[float]) -> str:
    return f"{min(values):,.0f} to {max(values):,.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--per-partition", type=int, default=20_000, help="records preloaded per partition")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", type=int, default=1000, help="records/s of the SSE latency run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each SSE latency run")
    parser.add_argument("--idle", type=int, default=1000, help="idle SSE connections for the memory figure")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="tidelog-groups-bench-") as tmp:
        root = Path(tmp)
        (root / "a").mkdir()
        with Broker(root / "a" / "data") as broker:
            print(f"preloading {PARTITIONS} x {args.per_partition} records ...", flush=True)
            _preload(broker.url, "gb", args.per_partition)
            _check(
                httpx.post(f"{broker.url}/v1/topics", json={"name": "lat", "partitions": 1}), "create", 201
            )
            single: list[float] = []
            group_one: list[float] = []
            group_members: list[list[float]] = []
            plain_four: list[list[float]] = []
            for run in range(args.repeat):
                single.append(_single_consumer(broker.url, "gb", args.per_partition))
                group_one += _group(broker.url, "gb", f"one-{run}", 1, args.per_partition)
                group_members.append(_group(broker.url, "gb", f"four-{run}", 4, args.per_partition))
                plain_four.append(_plain_concurrent(broker.url, "gb", 4, args.per_partition))
                print(
                    f"run {run}: single {single[-1]:,.0f} rec/s, one-member group {group_one[-1]:,.0f}, "
                    f"4 members {[round(r) for r in group_members[-1]]}, "
                    f"4 plain consumers {[round(r) for r in plain_four[-1]]}",
                    flush=True,
                )
            latency = []
            for acks in ("1", "all"):
                result = _sse_latency(broker.url, "lat", args.rate, args.seconds, acks)
                print(f"SSE latency acks={acks}: {result}", flush=True)
                latency.append(result)
        (root / "b").mkdir()
        with Broker(root / "b" / "data") as fresh:
            assert fresh.process is not None
            memory = _idle_memory(fresh.url, fresh.port, fresh.process.pid, args.idle)
            print(f"idle SSE memory: {memory}", flush=True)

    figures = Figures(single, group_one, group_members, plain_four, latency, memory)
    table = _table(figures)
    print("\n".join(table))
    if args.write_docs:
        _write_docs(table, args)
    return 0


def _table(f: Figures) -> list[str]:
    single = statistics.median(f.single)
    per_member = [statistics.mean(run) for run in f.group_members]
    member_median = statistics.median(per_member)
    one = statistics.median(f.group_one)
    aggregate = [sum(run) for run in f.group_members]
    plain_per = [statistics.mean(run) for run in f.plain_four]
    plain_median = statistics.median(plain_per)
    lines = [
        "| case | figure (median) | range | target |",
        "|---|---:|---:|---|",
        f"| single consumer, plain fetch, 8 partitions | {single:,.0f} records/s "
        f"| {_fmt_range(f.single)} | |",
        f"| one-member group polling 8 partitions | {one:,.0f} records/s ({one / single:.0%} of single) "
        f"| {_fmt_range(f.group_one)} | |",
        f"| group of 4 members, per member (mean of the 4) | {member_median:,.0f} records/s "
        f"(**{member_median / single:.0%}** of single) | {_fmt_range(per_member)} | ≥ 80% of single |",
        f"| group of 4 members, all together | {statistics.median(aggregate):,.0f} records/s | "
        f"{_fmt_range(aggregate)} | |",
        f"| 4 plain consumers at once (2 partitions each), per consumer | {plain_median:,.0f} records/s; "
        f"group member / plain consumer under the same load: **{member_median / plain_median:.0%}** "
        f"| {_fmt_range(plain_per)} | |",
    ]
    for result in f.latency:
        ack, send = result["from_ack"], result["from_send"]
        lines.append(
            f"| SSE latency at {result['achieved_rate']:,.0f} records/s, acks={result['acks']}, from ack "
            f"| p50 {ack['p50']:.1f} ms, **p99 {ack['p99']:.1f} ms**, p99.9 {ack['p99.9']:.1f} ms "
            f"| max {ack['max']:.1f} ms | p99 ≤ 10 ms |"
        )
        lines.append(
            f"| SSE latency, acks={result['acks']}, from send | p50 {send['p50']:.1f} ms, "
            f"p99 {send['p99']:.1f} ms, p99.9 {send['p99.9']:.1f} ms "
            f"| {result['delivered']:,}/{result['records']:,} delivered | |"
        )
    m = f.memory
    lines.append(
        f"| {m['connections']:,.0f} idle SSE connections | +{m['after_mb'] - m['before_mb']:.1f} MB RSS "
        f"({m['per_connection_kb']:.1f} KB each; {m['before_mb']:.0f} → {m['after_mb']:.0f} MB) "
        "| | < 200 MB |"
    )
    return lines


READING = [
    "How to read these figures:",
    "",
    "- The single consumer has the broker to itself; the four members share it. On a machine where",
    "  the broker process is CPU-bound (2 cores shared with the clients and other work), four",
    "  members can only split what one broker process serves, so the literal per-member target",
    "  (≥ 80% of a lone consumer) would need the group to serve 3.2 times what one consumer gets, in",
    "  total. The like-for-like figure is the next row: four plain consumers reading the same",
    "  partitions at the same time, against which a member's share shows what the group protocol",
    "  itself costs (a read-only peek and one small write transaction per poll in a Stable group).",
    "- SSE latency from the acknowledgement is clamped at 0: a record is visible to subscribers once",
    "  appended, often before its produce answer reaches the producer, so p50 is 0. The achieved",
    "  rate is what the producer processes reached against the broker, not the 1,000/s asked for,",
    "  whenever single-record produce requests saturate the broker on this machine.",
]


def _write_docs(table: list[str], args: argparse.Namespace) -> None:
    cpu = platform.processor() or platform.machine()
    section = "\n".join(
        [
            SECTION,
            "",
            f"`python -m bench.groups_bench --write-docs` (per partition {args.per_partition:,} records, "
            f"{args.repeat} interleaved runs, SSE runs of {args.seconds:g} s at {args.rate:,} records/s, "
            f"{args.idle:,} idle streams). One broker process (`tidelog serve`, defaults, SQLite catalog) "
            "and the clients on the same machine over loopback. Group members are separate client "
            "processes; each poll is a long-poll of up to 1,000 records plus two catalog transactions "
            "(heartbeat and positions). SSE latency is measured per record from the producer's "
            "acknowledgement (and from the send) to the subscriber process receiving the event; the two "
            "processes share the machine's clock. Memory is the broker's RSS from /proc.",
            "",
            f"Measured {time.strftime('%Y-%m-%d', time.gmtime())} on {os.cpu_count()} cores ({cpu}), "
            f"Python {platform.python_version()}; the machine was shared with other work, so absolute "
            "figures are noisy.",
            "",
            *table,
            "",
            *READING,
            "",
        ]
    )
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\n"
    start = text.find(SECTION)
    if start >= 0:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + ("" if end < 0 else text[end + 1 :])
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOC.write_text(text)
    print(f"wrote the section {SECTION!r} of {DOC}")


if __name__ == "__main__":
    raise SystemExit(main())
