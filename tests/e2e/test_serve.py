"""``tidelog serve`` as a real process: readiness, SIGTERM → clean shutdown, restart without recovery."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.broker_process import BrokerProcess

pytestmark = pytest.mark.e2e


def _produce(client: httpx.Client, topic: str, partition: int, values: list[str]) -> None:
    response = client.post(f"/v1/topics/{topic}/partitions/{partition}/records",
                           json={"records": [{"value": v} for v in values]})
    assert response.status_code == 200, response.text


def _fetch_values(client: httpx.Client, topic: str, partition: int) -> list[object]:
    response = client.get(f"/v1/topics/{topic}/partitions/{partition}/records", params={"offset": 0})
    assert response.status_code == 200, response.text
    return [record["value"] for record in response.json()["records"]]


def _section(log: str, start: int) -> str:
    """The part of a broker's log written by its ``start``-th start."""
    marker = f"--- start {start}:"
    text = log[log.index(marker):]
    following = text.find("--- start ", len(marker))
    return text if following < 0 else text[:following]


def test_serve_sigterm_then_restart_without_recovery(broker_process: BrokerProcess) -> None:
    with broker_process.client(timeout=10) as client:
        cluster = client.get("/v1/cluster").json()
        assert cluster["advertised_url"] == broker_process.url
        created = client.post("/v1/topics", json={"name": "events", "partitions": 2,
                                                  "configs": {"retention.ms": -1}})
        assert created.status_code == 201, created.text
        _produce(client, "events", 0, ["a", "b", "c"])
        _produce(client, "events", 1, ["d"])

    # SIGTERM: uvicorn drains, the lifespan closes every log, then uvicorn re-raises the signal so a
    # supervisor sees the process end by SIGTERM (exit status 143 in a shell).
    assert broker_process.stop() == -signal.SIGTERM
    for partition in (0, 1):
        assert (broker_process.data_dir / f"events-{partition}" / ".clean_shutdown").exists()
    first = _section(broker_process.log_text(), 1)
    assert "broker 0 stopped" in first

    broker_process.start()
    second = _section(broker_process.log_text(), 2)
    for partition in (0, 1):
        assert f"events-{partition} cleanly" in second
    assert "unclean shutdown" not in second  # the clean marker was used: no recovery scan
    with broker_process.client(timeout=10) as client:
        assert _fetch_values(client, "events", 0) == ["a", "b", "c"]
        assert _fetch_values(client, "events", 1) == ["d"]
        topic = client.get("/v1/topics/events").json()
        assert topic["configs"]["retention.ms"] == -1
        assert [p["high_watermark"] for p in topic["partitions"]] == [3, 1]


def test_sigkill_leaves_no_marker_and_restart_recovers(broker_process: BrokerProcess) -> None:
    """The counterpart of the test above: without a clean shutdown the log is scanned on open."""
    with broker_process.client(timeout=10) as client:
        assert client.post("/v1/topics", json={"name": "crash"}).status_code == 201
        _produce(client, "crash", 0, ["x", "y"])  # acks=all: fsynced before the answer

    broker_process.kill()
    assert not (broker_process.data_dir / "crash-0" / ".clean_shutdown").exists()
    broker_process.start()
    second = _section(broker_process.log_text(), 2)
    assert "unclean shutdown" in second
    with broker_process.client(timeout=10) as client:
        assert _fetch_values(client, "crash", 0) == ["x", "y"]


def test_serve_takes_settings_from_flags_and_environment(
    broker_factory: Callable[..., BrokerProcess], tmp_path: Path
) -> None:
    catalog = tmp_path / "elsewhere" / "catalog.db"
    broker = broker_factory(
        "flags", broker_id=3, catalog_url=f"sqlite:///{catalog}", advertised_url="http://broker-3.test:80",
        env={"TIDELOG_NUM_PARTITIONS": "4"},
    )
    with broker.client(timeout=10) as client:
        cluster = client.get("/v1/cluster").json()
        assert cluster["broker_id"] == 3
        assert cluster["advertised_url"] == "http://broker-3.test:80"
        assert client.post("/v1/topics", json={"name": "t"}).json()["partition_count"] == 4
    assert catalog.exists()
    assert not (broker.data_dir / "catalog.db").exists()


def test_serve_exits_non_zero_when_the_catalog_is_unusable(tmp_path: Path) -> None:
    broker = BrokerProcess(tmp_path / "bad" / "data", settings={"catalog_url": "postgresql://x@127.0.0.1:1/none"},
                           startup_timeout_s=30)
    with pytest.raises(RuntimeError, match="exited with 3"):
        broker.start()
