"""Event streams under quotas, against a real broker: paced to the fetch quota (not cut), and
refused with 429 beyond ``max_streams``."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.broker_process import BrokerProcess

pytestmark = pytest.mark.e2e

QUOTA = 20_000  # bytes per second


@pytest.fixture
def broker(broker_factory: Callable[..., BrokerProcess]) -> BrokerProcess:
    return broker_factory("stream-quota-broker", quotas_enabled=True)


def test_an_event_stream_is_paced_to_the_quota_and_not_cut(broker: BrokerProcess) -> None:
    with httpx.Client(base_url=broker.url, timeout=10) as http:
        assert http.post("/v1/topics", json={"name": "paced"}).status_code == 201
        records = [{"value": "v" * 200} for _ in range(1000)]  # ~300 KB of events: 15 s of quota
        assert http.post("/v1/topics/paced/records", json={"records": records}).status_code == 200
        assert http.put("/v1/quotas/<default>", json={"consumer_byte_rate": QUOTA,
                                                      "max_streams": 1}).status_code == 200
        received, events = 0, 0
        with http.stream("GET", "/v1/topics/paced/events", params={"from": "earliest"}) as stream:
            assert stream.status_code == 200
            start = time.monotonic()
            second = http.get("/v1/topics/paced/events", params={"from": "earliest"})
            assert second.status_code == 429 and second.json()["quota"] == "max_streams"
            for chunk in stream.iter_bytes():
                received += len(chunk)
                events += chunk.count(b"event: record")
                if time.monotonic() - start >= 3.0:
                    break
            elapsed = time.monotonic() - start
        assert 0 < events < 1000  # paced: far from everything in 3 s, yet flowing
        assert received / elapsed <= QUOTA * 1.5, received / elapsed
        assert received / elapsed >= QUOTA * 0.5, received / elapsed
        # The stream slot is given back when the stream ends.
        deadline = time.monotonic() + 5
        while True:
            with http.stream("GET", "/v1/topics/paced/events", params={"from": "latest"}) as again:
                if again.status_code == 200 or time.monotonic() > deadline:
                    assert again.status_code == 200
                    break
            time.sleep(0.1)
