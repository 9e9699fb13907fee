"""``tidelog produce``: records from stdin or a file, one per line (like ``kafka-console-producer``)."""

from __future__ import annotations

import base64
import binascii
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tidelog._cli._common import handle_errors, make_client, stderr, url_option
from tidelog._types import RecordMetadata

FORMAT = click.Choice(["json", "string", "binary"])
# Inputs at least this large get a progress bar (on a terminal).
PROGRESS_MIN_BYTES = 1 << 20


class LineError(click.ClickException):
    """A line that cannot be read in the chosen format, named by its number."""


def _parse(text: str, fmt: str, line_no: int, what: str) -> Any:
    if fmt == "string":
        return text
    if fmt == "binary":
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise LineError(f"line {line_no}: the {what} is not valid base64") from None
    try:
        return json.loads(text)
    except ValueError:
        raise LineError(
            f"line {line_no}: the {what} is not valid JSON (use --{what}-format string for plain text)"
        ) from None


def _lines(stream: IO[str]) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(stream, start=1):
        line = line.rstrip("\r\n")
        if line:
            yield number, line


@click.command()
@click.argument("topic")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False),
    help="Read records from FILE, not stdin.",
)
@click.option(
    "-K",
    "--key-separator",
    default=None,
    metavar="SEP",
    help="Split each line at the first SEP into key and value.",
)
@click.option("--key-format", type=FORMAT, default="string", show_default=True, help="Format of the keys.")
@click.option(
    "--value-format",
    type=FORMAT,
    default="json",
    show_default=True,
    help="Format of the values: json (each line a JSON value), string (text), binary (base64).",
)
@click.option("-p", "--partition", type=click.IntRange(min=0), default=None, help="Send every record here.")
@click.option(
    "-H",
    "--header",
    "headers",
    multiple=True,
    metavar="NAME=VALUE",
    help="A header on every record (repeatable).",
)
@click.option(
    "--acks",
    type=click.Choice(["0", "1", "all"]),
    default="all",
    show_default=True,
    help="Acknowledgement level.",
)
@click.option(
    "--linger-ms", type=click.IntRange(min=0), default=10, show_default=True, help="Batching delay."
)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=256 * 1024, show_default=True, help="Batch bytes."
)
@click.option("--progress/--no-progress", default=None, help="Force the progress bar on or off.")
@click.option("-q", "--quiet", is_flag=True, help="Print no summary.")
@url_option
@handle_errors
def produce(
    topic: str,
    path: str | None,
    key_separator: str | None,
    key_format: str,
    value_format: str,
    partition: int | None,
    headers: tuple[str, ...],
    acks: str,
    linger_ms: int,
    batch_size: int,
    progress: bool | None,
    quiet: bool,
    url: str | None,
    timeout: float,
) -> None:
    """Produce records to TOPIC, one per line of stdin or --file.

    Empty lines are skipped. With --key-separator each line is KEY<SEP>VALUE; keyed records go to
    the partition Kafka's partitioner picks for the key. Exits 1 if any record was refused.
    """
    header_list: list[tuple[str, str]] = []
    for item in headers:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--header")
        header_list.append((name, value))
    total_bytes = os.path.getsize(path) if path else None
    show_progress = (
        progress
        if progress is not None
        else (sys.stderr.isatty() and (total_bytes is None or total_bytes >= PROGRESS_MIN_BYTES))
    )
    # Closed by the with-block below.
    stream: IO[str] = Path(path).open(encoding="utf-8") if path else sys.stdin  # noqa: SIM115
    delivered: dict[int, int] = {}  # records acknowledged per partition
    failures: list[tuple[int, Exception]] = []
    sent = 0
    started = time.monotonic()

    with make_client(url, timeout) as client, stream:
        producer = client.producer(
            acks=acks,
            linger_ms=linger_ms,
            batch_size=batch_size,
            key_format=key_format,
            value_format=value_format,
        )
        bar = Progress(
            TextColumn("[bold]producing[/]"),
            BarColumn() if total_bytes else TextColumn(""),
            MofNCompleteColumn() if not total_bytes else TextColumn(""),
            TextColumn("{task.fields[rate]:>10,.0f} records/s"),
            TimeElapsedColumn(),
            console=stderr(),
            disable=not show_progress,
            transient=False,
        )
        try:
            with bar:
                task = bar.add_task("produce", total=total_bytes, rate=0.0)
                read_bytes = 0
                for line_no, line in _lines(stream):
                    key: Any = None
                    text = line
                    if key_separator is not None:
                        key_text, sep, rest = line.partition(key_separator)
                        if not sep:
                            raise LineError(f"line {line_no}: no key separator {key_separator!r}")
                        key = _parse(key_text, key_format, line_no, "key")
                        text = rest
                    value = _parse(text, value_format, line_no, "value")

                    def on_delivery(
                        meta: RecordMetadata | None, error: Exception | None, line_no: int = line_no
                    ) -> None:
                        if error is not None:
                            failures.append((line_no, error))
                        elif meta is not None:
                            delivered[meta.partition] = delivered.get(meta.partition, 0) + 1

                    producer.send(
                        topic,
                        value,
                        key=key,
                        headers=header_list or None,
                        partition=partition,
                        callback=on_delivery,
                    )
                    sent += 1
                    read_bytes += len(line) + 1
                    if show_progress and sent % 1000 == 0:
                        elapsed = max(time.monotonic() - started, 1e-6)
                        bar.update(task, completed=read_bytes if total_bytes else sent, rate=sent / elapsed)
                producer.flush()
                elapsed = max(time.monotonic() - started, 1e-6)
                bar.update(task, completed=total_bytes if total_bytes else sent, rate=sent / elapsed)
        except KeyboardInterrupt:
            stderr().print("Interrupted: sending what was read so far.")
        finally:
            producer.close()

    elapsed = time.monotonic() - started
    ok = sum(delivered.values())
    if failures:
        for line_no, error in failures[:5]:
            stderr().print(f"[red]Error:[/] line {line_no}: {error}")
        if len(failures) > 5:
            stderr().print(f"... and {len(failures) - 5} more refused records")
    if not quiet:
        parts = ", ".join(f"p{p}: {n}" for p, n in sorted(delivered.items()))
        rate = ok / elapsed if elapsed > 0 else 0.0
        stderr().print(
            f"Produced {ok} of {sent} records to {topic} in {elapsed:.2f} s ({rate:,.0f} records/s)"
            + (f" [{parts}]" if parts else "")
        )
    if failures:
        sys.exit(1)
