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
@click.option(
    "--api-key",
    default=None,
    metavar="KEY",
    help="API key, sent as 'Authorization: Bearer KEY' (default $TIDELOG_API_KEY).",
)
@click.option(
    "--token",
    envvar="TIDELOG_TOKEN",
    default=None,
    metavar="TOKEN",
    help="Bearer token, e.g. a JWT (default $TIDELOG_TOKEN).",
)
@click.option(
    "--user",
    envvar="TIDELOG_USER",
    default=None,
    metavar="NAME",
    help="User name for HTTP Basic (default $TIDELOG_USER); asks for the password if not given.",
)
@click.option(
    "--password",
    envvar="TIDELOG_PASSWORD",
    default=None,
    metavar="PASSWORD",
    help="Password for HTTP Basic with --user (default $TIDELOG_PASSWORD).",
)
@click.pass_context
def main(
    ctx: click.Context, api_key: str | None, token: str | None, user: str | None, password: str | None
) -> None:
    """tidelog: an HTTP-first event-streaming broker and its command-line client.

    Credentials go before the command (tidelog --api-key KEY topics list); one kind at most.
    """
    from tidelog._cli._common import CREDENTIALS

    # A flag beats an environment variable of another kind (``--api-key`` over ``$TIDELOG_TOKEN``).
    given = {"api_key": api_key, "token": token, "user": user}
    from_flags = {n for n, v in given.items() if v is not None and _from_command_line(ctx, n)}
    if from_flags:
        api_key, token, user = (v if n in from_flags else None for n, v in given.items())
        if user is None:
            password = None
    if password is not None and user is None:
        raise click.UsageError("--password needs --user")
    if user is not None and password is None:
        password = click.prompt(f"Password for {user}", hide_input=True)
    ctx.meta[CREDENTIALS] = {"api_key": api_key, "token": token, "username": user, "password": password}


def _from_command_line(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE


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
