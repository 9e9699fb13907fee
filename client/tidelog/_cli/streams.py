"""``tidelog streams run|describe MODULE:APP``: run or outline a ``tidelog.streams`` application.

``MODULE:APP`` names an ``App`` (or a function returning one) as ``uvicorn`` names an ASGI app:
``tidelog streams run wordcount:app`` imports ``wordcount`` from the current directory.
"""

from __future__ import annotations

import importlib
import signal
import sys
from types import FrameType
from typing import Any

import click

from tidelog._cli._common import handle_errors, stderr, stdout
from tidelog._client import resolve_url

__all__ = ["streams"]


def load_app(spec: str) -> Any:
    """The ``App`` that ``module:attribute`` names (calling the attribute if it is a factory)."""
    from tidelog.streams import App

    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise click.BadParameter(f"expected MODULE:APP, got {spec!r}", param_hint="APP")
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise click.BadParameter(f"cannot import {module_name!r}: {error}", param_hint="APP") from error
    try:
        target = getattr(module, attribute)
    except AttributeError:
        raise click.BadParameter(f"{module_name} has no attribute {attribute!r}", param_hint="APP") from None
    app = target() if callable(target) and not isinstance(target, App) else target
    if not isinstance(app, App):
        raise click.BadParameter(f"{spec} is not a tidelog.streams.App", param_hint="APP")
    return app


@click.group()
def streams() -> None:
    """Run stream-processing applications (tidelog.streams)."""


@streams.command("run")
@click.argument("app_spec", metavar="MODULE:APP")
@click.option(
    "--url",
    envvar="TIDELOG_URL",
    default=None,
    metavar="URL",
    help="Broker URL (default: the App's url, else $TIDELOG_URL, else http://127.0.0.1:8080).",
)
@click.option(
    "--state-dir", default=None, metavar="DIR", help="Where task state lives (the App's state_dir)."
)
@handle_errors
def run(app_spec: str, url: str | None, state_dir: str | None) -> None:
    """Run MODULE:APP until Ctrl-C or SIGTERM, then commit and leave the group.

    Start the same command in more processes (on this machine or others) to scale out: they share
    the application's tasks.
    """
    from pathlib import Path

    app = load_app(app_spec)
    if url is not None or app.url is None:
        app.url = resolve_url(url)
    if state_dir is not None:
        app.state_dir = Path(state_dir)

    def stop(signum: int, _frame: FrameType | None) -> None:
        stderr().print(f"stopping {app.application_id} (signal {signum}): committing…")
        app.stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    stderr().print(f"running {app.application_id} against {app.url}")
    app.run()


@streams.command("describe")
@click.argument("app_spec", metavar="MODULE:APP")
def describe(app_spec: str) -> None:
    """Print MODULE:APP's sub-topologies, stores and internal topics."""
    stdout().print(load_app(app_spec).describe(), markup=False)
