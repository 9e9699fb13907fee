"""A cluster of real ``tidelog serve --cluster`` processes on loopback sharing one PostgreSQL schema.

Brokers start in parallel (each process takes a few seconds to import), every one with its own data
directory; ``wait_alive`` waits until the controller has unfenced the expected brokers.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

from tests.broker_process import BrokerProcess, free_port

__all__ = ["Cluster"]

SESSION_TIMEOUT_MS = 2500
HEARTBEAT_MS = 300


class Cluster:
    def __init__(self, root: Path, catalog_url: str, size: int = 3, **settings: object) -> None:
        self.brokers: dict[int, BrokerProcess] = {}
        for broker_id in range(size):
            port = free_port()
            values: dict[str, object] = {
                "catalog_url": catalog_url,
                "cluster": True,
                "broker_id": broker_id,
                "advertised_url": f"http://127.0.0.1:{port}",
                "broker_session_timeout_ms": SESSION_TIMEOUT_MS,
                "broker_heartbeat_interval_ms": HEARTBEAT_MS,
                "replica_lag_time_max_ms": 3000,
                "replica_fetch_wait_max_ms": 200,
                "log_retention_check_interval_ms": 3_600_000,
            }
            values.update(settings)
            self.brokers[broker_id] = BrokerProcess(
                root / f"b{broker_id}" / "data", port=port, settings=values
            )
        self.http = httpx.Client(timeout=15.0)

    # -- processes ----------------------------------------------------------------------------------

    def start(self, ids: Iterable[int] | None = None) -> None:
        """Start brokers in parallel and wait until each is ready."""
        errors: list[BaseException] = []

        def run(broker: BrokerProcess) -> None:
            try:
                broker.start()
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(self.brokers[i],)) for i in (ids or self.brokers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def stop(self) -> None:
        for broker in self.brokers.values():
            if broker.running:
                try:
                    broker.stop(timeout_s=15)
                except RuntimeError:
                    broker.kill()
        self.http.close()

    def url(self, broker_id: int) -> str:
        return self.brokers[broker_id].url

    def any_running(self) -> BrokerProcess:
        return next(b for b in self.brokers.values() if b.running)

    # -- views --------------------------------------------------------------------------------------

    def view(self, via: int | None = None) -> dict[str, Any]:
        broker = self.brokers[via] if via is not None else self.any_running()
        answer = self.http.get(f"{broker.url}/v1/cluster")
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    def wait_alive(self, ids: Iterable[int], timeout_s: float = 20.0) -> dict[str, Any]:
        wanted = set(ids)
        deadline = time.monotonic() + timeout_s
        view: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                view = self.view()
            except httpx.HTTPError:
                time.sleep(0.1)
                continue
            alive = {b["broker_id"] for b in view["brokers"] if b["state"] == "alive"}
            if wanted <= alive and view["controller_id"] >= 0:
                return view
            time.sleep(0.1)
        raise AssertionError(f"brokers {sorted(wanted)} not alive after {timeout_s} s: {view}")

    def partition(self, topic: str, partition: int) -> dict[str, Any]:
        answer = self.http.get(f"{self.any_running().url}/v1/topics/{topic}")
        answer.raise_for_status()
        found: dict[str, Any] = answer.json()["partitions"][partition]
        return found

    def wait_partition(
        self, topic: str, partition: int, predicate: Any, timeout_s: float = 20.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                state = self.partition(topic, partition)
                if predicate(state):
                    return state
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{topic}-{partition} never reached the expected state: {state}")

    # -- data ---------------------------------------------------------------------------------------

    def create_topic(
        self, name: str, partitions: int = 1, replication_factor: int = 3, **configs: object
    ) -> Any:
        answer = self.http.post(
            f"{self.any_running().url}/v1/topics",
            json={"name": name, "partitions": partitions, "replication_factor": replication_factor,
                  "configs": {k.replace("_", "."): v for k, v in configs.items()}},
        )
        return answer

    def produce(self, via: int, topic: str, partition: int, values: list[str], acks: str = "all",
                **extra: object) -> httpx.Response:
        return self.http.post(
            f"{self.url(via)}/v1/topics/{topic}/partitions/{partition}/records",
            params={"acks": acks},
            json={"records": [{"value": v} for v in values], **extra},
            follow_redirects=True,
        )

    def read_all(self, via: int, topic: str, partition: int) -> list[str]:
        """Every record value below the high watermark, read from broker ``via`` itself."""
        values: list[str] = []
        offset = 0
        while True:
            answer = self.http.get(
                f"{self.url(via)}/v1/topics/{topic}/partitions/{partition}/records",
                # replica=any: this broker's own log, even when it only follows the partition.
                params={"offset": offset, "max_records": 10_000, "max_wait_ms": 0, "replica": "any"},
            )
            assert answer.status_code == 200, answer.text
            body = answer.json()
            for record in body["records"]:
                value = record["value"]
                values.append(value if isinstance(value, str) else base64.b64decode(value).decode())
            if body["next_offset"] >= body["high_watermark"] or not body["records"]:
                return values
            offset = body["next_offset"]


def log_files(data_dir: Path, topic: str, partition: int) -> bytes:
    """The concatenated segment files of one partition (for byte-for-byte comparison)."""
    directory = data_dir / f"{topic}-{partition}"
    return b"".join(p.read_bytes() for p in sorted(directory.glob("*.log")))
