"""A real broker process and a worker: file connectors, transforms and the three failure strategies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.broker_process import BrokerProcess
from tests.connect.conftest import await_for, read_topic

pytestmark = pytest.mark.e2e


def _create(url: str, name: str, config: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(f"{url}/v1/connectors", json={"name": name, "config": config}, timeout=10)
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _status(url: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{url}/v1/connectors/{name}/status", timeout=10).json()
    return body


def _task_state(url: str, name: str) -> str | None:
    tasks = _status(url, name)["tasks"]
    return str(tasks[0]["state"]) if tasks else None


async def test_file_source_to_file_sink_through_transforms(
    broker_process: BrokerProcess, worker: Any, tmp_path: Path
) -> None:
    url = broker_process.url
    source_file, sink_file = tmp_path / "in.ndjson", tmp_path / "out.ndjson"
    source_file.write_text("".join(json.dumps({"id": i, "card": f"4111-{i}"}) + "\n" for i in range(5)))
    _create(
        url,
        "src",
        {
            "connector.class": "file-source",
            "file": str(source_file),
            "topic": "orders-raw",
            "format": "ndjson",
            "transforms": "route,mask",
            "transforms.route.type": "org.apache.kafka.connect.transforms.RegexRouter",
            "transforms.route.regex": "(.*)-raw",
            "transforms.route.replacement": "$1",
            "transforms.mask.type": "MaskField$Value",
            "transforms.mask.fields": "card",
        },
    )
    _create(
        url,
        "sink",
        {
            "connector.class": "file-sink",
            "file": str(sink_file),
            "topics": "orders",
            "format": "ndjson",
            "transforms": "hoist",
            "transforms.hoist.type": "HoistField$Value",
            "transforms.hoist.field": "order",
        },
    )

    def sunk() -> list[Any]:
        if not sink_file.exists():
            return []
        lines = [json.loads(line) for line in sink_file.read_text().splitlines()]
        return lines if len(lines) >= 5 else []

    lines = await await_for(sunk, 60)
    assert lines == [{"order": {"id": i, "card": ""}} for i in range(5)]
    assert _task_state(url, "src") == "RUNNING"
    assert _status(url, "src")["tasks"][0]["worker_id"] == "test-worker"

    def stored() -> Any:
        offsets = httpx.get(f"{url}/v1/connectors/src/offsets", timeout=10).json()["offsets"]
        return offsets and offsets[0]["offset"]["position"] == source_file.stat().st_size and offsets

    offsets = await await_for(stored, 30)
    assert offsets == [
        {"partition": {"filename": str(source_file)}, "offset": {"position": source_file.stat().st_size}}
    ]
    sink_offsets = httpx.get(f"{url}/v1/connectors/sink/offsets", timeout=10).json()["offsets"]
    assert sink_offsets == [
        {"partition": {"kafka_topic": "orders", "kafka_partition": 0}, "offset": {"kafka_offset": 5}}
    ]
    assert httpx.get(f"{url}/v1/connectors/src/topics", timeout=10).json() == {"src": {"topics": ["orders"]}}


async def test_config_providers_resolve_on_the_worker_and_the_catalog_keeps_the_reference(
    broker_process: BrokerProcess, worker: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = broker_process.url
    source_file = tmp_path / "in.txt"
    source_file.write_text("one\ntwo\n")
    secrets = tmp_path / "connect.properties"
    secrets.write_text("topic=provided\n")
    monkeypatch.setenv("CONNECT_TEST_FILE", str(source_file))
    config = {
        "connector.class": "file-source",
        "file": "${env:CONNECT_TEST_FILE}",
        "topic": f"${{file:{secrets}:topic}}",
    }
    _create(url, "prov", config)
    shown = httpx.get(f"{url}/v1/connectors/prov/config", timeout=10).json()
    assert shown["file"] == "${env:CONNECT_TEST_FILE}"
    records = await await_for(
        lambda: len(read_topic(url, "provided")) == 2 and read_topic(url, "provided"), 60
    )
    assert [r["value"] for r in records] == ["one", "two"]
