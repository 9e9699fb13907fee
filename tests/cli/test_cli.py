"""The ``tidelog`` command against a real broker process: output, exit codes, readable errors."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from tests.broker_process import BrokerProcess, free_port
from tidelog import Client, partition_for_key
from tidelog.cli import main

pytestmark = pytest.mark.e2e


def run(broker: BrokerProcess, *args: str, input: str | None = None) -> Result:
    result = CliRunner().invoke(main, [*args, "--url", broker.url], input=input, catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


def _walk(command: click.Command, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            found += _walk(sub, (*path, name))
    return found


def test_every_command_and_option_has_help() -> None:
    commands = _walk(main, ())
    names = {" ".join(path) for path, _ in commands}
    for expected in (
        "topics create",
        "topics list",
        "topics describe",
        "topics alter",
        "topics delete",
        "produce",
        "consume",
        "groups list",
        "groups describe",
        "groups reset-offsets",
        "groups delete",
        "bench produce",
        "bench consume",
        "cluster info",
        "serve",
        "migrate",
        "openapi",
    ):
        assert expected in names
    runner = CliRunner()
    for path, command in commands:
        assert (command.help or "").strip(), f"`tidelog {' '.join(path)}` has no help text"
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and param.name not in ("help", "version"):
                assert (param.help or "").strip() or path[:1] in (("serve",), ("migrate",), ("bench",)), (
                    f"`tidelog {' '.join(path)} {param.opts[0]}` has no help"
                )
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, path
        assert "``" not in result.output, f"`tidelog {' '.join(path)} --help` shows reST double backticks"


def test_topics_commands(broker: BrokerProcess, topic_name: str) -> None:
    created = run(broker, "topics", "create", topic_name, "--partitions", "2", "-c", "retention.ms=3600000")
    assert created.exit_code == 0 and f"Created topic {topic_name} with 2 partitions" in created.stdout

    again = run(broker, "topics", "create", topic_name)
    assert again.exit_code == 1
    assert "Error:" in again.stderr and "40901" in again.stderr
    assert run(broker, "topics", "create", topic_name, "--if-not-exists").exit_code == 0

    listed = run(broker, "topics", "list", "-o", "json")
    entry = next(t for t in json.loads(listed.stdout) if t["name"] == topic_name)
    assert entry["partition_count"] == 2
    assert topic_name in run(broker, "topics", "list").stdout

    table = run(broker, "topics", "describe", topic_name).stdout
    assert "HIGH-WATERMARK" in table and "retention.ms" in table and "3600000" in table

    altered = run(broker, "topics", "alter", topic_name, "--partitions", "3", "-c", "retention.ms=1000",
                  "-o", "json")
    described = json.loads(altered.stdout)
    assert described["partition_count"] == 3 and described["configs"]["retention.ms"] == 1000
    reset = run(broker, "topics", "alter", topic_name, "--delete-config", "retention.ms", "-o", "json")
    assert json.loads(reset.stdout)["configs"]["retention.ms"] != 1000
    lower = run(broker, "topics", "alter", topic_name, "--partitions", "1")
    assert lower.exit_code == 1 and "42203" in lower.stderr
    bad_config = run(broker, "topics", "alter", topic_name, "-c", "retention.ms=-5")
    assert bad_config.exit_code == 1 and "42201" in bad_config.stderr
    assert run(broker, "topics", "alter", topic_name).exit_code == 2  # nothing to change: usage error

    assert run(broker, "topics", "delete", topic_name).stdout.startswith(f"Deleted topic {topic_name}")
    missing = run(broker, "topics", "delete", topic_name)
    assert missing.exit_code == 1 and "40401" in missing.stderr
    assert run(broker, "topics", "delete", topic_name, "--if-exists").exit_code == 0


def test_produce_and_consume(broker: BrokerProcess, topic_name: str, tmp_path: Path) -> None:
    assert run(broker, "topics", "create", topic_name, "--partitions", "3").exit_code == 0
    lines = "".join(f'user-{i}:{{"n": {i}}}\n' for i in range(30))
    produced = run(broker, "produce", topic_name, "-K", ":", input=lines)
    assert produced.exit_code == 0, produced.stderr
    assert f"Produced 30 of 30 records to {topic_name}" in produced.stderr

    values = run(broker, "consume", topic_name)
    assert values.exit_code == 0
    assert sorted(json.loads(line)["n"] for line in values.stdout.splitlines()) == list(range(30))
    assert "Processed a total of 30 messages" in values.stderr

    ndjson = run(broker, "consume", topic_name, "--format", "ndjson", "-p", "1")
    records = [json.loads(line) for line in ndjson.stdout.splitlines()]
    assert records and all(r["partition"] == 1 and r["topic"] == topic_name for r in records)
    assert all(partition_for_key(r["key"].encode(), 3) == 1 for r in records)

    keyed = run(broker, "consume", topic_name, "-p", "1", "--offset", "-2", "--print-key")
    assert len(keyed.stdout.splitlines()) == 2 and keyed.stdout.startswith("user-")
    assert len(run(broker, "consume", topic_name, "-n", "5").stdout.splitlines()) == 5
    pretty = run(broker, "consume", topic_name, "--format", "json", "-n", "1").stdout
    assert json.loads(pretty)["timestamp_type"] == "CreateTime"

    # A file of plain text, with a header, to one partition.
    path = tmp_path / "lines.txt"
    path.write_text("alpha\n\nbeta\n")
    from_file = run(
        broker,
        "produce",
        topic_name,
        "--file",
        str(path),
        "--value-format",
        "string",
        "-p",
        "2",
        "-H",
        "src=file",
    )
    assert from_file.exit_code == 0 and "Produced 2 of 2" in from_file.stderr
    tail = run(broker, "consume", topic_name, "-p", "2", "--offset", "-2", "--format", "ndjson").stdout
    rows = [json.loads(line) for line in tail.splitlines()]
    assert [r["value"] for r in rows] == ["alpha", "beta"]
    assert rows[0]["headers"] == [{"key": "src", "value": "file"}]


def test_produce_reports_bad_lines_and_refused_records(broker: BrokerProcess, topic_name: str) -> None:
    assert run(broker, "topics", "create", topic_name, "-c", "max.message.bytes=200").exit_code == 0
    bad = run(broker, "produce", topic_name, input='{"ok": 1}\nnot json\n')
    assert bad.exit_code == 1 and "line 2" in bad.stderr and "--value-format string" in bad.stderr
    refused = run(broker, "produce", topic_name, "--value-format", "string", input="x" * 500 + "\nsmall\n")
    assert refused.exit_code == 1 and "41301" in refused.stderr
    assert "Produced 1 of 2" in refused.stderr
    missing = run(broker, "produce", "no-such-topic", input="1\n")
    assert missing.exit_code == 1 and "40401" in missing.stderr


def test_progress_bar_shows_records_per_second(
    broker: BrokerProcess, topic_name: str, tmp_path: Path
) -> None:
    assert run(broker, "topics", "create", topic_name).exit_code == 0
    path = tmp_path / "big.ndjson"
    path.write_text("".join(f"{i}\n" for i in range(20_000)))
    result = run(broker, "produce", topic_name, "--file", str(path), "--progress")
    assert result.exit_code == 0, result.stderr
    assert "records/s" in result.stderr and "Produced 20000 of 20000" in result.stderr


def test_consume_in_a_group_commits_what_it_printed_and_groups_commands(
    broker: BrokerProcess, topic_name: str
) -> None:
    group = f"g-{topic_name}"
    assert run(broker, "topics", "create", topic_name, "--partitions", "2").exit_code == 0
    assert run(broker, "produce", topic_name, input="".join(f"{i}\n" for i in range(10))).exit_code == 0
    first = run(broker, "consume", topic_name, "--group", group, "--from-beginning", "-n", "4")
    assert len(first.stdout.splitlines()) == 4
    rest = run(broker, "consume", topic_name, "--group", group, "--idle-timeout-ms", "1500")
    assert len(rest.stdout.splitlines()) == 6
    assert sorted(int(v) for v in first.stdout.split() + rest.stdout.split()) == list(range(10))

    described = run(broker, "groups", "describe", group)
    assert described.exit_code == 0 and "LAG" in described.stdout and "Empty" in described.stdout
    as_json = json.loads(run(broker, "groups", "describe", group, "-o", "json").stdout)
    assert sum(o["offset"] for o in as_json["offsets"]["offsets"]) == 10
    assert all(o["lag"] == 0 for o in as_json["offsets"]["offsets"])
    assert group in run(broker, "groups", "list").stdout

    plan = run(broker, "groups", "reset-offsets", group, "-t", topic_name, "--to-earliest")
    assert plan.exit_code == 0 and "Dry run" in plan.stdout
    unchanged = json.loads(run(broker, "groups", "describe", group, "-o", "json").stdout)
    assert sum(o["offset"] for o in unchanged["offsets"]["offsets"]) == 10
    done = run(broker, "groups", "reset-offsets", group, "-t", topic_name, "--to-offset", "1", "--execute")
    assert done.exit_code == 0 and "Reset the offsets" in done.stdout
    after = json.loads(run(broker, "groups", "describe", group, "-o", "json").stdout)
    # Like Kafka, an offset past a partition's end is clamped to it.
    assert all(o["offset"] == min(1, o["high_watermark"]) for o in after["offsets"]["offsets"])
    two = run(broker, "groups", "reset-offsets", group, "-t", topic_name, "--to-earliest", "--shift-by", "1")
    assert two.exit_code == 2

    assert run(broker, "groups", "delete", group).exit_code == 0
    gone = run(broker, "groups", "describe", group)
    assert gone.exit_code == 1 and "40404" in gone.stderr


def _consume_then_ctrl_c(
    broker: BrokerProcess, topic_name: str, group: str, before_ctrl_c: Callable[[], None] = lambda: None
) -> tuple[int, str, float]:
    """Run ``consume --group --follow``, wait for its 5 lines, send SIGINT: (exit code, stderr, seconds
    from SIGINT to exit). Bounds are generous (a loaded machine) but finite: a hang fails, not hangs."""
    with Client(broker.url) as client:
        client.admin.create_topic(topic_name, 1)
        client.produce(topic_name, [{"value": i} for i in range(5)], partition=0)
    env = {**os.environ, "TIDELOG_URL": broker.url}
    command = [sys.executable, "-c", "from tidelog.cli import main; main()", "consume", topic_name]
    command += ["--group", group, "--from-beginning", "--follow"]
    lines: queue.Queue[str] = queue.Queue()
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        stdout = process.stdout

        def read_lines() -> None:
            with contextlib.suppress(ValueError, OSError):  # the pipe closes under it at the end
                for line in stdout:
                    lines.put(line.strip())

        reader = threading.Thread(target=read_lines, daemon=True)
        reader.start()
        try:
            printed = [lines.get(timeout=90) for _ in range(5)]
            assert printed == [str(i) for i in range(5)]
            before_ctrl_c()
            sent = time.monotonic()
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
            took = time.monotonic() - sent
            err = process.stderr.read()
            reader.join(timeout=5)
        finally:
            if process.poll() is None:
                process.kill()
    return process.returncode, err, took


def test_ctrl_c_exits_cleanly_and_commits_what_was_printed(broker: BrokerProcess, topic_name: str) -> None:
    group = f"g-{topic_name}"
    code, err, _took = _consume_then_ctrl_c(broker, topic_name, group)
    assert code == 0, err
    assert "Traceback" not in err and "Processed a total of 5 messages" in err
    with Client(broker.url) as client:
        assert client.admin.list_group_offsets(group).offsets[0].offset == 5


def test_ctrl_c_is_bounded_when_the_broker_does_not_answer(broker: BrokerProcess, topic_name: str) -> None:
    from tidelog._cli.consume import CLOSE_TIMEOUT_S

    frozen = False

    def freeze() -> None:
        nonlocal frozen
        os.kill(broker.pid, signal.SIGSTOP)  # the broker hangs: the commit and the leave get no answer
        frozen = True

    try:
        code, err, took = _consume_then_ctrl_c(broker, topic_name, f"g-{topic_name}", freeze)
    finally:
        if frozen:
            os.kill(broker.pid, signal.SIGCONT)
    assert code == 0, err
    assert f"gave up committing and leaving the group after {CLOSE_TIMEOUT_S:g} s" in err
    assert "Traceback" not in err
    assert CLOSE_TIMEOUT_S - 1 <= took < CLOSE_TIMEOUT_S + 20, took


def test_cluster_info_and_unreachable_broker(broker: BrokerProcess) -> None:
    info = run(broker, "cluster", "info")
    assert info.exit_code == 0 and broker.url in info.stdout
    assert json.loads(run(broker, "cluster", "info", "-o", "json").stdout)["broker_id"] == 0
    url = f"http://127.0.0.1:{free_port()}"
    down = CliRunner().invoke(main, ["topics", "list"], env={"TIDELOG_URL": url})
    assert down.exit_code == 1
    assert f"cannot connect to the broker at {url}" in down.stderr and "Traceback" not in down.stderr


def test_bench_produce_and_consume(broker: BrokerProcess, topic_name: str) -> None:
    produced = run(broker, "bench", "produce", topic_name, "--num-records", "3000", "--partitions", "2",
                   "-o", "json")
    assert produced.exit_code == 0, produced.stderr
    result = json.loads(produced.stdout)
    assert result["records"] == 3000 and result["errors"] == 0 and result["records_per_second"] > 0
    assert result["latency_ms"]["p50"] <= result["latency_ms"]["p99"] <= result["latency_ms"]["max"]
    consumed = json.loads(run(broker, "bench", "consume", topic_name, "-o", "json").stdout)
    assert consumed["records"] == 3000 and consumed["mb_per_second"] > 0
    text = run(broker, "bench", "consume", topic_name, "--num-records", "100").stdout
    assert text.startswith("100 records read") and "99th" in text


def test_groups_describe_shows_members_and_uncommitted_partitions(
    broker: BrokerProcess, topic_name: str
) -> None:
    group = f"g-{topic_name}"
    with Client(broker.url) as client:
        client.admin.create_topic(topic_name, 2)
        client.produce(topic_name, [{"value": i} for i in range(4)], partition=0)
        with client.consumer(group, [topic_name], auto_offset_reset="earliest") as consumer:
            records = consumer.poll(2000)
            assert records
            consumer.commit()
            table = run(broker, "groups", "describe", group).stdout
            member = consumer.member_id
    assert member is not None and member in table and "Stable" in table
    rows = [line.split() for line in table.splitlines() if line.split()[:1] == [topic_name]]
    # Cells are separated by │: topic, partition, current offset, log end, lag, consumer id.
    by_partition = {row[2]: row[::2] for row in rows}
    assert by_partition["0"][2:5] == [str(len(records)), "4", str(4 - len(records))]
    assert by_partition["0"][5] == member
    assert by_partition["1"][2:] == ["-", "0", "-", member]
