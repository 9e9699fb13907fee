"""``tidelog connect``: run a connect worker (``--broker URL``), or manage connectors over the REST API."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from tidelog._cli._common import (
    handle_errors,
    make_client,
    output_option,
    print_json,
    print_table,
    url_option,
)
from tidelog.connect import _rest


def _seg(value: str) -> str:
    return quote(value, safe="")


@click.group(invoke_without_command=True)
@click.option(
    "--broker",
    metavar="URL",
    default=None,
    help="Run a worker that talks to the broker at URL (several URLs: comma-separated).",
)
@click.option("--worker-id", default=None, help="This worker's id (default host-pid-random).")
@click.option(
    "--session-timeout-ms",
    type=click.IntRange(1000, 300_000),
    default=10_000,
    show_default=True,
    help="Lease of the worker: its tasks move to other workers this long after it died.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Log level of the worker.",
)
@click.pass_context
def connect(
    ctx: click.Context, broker: str | None, worker_id: str | None, session_timeout_ms: int, log_level: str
) -> None:
    """Run a connect worker (tidelog connect --broker URL), or manage connectors (the subcommands)."""
    if ctx.invoked_subcommand is not None:
        return
    if broker is None:
        click.echo(ctx.get_help())
        return
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from tidelog.connect.worker import Worker

    async def main() -> None:
        worker = Worker(broker.split(",")[0], worker_id=worker_id, session_timeout_ms=session_timeout_ms)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, worker.request_stop)
        try:
            await worker.run()
        finally:
            await worker.client.aclose()

    asyncio.run(main())


def _call(url: str | None, timeout: float, method: str, path: str, **kwargs: Any) -> Any:
    with make_client(url, timeout) as client:
        return client.call(_rest.connector_call(method, path, **kwargs))


def _read_config(source: str) -> dict[str, Any]:
    text = Path(source).read_text() if source != "-" else sys.stdin.read()
    try:
        body = json.loads(text)
    except ValueError:  # Kafka's .properties files work too
        body = {}
        for line in text.splitlines():
            stripped = line.strip()
            if stripped and not stripped.startswith(("#", "!")):
                key, _, value = stripped.partition("=")
                body[key.strip()] = value.strip()
    if not isinstance(body, dict):
        raise click.BadParameter("the config must be a JSON object or a properties file")
    return body


@connect.command("create")
@click.argument("config_file", metavar="CONFIG")
@click.option("--name", default=None, help="The connector's name (default: the config's name).")
@click.option(
    "--initial-state",
    type=click.Choice(["RUNNING", "PAUSED", "STOPPED"]),
    default="RUNNING",
    show_default=True,
    help="KIP-980: the state it starts in.",
)
@url_option
@handle_errors
def create(config_file: str, name: str | None, initial_state: str, url: str | None, timeout: float) -> None:
    """Create a connector from CONFIG: a JSON file ({name, config} or a flat config), a .properties
    file, or - for stdin."""
    body = _read_config(config_file)
    config = body.get("config", body) if isinstance(body.get("config"), dict) else body
    chosen = name or body.get("name") or config.get("name")
    if not chosen:
        raise click.BadParameter("give the connector a name (--name, or name in the config)")
    info = _call(
        url,
        timeout,
        "POST",
        "/connectors",
        json={"name": chosen, "config": config, "initial_state": initial_state},
    )
    print_json(info)


@connect.command("list")
@output_option
@url_option
@handle_errors
def list_(output: str, url: str | None, timeout: float) -> None:
    """List the connectors with their type, state and tasks' states."""
    items = _call(url, timeout, "GET", "/connectors", params={"expand": ["status", "info"]})
    if output == "json":
        print_json(items)
        return
    rows = []
    for name, entry in sorted(items.items()):
        status, info = entry.get("status", {}), entry.get("info", {})
        tasks = ", ".join(f"{t['id']}:{t['state']}" for t in status.get("tasks", []))
        rows.append(
            (
                name,
                info.get("type"),
                info.get("config", {}).get("connector.class"),
                status.get("connector", {}).get("state"),
                tasks or "-",
            )
        )
    print_table(None, ["CONNECTOR", "TYPE", "CLASS", "STATE", "TASKS"], rows)


