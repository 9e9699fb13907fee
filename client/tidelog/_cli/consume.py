"""``tidelog consume``: print a topic's records (like ``kafka-console-consumer`` and ``kcat -C``).

Without ``--follow`` it prints what is in the partitions when it starts and exits (``kcat -e``);
with ``--follow`` it keeps waiting for new records until Ctrl-C or ``--max-messages``. In a group
(``--group``) it commits, on the way out and after every batch, exactly the records it printed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import click

from tidelog._cli._common import handle_errors, make_client, stderr, url_option
from tidelog._client import Client
from tidelog._consumer import PartitionReader
from tidelog._types import Record, TopicPartition

FORMATS = click.Choice(["json", "ndjson", "value"])
FIELD_FORMATS = click.Choice(["json", "string", "binary"])


def _render_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _emit(record: Record, fmt: str, print_key: bool, separator: str) -> None:
    if fmt == "value":
        line = _render_value(record.value)
        if print_key:
            line = _render_value(record.key) + separator + line
        click.echo(line)
    elif fmt == "ndjson":
        click.echo(json.dumps(record.to_json(), ensure_ascii=False, separators=(",", ":")))
    else:
        click.echo(json.dumps(record.to_json(), ensure_ascii=False, indent=2))


def _parse_offset(offset: str | None, from_beginning: bool, follow: bool) -> int | str:
    if offset is not None:
        if offset in ("earliest", "beginning"):
            return "earliest"
        if offset in ("latest", "end"):
            return "latest"
        try:
            return int(offset)
        except ValueError:
            raise click.BadParameter(
                "an offset, earliest, latest, or -N for the last N", param_hint="--offset"
            ) from None
    if from_beginning or not follow:
        return "earliest"
    return "latest"


@click.command()
@click.argument("topic")
@click.option(
    "--from-beginning", is_flag=True, help="Start at the earliest record (with --follow or --group)."
)
@click.option("-g", "--group", default=None, help="Consume as a member of consumer group GROUP and commit.")
@click.option("-f", "--follow", is_flag=True, help="Keep waiting for new records until Ctrl-C.")
@click.option(
    "-p",
    "--partition",
    "partitions",
    type=click.IntRange(min=0),
    multiple=True,
    help="Read only this partition.",
)
@click.option(
    "--offset",
    default=None,
    help="Start offset: N, -N (the last N), earliest or latest (without --group).",
)
@click.option(
    "--format",
    "fmt",
    type=FORMATS,
    default="value",
    show_default=True,
    help="value: the value alone; ndjson: one record JSON per line; json: indented record JSON.",
)
@click.option("--print-key", is_flag=True, help="With --format value, print KEY<separator>VALUE.")
@click.option("--key-separator", default="\t", show_default="tab", help="Separator for --print-key.")
@click.option(
    "--key-format", type=FIELD_FORMATS, default=None, help="Read keys in this format (default: as produced)."
)
@click.option("--value-format", type=FIELD_FORMATS, default=None, help="Read values in this format.")
@click.option("-n", "--max-messages", type=click.IntRange(min=1), default=None, help="Stop after N records.")
@click.option(
    "--idle-timeout-ms",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    help="With --group and without --follow: exit after this long without a record.",
)
@url_option
@handle_errors
def consume(
    topic: str,
    from_beginning: bool,
    group: str | None,
    follow: bool,
    partitions: tuple[int, ...],
    offset: str | None,
    fmt: str,
    print_key: bool,
    key_separator: str,
    key_format: str | None,
    value_format: str | None,
    max_messages: int | None,
    idle_timeout_ms: int,
    url: str | None,
    timeout: float,
) -> None:
    """Print the records of TOPIC.

    Without --follow, prints the records there are now and exits. Ctrl-C exits cleanly, committing
    what was printed when in a --group.
    """
    counter = [0]  # records printed; kept outside the helpers so Ctrl-C inside them keeps the count
    started = time.monotonic()
    with make_client(url, timeout) as client:
        try:
            if group is not None:
                if partitions or offset is not None:
                    raise click.UsageError(
                        "--partition and --offset do not go with --group (the group assigns)"
                    )
                _consume_group(
                    client,
                    counter,
                    topic,
                    group,
                    from_beginning,
                    follow,
                    fmt,
                    print_key,
                    key_separator,
                    key_format,
                    value_format,
                    max_messages,
                    idle_timeout_ms,
                )
            else:
                _consume_partitions(
                    client,
                    counter,
                    topic,
                    partitions,
                    _parse_offset(offset, from_beginning, follow),
                    follow,
                    fmt,
                    print_key,
                    key_separator,
                    key_format,
                    value_format,
                    max_messages,
                )
        except KeyboardInterrupt:
            pass
        except BrokenPipeError:
            # `tidelog consume t | head`: the reader left; that is not an error. Point stdout at
            # /dev/null so that the interpreter's final flush does not complain either.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return
    elapsed = time.monotonic() - started
    stderr().print(f"Processed a total of {counter[0]} messages in {elapsed:.2f} s")


def _consume_partitions(
    client: Client,
    counter: list[int],
    topic: str,
    partitions: tuple[int, ...],
    start: int | str,
    follow: bool,
    fmt: str,
    print_key: bool,
    separator: str,
    key_format: str | None,
    value_format: str | None,
    max_messages: int | None,
) -> None:
    chosen = list(partitions) or list(range(client.admin.describe_topic(topic).partition_count))
    readers = [
        PartitionReader(client, topic, p, start, key_format=key_format, value_format=value_format)
        for p in chosen
    ]
    ends = (
        {r.partition: client.offsets(topic, r.partition).high_watermark for r in readers}
        if not follow
        else {}
    )
    while True:
        active = [r for r in readers if follow or r.position < ends[r.partition]]
        if not active:
            return
        # Short waits when several partitions take turns, so one idle partition does not hold up the others.
        wait = 0 if not follow else (500 if len(active) > 1 else 5000)
        for reader in active:
            for record in reader.poll(wait):
                if not follow and record.offset >= ends[reader.partition]:
                    break
                _emit(record, fmt, print_key, separator)
                counter[0] += 1
                if max_messages is not None and counter[0] >= max_messages:
                    return


def _consume_group(
    client: Client,
    counter: list[int],
    topic: str,
    group: str,
    from_beginning: bool,
    follow: bool,
    fmt: str,
    print_key: bool,
    separator: str,
    key_format: str | None,
    value_format: str | None,
    max_messages: int | None,
    idle_timeout_ms: int,
) -> None:
    consumer = client.consumer(
        group,
        [topic],
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        key_format=key_format,
        value_format=value_format,
    )
    printed: dict[TopicPartition, int] = {}
    idle_since = time.monotonic()
    try:
        while True:
            records = consumer.poll(1000)
            for record in records:
                _emit(record, fmt, print_key, separator)
                printed[record.topic_partition] = record.offset + 1
                counter[0] += 1
                if max_messages is not None and counter[0] >= max_messages:
                    return
            if records:
                idle_since = time.monotonic()
                _commit(consumer, printed)
            elif not follow and (time.monotonic() - idle_since) * 1000 >= idle_timeout_ms:
                return
    finally:
        # Commit exactly what was printed, even on Ctrl-C or --max-messages in the middle of a batch,
        # then leave the group; both within CLOSE_TIMEOUT_S, so a slow or gone broker cannot hold
        # the terminal (the group then expires the member after its session timeout).
        try:
            with _deadline(CLOSE_TIMEOUT_S):
                _commit(consumer, printed)
                consumer.close(commit=False)
        except _DeadlineExceeded:
            stderr().print(
                f"[yellow]Warning:[/] gave up committing and leaving the group after {CLOSE_TIMEOUT_S:g} s"
            )


#: How long the way out of ``--group`` (the last commit and the leave) may take.
CLOSE_TIMEOUT_S = 10.0


class _DeadlineExceeded(Exception):
    pass


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise ``_DeadlineExceeded`` in the main thread if the block runs longer than ``seconds``; a
    second Ctrl-C meanwhile also ends it at once (SIGINT back to its default handler)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum: int, frame: Any) -> None:
        raise _DeadlineExceeded

    previous_alarm = signal.signal(signal.SIGALRM, expired)
    previous_int = signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_alarm)
        signal.signal(signal.SIGINT, previous_int)


def _commit(consumer: Any, printed: dict[TopicPartition, int]) -> None:
    if not printed:
        return
    from tidelog._errors import TidelogError

    try:
        consumer.commit(dict(printed))
        printed.clear()
    except TidelogError as error:
        stderr().print(f"[yellow]Warning:[/] commit failed: {error}")
