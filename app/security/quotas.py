"""Client quotas per principal (Kafka's ``producer_byte_rate``, ``consumer_byte_rate``,
``request_percentage``'s HTTP cousin ``request_rate``, and concurrent streams), held per broker.

Each principal's limits come from its ``client_quotas`` row, field by field falling back to the
``<default>`` row (Kafka's ``--entity-default``); no row and no default is no limit. The rows are the
catalog's, cached with the ACLs (``app.security.authorizer_cache``), so a change reaches every broker
within a second; the *accounting* is per broker: a principal talking to three brokers may use three
times its quota, as with Kafka's per-broker quotas.

Each rate is a bucket that refills at the quota and holds at most :data:`BURST_S` seconds of it;
a request is admitted while the bucket is not in debt and is charged what it actually moved (the
body of a produce, the answer of a fetch), so one request may take it below zero. In debt,
produce, fetch and requests are refused with 429 (error_code 42911), an integer ``Retry-After`` and
``retry_after_ms``, the time until the debt is repaid. Kafka instead delays its answer (KIP-219):
over HTTP a held-back answer ties up a connection and looks like a slow broker to every proxy and
timeout on the way, while a 429 is understood by every HTTP client and retry policy. Server-Sent
Events streams are not refused mid-way: their sends are paced, each waiting until the debt is repaid.

With requests each at most 5% of a second's quota, a client that waits ``retry_after_ms`` moves
within ±10% of its quota over 10 s (``tests/security/test_quota_rate.py``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from app.catalog.acls import DEFAULT_QUOTA_ENTITY, ClientQuota

__all__ = ["BURST_S", "QUOTA_FIELDS", "QuotaDecision", "QuotaManager", "RateBucket"]

#: How many seconds of its quota a bucket may hold (the burst a quiet client may use at once).
BURST_S: Final = 0.2
#: The limits a quota entry has, as the catalog and ``/v1/quotas`` name them.
QUOTA_FIELDS: Final = ("producer_byte_rate", "consumer_byte_rate", "request_rate", "max_streams")

Kind = Literal["produce", "fetch", "request"]


@dataclass(slots=True)
class RateBucket:
    """Refills at ``rate`` units/s up to ``rate * BURST_S``; may go into debt by a charge."""

    rate: float
    tokens: float = 0.0
    updated: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.rate * BURST_S

    def _refill(self, now: float) -> None:
        self.tokens = min(self.rate * BURST_S, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def wait_s(self, now: float | None = None) -> float:
        """Seconds until the bucket is out of debt (0: a request may go now)."""
        self._refill(time.monotonic() if now is None else now)
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def charge(self, amount: float, now: float | None = None) -> None:
        self._refill(time.monotonic() if now is None else now)
        self.tokens -= amount


@dataclass(frozen=True, slots=True)
class QuotaDecision:
    """A refusal: which limit, and when to retry."""

    limit: str
    retry_after_ms: int

    @property
    def retry_after_s(self) -> int:
        return max(1, math.ceil(self.retry_after_ms / 1000))


_FIELD_OF: Final[dict[Kind, str]] = {
    "produce": "producer_byte_rate", "fetch": "consumer_byte_rate", "request": "request_rate",
}


class QuotaManager:
    """This broker's buckets and stream counts, over the limits ``entries()`` gives."""

    def __init__(self, entries: Callable[[], Mapping[str, ClientQuota]]) -> None:
        self._entries = entries
        self._buckets: dict[tuple[str, Kind], RateBucket] = {}
        self._streams: dict[str, int] = {}

    def limit(self, principal: str, name: str) -> int | None:
        """``principal``'s limit ``name``: its own entry's, else the default entry's, else None."""
        entries = self._entries()
        for entity in (principal, DEFAULT_QUOTA_ENTITY):
            entry = entries.get(entity)
            value = None if entry is None else getattr(entry, name)
            if value is not None:
                return int(value)
        return None

    def limits_changed(self) -> None:
        """Drops buckets whose rate is no longer the configured one (they restart full)."""
        for key, bucket in list(self._buckets.items()):
            if self.limit(key[0], _FIELD_OF[key[1]]) != bucket.rate:
                del self._buckets[key]

    def _bucket(self, principal: str, kind: Kind) -> RateBucket | None:
        rate = self.limit(principal, _FIELD_OF[kind])
        if rate is None:
            return None
        bucket = self._buckets.get((principal, kind))
        if bucket is None or bucket.rate != rate:
            bucket = self._buckets[(principal, kind)] = RateBucket(float(rate))
        return bucket

    def admit(self, principal: str, kind: Kind) -> QuotaDecision | None:
        """None when a request of ``kind`` may go now, else when to retry."""
        bucket = self._bucket(principal, kind)
        if bucket is None:
            return None
        wait = bucket.wait_s()
        return None if wait <= 0 else QuotaDecision(_FIELD_OF[kind], max(1, math.ceil(wait * 1000)))

    def charge(self, principal: str, kind: Kind, amount: float) -> float:
        """Charges ``amount``; gives the seconds until the bucket is out of debt (for pacing)."""
        bucket = self._bucket(principal, kind)
        if bucket is None:
            return 0.0
        bucket.charge(amount)
        return bucket.wait_s()

    def open_stream(self, principal: str) -> QuotaDecision | None:
        """Counts a stream or long poll in; a refusal when ``max_streams`` are open already."""
        limit = self.limit(principal, "max_streams")
        count = self._streams.get(principal, 0)
        if limit is not None and count >= limit:
            return QuotaDecision("max_streams", 1000)
        self._streams[principal] = count + 1
        return None

    def close_stream(self, principal: str) -> None:
        count = self._streams.get(principal, 0) - 1
        if count > 0:
            self._streams[principal] = count
        else:
            self._streams.pop(principal, None)
