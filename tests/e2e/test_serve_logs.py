"""What a person reads on stderr when starting brokers: real ``tidelog serve`` processes.

A new topic is not "recovered after an unclean shutdown"; Alembic's plugin lines are gone; "ready"
is logged once, after start-up, when the port accepts connections; and a start that cannot succeed
(the port taken, the data directory used by another broker) is one line and exit status 3, not a
traceback. A SIGKILLed broker still reports its real recovery on the next start.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.broker_process import BrokerProcess, free_port

pytestmark = pytest.mark.e2e

_SERVE = "import sys; from tidelog.cli import main; sys.argv[0] = 'tidelog'; main()"


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDELOG_")}
    return subprocess.run([sys.executable, "-c", _SERVE, "serve", "--host", "127.0.0.1", *args],
                          capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)


def test_a_normal_start_reads_cleanly(broker_factory: Callable[..., BrokerProcess]) -> None:
    broker = broker_factory("broker")
    with broker.client() as client:
        assert client.post("/v1/topics", json={"name": "fresh", "partitions": 3}).status_code == 201
    broker.stop()
    log = broker.log_text()
    assert "unclean" not in log, log
    assert "alembic.runtime.plugins" not in log and "setup plugin" not in log, log
    lines = log.splitlines()
    ready = [i for i, line in enumerate(lines) if " ready on http://127.0.0.1:" in line]
    assert len(ready) == 1, log
    started = next(i for i, line in enumerate(lines) if "broker 0 started" in line)
    assert started < ready[0], log
    assert "Traceback" not in log


def test_a_crash_is_still_reported_as_a_recovery(broker_factory: Callable[..., BrokerProcess]) -> None:
    broker = broker_factory("broker")
    with broker.client() as client:
        client.post("/v1/topics", json={"name": "t", "partitions": 1}).raise_for_status()
        client.post("/v1/topics/t/records", json={"records": [{"value": 1}]}).raise_for_status()
    broker.restart(kill=True)
    assert "recovered" in broker.log_text() and "unclean shutdown" in broker.log_text()


def test_a_taken_port_is_one_line(broker_factory: Callable[..., BrokerProcess], tmp_path: Path) -> None:
    broker = broker_factory("broker")
    refused = _serve("--port", str(broker.port), "--data-dir", str(tmp_path / "other"))
    assert refused.returncode == 3, refused
    assert refused.stderr.strip().splitlines() == [
        f"tidelog serve: cannot listen on 127.0.0.1:{broker.port}: the port is already in use"
    ], refused.stderr
    assert httpx.get(f"{broker.url}/readyz").status_code == 200  # the running broker is untouched


def test_a_data_directory_in_use_is_one_line(broker_factory: Callable[..., BrokerProcess]) -> None:
    broker = broker_factory("broker")
    with broker.client() as client:
        client.post("/v1/topics", json={"name": "t", "partitions": 1}).raise_for_status()
    refused = _serve("--port", str(free_port()), "--data-dir", str(broker.data_dir))
    assert refused.returncode == 3, refused
    assert refused.stderr.strip().splitlines() == [
        f"tidelog serve: the data directory {broker.data_dir} is in use by another broker (pid {broker.pid})"
    ], refused.stderr
    broker.stop()  # the lock dies with its process: the same directory starts again
    broker.start()
