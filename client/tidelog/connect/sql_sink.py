"""``sql-sink``: records written to a SQL table (SQLite, PostgreSQL, MariaDB) through SQLAlchemy.

``insert.mode``: insert | upsert (``INSERT … ON CONFLICT DO UPDATE`` on SQLite and PostgreSQL,
``ON DUPLICATE KEY UPDATE`` on MariaDB) | update. ``pk.mode``: none | kafka (the columns
``__connect_topic``, ``__connect_partition``, ``__connect_offset``) | record_key (the key's fields,
or ``pk.fields[0]`` for a scalar key) | record_value (``pk.fields`` of the value). With
``delete.enabled`` a tombstone (null value) deletes the row of its key. Debezium change events
(``before``/``after``/``op``) are understood directly: c/r/u upsert ``after``, d deletes, and a
column holding ``__debezium_unavailable_value`` (an unchanged TOAST column) is left as it is.

Each ``put`` is one transaction. Failures are classified: connection errors, serialization failures
and deadlocks are outages (retried, then the task fails); constraint violations, bad values and
unknown columns are data errors (a batch is bisected, the record goes to tolerance). The table must
exist: schemaless JSON cannot say its column types, so ``auto.create`` is refused (it needs a
declared schema, which this connector does not read yet).

SQLAlchemy and the drivers come with the ``connect`` extra: ``pip install 'tidelog-client[connect]'``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from tidelog.connect.api import (
    ConfigDef,
    ConfigKey,
    ConfigType,
    Connector,
    DataError,
    RetriableError,
    SinkRecord,
    SinkTask,
    SinkTaskContext,
)

__all__ = ["SqlSinkConnector", "SqlSinkTask", "classify_database_error"]

UNAVAILABLE = "__debezium_unavailable_value"  # Debezium's unavailable.value.placeholder
_RETRIABLE_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected
_RETRIABLE_MYSQL = {1205, 1213, 2002, 2003, 2006, 2013}  # lock wait timeout, deadlock, gone away
# MariaDB reports some bad values as OperationalError: no default (1364), NOT NULL (1048), duplicate
# (1062), unknown column (1054), out of range (1264), bad value (1366), too long (1406), foreign key (1452)
_DATA_MYSQL = {1048, 1054, 1062, 1264, 1364, 1366, 1406, 1452}


def classify_database_error(error: BaseException) -> BaseException:
    """Gives the RetriableError or DataError the runtime should see for a database failure."""
    from sqlalchemy import exc

    orig = getattr(error, "orig", None)
    sqlstate = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    mysql_code = (
        orig.args[0]
        if orig is not None and getattr(orig, "args", None) and isinstance(orig.args[0], int)
        else None
    )
    detail = f"{type(error).__name__}: {str(error).splitlines()[0]}"
    if sqlstate in _RETRIABLE_SQLSTATES or mysql_code in _RETRIABLE_MYSQL:
        return RetriableError(detail)
    if mysql_code in _DATA_MYSQL:
        return DataError(detail)
    if isinstance(
        error, (exc.OperationalError, exc.InterfaceError, exc.DisconnectionError, exc.TimeoutError)
    ):
        return RetriableError(detail)
    if isinstance(error, (exc.IntegrityError, exc.DataError, exc.ProgrammingError, exc.StatementError)):
        return DataError(detail)
    return error


class SqlSinkTask(SinkTask):
    def __init__(self) -> None:
        self._engine: Any = None
        self._tables: dict[str, Any] = {}
        self._config: Mapping[str, Any] = {}

    @staticmethod
    def engine_for(config: Mapping[str, Any]) -> Any:
        """Gives the SQLAlchemy engine of ``connection.url`` (+ user and password), with our drivers."""
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        url = make_url(str(config["connection.url"]))
        if config.get("connection.user"):
            url = url.set(username=str(config["connection.user"]))
        if config.get("connection.password"):
            url = url.set(password=str(config["connection.password"]))
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg2")
        elif url.drivername in ("mysql", "mariadb"):
            url = url.set(drivername=f"{url.drivername}+pymysql")
        return create_engine(url, pool_pre_ping=True)

    def start(self, config: Mapping[str, Any], context: SinkTaskContext) -> None:
        self._engine = self.engine_for(config)
        self._config = config

    def _table(self, topic: str) -> Any:
        from sqlalchemy import MetaData, Table
        from sqlalchemy.exc import NoSuchTableError

        name = str(self._config.get("table.name.format", "${topic}")).replace("${topic}", topic)
        if name not in self._tables:
            try:
                self._tables[name] = Table(name, MetaData(), autoload_with=self._engine)
            except NoSuchTableError:
                raise DataError(
                    f"table {name} does not exist (auto.create needs a declared schema)"
                ) from None
        return self._tables[name]

    def _pk(self, record: SinkRecord, row: Mapping[str, Any]) -> dict[str, Any]:
        mode = self._config.get("pk.mode", "none")
        fields = list(self._config.get("pk.fields", []))
        if mode == "kafka":
            return {
                "__connect_topic": record.topic,
                "__connect_partition": record.partition,
                "__connect_offset": record.offset,
            }
        if mode == "record_key":
            key = record.key
            if isinstance(key, Mapping):
                return {k: v for k, v in key.items() if not fields or k in fields}
            if key is None:
                raise DataError("pk.mode=record_key needs a key")
            return {(fields or ["id"])[0]: key}
        if mode == "record_value":
            missing = [f for f in fields if f not in row]
            if missing:
                raise DataError(f"the value has no primary key field {', '.join(missing)}")
            return {f: row[f] for f in fields}
        return {}

    @staticmethod
    def _cell(value: Any) -> Any:
        return json.dumps(value) if isinstance(value, (dict, list)) else value

    def _statement(self, record: SinkRecord) -> Any:
        from sqlalchemy import and_, delete, insert, update

        value = record.value
        delete_row = value is None
        if isinstance(value, Mapping) and "op" in value and ("after" in value or "before" in value):
            if value["op"] == "d":
                delete_row, value = True, value.get("before") or {}
            else:
                value = value.get("after") or {}
        table = self._table(record.topic)
        if delete_row:
            if not self._config.get("delete.enabled", False):
                return None
            key = self._pk(record, value if isinstance(value, Mapping) else {})
            if not key:
                raise DataError("delete.enabled needs a primary key (pk.mode record_key or record_value)")
            return delete(table).where(and_(*(table.c[k] == v for k, v in key.items())))
        if not isinstance(value, Mapping):
            raise DataError(f"a record value must be a JSON object to be a row, not {type(value).__name__}")
        row = {k: self._cell(v) for k, v in value.items() if v != UNAVAILABLE}
        row.update(self._pk(record, row))
        unknown = sorted(set(row) - set(table.c.keys()))
        if unknown:
            raise DataError(f"table {table.name} has no column {', '.join(unknown)}")
        mode = self._config.get("insert.mode", "insert")
        pk = list(self._pk(record, row))
        if mode == "update":
            if not pk:
                raise DataError("insert.mode=update needs a primary key")
            changes = {k: v for k, v in row.items() if k not in pk}
            return update(table).where(and_(*(table.c[k] == row[k] for k in pk))).values(changes)
        if mode == "upsert":
            if not pk:
                raise DataError("insert.mode=upsert needs a primary key")
            changes = {k: v for k, v in row.items() if k not in pk} or {pk[0]: row[pk[0]]}
            dialect = self._engine.dialect.name
            if dialect in ("mysql", "mariadb"):
                from sqlalchemy.dialects.mysql import insert as mysql_insert

                return mysql_insert(table).values(row).on_duplicate_key_update(**changes)
            if dialect == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                return pg_insert(table).values(row).on_conflict_do_update(index_elements=pk, set_=changes)
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            return sqlite_insert(table).values(row).on_conflict_do_update(index_elements=pk, set_=changes)
        return insert(table).values(row)

    def put(self, records: Sequence[SinkRecord]) -> None:
        from sqlalchemy import exc

        statements = [s for s in (self._statement(r) for r in records) if s is not None]
        if not statements:
            return
        try:
            with self._engine.begin() as connection:
                for statement in statements:
                    connection.execute(statement)
        except exc.SQLAlchemyError as error:
            classified = classify_database_error(error)
            if classified is error:
                raise
            raise classified from error

    def stop(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def _auto_create(value: Any) -> None:
    if value:
        raise ValueError("auto.create needs a declared schema; schemaless JSON cannot say its column types")


class SqlSinkConnector(Connector):
    type_name: ClassVar[str] = "sql-sink"
    kind: ClassVar[Literal["source", "sink"]] = "sink"

    def __init__(self) -> None:
        self._config: dict[str, Any] = {}

    @classmethod
    def config_def(cls) -> ConfigDef:
        return ConfigDef(
            (
                ConfigKey(
                    "connection.url",
                    ConfigType.STRING,
                    "SQLAlchemy URL: sqlite:///…, postgresql://…, mysql://… (MariaDB).",
                    required=True,
                    importance="HIGH",
                ),
                ConfigKey("connection.user", ConfigType.STRING, "User, if not in the URL.", default=""),
                ConfigKey(
                    "connection.password", ConfigType.PASSWORD, "Password, if not in the URL.", default=""
                ),
                ConfigKey(
                    "table.name.format",
                    ConfigType.STRING,
                    "Target table; ${topic} is the record's topic.",
                    default="${topic}",
                ),
                ConfigKey(
                    "insert.mode",
                    ConfigType.STRING,
                    "insert, upsert or update.",
                    default="insert",
                    choices=("insert", "upsert", "update"),
                ),
                ConfigKey(
                    "pk.mode",
                    ConfigType.STRING,
                    "none, kafka, record_key or record_value.",
                    default="none",
                    choices=("none", "kafka", "record_key", "record_value"),
                ),
                ConfigKey("pk.fields", ConfigType.LIST, "The primary key's columns.", default=[]),
                ConfigKey(
                    "delete.enabled", ConfigType.BOOLEAN, "A tombstone deletes its key's row.", default=False
                ),
                ConfigKey(
                    "auto.create",
                    ConfigType.BOOLEAN,
                    "Create a missing table (needs a declared schema).",
                    default=False,
                    validator=_auto_create,
                ),
            )
        )

    @classmethod
    def task_class(cls) -> type[SinkTask]:
        return SqlSinkTask

    def start(self, config: Mapping[str, Any]) -> None:
        self._config = dict(config)

    def task_configs(self, max_tasks: int) -> list[dict[str, Any]]:
        return [dict(self._config) for _ in range(max_tasks)]
