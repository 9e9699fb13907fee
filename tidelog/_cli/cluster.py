"""``tidelog cluster``: the broker's identity and the cluster's brokers."""

from __future__ import annotations

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


@click.group()
def cluster() -> None:
    """Show the cluster's brokers and the broker's identity."""


@cluster.command("info")
@output_option
@url_option
@handle_errors
def info(output: str, url: str | None, timeout: float) -> None:
    """Show the answering broker's id, version and advertised URL, and the brokers of the cluster."""
    with make_client(url, timeout) as client:
        data = client.cluster()
    if output == "json":
        print_json(data)
        return
    stdout().print(
        f"[bold]Broker:[/] {data.get('broker_id')}  [bold]Controller:[/] {data.get('controller_id', '-')}  "
        f"[bold]Version:[/] {data.get('version', '-')}  [bold]URL:[/] {data.get('advertised_url', '-')}"
    )
    brokers = data.get("brokers") or []
    print_table(
        None,
        ["BROKER", "URL", "STATE"],
        [(b.get("broker_id"), b.get("url"), b.get("state")) for b in brokers if isinstance(b, dict)],
    )
    under = data.get("under_replicated_partitions") or []
    click.echo(f"Under-replicated partitions: {len(under)}")
