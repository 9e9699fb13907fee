"""The command line speaks one language: a short flag means the same long option in every command,
``serve --help`` names the ``TIDELOG_*`` variables, switches are switches, and ``bench produce``
defaults to the acks of ``produce``."""

from __future__ import annotations

from collections.abc import Iterator

import click
from click.testing import CliRunner

from app.cli import serve
from tidelog.cli import main


def _commands(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        context = click.Context(command)
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            assert sub is not None
            yield from _commands(sub, f"{path} {name}")


def _longest(option: click.Option) -> str:
    return max(option.opts, key=len)


def test_no_short_flag_has_two_meanings() -> None:
    meanings: dict[str, dict[str, list[str]]] = {}
    commands = list(_commands(main, "tidelog"))
    assert len(commands) > 10  # the walk reaches the subcommands (and the broker's serve)
    for path, command in commands:
        for param in command.params:
            if not isinstance(param, click.Option):
                continue
            for opt in [*param.opts, *param.secondary_opts]:
                if len(opt) == 2 and opt.startswith("-"):
                    meanings.setdefault(opt, {}).setdefault(_longest(param), []).append(path)
    clashes = {short: longs for short, longs in meanings.items() if len(longs) > 1}
    assert not clashes, {short: sorted(longs) for short, longs in clashes.items()}


def test_cluster_is_a_switch_and_the_value_form_still_works() -> None:
    assert serve.make_context("serve", ["--cluster"]).params["cluster"] is True
    assert serve.make_context("serve", ["--cluster", "--port", "9"]).params["cluster"] is True
    assert serve.make_context("serve", ["--cluster", "true"]).params["cluster"] is True
    assert serve.make_context("serve", ["--cluster", "false"]).params["cluster"] is False
    assert serve.make_context("serve", []).params["cluster"] is None  # the variable or the default


def test_serve_help_names_the_environment_variables() -> None:
    text = " ".join(CliRunner().invoke(main, ["serve", "--help"]).output.split())
    assert "TIDELOG_DATA_DIR" in text and "environment variable" in text


def test_bench_produce_and_produce_default_to_the_same_acks() -> None:
    context = click.Context(main)
    produce = main.get_command(context, "produce")
    bench = main.get_command(context, "bench")
    assert produce is not None and isinstance(bench, click.Group)
    bench_produce = bench.get_command(context, "produce")
    assert bench_produce is not None

    def acks(command: click.Command) -> object:
        return next(p.default for p in command.params if p.name == "acks")

    assert acks(produce) == acks(bench_produce) == "all"
