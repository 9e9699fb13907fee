"""The ``tidelog`` command: a thin layer over the client library (and, for ``serve``, the broker).

This distribution (``tidelog-client``) owns the command. The broker distribution (``tidelog``) adds
``serve``, ``migrate`` and ``openapi`` through the ``tidelog.commands`` entry-point group; without it
those three commands say which distribution they need instead of failing on an import.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import click

#: The entry-point group through which other distributions add commands to ``tidelog``.
COMMANDS_GROUP = "tidelog.commands"
#: The broker's commands, which only the broker distribution provides.
BROKER_COMMANDS = ("serve", "migrate", "openapi")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tidelog-client")
def main() -> None:
    """tidelog: an HTTP-first event-streaming broker and its command-line client."""


def _needs_broker(name: str) -> click.Command:
    @click.command(
        name,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        help=f"(Needs the tidelog broker distribution: `tidelog {name}` is not part of tidelog-client.)",
        add_help_option=False,
    )
    def command() -> None:
        raise click.ClickException(
            f"`tidelog {name}` needs the broker distribution `tidelog` (pip install tidelog, or "
            "`pip install .` at the root of a checkout); tidelog-client has only the client commands"
        )

    return command


def _register_plugin_commands() -> None:
    # The broker's app.cli imports only click at module level and the broker inside each command's
    # body, so client commands such as ``tidelog topics list`` never load FastAPI or SQLAlchemy.
    registered = set()
    for entry in entry_points(group=COMMANDS_GROUP):
        command = entry.load()
        if isinstance(command, click.Command):
            main.add_command(command, entry.name)
            registered.add(entry.name)
    for name in BROKER_COMMANDS:
        if name not in registered:
            main.add_command(_needs_broker(name))


_register_plugin_commands()

from tidelog._cli import register as _register_client_commands  # noqa: E402 - after the group exists

_register_client_commands(main)
