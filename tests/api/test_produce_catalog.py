"""Producer ids and Idempotency-Key rows in the catalog, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.catalog import Catalog
from app.catalog import producers as p


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog(request: Any, tmp_path: Path) -> Iterator[Catalog]:
    url = (
        f"sqlite:///{tmp_path / 'catalog.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    catalog = Catalog(url)
    catalog.migrate()
    try:
        yield catalog
    finally:
        catalog.close()


def test_producer_ids_are_unique_and_epochs_bump_and_fence(catalog: Catalog) -> None:
    with catalog.begin() as session:
        first = p.init_producer(session, now_ms=1)
    with catalog.begin() as session:
        second = p.init_producer(session, now_ms=2)
    assert first.producer_id != second.producer_id
    assert first.producer_epoch == second.producer_epoch == 0
    with catalog.begin() as session:
        bumped = p.init_producer(session, now_ms=3, producer_id=first.producer_id, producer_epoch=0)
    assert bumped == p.ProducerIdentity(first.producer_id, 1)
    with pytest.raises(p.StaleProducerEpochError), catalog.begin() as session:
        p.init_producer(session, now_ms=4, producer_id=first.producer_id, producer_epoch=0)
    with pytest.raises(p.ProducerLookupError), catalog.begin() as session:
        p.init_producer(session, now_ms=4, producer_id=10**12)


def test_epoch_overflow_gets_a_new_id(catalog: Catalog) -> None:
    with catalog.begin() as session:
        identity = p.init_producer(session, now_ms=1)
        row = session.get(p.ProducerIdRow, identity.producer_id)
        assert row is not None
        row.producer_epoch = p.MAX_PRODUCER_EPOCH
    with catalog.begin() as session:
        fresh = p.init_producer(session, now_ms=2, producer_id=identity.producer_id)
    assert fresh.producer_id != identity.producer_id and fresh.producer_epoch == 0


def test_idempotency_key_claim_answer_expire_and_purge(catalog: Catalog) -> None:
    claimed: list[int] = []

    def claim(now: int, digest: str = "h1") -> p.IdempotencyKeyRow | None:
        with catalog.begin() as session:
            outcome = p.claim_idempotency_key(
                session,
                scope="t",
                key="k",
                request_hash=digest,
                now_ms=now,
                expires_at_ms=now + 100,
                abandoned_before_ms=now - 50,
            )
            row = outcome.row
            if row is not None:
                session.expunge(row)
            else:
                claimed.append(outcome.producer_id)
            return row

    assert claim(1000) is None  # claimed
    pending = claim(1010)
    assert pending is not None and pending.status_code is None
    with catalog.begin() as session:
        p.complete_idempotency_key(session, scope="t", key="k", status_code=200, response_body=b"{}")
    done = claim(1020)
    assert done is not None and (done.status_code, done.response_body, done.request_hash) == (
        200,
        b"{}",
        "h1",
    )
    assert claim(1200, "h2") is None  # expired: replaced by a new claim, with a new producer id
    assert claimed[1] != claimed[0]
    other = claim(1260)  # abandoned, but a different request: refused
    assert other is not None and other.request_hash == "h2"
    assert claim(1260, "h2") is None  # unanswered for longer than 50 ms: abandoned, taken over
    assert claimed[2] == claimed[1]  # with the same producer id: a retry appends nothing again
    assert claim(1265, "h2") is not None  # in progress again
    with catalog.begin() as session:
        p.keep_idempotency_claim(session, scope="t", key="k")
    assert claim(1266, "h2") is None  # outcome unknown: taken over at once
    assert claimed[3] == claimed[1]
    with catalog.begin() as session:
        p.release_idempotency_key(session, scope="t", key="k")
    assert claim(1270) is None
    assert claimed[4] not in claimed[:4]
    with catalog.begin() as session:
        assert p.purge_expired_idempotency_keys(session, now_ms=1369) == 0
        assert p.purge_expired_idempotency_keys(session, now_ms=1370) == 1
