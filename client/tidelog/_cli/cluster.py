"""``tidelog cluster``: the brokers (alive or fenced), the controller and the under-replicated
partitions, as ``GET /v1/cluster`` gives them (``cluster info`` is the same view)."""

from __future__ import annotations

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


def _show(output: str, url: str | None, timeout: float) -> None:
    with make_client(url, timeout) as client:
        data = client.cluster()
    if output == "json":
        print_json(data)
        return
    answering, controller = data.get("broker_id"), data.get("controller_id")
    stdout().print(
        f"[bold]Controller:[/] {controller if isinstance(controller, int) and controller >= 0 else 'none'}"
        f"  [bold]Answered by:[/] broker {answering} ({data.get('advertised_url', '-')})"
        f"  [bold]Version:[/] {data.get('version', '-')}"
    )
    brokers: list[Any] = [b for b in data.get("brokers") or [] if isinstance(b, dict)]
    print_table(
        None,
        ["BROKER", "URL", "STATE", "ROLE"],
        [
            (
                b.get("broker_id"),
                b.get("url"),
                b.get("state"),
                "controller" if b.get("broker_id") == controller else "",
            )
            for b in sorted(brokers, key=lambda b: b.get("broker_id", 0))
        ],
    )
    under = [u for u in data.get("under_replicated_partitions") or [] if isinstance(u, dict)]
    if not under:
        click.echo("Under-replicated partitions: none")
        return
    click.echo(f"Under-replicated partitions: {len(under)}")
    print_table(
        None,
        ["TOPIC", "PARTITION"],
        [(u.get("topic"), u.get("partition")) for u in sorted(
            under, key=lambda u: (str(u.get("topic")), u.get("partition", 0))
        )],
    )


@click.group(invoke_without_command=True)
@output_option
@url_option
@click.pass_context
@handle_errors
def cluster(ctx: click.Context, output: str, url: str | None, timeout: float) -> None:
    """Show the cluster: its brokers (alive or fenced), the controller and the under-replicated
    partitions (like `kafka-metadata-quorum` and `kafka-topics --under-replicated-partitions`)."""
    if ctx.invoked_subcommand is None:
        _show(output, url, timeout)


@cluster.command("info")
@output_option
@url_option
@handle_errors
def info(output: str, url: str | None, timeout: float) -> None:
    """The same view as `tidelog cluster` (kept for scripts that name the subcommand)."""
    _show(output, url, timeout)
