"""``tidelog topics``: create, list, describe, alter and delete topics (like ``kafka-topics``)."""

from __future__ import annotations

from typing import Any

import click

from tidelog._cli._common import (
    handle_errors,
    make_client,
    output_option,
    parse_configs,
    print_json,
    print_table,
    stdout,
    url_option,
)
from tidelog._types import TopicDescription


@click.group()
def topics() -> None:
    """Create, list, describe, alter and delete topics."""


def _describe_json(topic: TopicDescription) -> dict[str, Any]:
    return {
        "name": topic.name,
        "partition_count": topic.partition_count,
        "replication_factor": topic.replication_factor,
        "partitions": [
            {
                "partition": p.partition,
                "leader": p.leader,
                "replicas": list(p.replicas),
                "isr": list(p.isr),
                "log_start_offset": p.log_start_offset,
                "high_watermark": p.high_watermark,
                "log_end_offset": p.log_end_offset,
            }
            for p in topic.partitions
        ],
        "configs": topic.configs,
    }


def _print_topic(topic: TopicDescription, output: str, *, show_defaults: bool = True) -> None:
    if output == "json":
        print_json(_describe_json(topic))
        return
    console = stdout()
    console.print(
        f"[bold]Topic:[/] {topic.name}  [bold]Partitions:[/] {topic.partition_count}  "
        f"[bold]ReplicationFactor:[/] {topic.replication_factor}"
    )
    if topic.partitions:
        print_table(
            None,
            ["PARTITION", "LEADER", "REPLICAS", "ISR", "LOG-START", "HIGH-WATERMARK", "LOG-END"],
            [
                (
                    p.partition,
                    p.leader,
                    ",".join(map(str, p.replicas)),
                    ",".join(map(str, p.isr)),
                    p.log_start_offset,
                    p.high_watermark,
                    p.log_end_offset,
                )
                for p in topic.partitions
            ],
        )
    configs = {
        k: v for k, v in sorted(topic.configs.items()) if show_defaults or k not in set(topic.defaults)
    }
    if configs:
        default_set = set(topic.defaults)
        print_table(
            None,
            ["CONFIG", "VALUE", "SOURCE"],
            [(k, v, "default" if k in default_set else "topic") for k, v in configs.items()],
        )


@topics.command("create")
@click.argument("name")
@click.option("--partitions", type=click.IntRange(min=1), default=None, help="Partition count.")
@click.option(
    "-r", "--replication-factor", type=click.IntRange(min=1), default=None, help="Replicas per partition."
)
@click.option(
    "-c",
    "--config",
    "configs",
    multiple=True,
    metavar="NAME=VALUE",
    help="A topic config, e.g. retention.ms=86400000 (repeatable).",
)
@click.option("--validate-only", is_flag=True, help="Check that the topic could be created; create nothing.")
@click.option("--if-not-exists", is_flag=True, help="Succeed without change when the topic exists.")
@output_option
@url_option
@handle_errors
def create(
    name: str,
    partitions: int | None,
    replication_factor: int | None,
    configs: tuple[str, ...],
    validate_only: bool,
    if_not_exists: bool,
    output: str,
    url: str | None,
    timeout: float,
) -> None:
    """Create topic NAME."""
    from tidelog._errors import TopicExistsError

    parsed = parse_configs(configs)
    with make_client(url, timeout) as client:
        try:
            topic = client.admin.create_topic(
                name,
                partitions,
                replication_factor=replication_factor,
                configs=parsed,
                validate_only=validate_only,
            )
        except TopicExistsError:
            if not if_not_exists:
                raise
            click.echo(f"Topic {name} already exists.", err=True)
            return
    if output == "json":
        print_json(_describe_json(topic))
    elif validate_only:
        click.echo(
            f"Topic {name} can be created with {topic.partition_count} partitions (nothing was created)."
        )
    else:
        click.echo(f"Created topic {name} with {topic.partition_count} partitions.")


