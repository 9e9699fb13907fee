"""``sql-source`` modes against SQLite, PostgreSQL and MariaDB, the task driven directly: new rows only,
exact offsets, and the equal-timestamp crash case (a restart from a stored offset loses no row)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, Numeric, String, Table, create_engine, insert

from tests.connect.test_sql_sink_e2e import database_url  # noqa: F401 - the three-database fixture
from tidelog.connect import plugins
from tidelog.connect.api import SourceOffset, SourcePartition, SourceTaskContext
from tidelog.connect.config import normalise, parse_groups
from tidelog.connect.sql_source import SqlSourceTask

T0 = dt.datetime(2026, 1, 1, 12, 0, 0)


class Stored(SourceTaskContext):
    def __init__(self, offsets: Mapping[str, Any] | None = None) -> None:
        self.offsets = offsets

    def offset(self, partition: SourcePartition) -> SourceOffset | None:
        return self.offsets


def _task(url: str, offsets: Mapping[str, Any] | None = None, **config: str) -> SqlSourceTask:
    raw = normalise(
        {
            "name": "s",
            "connector.class": "sql-source",
            "connection.url": url,
            "table.whitelist": "items",
            "topic.prefix": "db-",
            "poll.interval.ms": "0",
            **config,
        }
    )
    values = parse_groups(plugins.config_groups(plugins.find("sql-source")), raw)
    task = SqlSourceTask()
    task.start(values, Stored(offsets))
    return task


def _setup(url: str) -> tuple[Any, Table]:
    engine = create_engine(url)
    table = Table(
        "items",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("name", String(50)),
        Column("price", Numeric(10, 2)),
        Column("updated", DateTime),
    )
    table.metadata.create_all(engine)
    return engine, table


def test_incrementing_reads_new_rows_only_with_decimals_as_strings(database_url: str) -> None:  # noqa: F811
    engine, table = _setup(database_url)
    with engine.begin() as c:
        c.execute(insert(table), [{"id": i, "name": f"n{i}", "price": "1.10", "updated": T0} for i in (1, 2)])
    task = _task(database_url, mode="incrementing", **{"incrementing.column.name": "id"})
    records = task.poll()
    assert [r.value["id"] for r in records] == [1, 2]
    assert records[0].value["price"] == "1.10" and records[0].topic == "db-items"
    assert records[-1].source_offset == {"incrementing": 2}
    assert records[0].source_partition == {"table": "items"}
    with engine.begin() as c:
        c.execute(insert(table), [{"id": 3, "name": "n3", "price": "2", "updated": T0}])
    assert [r.value["id"] for r in task.poll()] == [3]
    task.stop()
    engine.dispose()


def test_timestamp_incrementing_offsets_are_exact(database_url: str) -> None:  # noqa: F811
    engine, table = _setup(database_url)
    with engine.begin() as c:
        c.execute(insert(table), [{"id": i, "name": "x", "price": "1", "updated": T0} for i in (1, 2, 3)])
    config = {
        "mode": "timestamp+incrementing",
        "incrementing.column.name": "id",
        "timestamp.column.name": "updated",
        "batch.max.rows": "2",
    }
    task = _task(database_url, **config)
    first = task.poll()
    assert [r.value["id"] for r in first] == [1, 2]
    task.stop()
    # a crash after the second row: the next task starts from its offset, with the same timestamp
    restarted = _task(database_url, first[-1].source_offset, **config)
    assert [r.value["id"] for r in restarted.poll()] == [3]
    restarted.stop()
    engine.dispose()


def test_timestamp_mode_stores_conservative_offsets_for_equal_timestamps(database_url: str) -> None:  # noqa: F811
    engine, table = _setup(database_url)
    later = T0 + dt.timedelta(seconds=1)
    with engine.begin() as c:
        c.execute(
            insert(table),
            [
                {"id": 1, "name": "a", "price": "1", "updated": T0},
                {"id": 2, "name": "b", "price": "1", "updated": later},
                {"id": 3, "name": "c", "price": "1", "updated": later},
            ],
        )
    config = {"mode": "timestamp", "timestamp.column.name": "updated"}
    task = _task(database_url, **config)
    records = task.poll()
    task.stop()
    assert [r.value["id"] for r in records] == [1, 2, 3]
    # row 2 shares its timestamp with row 3: its offset is still the previous timestamp
    assert [r.source_offset for r in records] == [
        {"timestamp": T0.isoformat()},
        {"timestamp": T0.isoformat()},
        {"timestamp": later.isoformat()},
    ]
    # crash after row 2 was stored: rows 2 and 3 come again, none is lost
    restarted = _task(database_url, records[1].source_offset, **config)
    again = restarted.poll()
    restarted.stop()
    assert [r.value["id"] for r in again] == [2, 3]
    engine.dispose()


def test_bad_mode_settings_are_refused() -> None:
    cls = plugins.find("sql-source")
    connector = cls()
    with pytest.raises(ValueError, match=r"incrementing\.column\.name"):
        connector.start({"mode": "incrementing", "table.whitelist": ["t"]})
