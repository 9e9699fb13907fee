"""Catalog tables of idempotent producer ids and of ``Idempotency-Key`` answers, and their functions.

``producer_ids``: one row per id handed out by ``POST /v1/producers``. The id comes from the
catalog's own sequence (autoincrement), so it is unique across restarts and across every broker
sharing the catalog; the row keeps the producer's current epoch so that re-initialising bumps it
and fences the previous incarnation (KIP-360). Epochs are Kafka's int16: once an id reaches 32767
the next initialisation gets a fresh id at epoch 0, as Kafka's transaction coordinator does.

``idempotency_keys``: the first answer to a produce request carrying an ``Idempotency-Key``
header, replayed to retries until ``expires_at_ms``. A row with ``status_code`` NULL is a request
still in progress (claimed but not answered yet), or, with ``outcome_unknown`` set, one that failed
after its records may have been written: the next retry takes it over at once. ``producer_id`` is
the idempotent producer id allocated (from ``producer_ids``, in the claiming transaction) for the
key: every attempt of the request appends as that producer, so a retry is recognised as a duplicate
by the partitions' producer state. A takeover keeps the id; only an expired row gets a new one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, Boolean, Integer, LargeBinary, String, delete, false, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.catalog.base import Base

__all__ = [
    "MAX_PRODUCER_EPOCH",
    "IdempotencyKeyRow",
    "KeyClaim",
    "ProducerIdRow",
    "ProducerIdentity",
    "ProducerLookupError",
    "StaleProducerEpochError",
    "claim_idempotency_key",
    "complete_idempotency_key",
    "get_idempotency_key",
    "init_producer",
    "keep_idempotency_claim",
    "purge_expired_idempotency_keys",
    "release_idempotency_key",
]

MAX_PRODUCER_EPOCH = 32767  # Kafka's epochs are int16


class ProducerIdRow(Base):
    __tablename__ = "producer_ids"

    # BIGINT on PostgreSQL (Kafka ids are int64); SQLite only autoincrements an INTEGER primary key.
    producer_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    producer_epoch: Mapped[int] = mapped_column(Integer)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)


class IdempotencyKeyRow(Base):
    __tablename__ = "idempotency_keys"

    #: What the key is scoped to: the produce path (``topic`` or ``topic/partition``).
    scope: Mapped[str] = mapped_column(String(300), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: SHA-256 (hex) of the request: method, content type, query and body.
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    expires_at_ms: Mapped[int] = mapped_column(BigInteger, index=True)
    #: The idempotent producer every attempt of this request appends as (epoch 0, sequence 0).
    producer_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: The last attempt failed after its records may have been written: a retry takes over at once.
    outcome_unknown: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


@dataclass(frozen=True, slots=True)
class ProducerIdentity:
    producer_id: int
    producer_epoch: int


class ProducerLookupError(LookupError):
    """No producer row with the given id."""


class StaleProducerEpochError(ValueError):
    """The epoch given is not the producer's current one."""

    def __init__(self, current_epoch: int) -> None:
        super().__init__(f"current epoch is {current_epoch}")
        self.current_epoch = current_epoch


def init_producer(
    session: Session, *, now_ms: int, producer_id: int | None = None, producer_epoch: int | None = None
) -> ProducerIdentity:
    """A new producer id at epoch 0, or, given an id and its current epoch, the same id one epoch on.

    Raises ``ProducerLookupError`` for an unknown id and ``StaleProducerEpochError`` when
    ``producer_epoch`` is not the id's current epoch (another incarnation already bumped it).
    """
    if producer_id is not None:
        row = session.scalars(
            select(ProducerIdRow).where(ProducerIdRow.producer_id == producer_id).with_for_update()
        ).one_or_none()
        if row is None:
            raise ProducerLookupError(producer_id)
        if producer_epoch is not None and producer_epoch != row.producer_epoch:
            raise StaleProducerEpochError(row.producer_epoch)
        if row.producer_epoch < MAX_PRODUCER_EPOCH:
            row.producer_epoch += 1
            row.updated_at_ms = now_ms
            session.flush()
            return ProducerIdentity(row.producer_id, row.producer_epoch)
    row = ProducerIdRow(producer_epoch=0, created_at_ms=now_ms, updated_at_ms=now_ms)
    session.add(row)
    session.flush()
    return ProducerIdentity(row.producer_id, row.producer_epoch)


