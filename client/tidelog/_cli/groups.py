"""``tidelog groups``: list, describe (with lag), reset offsets and delete consumer groups
(like ``kafka-consumer-groups``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from tidelog._cli._common import (
    handle_errors,
    make_client,
    output_option,
    print_json,
    print_table,
    stdout,
    url_option,
)
from tidelog._types import GroupOffset, TopicPartition


@click.group()
def groups() -> None:
    """List, describe, reset the offsets of and delete consumer groups."""


@groups.command("list")
@output_option
@url_option
@handle_errors
def list_(output: str, url: str | None, timeout: float) -> None:
    """List the consumer groups with their state and member count."""
    with make_client(url, timeout) as client:
        items = client.admin.list_groups()
    if output == "json":
        print_json(items)
        return
    rows = []
    for g in sorted(items, key=lambda g: str(g.get("group_id", g.get("group", "")))):
        members = g.get("members")
        count = len(members) if isinstance(members, list) else g.get("member_count", members)
        rows.append(
            (g.get("group_id", g.get("group", g.get("name"))), g.get("state"), g.get("protocol"), count)
        )
    print_table(None, ["GROUP", "STATE", "PROTOCOL", "MEMBERS"], rows)


def _offset_rows(
    offsets: tuple[GroupOffset, ...], owners: dict[TopicPartition, str]
) -> list[tuple[Any, ...]]:
    return [
        (
            o.topic,
            o.partition,
            o.offset,
            o.high_watermark,
            o.lag,
            owners.get(TopicPartition(o.topic, o.partition), "-"),
        )
        for o in sorted(offsets, key=lambda o: (o.topic, o.partition))
    ]


@groups.command("describe")
@click.argument("group")
@output_option
@url_option
@handle_errors
def describe(group: str, output: str, url: str | None, timeout: float) -> None:
    """Show GROUP: state, members and, per partition, committed offset, log end and lag."""
    with make_client(url, timeout) as client:
        description = client.admin.describe_group(group)
        offsets = client.admin.list_group_offsets(group)
        owners = {tp: m.member_id for m in description.members for tp in m.assignment}
        committed = {TopicPartition(o.topic, o.partition) for o in offsets.offsets}
        # Like kafka-consumer-groups: assigned partitions without a commit are listed too, with "-".
        uncommitted = [
            GroupOffset(tp.topic, tp.partition, None, client.offsets(*tp).high_watermark, None)
            for tp in sorted(set(owners) - committed)
        ]
    if output == "json":
        print_json({"group": description.raw, "offsets": offsets.raw})
        return
    stdout().print(
        f"[bold]Group:[/] {description.group_id}  [bold]State:[/] {description.state}  "
        f"[bold]Protocol:[/] {description.protocol or '-'}  [bold]Generation:[/] "
        f"{description.generation if description.generation is not None else '-'}  "
        f"[bold]Members:[/] {len(description.members)}"
    )
    print_table(
        None,
        ["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID"],
        _offset_rows((*offsets.offsets, *uncommitted), owners),
    )
    if description.members:
        print_table(
            None,
            ["CONSUMER-ID", "INSTANCE-ID", "ASSIGNMENT"],
            [
                (m.member_id, m.instance_id, ", ".join(str(tp) for tp in m.assignment) or "-")
                for m in description.members
            ],
        )


@groups.command("reset-offsets")
@click.argument("group")
@click.option("-t", "--topic", "topics", multiple=True, required=True, help="Topic to reset (repeatable).")
@click.option("--to-earliest", "to", flag_value="earliest", help="To each partition's log start.")
@click.option("--to-latest", "to", flag_value="latest", help="To each partition's end.")
@click.option("--to-offset", type=int, default=None, help="To this offset.")
@click.option("--shift-by", type=int, default=None, help="Move each committed offset by N (may be negative).")
@click.option("--to-timestamp", type=int, default=None, help="To the first record at or after this epoch ms.")
@click.option(
    "--to-datetime",
    default=None,
    help="To the first record at or after this ISO-8601 time (e.g. 2024-01-01T00:00Z).",
)
@click.option("--execute", is_flag=True, help="Apply the reset; without it the new offsets are only shown.")
@output_option
@url_option
@handle_errors
def reset_offsets(
    group: str,
    topics: tuple[str, ...],
    to: str | None,
    to_offset: int | None,
    shift_by: int | None,
    to_timestamp: int | None,
    to_datetime: str | None,
    execute: bool,
    output: str,
    url: str | None,
    timeout: float,
) -> None:
    """Reset GROUP's committed offsets of --topic (the group must have no members).

    Like kafka-consumer-groups, it shows the plan unless --execute is given.
    """
    choices: list[tuple[str, int | None]] = []
    if to is not None:
        choices.append((to, None))
    if to_offset is not None:
        choices.append(("offset", to_offset))
    if shift_by is not None:
        choices.append(("shift_by", shift_by))
    if to_timestamp is not None:
        choices.append(("timestamp", to_timestamp))
    if to_datetime is not None:
        try:
            moment = datetime.fromisoformat(to_datetime.replace("Z", "+00:00"))
        except ValueError:
            raise click.BadParameter(
                f"{to_datetime!r} is not an ISO-8601 time", param_hint="--to-datetime"
            ) from None
        if moment.tzinfo is None:
            raise click.BadParameter("give a time zone, e.g. 2024-01-01T00:00Z", param_hint="--to-datetime")
        choices.append(("timestamp", int(moment.timestamp() * 1000)))
    if len(choices) != 1:
        raise click.UsageError(
            "give exactly one of --to-earliest, --to-latest, --to-offset, --shift-by, "
            "--to-timestamp, --to-datetime"
        )
    target, value = choices[0]
    with make_client(url, timeout) as client:
        result = client.admin.reset_offsets(group, list(topics), target, value, dry_run=not execute)
    if output == "json":
        print_json(result.raw)
        return
    print_table(
        None,
        ["TOPIC", "PARTITION", "NEW-OFFSET"],
        [
            (o.topic, o.partition, o.offset)
            for o in sorted(result.offsets, key=lambda o: (o.topic, o.partition))
        ],
    )
    if execute:
        click.echo(f"Reset the offsets of group {group}.")
    else:
        click.echo("Dry run: nothing changed. Add --execute to apply.")


@groups.command("delete")
@click.argument("group")
@url_option
@handle_errors
def delete(group: str, url: str | None, timeout: float) -> None:
    """Delete GROUP and its committed offsets (it must have no members)."""
    with make_client(url, timeout) as client:
        client.admin.delete_group(group)
    click.echo(f"Deleted group {group}.")