@topics.command("list")
@output_option
@url_option
@handle_errors
def list_(output: str, url: str | None, timeout: float) -> None:
    """List every topic with its partition count."""
    with make_client(url, timeout) as client:
        items = client.admin.list_topics()
    if output == "json":
        print_json(
            [
                {
                    "name": t.name,
                    "partition_count": t.partition_count,
                    "replication_factor": t.replication_factor,
                }
                for t in items
            ]
        )
        return
    print_table(
        None,
        ["TOPIC", "PARTITIONS", "RF"],
        [(t.name, t.partition_count, t.replication_factor) for t in sorted(items, key=lambda t: t.name)],
    )


@topics.command("describe")
@click.argument("name")
@output_option
@url_option
@handle_errors
def describe(name: str, output: str, url: str | None, timeout: float) -> None:
    """Show topic NAME: partitions with leader, replicas, ISR and offsets, and configs."""
    with make_client(url, timeout) as client:
        topic = client.admin.describe_topic(name)
    _print_topic(topic, output)


@topics.command("alter")
@click.argument("name")
@click.option(
    "--partitions", type=click.IntRange(min=1), default=None, help="Raise the partition count."
)
@click.option(
    "-c", "--config", "configs", multiple=True, metavar="NAME=VALUE", help="Set a topic config (repeatable)."
)
@click.option(
    "--delete-config",
    "deleted",
    multiple=True,
    metavar="NAME",
    help="Reset a config to its default (repeatable).",
)
@output_option
@url_option
@handle_errors
def alter(
    name: str,
    partitions: int | None,
    configs: tuple[str, ...],
    deleted: tuple[str, ...],
    output: str,
    url: str | None,
    timeout: float,
) -> None:
    """Raise the partition count of topic NAME or change its configs."""
    if partitions is None and not configs and not deleted:
        raise click.UsageError("nothing to change: give --partitions, --config or --delete-config")
    changes: dict[str, Any] = parse_configs(configs)
    for config_name in deleted:
        changes[config_name] = None
    with make_client(url, timeout) as client:
        if partitions is not None:
            client.admin.create_partitions(name, partitions)
        if changes:
            client.admin.alter_configs(name, changes)
        topic = client.admin.describe_topic(name)
    if output == "json":
        print_json(_describe_json(topic))
        return
    done = []
    if partitions is not None:
        done.append(f"{topic.partition_count} partitions")
    if changes:
        done.append(", ".join(f"{k}={topic.configs.get(k)}" for k in changes))
    click.echo(f"Altered topic {name}: {'; '.join(done)}.")


@topics.command("delete")
@click.argument("name")
@click.option("--if-exists", is_flag=True, help="Succeed without change when the topic does not exist.")
@url_option
@handle_errors
def delete(name: str, if_exists: bool, url: str | None, timeout: float) -> None:
    """Delete topic NAME and all its records."""
    from tidelog._errors import UnknownTopicError

    with make_client(url, timeout) as client:
        try:
            client.admin.delete_topic(name)
        except UnknownTopicError:
            if not if_exists:
                raise
            click.echo(f"Topic {name} does not exist.", err=True)
            return
    click.echo(f"Deleted topic {name}.")


@topics.command("delete-records")
@click.argument("name")
@click.option("--partition", "partition", type=click.IntRange(min=0), required=True, help="The partition.")
@click.option(
    "--offset",
    "offset",
    type=click.IntRange(min=-1),
    required=True,
    help="Delete the records below this offset (-1: everything up to the high watermark).",
)
@url_option
@handle_errors
def delete_records(name: str, partition: int, offset: int, url: str | None, timeout: float) -> None:
    """Delete the records of one partition below an offset (Kafka's DeleteRecords).

    The partition's log start moves to the offset and never back; reads of earlier offsets then
    answer "offset out of range" with the new log start.
    """
    with make_client(url, timeout) as client:
        low = client.admin.delete_records(name, partition, offset)
    click.echo(f"Partition {name}-{partition} now starts at offset {low}.")