def get_idempotency_key(session: Session, *, scope: str, key: str) -> IdempotencyKeyRow | None:
    """The stored answer (or in-progress claim) of ``key`` in ``scope``, expired or not."""
    return session.get(IdempotencyKeyRow, (scope, key))


@dataclass(frozen=True, slots=True)
class KeyClaim:
    """The outcome of a claim: ``row`` None when this request now holds the key as ``producer_id``."""

    row: IdempotencyKeyRow | None
    producer_id: int = -1


def claim_idempotency_key(
    session: Session,
    *,
    scope: str,
    key: str,
    request_hash: str,
    now_ms: int,
    expires_at_ms: int,
    abandoned_before_ms: int = -1,
) -> KeyClaim:
    """Claim ``key`` for a request, or give back the live row that already holds it.

    A claim whose last attempt's outcome is unknown (``outcome_unknown``), or that was never
    answered and was made before ``abandoned_before_ms`` (its broker died mid-request), is taken
    over by a request with the same hash, keeping its producer id so that the retry's batches are
    recognised as duplicates. An expired row is replaced by a new claim with a new producer id. Two
    brokers claiming the same new key at once: one insert fails with an ``IntegrityError`` at
    flush, and the caller reads the winner's row.
    """
    row = session.get(IdempotencyKeyRow, (scope, key), with_for_update=True)
    if row is not None:
        if row.expires_at_ms > now_ms:
            open_claim = row.status_code is None and (
                row.outcome_unknown or row.created_at_ms < abandoned_before_ms
            )
            if open_claim and row.request_hash == request_hash and row.producer_id is not None:
                row.outcome_unknown = False
                row.created_at_ms = now_ms
                session.flush()
                return KeyClaim(None, row.producer_id)
            return KeyClaim(row)
        session.delete(row)
        session.flush()
    producer = init_producer(session, now_ms=now_ms)
    session.add(
        IdempotencyKeyRow(
            scope=scope,
            idempotency_key=key,
            request_hash=request_hash,
            status_code=None,
            response_body=None,
            created_at_ms=now_ms,
            expires_at_ms=expires_at_ms,
            producer_id=producer.producer_id,
            outcome_unknown=False,
        )
    )
    session.flush()
    return KeyClaim(None, producer.producer_id)


def complete_idempotency_key(
    session: Session, *, scope: str, key: str, status_code: int, response_body: bytes
) -> None:
    """Store the answer of the request that claimed ``key``."""
    row = session.get(IdempotencyKeyRow, (scope, key))
    if row is not None:
        row.status_code = status_code
        row.response_body = response_body


def keep_idempotency_claim(session: Session, *, scope: str, key: str) -> None:
    """Mark an unanswered claim whose records may have been written: a retry takes it over."""
    row = session.get(IdempotencyKeyRow, (scope, key))
    if row is not None and row.status_code is None:
        row.outcome_unknown = True


def release_idempotency_key(session: Session, *, scope: str, key: str) -> None:
    """Drop an unanswered claim (the request failed before anything was appended)."""
    session.execute(
        delete(IdempotencyKeyRow).where(
            IdempotencyKeyRow.scope == scope,
            IdempotencyKeyRow.idempotency_key == key,
            IdempotencyKeyRow.status_code.is_(None),
        )
    )


def purge_expired_idempotency_keys(session: Session, *, now_ms: int) -> int:
    """Delete every answer whose replay window has passed; returns how many."""
    result = session.execute(delete(IdempotencyKeyRow).where(IdempotencyKeyRow.expires_at_ms <= now_ms))
    return int(getattr(result, "rowcount", 0) or 0)
