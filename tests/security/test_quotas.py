"""Quotas: the buckets and limits (pure), and the 429s and stream limits through the app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from app.catalog.acls import ClientQuota
from app.security.quotas import BURST_S, QuotaManager, RateBucket


def test_a_bucket_refills_at_its_rate_and_holds_a_short_burst() -> None:
    bucket = RateBucket(1000.0)
    start = bucket.updated
    assert bucket.wait_s(start) == 0
    bucket.charge(1000 * BURST_S + 500, start)  # the burst and half a second more
    assert bucket.wait_s(start) == pytest.approx(0.5)
    assert bucket.wait_s(start + 0.5) == pytest.approx(0.0)
    assert bucket.wait_s(start + 100) == 0
    bucket.charge(1000 * BURST_S, start + 100)  # refilled to the burst only, never more
    assert bucket.wait_s(start + 100) == 0
    bucket.charge(1, start + 100)
    assert bucket.wait_s(start + 100) > 0


def test_limits_fall_back_to_the_default_entry_field_by_field() -> None:
    entries = {"<default>": ClientQuota("<default>", producer_byte_rate=100, request_rate=5),
               "User:etl": ClientQuota("User:etl", producer_byte_rate=1000)}
    quotas = QuotaManager(lambda: entries)
    assert quotas.limit("User:etl", "producer_byte_rate") == 1000
    assert quotas.limit("User:etl", "request_rate") == 5
    assert quotas.limit("User:other", "producer_byte_rate") == 100
    assert quotas.limit("User:other", "max_streams") is None
    assert QuotaManager(dict).limit("User:x", "request_rate") is None


def test_streams_are_counted_per_principal() -> None:
    quotas = QuotaManager(lambda: {"<default>": ClientQuota("<default>", max_streams=2)})
    assert quotas.open_stream("User:a") is None and quotas.open_stream("User:a") is None
    refused = quotas.open_stream("User:a")
    assert refused is not None and refused.limit == "max_streams"
    assert quotas.open_stream("User:b") is None
    quotas.close_stream("User:a")
    assert quotas.open_stream("User:a") is None


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"quotas_enabled": True}


def test_requests_over_the_rate_get_429_with_retry_after(
    secured: Any, as_user: Callable[[str | None], dict[str, str]]
) -> None:
    assert secured.put("/v1/quotas/User:slow", json={"request_rate": 5}).status_code == 200
    slow = as_user("User:slow")
    answers = [secured.get("/v1/topics", headers=slow) for _ in range(5)]
    refused = [a for a in answers if a.status_code == 429]
    assert refused, [a.status_code for a in answers]  # 1 request of burst (5/s * 0.2 s), then debt
    body = refused[0].json()
    assert refused[0].headers["content-type"].startswith("application/problem+json")
    assert body["error_code"] == 42911 and body["quota"] == "request_rate"
    assert isinstance(body["retry_after_ms"], int) and 0 < body["retry_after_ms"] <= 1000
    assert refused[0].headers["Retry-After"] == "1"
    # Others are not limited by User:slow's entry, and no default entry exists.
    assert all(secured.get("/v1/topics", headers=as_user("User:fast")).status_code == 200 for _ in range(10))


def test_produce_bytes_over_the_quota_get_429(
    secured: Any, as_user: Callable[[str | None], dict[str, str]]
) -> None:
    assert secured.post("/v1/topics", json={"name": "q"}).status_code == 201
    assert secured.put("/v1/quotas/<default>", json={"producer_byte_rate": 1000}).status_code == 200
    etl = as_user("User:etl")
    first = secured.post("/v1/topics/q/records", json={"records": [{"value": "x" * 5000}]}, headers=etl)
    assert first.status_code == 200  # admitted out of the burst, then charged its 5 KB
    second = secured.post("/v1/topics/q/records", json={"records": [{"value": "y"}]}, headers=etl)
    assert second.status_code == 429
    assert 4000 <= second.json()["retry_after_ms"] <= 5000
    assert second.headers["Retry-After"] == "5"
    # A record refused was not appended: only the first is in the log.
    fetched = secured.get("/v1/topics/q/partitions/0/records", params={"offset": 0})
    assert [r["value"] for r in fetched.json()["records"]] == ["x" * 5000]


def test_a_quota_change_applies_at_once_on_this_broker(
    secured: Any, as_user: Callable[[str | None], dict[str, str]]
) -> None:
    assert secured.put("/v1/quotas/User:c", json={"request_rate": 1}).status_code == 200
    c = as_user("User:c")
    assert secured.get("/v1/topics", headers=c).status_code in (200, 429)
    assert secured.get("/v1/topics", headers=c).status_code == 429
    assert secured.delete("/v1/quotas/User:c").status_code == 204
    assert all(secured.get("/v1/topics", headers=c).status_code == 200 for _ in range(5))


def test_probes_are_never_limited(secured: Any) -> None:
    assert secured.put("/v1/quotas/<default>", json={"request_rate": 1}).status_code == 200
    assert all(secured.get("/healthz").status_code == 200 for _ in range(5))
    assert secured.get("/v1/topics").status_code in (200, 429)
    assert secured.get("/v1/topics").status_code == 429
