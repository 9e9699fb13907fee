"""Stream processing: ``python -m bench.streams_bench [--records N] [--repeat R] [--write-docs]``.

Starts its own ``tidelog serve`` (fresh data directory, SQLite catalog) and measures, one process
each, records per second from a preloaded input topic (2 partitions, 100-byte JSON values) until the
last output is there:

1. **baseline**: a hand-written loop over the tidelog client: consumer-group poll, produce each
   record to the output topic (idempotent ``acks=all``), commit every 1,000 records;
2. **passthrough**: ``app.stream(input).to(output)``, the same work through ``tidelog.streams``;
3. **stateful**: passthrough plus a count per key (a store, its changelog and checkpoints);
4. **WordCount** (``tidelog.streams``; five words a line, through its repartition topic, so the
   data crosses the broker twice) and the same WordCount as a hand-written consume → count →
   produce loop over the client, in input lines per second;
5. **restore**: a task restoring a changelog of ``--restore-mb`` MiB (1 KiB values), in seconds per
   100 MB.

Runs alternate A B A B (``--repeat`` rounds); medians, with the range.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import tidelog
import tidelog.streams as ts
from bench.http_bench import Broker
from tidelog.streams._context import TaskId
from tidelog.streams._runtime import Runtime

SECTION = "## Stream processing"
DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
PAD = "x" * 80
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
_names = itertools.count()


def _topic(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


def _preload(url: str, topic: str, n: int, value: Callable[[int], object]) -> None:
    with tidelog.Client(url) as client:
        client.admin.create_topic(topic, 2)
        with client.producer(linger_ms=5) as producer:
            for i in range(n):
                producer.send(topic, value(i), key=f"k{i % 100}")


def _wait_count(url: str, topic: str, n: int, timeout_s: float = 600) -> None:
    """Until ``topic`` holds ``n`` records (high watermarks summed)."""
    deadline = time.monotonic() + timeout_s
    with tidelog.Client(url) as client:
        while time.monotonic() < deadline:
            try:
                desc = client.admin.describe_topic(topic)
                if sum(p.high_watermark or 0 for p in desc.partitions) >= n:
                    return
            except tidelog.TidelogError:
                pass
            time.sleep(0.05)
    raise RuntimeError(f"{topic} did not reach {n} records in {timeout_s} s")


def _run_app(url: str, app: ts.App, out: str, n: int) -> float:
    started = time.perf_counter()
    runner = threading.Thread(target=app.run)
    runner.start()
    try:
        _wait_count(url, out, n)
        return time.perf_counter() - started
    finally:
        app.stop()
        runner.join(120)


def baseline(url: str, n: int, state: Path) -> float:
    src, out = _topic("in"), _topic("out")
    _preload(url, src, n, lambda i: {"seq": i, "pad": PAD})
    with tidelog.Client(url) as client:
        client.admin.create_topic(out, 2)
        started = time.perf_counter()
        consumer = client.consumer(_topic("g"), [src], auto_offset_reset="earliest", enable_auto_commit=False)
        producer = client.producer(linger_ms=2)
        done = 0
        while done < n:
            records = consumer.poll(100)
            for r in records:
                producer.send(out, r.value, key=r.key, timestamp=r.timestamp)
            done += len(records)
            if records and done % 1000 < len(records):
                producer.flush()
                consumer.commit()
        producer.flush()
        consumer.commit()
        elapsed = time.perf_counter() - started
        producer.close()
        consumer.close(commit=False)
    return n / elapsed


def passthrough(url: str, n: int, state: Path) -> float:
    src, out = _topic("in"), _topic("out")
    _preload(url, src, n, lambda i: {"seq": i, "pad": PAD})
    _create(url, out)
    app = ts.App(_topic("pass"), url=url, state_dir=state, commit_interval_ms=1000)
    app.stream(src).to(out)
    return n / _run_app(url, app, out, n)


def stateful(url: str, n: int, state: Path) -> float:
    src, out = _topic("in"), _topic("out")
    _preload(url, src, n, lambda i: {"seq": i, "pad": PAD})
    _create(url, out)
    app = ts.App(_topic("state"), url=url, state_dir=state, commit_interval_ms=1000)
    stream = app.stream(src)
    stream.to(out)
    stream.group_by_key().count(store="per-key")
    return n / _run_app(url, app, out, n)


def _create(url: str, topic: str) -> None:
    with tidelog.Client(url) as client:
        client.admin.create_topic(topic, 2)


def _line(i: int) -> str:
    return " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(5))


def wordcount_streams(url: str, n: int, state: Path) -> float:
    src, out = _topic("text"), _topic("counts")
    _preload(url, src, n, _line)
    _create(url, out)
    app = ts.App(_topic("wc"), url=url, state_dir=state, commit_interval_ms=1000)
    (
        app.stream(src)
        .flat_map_values(str.split)
        .group_by(lambda k, w: w)
        .count(store="counts")
        .to_stream()
        .to(out)
    )
    return n / _run_app(url, app, out, 5 * n)


def wordcount_loop(url: str, n: int, state: Path) -> float:
    src, out = _topic("text"), _topic("counts")
    _preload(url, src, n, _line)
    with tidelog.Client(url) as client:
        client.admin.create_topic(out, 2)
        started = time.perf_counter()
        consumer = client.consumer(_topic("g"), [src], auto_offset_reset="earliest", enable_auto_commit=False)
        producer = client.producer(linger_ms=2)
        counts: dict[str, int] = {}
        done = 0
        while done < n:
            records = consumer.poll(100)
            for r in records:
                for word in str(r.value).split():
                    counts[word] = counts.get(word, 0) + 1
                    producer.send(out, counts[word], key=word)
            done += len(records)
        producer.flush()
        consumer.commit()
        elapsed = time.perf_counter() - started
        producer.close()
        consumer.close(commit=False)
    return n / elapsed


def restore(url: str, megabytes: int, state: Path) -> float:
    """Seconds per 100 MB for a task restoring a changelog of ``megabytes`` MiB."""
    app_id = _topic("restore")
    src = _topic("in")
    _create(url, src)
    app = ts.App(app_id, url=url, state_dir=state)
    app.stream(src).group_by_key().count(store="big")
    changelog = f"{app_id}-big-changelog"
    value = "v" * 1024
    count = megabytes * 1024
    with tidelog.Client(url) as client:
        client.admin.create_topic(changelog, 2, configs={"cleanup.policy": "compact"})
        with client.producer(linger_ms=5) as producer:
            for i in range(count):
                producer.send(changelog, value, key=f'"key-{i}"', partition=0)
        client.admin.commit_offsets(app_id, {(src, 0): 0})
        end = client.admin.describe_topic(changelog).partitions[0].high_watermark or 0
        # The group's commit metadata names the changelog position the restore replays up to.
        client.http.post(
            f"/v1/groups/{app_id}/offsets",
            json={
                "offsets": [
                    {
                        "topic": src,
                        "partition": 0,
                        "offset": 0,
                        "metadata": f'{{"changelog": {{"{changelog}": {end}}}}}',
                    }
                ]
            },
        )
    runtime = Runtime(app)
    runtime.prepare_topics()
    runtime.producer = runtime.client.producer()
    try:
        started = time.perf_counter()
        running = runtime._open_task(TaskId(0, 0), seek=False)  # no group member: restore only
        elapsed = time.perf_counter() - started
        assert len(running.task.stores["big"]) == count  # type: ignore[arg-type]
    finally:
        runtime.producer.close()
        runtime.client.close()
    return elapsed * 100 / (count * len(value) / 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--restore-mb", type=int, default=20)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="tidelog-streams-bench-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        with Broker(data) as broker:
            url = broker.url
            for round_ in range(args.repeat):
                for name, fn in (
                    ("baseline", baseline),
                    ("passthrough", passthrough),
                    ("stateful", stateful),
                    ("wordcount_loop", wordcount_loop),
                    ("wordcount_streams", wordcount_streams),
                ):
                    value = fn(url, args.records, Path(tmp) / f"state-{name}-{round_}")
                    results.setdefault(name, []).append(value)
                    print(f"round {round_ + 1}: {name} {value:,.0f}/s", flush=True)
            results["restore"] = [restore(url, args.restore_mb, Path(tmp) / "state-restore")]
            print(f"restore: {results['restore'][0]:.2f} s per 100 MB", flush=True)
    table = _table(results, args)
    print("\n".join(table))
    if args.write_docs:
        _write_docs(table, args)


def _med(values: list[float]) -> float:
    return statistics.median(values)


def _range(values: list[float], fmt: str = ",.0f") -> str:
    return f"{min(values):{fmt}} to {max(values):{fmt}}" if len(values) > 1 else f"{values[0]:{fmt}}"


def _table(results: dict[str, list[float]], args: argparse.Namespace) -> list[str]:
    base = _med(results["baseline"])
    rows = [
        "| workload | records/s (median, range) | ratio | target |",
        "|---|---|---|---|",
        f"| baseline: client loop consume → produce | {base:,.0f} ({_range(results['baseline'])}) "
        "| 1.00x | |",
    ]

    def row(name: str, label: str, ref: float, target: float | None, unit: str = "records/s") -> None:
        value = _med(results[name])
        ratio = value / ref
        verdict = "" if target is None else f"≥ {target:.2f}x ({'met' if ratio >= target else 'missed'})"
        rows.append(
            f"| {label} | {value:,.0f} {unit if unit != 'records/s' else ''}({_range(results[name])}) "
            f"| {ratio:.2f}x | {verdict} |"
        )

    row("passthrough", "passthrough topology", base, 0.5)
    row(
        "stateful",
        "passthrough + count per key (store, changelog, checkpoints)",
        _med(results["passthrough"]),
        None,
    )
    row("wordcount_streams", "WordCount (lines/s, through a repartition topic)", base, 0.25)
    row(
        "wordcount_loop",
        "WordCount as a hand-written client loop (lines/s, no state or repartition)",
        base,
        None,
    )
    rows.append(
        f"| restore of a {args.restore_mb} MiB changelog | {results['restore'][0]:.2f} s per 100 MB | | |"
    )
    return rows


READING = [
    "Reading the table: the ratios are against the baseline measured in the same run; the stateful row is",
    "against the passthrough. The hand-written WordCount keeps its counts in a dict that a crash loses and",
    "needs no repartition (one process sees every word); the topology's WordCount survives crashes, scales",
    "out and sends every word through the broker twice. Per input line it moves 16 records through the",
    "client (the line consumed; five words produced to the repartition topic, consumed again and produced",
    "to the output) against the baseline's 2, so at the client's per-record cost its line rate can reach",
    "about 1/8 of the baseline's (0.12x) and reached half of that; a py-spy profile of the processing",
    "process shows the time in the client's per-record send and poll paths (HTTP requests, JSON), not in",
    "the topology's own code. The",
    "25% target needs a cheaper per-record client path (the binary batch format of the performance work).",
]


def _write_docs(table: list[str], args: argparse.Namespace) -> None:
    cpu = platform.processor() or platform.machine()
    section = "\n".join(
        [
            SECTION,
            "",
            f"`python -m bench.streams_bench --write-docs` ({args.records:,} input records a run, "
            f"{args.repeat} interleaved rounds, restore of a {args.restore_mb} MiB changelog). One broker "
            "(`tidelog serve`, defaults, SQLite catalog) and one processing process on the same machine "
            "over loopback; inputs of 2 partitions, 100-byte JSON values.",
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
    main()
