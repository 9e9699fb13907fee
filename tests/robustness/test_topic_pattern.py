"""Topic-pattern subscriptions cannot stop the broker: RE2 (linear time), bounded length, 422 when invalid."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from tests.broker_process import BrokerProcess

EVIL = "(a+)+b"  # exponential for a backtracking engine against a long run of "a"


def test_invalid_pattern_is_422_naming_the_field(client: Any) -> None:
    for pattern in ("(", "(?P<x>a)(?P=x)", "a(?=b)"):  # unbalanced; backreference and lookahead: not RE2
        answer = client.post("/v1/groups/g/members", json={"topic_pattern": pattern})
        assert answer.status_code == 422, answer.text
        body = answer.json()
        assert body["error_code"] == 42220
        assert body["field"] == "topic_pattern"
    too_long = client.post("/v1/groups/g/members", json={"topic_pattern": "a" * 1001})
    assert too_long.status_code == 422
    assert "topic_pattern" in too_long.text


def test_pattern_matches_whole_names(client: Any) -> None:
    for name in ("orders.eu", "orders.us", "audit"):
        assert client.post("/v1/topics", json={"name": name}).status_code == 201
    joined = client.post("/v1/groups/g/members", json={"topic_pattern": r"orders\..*"})
    assert joined.status_code == 201, joined.text
    assert sorted(tp["topic"] for tp in joined.json()["assignment"]) == ["orders.eu", "orders.us"]


@pytest.mark.e2e
def test_catastrophic_pattern_does_not_stop_the_broker(broker_process: BrokerProcess) -> None:
    name = "a" * 200
    with broker_process.client(timeout=10) as admin:
        assert admin.post("/v1/topics", json={"name": name}).status_code == 201
        assert admin.post("/v1/topics", json={"name": "work"}).status_code == 201
    answers: list[int] = []

    def join() -> None:
        with httpx.Client(base_url=broker_process.url, timeout=30) as joiner:
            answers.append(joiner.post("/v1/groups/evil/members", json={"topic_pattern": EVIL}).status_code)

    thread = threading.Thread(target=join, daemon=True)
    thread.start()
    worst = 0.0
    with broker_process.client(timeout=5) as client:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            start = time.monotonic()
            assert client.get("/healthz").status_code == 200
            produced = client.post("/v1/topics/work/records", json={"records": [{"value": 1}]})
            assert produced.status_code == 200, produced.text
            worst = max(worst, time.monotonic() - start)
    thread.join(10)
    assert answers == [201]  # matched (nothing) at once: the pattern needs a "b"
    assert worst < 2.0, f"a health check and a produce took {worst:.2f} s while the pattern was matched"
