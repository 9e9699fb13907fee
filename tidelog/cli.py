"""The ``tidelog`` command: a thin layer over the client library (and, for ``serve``, the broker)."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tidelog")
def main() -> None:
    """tidelog: an HTTP-first event-streaming broker and its command-line client."""


def _register_broker_commands() -> None:
    # app.cli imports only click at module level and the broker inside each command's body, so
    # client commands such as ``tidelog topics list`` never load FastAPI or SQLAlchemy.
    from app.cli import migrate, openapi, serve

    for command in (serve, migrate, openapi):
        main.add_command(command)


_register_broker_commands()

from tidelog._cli import register as _register_client_commands  # noqa: E402 - after the group exists

_register_client_commands(main)
