"""``sql-sink`` against SQLite, PostgreSQL and MariaDB: upserts, tombstone deletes, Debezium envelopes
(unchanged TOAST columns left alone), and a poison record found by bisection and dead-lettered."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, create_engine, select, text

from tests.broker_process import BrokerProcess
from tests.connect.conftest import await_for, read_topic

pytestmark = pytest.mark.e2e

MARIADB_URL = os.environ.get("TIDELOG_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306")


def _unreachable(what: str, error: Exception) -> None:
    message = f"{what} unreachable: {str(error).splitlines()[0]}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: database tests must run)")
    pytest.skip(message)


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sink.db'}"
    elif request.param == "postgresql":
        yield request.getfixturevalue("pg_url")
    else:
        name = f"tidelog_test_{uuid.uuid4().hex[:10]}"
        server = create_engine(MARIADB_URL)
        try:
            with server.begin() as connection:
                connection.execute(text(f"CREATE DATABASE {name}"))
        except Exception as error:
            server.dispose()
            _unreachable("MariaDB", error)
        try:
            yield f"{MARIADB_URL}/{name}"
        finally:
            with server.begin() as connection:
                connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            server.dispose()


def _produce(url: str, topic: str, records: list[dict[str, Any]]) -> None:
    httpx.post(f"{url}/v1/topics", json={"name": topic, "partitions": 1}, timeout=10)
    answer = httpx.post(
        f"{url}/v1/topics/{topic}/records", json={"records": records, "key_format": "json"}, timeout=10
    )
    assert answer.status_code == 200, answer.text


async def test_upserts_deletes_envelopes_and_a_dead_lettered_poison_record(
    broker_process: BrokerProcess, worker: Any, database_url: str
) -> None:
    engine = create_engine(database_url)
    table = Table(
        "customers",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("name", String(100), nullable=False),
        Column("bio", Text),
    )
    table.metadata.create_all(engine)
    url = broker_process.url
    big_bio = "x" * 3000
    _produce(
        url,
        "customers",
        [
            {"key": {"id": 1}, "value": {"id": 1, "name": "ada", "bio": big_bio}},
            {"key": {"id": 2}, "value": {"id": 2, "name": "bob", "bio": None}},
            {"key": {"id": 1}, "value": {"id": 1, "name": "ada lovelace", "bio": big_bio}},
            {"key": {"id": 3}, "value": {"id": 3, "bio": "no name: NOT NULL refuses it"}},
            {"key": {"id": 2}, "value": None},
            # a Debezium update whose unchanged TOAST column was not sent
            {
                "key": {"id": 1},
                "value": {
                    "before": None,
                    "after": {"id": 1, "name": "countess", "bio": "__debezium_unavailable_value"},
                    "op": "u",
                    "source": {"lsn": 1},
                    "ts_ms": 1,
                },
            },
            {
                "key": {"id": 4},
                "value": {"before": None, "after": {"id": 4, "name": "dee", "bio": None}, "op": "c"},
            },
            {"key": {"id": 4}, "value": {"before": {"id": 4}, "after": None, "op": "d"}},
        ],
    )
    answer = httpx.post(
        f"{url}/v1/connectors",
        json={
            "name": "db",
            "config": {
                "connector.class": "sql-sink",
                "topics": "customers",
                "connection.url": database_url,
                "insert.mode": "upsert",
                "pk.mode": "record_key",
                "delete.enabled": "true",
                "errors.tolerance": "all",
                "errors.deadletterqueue.topic.name": "customers-dlq",
                "errors.deadletterqueue.context.headers.enable": "true",
            },
        },
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    await await_for(lambda: httpx.get(f"{url}/v1/connectors/db/offsets").json()["offsets"], 90)
    with engine.connect() as connection:
        rows = connection.execute(select(table).order_by(table.c.id)).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [(1, "countess", big_bio)]
    dead = read_topic(url, "customers-dlq")
    assert [r["value"] for r in dead] == [{"id": 3, "bio": "no name: NOT NULL refuses it"}]
    headers = {h["key"]: h["value"] for h in dead[0]["headers"]}
    assert headers["__connect.errors.offset"] == "3"
    assert headers["__connect.errors.exception.class.name"] == "tidelog.connect.api.DataError"
    # the NOT NULL column, named in each dialect's words
    assert "name" in headers["__connect.errors.exception.message"]


def test_auto_create_without_a_schema_is_refused_with_a_reason(broker_process: BrokerProcess) -> None:
    answer = httpx.post(
        f"{broker_process.url}/v1/connectors",
        json={
            "name": "ac",
            "config": {
                "connector.class": "sql-sink",
                "topics": "t",
                "connection.url": "sqlite:///x.db",
                "auto.create": "true",
            },
        },
    )
    assert answer.status_code == 422
    assert "schema" in " ".join(answer.json()["errors"]["auto.create"])
