"""``tidelog keys`` (create, list, revoke API keys) and ``tidelog users`` (password users, like
``kafka-configs --alter --add-config SCRAM-...`` in KIP-554), thin over ``Admin``.

``tidelog keys create --super`` is the one command that does not use HTTP: it runs on the broker's
host and writes a super user's key straight into the catalog (KIP-900's ``kafka-storage format
--add-scram``), through the broker distribution's ``tidelog.local`` entry point.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import entry_points
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

__all__ = ["keys", "users"]

#: The entry-point group through which the broker distribution offers commands run on its host.
LOCAL_GROUP = "tidelog.local"


def _ms(value: Any) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _expires_at_ms(expires_in_s: int | None) -> int | None:
    if expires_in_s is None:
        return None
    return int((datetime.now(tz=UTC).timestamp() + expires_in_s) * 1000)


@click.group()
def keys() -> None:
    """Create, list and revoke API keys (Authorization: Bearer tlk_<id>_<secret>)."""


@keys.command("create")
@click.option("--principal", default="User:admin", show_default=True, help="Who the key authenticates as.")
@click.option("--description", default="", help="What the key is for (shown in listings).")
@click.option(
    "--expires-in-s", type=click.IntRange(min=1), default=None, help="Refused after this many seconds."
)
@click.option("--super", "super_user", is_flag=True,
              help="On the broker's host: write a super user's key straight into the catalog (no HTTP).")
@click.option("--data-dir", default=None, help="With --super: the data directory ($TIDELOG_DATA_DIR).")
@click.option("--catalog-url", default=None, help="With --super: the catalog URL ($TIDELOG_CATALOG_URL).")
@output_option
@url_option
@handle_errors
def create(
    principal: str,
    description: str,
    expires_in_s: int | None,
    super_user: bool,
    data_dir: str | None,
    catalog_url: str | None,
    output: str,
    url: str | None,
    timeout: float,
) -> None:
    """Create a key and print it: this is the only time its secret is shown."""
    expires = _expires_at_ms(expires_in_s)
    if super_user:
        found = [e for e in entry_points(group=LOCAL_GROUP) if e.name == "create_super_key"]
        if not found:
            raise click.ClickException("--super runs on the broker's host and needs the broker distribution")
        key = found[0].load()(principal=principal, description=description or "super user",
                              expires_at_ms=expires, data_dir=data_dir, catalog_url=catalog_url)
        answer: dict[str, Any] = {"key": key, "principal": principal, "super_user": True}
    else:
        with make_client(url, timeout) as client:
            answer = client.admin.create_api_key(principal, description=description, expires_at_ms=expires)
    if output == "json":
        print_json(answer)
        return
    click.echo(answer["key"])
    click.echo(f"(for {answer['principal']}; store it now, it is not shown again)", err=True)


@keys.command("list")
@click.option("--principal", default=None, help="Only this principal's keys.")
@output_option
@url_option
@handle_errors
def list_keys(principal: str | None, output: str, url: str | None, timeout: float) -> None:
    """List the keys (never their secrets), revoked ones included."""
    with make_client(url, timeout) as client:
        items = client.admin.list_api_keys(principal)
    if output == "json":
        print_json(items)
        return
    rows = [
        (k.get("key_id"), k.get("principal"), "yes" if k.get("super_user") else "",
         _ms(k.get("created_at_ms")), _ms(k.get("expires_at_ms")), _ms(k.get("revoked_at_ms")),
         k.get("description", ""))
        for k in items
    ]
    print_table(None, ["KEY ID", "PRINCIPAL", "SUPER", "CREATED", "EXPIRES", "REVOKED", "DESCRIPTION"], rows)


@keys.command("revoke")
@click.argument("key_id")
@url_option
@handle_errors
def revoke(key_id: str, url: str | None, timeout: float) -> None:
    """Revoke a key: refused on every broker within a second."""
    with make_client(url, timeout) as client:
        client.admin.revoke_api_key(key_id)
    click.echo(f"revoked {key_id}")


@click.group()
def users() -> None:
    """Create, alter, delete and list password users (HTTP Basic and the console's sign-in)."""


def _password(password: str | None) -> str:
    if password is not None:
        return password
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@users.command("create")
@click.argument("name")
@click.option("--password", envvar="TIDELOG_NEW_PASSWORD", default=None,
              help="The password (default: asked for; $TIDELOG_NEW_PASSWORD).")
@url_option
@handle_errors
def create_user(name: str, password: str | None, url: str | None, timeout: float) -> None:
    """Create the user NAME (principal User:NAME)."""
    with make_client(url, timeout) as client:
        client.admin.create_user(name, _password(password))
    click.echo(f"created User:{name}")


@users.command("alter")
@click.argument("name")
@click.option("--password", envvar="TIDELOG_NEW_PASSWORD", default=None,
              help="The new password (default: asked for; $TIDELOG_NEW_PASSWORD).")
@url_option
@handle_errors
def alter_user(name: str, password: str | None, url: str | None, timeout: float) -> None:
    """Set the password of NAME; the old one is refused from now on."""
    with make_client(url, timeout) as client:
        client.admin.alter_user(name, _password(password))
    click.echo(f"altered User:{name}")


@users.command("delete")
@click.argument("name")
@url_option
@handle_errors
def delete_user(name: str, url: str | None, timeout: float) -> None:
    """Delete the user NAME."""
    with make_client(url, timeout) as client:
        client.admin.delete_user(name)
    click.echo(f"deleted User:{name}")


@users.command("list")
@output_option
@url_option
@handle_errors
def list_users(output: str, url: str | None, timeout: float) -> None:
    """List the password users (never their hashes)."""
    with make_client(url, timeout) as client:
        items = client.admin.list_users()
    if output == "json":
        print_json(items)
        return
    print_table(None, ["USER", "MECHANISM", "CREATED", "UPDATED"],
                [(u.get("name"), u.get("mechanism"), _ms(u.get("created_at_ms")), _ms(u.get("updated_at_ms")))
                 for u in items])
