"""What every client command shares: ``--url``, the client, readable errors, output helpers."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

import click
from rich.console import Console
from rich.table import Table

from tidelog._client import Client, resolve_url
from tidelog._errors import BrokerError, ConnectError, TidelogError

F = TypeVar("F", bound=Callable[..., Any])

#: Where ``tidelog``'s global credential options (``--api-key``, ``--token``, ``--user``/``--password``)
#: leave their values for ``make_client`` (``click.Context.meta`` is shared by every sub-command).
CREDENTIALS = "tidelog.credentials"

OUTPUTS = click.Choice(["table", "json"])


def stdout() -> Console:
    # Piped output keeps whole table rows instead of the 80 columns rich assumes without a terminal.
    return Console(soft_wrap=True, highlight=False, width=None if sys.stdout.isatty() else 240)


def stderr() -> Console:
    return Console(stderr=True, soft_wrap=True, highlight=False)


def url_option(func: F) -> F:
    """Add ``--url`` (``$TIDELOG_URL``) and ``--timeout`` to a command."""
    func = click.option(
        "--timeout",
        type=click.FloatRange(min=0.1),
        default=30.0,
        show_default=True,
        help="Seconds to wait for each answer of the broker.",
    )(func)
    func = click.option(
        "--url",
        envvar="TIDELOG_URL",
        default=None,
        metavar="URL",
        help="Broker URL (default $TIDELOG_URL, else http://127.0.0.1:8080).",
    )(func)
    return func


def output_option(func: F) -> F:
    return click.option(
        "-o",
        "--output",
        type=OUTPUTS,
        default="table",
        show_default=True,
        help="Print a table for people or JSON for scripts.",
    )(func)


def make_client(url: str | None, timeout: float) -> Client:
    """The command's client, with the credentials given to ``tidelog`` (else ``$TIDELOG_API_KEY``)."""
    ctx = click.get_current_context(silent=True)
    credentials: dict[str, Any] = ctx.meta.get(CREDENTIALS, {}) if ctx is not None else {}
    return Client(url, timeout=timeout, retries=3, **credentials)


def handle_errors(func: F) -> F:
    """Turn the client's exceptions into one readable line on stderr and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConnectError:
            url = resolve_url(kwargs.get("url"))
            stderr().print(f"[red]Error:[/] cannot connect to the broker at {url} (is it running? see --url)")
            sys.exit(1)
        except BrokerError as error:
            stderr().print(
                f"[red]Error:[/] {error.detail} [dim]({error.title}, error_code {error.error_code})[/]"
            )
            sys.exit(1)
        except TidelogError as error:
            stderr().print(f"[red]Error:[/] {error}")
            sys.exit(1)
        except (TypeError, ValueError) as error:
            # Bad input that the client refused before sending anything.
            stderr().print(f"[red]Error:[/] {error}")
            sys.exit(2)

    return cast(F, wrapper)


def parse_configs(items: Sequence[str]) -> dict[str, Any]:
    """Read ``name=value`` pairs; values that parse as JSON (numbers, null) are sent as such."""
    configs: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not name=value", param_hint="--config")
        configs[name.strip()] = parse_scalar(raw.strip())
    return configs


def parse_scalar(raw: str) -> Any:
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, int | float | bool) or value is None else raw


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    table = Table(title=title, show_edge=False, header_style="bold")
    for column in columns:
        numeric = column.upper() in {
            "PARTITIONS",
            "PARTITION",
            "LEADER",
            "LOG-START",
            "HIGH-WATERMARK",
            "LOG-END",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "MEMBERS",
            "RF",
            "NEW-OFFSET",
        }
        table.add_column(column, justify="right" if numeric else "left", no_wrap=True)
    for row in rows:
        table.add_row(*("-" if cell is None else str(cell) for cell in row))
    stdout().print(table)
