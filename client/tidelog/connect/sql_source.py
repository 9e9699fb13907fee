"""``sql-source``: rows of SQL tables (SQLite, PostgreSQL, MariaDB) as records, polled through SQLAlchemy.

The JDBC source connector's modes and WHERE clauses:

- ``bulk``: the whole table at every poll (no offset);
- ``incrementing``: ``WHERE inc > :last ORDER BY inc`` (new rows only);
- ``timestamp``: ``WHERE ts > :last AND ts < :upper ORDER BY ts``, with no row limit, so rows of one
  timestamp are read together; a row's offset is its timestamp only when it is the last row of that
  timestamp, the previous timestamp otherwise (the JDBC connector's conservative offsets): a crash
  between two rows of equal timestamp re-reads them, never skips one;
- ``timestamp+incrementing``: ``WHERE ts < :upper AND ((ts = :last_ts AND inc > :last_inc) OR ts >
  :last_ts) ORDER BY ts, inc``, exact offsets;
- a custom ``query`` instead of ``table.whitelist``, with the mode's clause appended.

``upper`` is now minus ``timestamp.delay.interval.ms``. One topic per table: ``topic.prefix`` +
table. Decimals become strings (no precision lost), datetimes ISO 8601 strings, bytes base64.

The JDBC connector's documented limit holds here too: a polling source can miss rows committed out
of order (a transaction that took an id or a timestamp earlier but committed after a later one was
read). ``postgres-cdc`` (logical replication) is the answer when that matters.
"""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar, Literal

from tidelog.connect.api import (
    ConfigDef,
    ConfigKey,
    ConfigType,
    Connector,
    SourceRecord,
    SourceTask,
    SourceTaskContext,
)

__all__ = ["SqlSourceConnector", "SqlSourceTask"]

MODES = ("bulk", "incrementing", "timestamp", "timestamp+incrementing")


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    return value


