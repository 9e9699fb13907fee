"""Fixtures of the connect tests: a real broker process and in-process workers talking to it over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tests.broker_process import BrokerProcess


def wait_for(check: Callable[[], Any], timeout_s: float = 30.0, interval_s: float = 0.2) -> Any:
    """Polls ``check`` until it gives something truthy; fails the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s} s (last: {last!r})")


async def await_for(check: Callable[[], Any], timeout_s: float = 30.0, interval_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(check)
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s} s (last: {last!r})")


def read_topic(url: str, topic: str, partitions: int = 1) -> list[dict[str, Any]]:
    """Every record of ``topic`` (value, key, headers), partition by partition."""
    out: list[dict[str, Any]] = []
    with httpx.Client(base_url=url, timeout=10) as http:
        for partition in range(partitions):
            answer = http.get(
                f"/v1/topics/{topic}/partitions/{partition}/records",
                params={"offset": 0, "max_records": 10_000, "max_wait_ms": 0},
            )
            if answer.status_code == 404:
                return []
            answer.raise_for_status()
            body = answer.json()
            out += body["records"] if isinstance(body, dict) else body
    return out


@pytest.fixture
async def worker(broker_process: BrokerProcess) -> AsyncIterator[Any]:
    """One worker in this process (its own event loop task), stopped after the test."""
    from tidelog.connect.worker import Worker

    instance = Worker(broker_process.url, worker_id="test-worker", session_timeout_ms=5000)
    runner = asyncio.create_task(instance.run())
    yield instance
    instance.request_stop()
    await asyncio.wait_for(runner, 60)
    await instance.client.aclose()
