"""Kafka's ``connect_distributed_test.test_bounce``, ported: worker restarts under verifiable tasks.

Three worker processes run a ``verifiable-source`` (two tasks, each emitting sequence numbers) and a
``verifiable-sink`` (two tasks). Three rounds restart one worker each: SIGTERM (clean) or SIGKILL. At
the end, per source task, the topic holds every sequence number from 0 to its last one (no gap,
ever), with no duplicate after clean restarts; the sink received every one of them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.broker_process import BrokerProcess
from tests.connect.conftest import read_topic, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

_CONNECT = "import sys; from tidelog.cli import main; sys.argv[0] = 'tidelog'; main()"


class WorkerProcess:
    def __init__(self, broker_url: str, worker_id: str, log_dir: Path) -> None:
        self.broker_url = broker_url
        self.worker_id = worker_id
        self.log_path = log_dir / f"worker-{worker_id}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIDELOG_")}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _CONNECT,
                    "connect",
                    "--broker",
                    self.broker_url,
                    "--worker-id",
                    self.worker_id,
                    "--session-timeout-ms",
                    "10000",
                    "--log-level",
                    "warning",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        return self

    def stop(self, *, kill: bool) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        self.process.wait(timeout=60)
        self.process = None


def _status(url: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{url}/v1/connectors/{name}/status", timeout=10).json()
    return body


def _all_running(url: str, *names: str) -> bool:
    for name in names:
        tasks = _status(url, name)["tasks"]
        if not tasks or any(t["state"] != "RUNNING" for t in tasks):
            return False
    return True


@pytest.mark.parametrize("clean", [True, False], ids=["sigterm", "sigkill"])
def test_bounce(broker_process: BrokerProcess, tmp_path: Path, clean: bool) -> None:
    url = broker_process.url
    workers = [WorkerProcess(url, f"w{i}", tmp_path).start() for i in range(3)]
    try:
        httpx.post(f"{url}/v1/topics", json={"name": "bounce", "partitions": 2}, timeout=10)
        for name, config in (
            (
                "source",
                {
                    "connector.class": "verifiable-source",
                    "topic": "bounce",
                    "tasks.max": "2",
                    "throughput": "40",
                },
            ),
            (
                "sink",
                {
                    "connector.class": "verifiable-sink",
                    "topics": "bounce",
                    "tasks.max": "2",
                    "file": str(tmp_path / "sink"),
                },
            ),
        ):
            answer = httpx.post(f"{url}/v1/connectors", json={"name": name, "config": config}, timeout=10)
            assert answer.status_code == 201, answer.text
        wait_for(lambda: _all_running(url, "source", "sink"), 90)
        deadline = time.monotonic() + 240
        for round_number in range(3):
            time.sleep(3)
            victim = workers[round_number % len(workers)]
            victim.stop(kill=not clean)
            time.sleep(2)
            victim.start()
            wait_for(lambda: _all_running(url, "source", "sink"), 60)
            assert time.monotonic() < deadline
        time.sleep(3)
        assert httpx.put(f"{url}/v1/connectors/source/stop", timeout=10).status_code == 202
        wait_for(lambda: _status(url, "source")["tasks"] == [], 30)
        time.sleep(3)  # the stopped tasks' last records reach the topic and the sink

        produced: dict[int, list[int]] = {0: [], 1: []}
        for record in read_topic(url, "bounce", partitions=2):
            produced[record["value"]["task"]].append(record["value"]["seqno"])

        def sunk_everything() -> bool:
            seen: set[tuple[int, int]] = set()
            for path in tmp_path.glob("sink.*"):
                for line in path.read_text().splitlines():
                    value = json.loads(line)["value"]
                    seen.add((value["task"], value["seqno"]))
            return all((t, s) in seen for t, seqnos in produced.items() for s in seqnos)

        for task, seqnos in produced.items():
            assert seqnos, f"task {task} produced nothing"
            distinct = sorted(set(seqnos))
            assert distinct == list(range(distinct[-1] + 1)), f"task {task}: a sequence number is missing"
            if clean:
                assert len(seqnos) == len(distinct), f"task {task}: duplicates after clean restarts"
        wait_for(sunk_everything, 60)
    finally:
        for worker in workers:
            if worker.process is not None:
                worker.stop(kill=True)


def test_a_killed_workers_tasks_move_within_its_lease(broker_process: BrokerProcess, tmp_path: Path) -> None:
    url = broker_process.url
    workers = [WorkerProcess(url, f"w{i}", tmp_path).start() for i in range(2)]
    try:
        config = {
            "connector.class": "verifiable-source",
            "topic": "moves",
            "tasks.max": "2",
            "throughput": "5",
        }
        answer = httpx.post(f"{url}/v1/connectors", json={"name": "m", "config": config}, timeout=10)
        assert answer.status_code == 201, answer.text
        wait_for(
            lambda: _all_running(url, "m") and len({t["worker_id"] for t in _status(url, "m")["tasks"]}) == 2,
            90,
        )
        workers[0].stop(kill=True)
        killed_at = time.monotonic()
        wait_for(
            lambda: all(
                t["state"] == "RUNNING" and t["worker_id"] == "w1" for t in _status(url, "m")["tasks"]
            ),
            60,
        )
        moved_after = time.monotonic() - killed_at
        # the lease is 10 s; a heartbeat and the task's start add a little (more on a loaded machine)
        assert moved_after < 20, moved_after
    finally:
        for worker in workers:
            if worker.process is not None:
                worker.stop(kill=True)
