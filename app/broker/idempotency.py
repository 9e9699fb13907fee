"""``Idempotency-Key`` on produce: every attempt of a request appends as one producer, once.

For HTTP clients that do not run an idempotent producer (``producer_id``/``sequence``), a produce
request may carry an ``Idempotency-Key`` header (any 1-255 printable ASCII characters, e.g. a
UUID). Within ``idempotency_key_window_ms`` of the first request:

- a retry with the same key and the same request (method, path, content type, ``acks`` and
  body, compared by SHA-256) gets the first answer again, byte for byte, with the header
  ``Idempotent-Replayed: true``, and nothing is appended again;
- the same key with a different request is refused with 409 (error_code 40907);
- a retry while the first request is still being served is refused with 409 (40907) too.

The claim (catalog row, ``app/catalog/producers.py``) is made before anything is appended and gets
a producer id allocated in the same transaction. The produce runs as that idempotent producer:
each partition's records are one batch at epoch 0, sequence 0 (forwarded as such to leaders
elsewhere; keyless records without a partition go to ``producer id % partitions``, not the sticky
partition, so that every attempt places every record alike). Then:

- 200, or 207 whose failures are all 4xx: the answer is stored and replayed;
- a 4xx raised as a whole: nothing was appended, the key is released so that a corrected retry
  may use it;
- a 5xx (e.g. 50305, appended but not acknowledged; a 50304 redirect too, kept to be safe), a 207
  with a 5xx partition error, a timeout or a cancelled request: records may have been written, so
  the claim is kept with its producer id, marked outcome-unknown; the next retry with the same
  request takes it over at once and sends
  the same batches, which each partition's producer state (replicated with the log, so on a new
  leader too) answers with the original offsets, appending only what is missing;
- a claim left unanswered (its broker died mid-request) is taken over likewise once it is older
  than the longest a produce may take (``abandoned_ms``: ``replica.lag.time.max.ms`` +
  ``broker.session.timeout.ms`` + ``ABANDONED_CLAIM_MARGIN_MS``).

Where it stops: the partition's producer state keeps 5 batches per producer, which a key (one
batch per partition) never exceeds, but forgets a producer idle for ``producer.id.expiration.ms``
(1 day); the key's row is purged after its window; records placed by key hash or producer id move
if partitions are added between attempts. Each partition's records must fit one batch
(``max.message.bytes``). Answers live in the catalog, so a retry sent to another broker sharing
the catalog is replayed (or taken over) too; expired answers are purged by the retention scheduler.
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

__all__ = ["ABANDONED_CLAIM_MARGIN_MS", "IdempotencyKeys", "KeyClaimed", "StoredAnswer", "request_hash"]

#: A claim still unanswered this long after the longest a produce may take (its acks=all wait,
#: ``replica.lag.time.max.ms`` + ``broker.session.timeout.ms``) belongs to a broker that died
#: mid-request: a retry takes it over, appending as the claim's producer id (so anything the dead
#: attempt wrote comes back as a duplicate with its original offsets).
ABANDONED_CLAIM_MARGIN_MS = 10_000


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

    def __init__(self, catalog: Catalog, window_ms: int, abandoned_ms: int) -> None:
        self.catalog = catalog
        self.window_ms = window_ms
        #: How long an unanswered claim is "still being served" (409) before a retry takes it over.
        self.abandoned_ms = abandoned_ms

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
                            abandoned_before_ms=now_ms - self.abandoned_ms,
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
