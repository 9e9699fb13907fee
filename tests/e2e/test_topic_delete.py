"""Deleted data never comes back (issue 11, item 3), against a real broker process.

A topic with many partitions is deleted and the broker SIGKILLed at once (at several delays, so the
kill lands inside the deletion as well as after it); after the restart the re-created topic is
empty. A crash between the catalog's delete and the directories' removal, a tombstone left behind
and a directory of another incarnation of the topic are all removed at start, never opened.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from storage.layout import read_topic_id, write_topic_id
from tests.broker_process import BrokerProcess

pytestmark = pytest.mark.e2e

PARTITIONS = 64
KILL_DELAYS_S = (0.0, 0.005, 0.02, 0.06, 0.15)


def _create_and_fill(http: httpx.Client, name: str, partitions: int = PARTITIONS) -> dict[str, Any]:
    created = http.post("/v1/topics", json={"name": name, "partitions": partitions})
    assert created.status_code == 201, created.text
    records = [{"key": f"k{i}", "value": f"old-{i}"} for i in range(partitions * 4)]
    answer = http.post(f"/v1/topics/{name}/records", params={"acks": "all"}, json={"records": records})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = created.json()
    return body


def _assert_empty(http: httpx.Client, name: str, partitions: int = PARTITIONS) -> None:
    described = http.get(f"/v1/topics/{name}").json()
    for p in described["partitions"]:
        assert p["log_end_offset"] == 0 and p["high_watermark"] == 0, (name, p)
    for p in range(partitions):
        answer = http.get(f"/v1/topics/{name}/partitions/{p}/records", params={"offset": 0, "max_wait_ms": 0})
        assert answer.status_code == 200 and answer.json()["records"] == [], answer.text


def _partition_dirs(data_dir: Path, name: str) -> list[Path]:
    return sorted(p for p in data_dir.iterdir() if p.is_dir() and p.name.rsplit("-", 1)[0] == name)


def test_sigkill_right_after_delete_then_recreate_is_empty(broker_process: BrokerProcess) -> None:
    for attempt, delay in enumerate(KILL_DELAYS_S):
        name = f"many{attempt}"
        with broker_process.client(timeout=60) as http:
            _create_and_fill(http, name)

        def delete(topic: str = name) -> None:
            try:
                with broker_process.client(timeout=60) as http:
                    http.delete(f"/v1/topics/{topic}")
            except httpx.HTTPError:
                pass  # the broker died under the request

        thread = threading.Thread(target=delete)
        thread.start()
        time.sleep(delay)
        broker_process.kill()
        thread.join(60)
        broker_process.start()
        with broker_process.client(timeout=60) as http:
            exists = http.get(f"/v1/topics/{name}").status_code == 200
            if exists:  # killed before the catalog's delete committed: delete it now
                assert http.delete(f"/v1/topics/{name}").status_code == 204
            created = http.post("/v1/topics", json={"name": name, "partitions": PARTITIONS})
            assert created.status_code == 201, created.text
            _assert_empty(http, name)


def test_directories_the_catalog_does_not_know_are_removed_at_start(broker_process: BrokerProcess) -> None:
    data_dir = broker_process.data_dir
    with broker_process.client(timeout=60) as http:
        _create_and_fill(http, "forgotten", 8)
        kept = _create_and_fill(http, "kept", 2)
    broker_process.stop()
    # A crash after the catalog's delete committed, before any directory was touched:
    with sqlite3.connect(data_dir / "catalog.db") as db:
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("DELETE FROM topics WHERE name = 'forgotten'")
    # a tombstone a crash left behind, and a directory of another incarnation of "kept"
    tombstone = data_dir / "forgotten-0.0123abcd-delete"
    shutil.copytree(data_dir / "forgotten-0", tombstone)
    stale = data_dir / "kept-1"
    write_topic_id(stale, "00000000-0000-4000-8000-000000000000")
    broker_process.start()
    with broker_process.client(timeout=60) as http:
        assert http.get("/v1/topics/forgotten").status_code == 404
        assert http.post("/v1/topics", json={"name": "forgotten", "partitions": 8}).status_code == 201
        _assert_empty(http, "forgotten", 8)
        described = http.get("/v1/topics/kept").json()
        assert described["topic_id"] == kept["topic_id"]
        assert described["partitions"][0]["log_end_offset"] > 0  # the matching directory is kept
        assert described["partitions"][1]["log_end_offset"] == 0  # the stale one was never opened
    deadline = time.monotonic() + 20
    while tombstone.exists() or any(p.name.endswith("-delete") for p in data_dir.iterdir()):
        assert time.monotonic() < deadline, sorted(p.name for p in data_dir.iterdir())
        time.sleep(0.1)
    assert read_topic_id(data_dir / "kept-1") == kept["topic_id"]


def test_every_partition_directory_carries_the_topic_id(broker_process: BrokerProcess) -> None:
    with broker_process.client(timeout=60) as http:
        created = _create_and_fill(http, "ids", 3)
        topic_id = created["topic_id"]
        assert http.get("/v1/topics/ids").json()["topic_id"] == topic_id
        dirs = _partition_dirs(broker_process.data_dir, "ids")
        assert len(dirs) == 3 and all(read_topic_id(d) == topic_id for d in dirs)
        assert http.delete("/v1/topics/ids").status_code == 204
        assert _partition_dirs(broker_process.data_dir, "ids") == []  # renamed away before the answer
        again = http.post("/v1/topics", json={"name": "ids", "partitions": 3}).json()
        assert again["topic_id"] != topic_id
        dirs = _partition_dirs(broker_process.data_dir, "ids")
        assert len(dirs) == 3 and all(read_topic_id(d) == again["topic_id"] for d in dirs)
        _assert_empty(http, "ids", 3)
