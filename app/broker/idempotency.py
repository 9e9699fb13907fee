"""``Idempotency-Key`` on produce: the first answer of a request is replayed to its retries.

For HTTP clients that do not run an idempotent producer (``producer_id``/``sequence``), a produce
request may carry an ``Idempotency-Key`` header (any 1-255 printable ASCII characters, e.g. a
UUID). Within ``idempotency_key_window_ms`` of the first request:

- a retry with the same key and the same request (method, path, content type, ``acks`` and
  body, compared by SHA-256) gets the first answer again, byte for byte, with the header
  ``Idempotent-Replayed: true``, and nothing is appended again;
- the same key with a different request is refused with 409 (error_code 40907);
- a retry while the first request is still being served is refused with 409 (40907) too; retry
  later. A claim left unanswered for ``ABANDONED_CLAIM_MS`` (its broker died mid-request) is
  taken over by the next retry, which appends again: the key's protection does not outlive a
  broker crash during the request (idempotent producers' does).

Keys are scoped to the produce path (topic, or topic and partition). Only successful answers
(200 and 207) are stored: a refused request (4xx, nothing appended) releases its key so that a
corrected retry may use it. Answers live in the catalog, so a retry sent to another broker sharing
the catalog is replayed too; expired answers are purged by the retention scheduler.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from app.broker.errors import IdempotencyKeyReusedError
from app.catalog import Catalog
from app.catalog import producers as catalog_producers
from app.errors_base import InvalidParameterError

__all__ = ["ABANDONED_CLAIM_MS", "IdempotencyKeys", "KeyClaimed", "StoredAnswer", "request_hash"]

#: A claim still unanswered after this long belongs to a broker that died mid-request: a retry
#: takes it over, appending as the claim's producer id (a duplicate of anything already written).
ABANDONED_CLAIM_MS = 60_000


@dataclass(frozen=True, slots=True)
class KeyClaimed:
    """This request holds the key: it appends as ``producer_id`` (epoch 0, sequence 0 per partition)."""

    producer_id: int


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status_code: int
    body: bytes


def request_hash(*parts: bytes | str) -> str:
    """SHA-256 (hex) over the request parts, each length-prefixed so their boundaries count."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def check_key(key: str) -> str:
    """The key if it is 1-255 printable ASCII characters; else ``InvalidParameterError``."""
    if not 1 <= len(key) <= 255 or not all(" " < ch <= "~" for ch in key):
        raise InvalidParameterError(
            "Idempotency-Key must be 1 to 255 printable ASCII characters without spaces"
        )
    return key


class IdempotencyKeys:
    """The stored answers of produce requests that carried an ``Idempotency-Key``."""

    def __init__(self, catalog: Catalog, window_ms: int) -> None:
        self.catalog = catalog
        self.window_ms = window_ms

    @property
    def enabled(self) -> bool:
        return self.window_ms > 0

    async def begin(self, scope: str, key: str, digest: str) -> KeyClaimed | StoredAnswer:
        """Claim ``key`` (the producer id to append as), or the answer to replay; raises on reuse."""
        now_ms = int(time.time() * 1000)

        def claim() -> KeyClaimed | StoredAnswer:
            for _ in range(2):  # a lost race with another broker: read the winner's row
                try:
                    with self.catalog.begin() as session:
                        claimed = catalog_producers.claim_idempotency_key(
                            session,
                            scope=scope,
                            key=key,
                            request_hash=digest,
                            now_ms=now_ms,
                            expires_at_ms=now_ms + self.window_ms,
                            abandoned_before_ms=now_ms - ABANDONED_CLAIM_MS,
                        )
                        row = claimed.row
                        if row is None:
                            return KeyClaimed(claimed.producer_id)
                        if row.request_hash != digest:
                            raise IdempotencyKeyReusedError(
                                "this Idempotency-Key was used for a different request; use a new key",
                                idempotency_key=key,
                            )
                        if row.status_code is None or row.response_body is None:
                            raise IdempotencyKeyReusedError(
                                "a request with this Idempotency-Key is still being served; retry later",
                                idempotency_key=key,
                            )
                        return StoredAnswer(row.status_code, row.response_body)
                except IntegrityError:
                    continue
            raise IdempotencyKeyReusedError(
                "a request with this Idempotency-Key is being served by another broker; retry later",
                idempotency_key=key,
            )

        return await asyncio.to_thread(claim)

    async def complete(self, scope: str, key: str, answer: StoredAnswer) -> None:
        """Store the answer to replay."""

        def store() -> None:
            with self.catalog.begin() as session:
                catalog_producers.complete_idempotency_key(
                    session, scope=scope, key=key, status_code=answer.status_code, response_body=answer.body
                )

        await asyncio.to_thread(store)

    async def keep(self, scope: str, key: str) -> None:
        """Keep the claim of a request that failed after its records may have been written."""

        def mark() -> None:
            with self.catalog.begin() as session:
                catalog_producers.keep_idempotency_claim(session, scope=scope, key=key)

        await asyncio.to_thread(mark)

    async def release(self, scope: str, key: str) -> None:
        """Give up the claim of a request that was refused (nothing appended)."""

        def drop() -> None:
            with self.catalog.begin() as session:
                catalog_producers.release_idempotency_key(session, scope=scope, key=key)

        await asyncio.to_thread(drop)
