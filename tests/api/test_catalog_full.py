"""A full catalog database answers 507 50701 and makes the broker not ready, until it has room again.

SQLite's ``max_page_count`` makes the real SQLite engine answer SQLITE_FULL ("database or disk is
full") exactly as a full disk does, on any machine.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy import event, text


def _limit_pages(catalog: Any, pages: int | None) -> None:
    """Every new catalog connection gets ``max_page_count`` (None: SQLite's default)."""
    engine = catalog.engine
    for listener in getattr(catalog, "_test_page_limits", []):
        event.remove(engine, "connect", listener)

    def limit(dbapi_connection: Any, _record: Any) -> None:
        value = pages if pages is not None else 1073741823
        dbapi_connection.execute(f"PRAGMA max_page_count = {value}")

    event.listen(engine, "connect", limit)
    catalog._test_page_limits = [limit]
    engine.dispose()


def test_sqlite_full_answers_507_and_readiness_follows(client: Any) -> None:
    catalog = client.app.state.catalog
    raw = sqlite3.connect(catalog.engine.url.database, isolation_level=None)
    try:
        raw.execute("VACUUM")  # no free pages left for the inserts to reuse
    finally:
        raw.close()
    with catalog.engine.connect() as connection:
        pages = int(connection.execute(text("PRAGMA page_count")).scalar_one())
    _limit_pages(catalog, pages)
    full = None
    for _ in range(300):
        answer = client.post("/v1/producers")
        if answer.status_code != 201:
            full = answer
            break
    assert full is not None, "the catalog never filled up"
    assert full.status_code == 507, full.text
    assert full.headers["content-type"] == "application/problem+json"
    assert full.json()["error_code"] == 50701
    assert int(full.headers["retry-after"]) >= 1
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "catalog" in ready.json()["detail"]
    # room again: readiness comes back by itself (the watcher's probe), and writes work
    _limit_pages(catalog, None)
    deadline = time.monotonic() + 20
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").text
        time.sleep(0.2)
    assert client.post("/v1/producers").status_code == 201
