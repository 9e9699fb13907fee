"""``tidelog acls add|list|remove``: ACL bindings, like ``kafka-acls --add/--list/--remove``."""

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

_OPERATIONS = click.Choice(
    ["ALL", "READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE", "CLUSTER_ACTION", "DESCRIBE_CONFIGS",
     "ALTER_CONFIGS"],
    case_sensitive=False,
)
_COLUMNS = ["PRINCIPAL", "HOST", "PERMISSION", "OPERATION", "RESOURCE", "PATTERN", "NAME"]


def _resource_options(func: Any) -> Any:
    for option in reversed([
        click.option("--principal", metavar="User:NAME", help="User:<name>, or User:* for everyone."),
        click.option("--host", default=None, help="Client address (default: any, *)."),
        click.option("--topic", default=None, help="A topic name (a prefix with --prefixed; * for all)."),
        click.option("--group", default=None, help="A consumer group (a prefix with --prefixed; * for all)."),
        click.option("--cluster", "on_cluster", is_flag=True, help="The cluster resource."),
        click.option("--prefixed", is_flag=True, help="The name is a prefix (PREFIXED pattern)."),
        click.option("--operation", type=_OPERATIONS, default=None, help="The operation."),
        click.option("--deny", is_flag=True, help="A DENY binding (default ALLOW)."),
    ]):
        func = option(func)
    return func


def _resource(topic: str | None, group: str | None, on_cluster: bool) -> tuple[str | None, str | None]:
    given = [(kind, name) for kind, name in (("TOPIC", topic), ("GROUP", group)) if name is not None]
    if on_cluster:
        given.append(("CLUSTER", "kafka-cluster"))
    if len(given) > 1:
        raise click.UsageError("name one resource: --topic, --group or --cluster")
    return given[0] if given else (None, None)


def _rows(acls: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(a.get("principal"), a.get("host"), a.get("permission"), a.get("operation"),
             a.get("resource_type"), a.get("pattern_type"), a.get("resource_name")) for a in acls]


def _show(output: str, acls: list[dict[str, Any]], title: str) -> None:
    if output == "json":
        print_json(acls)
    else:
        print_table(title, _COLUMNS, _rows(acls))


@click.group()
def acls() -> None:
    """Who may do what: ACL bindings (Kafka's kafka-acls), enforced with --authorizer-enabled."""


@acls.command("add")
@_resource_options
@output_option
@url_option
@handle_errors
def add(principal: str | None, host: str | None, topic: str | None, group: str | None, on_cluster: bool,
        prefixed: bool, operation: str | None, deny: bool, output: str, url: str | None,
        timeout: float) -> None:
    """Add a binding, e.g. --principal User:alice --topic orders --operation READ."""
    resource_type, name = _resource(topic, group, on_cluster)
    if principal is None or resource_type is None or operation is None:
        raise click.UsageError("add needs --principal, one of --topic/--group/--cluster, and --operation")
    binding = {"principal": principal, "host": host or "*", "resource_type": resource_type,
               "pattern_type": "PREFIXED" if prefixed else "LITERAL", "resource_name": name,
               "operation": operation.upper(), "permission": "DENY" if deny else "ALLOW"}
    with make_client(url, timeout) as client:
        added = client.admin.create_acls([binding])
    _show(output, added, "Added" if added else "Already there")


def _where(principal: str | None, host: str | None, topic: str | None, group: str | None, on_cluster: bool,
           prefixed: bool, match: bool, operation: str | None, deny: bool | None) -> dict[str, Any]:
    resource_type, name = _resource(topic, group, on_cluster)
    pattern = "MATCH" if match else ("PREFIXED" if prefixed else "ANY")
    return {"principal": principal, "host": host, "resource_type": resource_type, "resource_name": name,
            "pattern_type": pattern, "operation": operation.upper() if operation else None,
            "permission": None if deny is None else ("DENY" if deny else "ALLOW")}


@acls.command("list")
@_resource_options
@click.option("--match", is_flag=True, help="Every binding that applies to the named resource.")
@output_option
@url_option
@handle_errors
def list_(principal: str | None, host: str | None, topic: str | None, group: str | None, on_cluster: bool,
          prefixed: bool, operation: str | None, deny: bool, match: bool, output: str, url: str | None,
          timeout: float) -> None:
    """List bindings; every option given narrows the list."""
    where = _where(principal, host, topic, group, on_cluster, prefixed, match, operation, deny or None)
    with make_client(url, timeout) as client:
        found = client.admin.list_acls(**where)
    _show(output, found, "ACLs")


@acls.command("remove")
@_resource_options
@output_option
@url_option
@handle_errors
def remove(principal: str | None, host: str | None, topic: str | None, group: str | None, on_cluster: bool,
           prefixed: bool, operation: str | None, deny: bool, output: str, url: str | None,
           timeout: float) -> None:
    """Remove the bindings matching the options (at least one is needed)."""
    where = _where(principal, host, topic, group, on_cluster, prefixed, False, operation, deny or None)
    if all(v is None for k, v in where.items() if k != "pattern_type"):
        raise click.UsageError("remove needs at least one of --principal, --host, a resource, --operation")
    with make_client(url, timeout) as client:
        removed = client.admin.delete_acls(**where)
    _show(output, removed, "Removed")
