"""Creating and deleting a topic of 1,000 partitions does its directory work off the event loop:
a health check keeps answering within a bound meanwhile (real broker process)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.broker_process import BrokerProcess

pytestmark = pytest.mark.e2e

#: A health check is one dictionary lookup and a JSON answer: well under this even on a loaded
#: machine, unless the event loop is held by the admin request (1,000 mkdirs, files and fsyncs).
BOUND_S = 0.5


def _while_running(broker: BrokerProcess, method: str, path: str, body: dict[str, object] | None) -> tuple[
    int, float, list[float]
]:
    """Run one admin request in a thread; the health-check latencies seen meanwhile."""
    outcome: dict[str, object] = {}

    def admin() -> None:
        with httpx.Client(base_url=broker.url, timeout=120) as client:
            started = time.monotonic()
            answer = client.request(method, path, json=body)
            outcome["status"] = answer.status_code
            outcome["took"] = time.monotonic() - started

    thread = threading.Thread(target=admin)
    latencies: list[float] = []
    with httpx.Client(base_url=broker.url, timeout=30) as probe:
        probe.get("/healthz")  # the connection is open before the admin request starts
        thread.start()
        while thread.is_alive():
            started = time.monotonic()
            assert probe.get("/healthz").status_code == 200
            latencies.append(time.monotonic() - started)
            time.sleep(0.01)
    thread.join()
    return int(outcome["status"]), float(outcome["took"]), latencies  # type: ignore[arg-type]


def test_a_thousand_partitions_are_created_and_deleted_while_others_are_answered(
    broker_process: BrokerProcess,
) -> None:
    status, took, latencies = _while_running(
        broker_process, "POST", "/v1/topics", {"name": "wide", "partitions": 1000}
    )
    assert status == 201
    assert latencies, "the create finished before any health check"
    assert max(latencies) < BOUND_S, f"health check: {max(latencies):.2f} s, create: {took:.2f} s"
    status, took, latencies = _while_running(broker_process, "DELETE", "/v1/topics/wide", None)
    assert status == 204
    if latencies:
        assert max(latencies) < BOUND_S, f"health check: {max(latencies):.2f} s, delete: {took:.2f} s"
