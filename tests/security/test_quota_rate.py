"""Quotas hold throughput to within ±10% of the quota over 10 s, when each request is at most 5% of a
second's quota and the client waits ``retry_after_ms`` after a 429 (a real broker process)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.broker_process import BrokerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

QUOTA = 50_000  # bytes per second
WINDOW_S = 10.0


@pytest.fixture
def broker(broker_factory: Callable[..., BrokerProcess]) -> BrokerProcess:
    return broker_factory("quota-broker", quotas_enabled=True)


def _drive(send: Callable[[], httpx.Response], size_of: Callable[[httpx.Response], int]) -> float:
    """Bytes per second moved over WINDOW_S, sending as fast as the quota lets."""
    moved, refused = 0, 0
    start = time.monotonic()
    while time.monotonic() - start < WINDOW_S:
        answer = send()
        if answer.status_code == 429:
            refused += 1
            time.sleep(answer.json()["retry_after_ms"] / 1000)
            continue
        assert answer.status_code == 200, answer.text
        size = size_of(answer)
        assert size <= QUOTA * 0.05
        moved += size
    assert refused > 0  # the quota, not the machine, set the pace
    return moved / (time.monotonic() - start)


def test_produce_throughput_is_held_to_the_quota(broker: BrokerProcess) -> None:
    with httpx.Client(base_url=broker.url, timeout=10) as http:
        assert http.post("/v1/topics", json={"name": "rate"}).status_code == 201
        assert http.put("/v1/quotas/<default>", json={"producer_byte_rate": QUOTA}).status_code == 200
        body = b'{"records":[{"value":"' + b"x" * 2400 + b'"}]}'
        rate = _drive(
            lambda: http.post("/v1/topics/rate/records", content=body,
                              headers={"Content-Type": "application/json"}),
            lambda _answer: len(body),
        )
    assert QUOTA * 0.9 <= rate <= QUOTA * 1.1, rate


def test_fetch_throughput_is_held_to_the_quota(broker: BrokerProcess) -> None:
    with httpx.Client(base_url=broker.url, timeout=10) as http:
        assert http.post("/v1/topics", json={"name": "fetch-rate"}).status_code == 201
        records = [{"value": "v" * 100} for _ in range(1000)]
        assert http.post("/v1/topics/fetch-rate/records", json={"records": records}).status_code == 200
        assert http.put("/v1/quotas/<default>", json={"consumer_byte_rate": QUOTA}).status_code == 200
        offset = [0]

        def fetch() -> httpx.Response:
            answer = http.get("/v1/topics/fetch-rate/partitions/0/records",
                              params={"offset": offset[0] % 990, "max_records": 10})
            offset[0] += 10
            return answer

        rate = _drive(fetch, lambda answer: len(answer.content))
    assert QUOTA * 0.9 <= rate <= QUOTA * 1.1, rate
