"""``tidelog serve --connect`` (one worker in the broker), the SSE stream of status changes, and the
``tidelog connect`` commands, against real broker processes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from tests.broker_process import BrokerProcess
from tests.connect.conftest import read_topic, wait_for
from tidelog.cli import main

pytestmark = pytest.mark.e2e


def test_serve_connect_runs_a_file_source_and_streams_status_changes(
    broker_factory: Callable[..., BrokerProcess], tmp_path: Path
) -> None:
    broker = broker_factory(connect="true")
    source = tmp_path / "in.txt"
    source.write_text("a\nb\n")
    events: list[dict[str, Any]] = []
    with (
        httpx.Client(base_url=broker.url, timeout=30) as http,
        http.stream("GET", "/v1/connect/events") as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        answer = http.post(
            "/v1/connectors",
            json={
                "name": "lines",
                "config": {"connector.class": "file-source", "file": str(source), "topic": "lines"},
            },
        )
        assert answer.status_code == 201, answer.text
        deadline = time.monotonic() + 60
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: ") :]))
                tasks = events[-1]["tasks"]
                if tasks and tasks[0]["state"] == "RUNNING":
                    break
            assert time.monotonic() < deadline, events
    assert events[0]["name"] == "lines"
    assert events[-1]["tasks"][0]["worker_id"] == "broker-0"
    assert events[-1]["connector"]["state"] == "RUNNING"
    values = wait_for(lambda: [r["value"] for r in read_topic(broker.url, "lines")] == ["a", "b"], 60)
    assert values


def test_connect_commands(broker_process: BrokerProcess, tmp_path: Path) -> None:
    runner = CliRunner()
    url = ["--url", broker_process.url]
    config = tmp_path / "lines.properties"
    config.write_text(
        f"name=lines\nconnector.class=file-source\nfile={tmp_path / 'in.txt'}\ntopic=lines\n"
        "connection.password=s3cret\n"
    )

    def run(*args: str) -> str:
        result = runner.invoke(main, ["connect", *args, *url])
        assert result.exit_code == 0, result.output
        return result.output

    created = json.loads(run("create", str(config), "--initial-state", "PAUSED"))
    assert created["config"]["connection.password"] == "[hidden]"
    assert "lines" in run("list")
    listed = json.loads(run("list", "-o", "json"))
    assert listed["lines"]["status"]["connector"]["state"] == "PAUSED"
    assert json.loads(run("status", "lines", "-o", "json"))["connector"]["state"] == "PAUSED"
    run("resume", "lines")
    run("stop", "lines")
    offsets = tmp_path / "offsets.json"
    offsets.write_text(json.dumps({"offsets": [{"partition": {"filename": "f"}, "offset": {"position": 3}}]}))
    assert "altered" in run("offsets", "lines", "--set", str(offsets))
    assert json.loads(run("offsets", "lines"))["offsets"][0]["offset"] == {"position": 3}
    assert "reset" in run("offsets", "lines", "--reset")
    run("restart", "lines")
    assert "file-sink" in run("plugins")
    assert "errors.tolerance" in run("plugins", "file-sink")
    run("delete", "lines")
    missing = runner.invoke(main, ["connect", "status", "lines", *url])
    assert missing.exit_code == 1 and "40430" in missing.output
