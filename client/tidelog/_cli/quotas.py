"""``tidelog quotas list|set|remove``: client quotas per principal (``kafka-configs --entity-type
users``); ``<default>`` is the default entry."""

from __future__ import annotations

from typing import Any

import click

from tidelog._cli._common import (
    handle_errors,
    make_client,
    output_option,
    print_json,
    print_table,
    url_option,
)

_LIMITS = ("producer_byte_rate", "consumer_byte_rate", "request_rate", "max_streams")


@click.group()
def quotas() -> None:
    """How much: per-principal quotas (bytes/s, requests/s, open streams), enforced per broker."""


@quotas.command("list")
@output_option
@url_option
@handle_errors
def list_(output: str, url: str | None, timeout: float) -> None:
    """Every quota entry."""
    with make_client(url, timeout) as client:
        entries = client.admin.list_quotas()
    if output == "json":
        print_json(entries)
        return
    print_table("Quotas", ["PRINCIPAL", "PRODUCE-B/S", "FETCH-B/S", "REQUESTS/S", "STREAMS"],
                [(e.get("principal"), *(e.get(k) for k in _LIMITS)) for e in entries])


@quotas.command("set")
@click.argument("principal")
@click.option("--producer-byte-rate", type=click.IntRange(min=1), help="Produced bytes per second.")
@click.option("--consumer-byte-rate", type=click.IntRange(min=1), help="Fetched bytes per second.")
@click.option("--request-rate", type=click.IntRange(min=1), help="Requests per second.")
@click.option("--max-streams", type=click.IntRange(min=0), help="Event streams and long polls at once.")
@click.option("--clear", multiple=True, type=click.Choice([k.replace("_", "-") for k in _LIMITS]),
              help="Remove this limit (repeatable).")
@output_option
@url_option
@handle_errors
def set_(principal: str, producer_byte_rate: int | None, consumer_byte_rate: int | None,
         request_rate: int | None, max_streams: int | None, clear: tuple[str, ...], output: str,
         url: str | None, timeout: float) -> None:
    """Set limits of PRINCIPAL (User:<name>, or '<default>'); limits not named stay as they are."""
    given: dict[str, Any] = {
        "producer_byte_rate": producer_byte_rate, "consumer_byte_rate": consumer_byte_rate,
        "request_rate": request_rate, "max_streams": max_streams,
    }
    limits: dict[str, int | None] = {k: v for k, v in given.items() if v is not None}
    limits.update({name.replace("-", "_"): None for name in clear})
    if not limits:
        raise click.UsageError("name at least one limit to set or --clear")
    with make_client(url, timeout) as client:
        entry = client.admin.set_quota(principal, **limits)
    if output == "json":
        print_json(entry)
    else:
        print_table("Quota", ["PRINCIPAL", "PRODUCE-B/S", "FETCH-B/S", "REQUESTS/S", "STREAMS"],
                    [(entry.get("principal"), *(entry.get(k) for k in _LIMITS))])


@quotas.command("remove")
@click.argument("principal")
@url_option
@handle_errors
def remove(principal: str, url: str | None, timeout: float) -> None:
    """Remove PRINCIPAL's quota entry (it falls back to the default entry)."""
    with make_client(url, timeout) as client:
        client.admin.delete_quota(principal)
    click.echo(f"Removed the quota entry of {principal}")
