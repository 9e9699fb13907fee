"""``tidelog bench``: produce and consume load tests in the manner of ``kafka-producer-perf-test`` and
``kafka-consumer-perf-test``: records/s, MB/s and latency percentiles."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tidelog._cli._common import handle_errors, make_client, print_json, stderr, url_option
from tidelog._consumer import PartitionReader
from tidelog._errors import UnknownTopicError
from tidelog._types import RecordMetadata


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of already sorted values (0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def _progress(total: int, show: bool, label: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{label}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>10,.0f} records/s"),
        TimeElapsedColumn(),
        console=stderr(),
        disable=not show,
    )


def _summary(kind: str, count: int, nbytes: int, elapsed: float, latencies_ms: list[float]) -> dict[str, Any]:
    latencies_ms.sort()
    return {
        "kind": kind,
        "records": count,
        "seconds": round(elapsed, 3),
        "records_per_second": round(count / elapsed, 1) if elapsed > 0 else 0.0,
        "mb_per_second": round(nbytes / elapsed / 1e6, 3) if elapsed > 0 else 0.0,
        "latency_ms": {
            "avg": round(sum(latencies_ms) / len(latencies_ms), 3) if latencies_ms else 0.0,
            "p50": round(percentile(latencies_ms, 0.50), 3),
            "p95": round(percentile(latencies_ms, 0.95), 3),
            "p99": round(percentile(latencies_ms, 0.99), 3),
            "p99_9": round(percentile(latencies_ms, 0.999), 3),
            "max": round(latencies_ms[-1], 3) if latencies_ms else 0.0,
        },
    }


def _print_summary(result: dict[str, Any], output: str) -> None:
    if output == "json":
        print_json(result)
        return
    lat = result["latency_ms"]
    what = "sent" if result["kind"] == "produce" else "read"
    click.echo(
        f"{result['records']} records {what}, {result['records_per_second']:,.1f} records/s "
        f"({result['mb_per_second']:.2f} MB/s), {lat['avg']:.2f} ms avg latency, "
        f"{lat['max']:.2f} ms max latency, "
        f"{lat['p50']:.2f} ms 50th, {lat['p95']:.2f} ms 95th, {lat['p99']:.2f} ms 99th, "
        f"{lat['p99_9']:.2f} ms 99.9th."
    )


@click.group()
def bench() -> None:
    """Measure produce and consume throughput and latency against a broker."""


@bench.command("produce")
@click.argument("topic")
@click.option("--num-records", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option(
    "-s", "--record-size", type=click.IntRange(min=2), default=100, show_default=True, help="Value bytes."
)
@click.option(
    "--throughput",
    type=int,
    default=-1,
    show_default=True,
    help="Records/s to aim for; -1 for as fast as possible.",
)
@click.option(
    "--acks",
    type=click.Choice(["0", "1", "all"]),
    default="all",
    show_default=True,
    help="Acknowledgement level; the same default as `tidelog produce` (and Kafka's producer).",
)
@click.option("--linger-ms", type=click.IntRange(min=0), default=5, show_default=True)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=256 * 1024, show_default=True, help="Batch bytes."
)
@click.option("--max-batch-records", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option(
    "--partitions", type=click.IntRange(min=1), default=1, show_default=True, help="If TOPIC is created."
)
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: on a terminal).")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@url_option
@handle_errors
def bench_produce(
    topic: str,
    num_records: int,
    record_size: int,
    throughput: int,
    acks: str,
    linger_ms: int,
    batch_size: int,
    max_batch_records: int,
    partitions: int,
    progress: bool | None,
    output: str,
    url: str | None,
    timeout: float,
) -> None:
    """Produce --num-records JSON values of --record-size bytes to TOPIC (created if missing)."""
    # A JSON string of record_size - 2 characters is stored as exactly record_size bytes.
    value = "x" * (record_size - 2)
    latencies: list[float] = []
    errors: list[Exception] = []
    lock = threading.Lock()
    show = progress if progress is not None else sys.stderr.isatty()
    with make_client(url, timeout) as client:
        try:
            client.admin.describe_topic(topic)
        except UnknownTopicError:
            client.admin.create_topic(topic, partitions)
        producer = client.producer(
            acks=acks,
            linger_ms=linger_ms,
            batch_size=batch_size,
            max_batch_records=max_batch_records,
            value_format="json",
        )
        started = time.monotonic()
        with _progress(num_records, show, "produce") as bar:
            task = bar.add_task("produce", total=num_records, rate=0.0)
            for i in range(num_records):
                sent_at = time.monotonic()

                def done(
                    meta: RecordMetadata | None, error: Exception | None, sent_at: float = sent_at
                ) -> None:
                    now = time.monotonic()
                    with lock:
                        if error is not None:
                            errors.append(error)
                        else:
                            latencies.append((now - sent_at) * 1000.0)

                producer.send(topic, value, callback=done)
                if throughput > 0:
                    ahead = (i + 1) / throughput - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
                if (i + 1) % 5000 == 0:
                    bar.update(task, completed=i + 1, rate=(i + 1) / max(time.monotonic() - started, 1e-6))
            producer.flush()
            elapsed = time.monotonic() - started
            bar.update(task, completed=num_records, rate=num_records / max(elapsed, 1e-6))
        producer.close()
    result = _summary("produce", len(latencies), len(latencies) * record_size, elapsed, latencies)
    result["errors"] = len(errors)
    _print_summary(result, output)
    if errors:
        stderr().print(f"[red]Error:[/] {len(errors)} records failed; first: {errors[0]}")
        sys.exit(1)


@bench.command("consume")
@click.argument("topic")
@click.option(
    "--num-records",
    type=click.IntRange(min=1),
    default=None,
    help="Records to read (default: all there are).",
)
@click.option("--max-records", type=click.IntRange(min=1), default=5000, show_default=True, help="Per fetch.")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: on a terminal).")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@url_option
@handle_errors
def bench_consume(
    topic: str,
    num_records: int | None,
    max_records: int,
    progress: bool | None,
    output: str,
    url: str | None,
    timeout: float,
) -> None:
    """Read TOPIC's partitions from the beginning with fetch requests; latency is per fetch."""
    show = progress if progress is not None else sys.stderr.isatty()
    with make_client(url, timeout) as client:
        count_partitions = client.admin.describe_topic(topic).partition_count
        readers = [
            PartitionReader(client, topic, p, "earliest", max_records=max_records)
            for p in range(count_partitions)
        ]
        ends = {r.partition: client.offsets(topic, r.partition).high_watermark for r in readers}
        available = sum(ends[r.partition] - r.position for r in readers)
        target = min(num_records, available) if num_records is not None else available
        latencies: list[float] = []
        count = 0
        nbytes = 0
        started = time.monotonic()
        with _progress(target, show, "consume") as bar:
            task = bar.add_task("consume", total=target, rate=0.0)
            while count < target:
                active = [r for r in readers if r.position < ends[r.partition]]
                if not active:
                    break
                for reader in active:
                    t0 = time.monotonic()
                    records = reader.poll(500)
                    latencies.append((time.monotonic() - t0) * 1000.0)
                    for record in records:
                        if record.offset >= ends[reader.partition] or count >= target:
                            break
                        count += 1
                        v = record.value
                        nbytes += len(v) + 2 if isinstance(v, str) else len(json.dumps(v))
                bar.update(task, completed=count, rate=count / max(time.monotonic() - started, 1e-6))
        elapsed = time.monotonic() - started
    result = _summary("consume", count, nbytes, elapsed, latencies)
    result["fetches"] = len(latencies)
    _print_summary(result, output)