@connect.command("status")
@click.argument("name")
@output_option
@url_option
@handle_errors
def status(name: str, output: str, url: str | None, timeout: float) -> None:
    """Show NAME's state and each task's state, worker and trace."""
    body = _call(url, timeout, "GET", f"/connectors/{_seg(name)}/status")
    if output == "json":
        print_json(body)
        return
    connector = body["connector"]
    rows = [("connector", connector["state"], connector.get("worker_id", ""), connector.get("trace", ""))]
    rows += [
        (f"task {t['id']}", t["state"], t.get("worker_id", ""), (t.get("trace") or "").strip()[-2000:])
        for t in body.get("tasks", [])
    ]
    print_table(f"{name} ({body.get('type')})", ["", "STATE", "WORKER", "TRACE"], rows)


def _state_command(command: str, help_text: str) -> None:
    @connect.command(command, help=help_text)
    @click.argument("name")
    @url_option
    @handle_errors
    def run(name: str, url: str | None, timeout: float) -> None:
        _call(url, timeout, "PUT", f"/connectors/{_seg(name)}/{command}")
        click.echo(f"{command}: {name}")


_state_command("pause", "Pause NAME's tasks.")
_state_command("resume", "Resume NAME (paused or stopped).")
_state_command("stop", "Stop NAME (its offsets may then be altered or reset).")


@connect.command("restart")
@click.argument("name")
@click.option("--task", "task_id", type=int, default=None, help="Restart only this task.")
@click.option("--include-tasks", is_flag=True, help="Restart the tasks too.")
@click.option("--only-failed", is_flag=True, help="Restart only what FAILED.")
@url_option
@handle_errors
def restart(
    name: str, task_id: int | None, include_tasks: bool, only_failed: bool, url: str | None, timeout: float
) -> None:
    """Restart NAME, its tasks, or one task."""
    if task_id is not None:
        _call(url, timeout, "POST", f"/connectors/{_seg(name)}/tasks/{task_id}/restart")
    else:
        _call(
            url,
            timeout,
            "POST",
            f"/connectors/{_seg(name)}/restart",
            params={"includeTasks": str(include_tasks).lower(), "onlyFailed": str(only_failed).lower()},
        )
    click.echo(f"restart requested: {name}" + (f" task {task_id}" if task_id is not None else ""))


@connect.command("offsets")
@click.argument("name")
@click.option("--reset", is_flag=True, help="Forget every offset (the connector must be stopped).")
@click.option(
    "--set",
    "set_file",
    default=None,
    metavar="FILE",
    help='Alter offsets from FILE ({"offsets": [{partition, offset}]}; connector stopped).',
)
@url_option
@handle_errors
def offsets(name: str, reset: bool, set_file: str | None, url: str | None, timeout: float) -> None:
    """Show NAME's offsets, or alter (--set) or reset (--reset) them while it is stopped."""
    path = f"/connectors/{_seg(name)}/offsets"
    if reset:
        print_json(_call(url, timeout, "DELETE", path))
    elif set_file is not None:
        print_json(_call(url, timeout, "PATCH", path, json=_read_config(set_file)))
    else:
        print_json(_call(url, timeout, "GET", path))


@connect.command("delete")
@click.argument("name")
@url_option
@handle_errors
def delete(name: str, url: str | None, timeout: float) -> None:
    """Delete NAME (its tasks stop)."""
    _call(url, timeout, "DELETE", f"/connectors/{_seg(name)}")
    click.echo(f"deleted: {name}")


@connect.command("plugins")
@click.argument("plugin", required=False)
@output_option
@url_option
@handle_errors
def plugins(plugin: str | None, output: str, url: str | None, timeout: float) -> None:
    """List the installed connector types, or PLUGIN's settings."""
    if plugin is None:
        items = _call(url, timeout, "GET", "/connector-plugins")
        if output == "json":
            print_json(items)
            return
        print_table(
            None, ["CLASS", "TYPE", "VERSION"], [(p["class"], p["type"], p["version"]) for p in items]
        )
        return
    keys = _call(url, timeout, "GET", f"/connector-plugins/{_seg(plugin)}/config")
    if output == "json":
        print_json(keys)
        return
    print_table(
        plugin,
        ["SETTING", "TYPE", "DEFAULT", "REQUIRED", "DOCUMENTATION"],
        [(k["name"], k["type"], k["default_value"], k["required"], k["documentation"]) for k in keys],
    )