def _parse_ts(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


class SqlSourceTask(SourceTask):
    def __init__(self) -> None:
        self._engine: Any = None
        self._config: Mapping[str, Any] = {}
        self._sources: list[str] = []
        self._offsets: dict[str, dict[str, Any]] = {}
        self._tables: dict[str, Any] = {}
        self._next_poll = 0.0

    def start(self, config: Mapping[str, Any], context: SourceTaskContext) -> None:
        from tidelog.connect.sql_sink import SqlSinkTask

        self._engine = SqlSinkTask.engine_for(config)
        self._config = config
        self._sources = [config["query"]] if config.get("query") else list(config.get("table.whitelist", []))
        for source in self._sources:
            stored = context.offset(self._partition(source))
            self._offsets[source] = dict(stored) if stored else {}

    def _partition(self, source: str) -> dict[str, str]:
        return {"query": source} if self._config.get("query") else {"table": source}

    def _statement(self, source: str) -> Any:
        """Gives the mode's query of ``source``: SQLAlchemy Core over the reflected table (so each
        dialect binds timestamps in its own storage format), or the custom query as a subquery."""
        from sqlalchemy import MetaData, Table, and_, or_, select, text

        config, offset = self._config, self._offsets[source]
        mode = config.get("mode", "bulk")
        if config.get("query"):
            from_ = select(text("*")).select_from(text(f"({source}) AS q")).subquery("q")
            columns = from_.c
            base = select(from_)
        else:
            if source not in self._tables:
                self._tables[source] = Table(source, MetaData(), autoload_with=self._engine)
            table = self._tables[source]
            columns = table.c
            base = select(table)
        if mode == "bulk":
            return base
        inc = columns[config["incrementing.column.name"]] if config.get("incrementing.column.name") else None
        ts = columns[config["timestamp.column.name"]] if config.get("timestamp.column.name") else None
        delay = dt.timedelta(milliseconds=int(config.get("timestamp.delay.interval.ms", 0)))
        upper = dt.datetime.now(dt.UTC).replace(tzinfo=None) - delay
        limit = int(config.get("batch.max.rows", 100))
        last_ts = _parse_ts(offset.get("timestamp")) or dt.datetime(1970, 1, 1)
        if mode == "incrementing":
            assert inc is not None
            return base.where(inc > offset.get("incrementing", -1)).order_by(inc).limit(limit)
        assert ts is not None
        if mode == "timestamp":
            return base.where(and_(ts > last_ts, ts < upper)).order_by(ts)
        assert inc is not None
        after = or_(and_(ts == last_ts, inc > offset.get("incrementing", -1)), ts > last_ts)
        return base.where(and_(ts < upper, after)).order_by(ts, inc).limit(limit)

    def _rows(self, source: str) -> list[dict[str, Any]]:
        from sqlalchemy import exc

        try:
            with self._engine.connect() as connection:
                return [dict(row._mapping) for row in connection.execute(self._statement(source))]
        except exc.SQLAlchemyError as error:
            from tidelog.connect.sql_sink import classify_database_error

            raise classify_database_error(error) from error

    def poll(self) -> Sequence[SourceRecord]:
        wait = self._next_poll - time.monotonic()
        if wait > 0:
            time.sleep(min(wait, 1.0))
            return []
        self._next_poll = time.monotonic() + int(self._config.get("poll.interval.ms", 5000)) / 1000
        mode = self._config.get("mode", "bulk")
        inc, ts = (
            self._config.get("incrementing.column.name", ""),
            self._config.get("timestamp.column.name", ""),
        )
        records = []
        for source in self._sources:
            topic = f"{self._config.get('topic.prefix', '')}{source if not self._config.get('query') else ''}"
            rows = self._rows(source)
            previous = self._offsets[source].get("timestamp")
            for index, row in enumerate(rows):
                offset: dict[str, Any] = {}
                if mode in ("incrementing", "timestamp+incrementing"):
                    offset["incrementing"] = row[inc]
                if mode == "timestamp+incrementing":
                    offset["timestamp"] = row[ts].isoformat()
                elif mode == "timestamp":
                    stamp = row[ts].isoformat()
                    last_of_stamp = index == len(rows) - 1 or rows[index + 1][ts] != row[ts]
                    offset["timestamp"] = stamp if last_of_stamp else previous
                    if last_of_stamp:
                        previous = stamp
                if offset:
                    self._offsets[source] = {k: v for k, v in offset.items() if v is not None}
                value = {k: _json_value(v) for k, v in row.items()}
                key = {inc: value[inc]} if inc and inc in value else None
                records.append(
                    SourceRecord(self._partition(source), dict(self._offsets[source]), topic, value, key=key)
                )
        return records

    def stop(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def _mode(value: Any) -> None:
    if value not in MODES:
        raise ValueError(f"must be one of {', '.join(MODES)}")


class SqlSourceConnector(Connector):
    type_name: ClassVar[str] = "sql-source"
    kind: ClassVar[Literal["source", "sink"]] = "source"

    def __init__(self) -> None:
        self._config: dict[str, Any] = {}

    @classmethod
    def config_def(cls) -> ConfigDef:
        return ConfigDef(
            (
                ConfigKey(
                    "connection.url",
                    ConfigType.STRING,
                    "SQLAlchemy URL of the database.",
                    required=True,
                    importance="HIGH",
                ),
                ConfigKey("connection.user", ConfigType.STRING, "User, if not in the URL.", default=""),
                ConfigKey(
                    "connection.password", ConfigType.PASSWORD, "Password, if not in the URL.", default=""
                ),
                ConfigKey("table.whitelist", ConfigType.LIST, "Tables to read (or give query).", default=[]),
                ConfigKey("query", ConfigType.STRING, "A custom query instead of tables.", default=""),
                ConfigKey(
                    "mode",
                    ConfigType.STRING,
                    "bulk, incrementing, timestamp or timestamp+incrementing.",
                    default="bulk",
                    validator=_mode,
                ),
                ConfigKey(
                    "incrementing.column.name", ConfigType.STRING, "A strictly increasing column.", default=""
                ),
                ConfigKey(
                    "timestamp.column.name",
                    ConfigType.STRING,
                    "A last-modified timestamp column.",
                    default="",
                ),
                ConfigKey(
                    "timestamp.delay.interval.ms",
                    ConfigType.LONG,
                    "How old a timestamp must be before its row is read.",
                    default=0,
                ),
                ConfigKey(
                    "topic.prefix", ConfigType.STRING, "Prefix of the topic of each table.", default=""
                ),
                ConfigKey(
                    "poll.interval.ms", ConfigType.INT, "Wait between two polls of a table.", default=5000
                ),
                ConfigKey(
                    "batch.max.rows",
                    ConfigType.INT,
                    "Most rows per query (not in timestamp mode).",
                    default=100,
                ),
            )
        )

    @classmethod
    def task_class(cls) -> type[SourceTask]:
        return SqlSourceTask

    def start(self, config: Mapping[str, Any]) -> None:
        mode = config.get("mode", "bulk")
        if mode in ("incrementing", "timestamp+incrementing") and not config.get("incrementing.column.name"):
            raise ValueError(f"mode={mode} needs incrementing.column.name")
        if mode.startswith("timestamp") and not config.get("timestamp.column.name"):
            raise ValueError(f"mode={mode} needs timestamp.column.name")
        if not config.get("query") and not config.get("table.whitelist"):
            raise ValueError("give table.whitelist or query")
        if config.get("query") and not config.get("topic.prefix"):
            raise ValueError("a query needs topic.prefix (its topic's name)")
        self._config = dict(config)

    def task_configs(self, max_tasks: int) -> list[dict[str, Any]]:
        tables = list(self._config.get("table.whitelist", []))
        if self._config.get("query") or len(tables) <= 1:
            return [dict(self._config)]
        groups = [tables[i::max_tasks] for i in range(min(max_tasks, len(tables)))]
        return [{**self._config, "table.whitelist": ",".join(group)} for group in groups]
