"""``ConnectService``: connectors, tasks, status and offsets in the catalog, for every broker at once.

Connector types are found with ``tidelog.connect.plugins`` (entry points), so the broker validates
configs and computes task configs (``Connector.task_configs``) itself when a config is written or the
connector restarted; workers only run tasks. Every change is one catalog transaction, so any broker
answers any request and status is consistent at once. Workers heartbeat through
``/v1/connect/workers/{id}/heartbeat``; each heartbeat runs the assignment (``app.connect.assignment``)
under the catalog's connect lock.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from anyio import to_thread
from sqlalchemy import delete
from sqlalchemy.orm import Session

from app.catalog import Catalog
from app.catalog import connect as db
from app.connect.assignment import TaskSlot, assign
from app.connect.errors import (
    ConnectorExistsError,
    ConnectorNotStoppedError,
    InvalidConnectorConfigError,
    StaleTaskGenerationError,
    UnknownConnectorError,
    UnknownConnectorPluginError,
    UnknownConnectorTaskError,
)
from app.errors_base import InvalidParameterError
from tidelog.connect import plugins as connect_plugins
from tidelog.connect.api import Connector
from tidelog.connect.config import (
    HIDDEN,
    ConfigValidationError,
    definitions,
    hide,
    normalise,
    parse_groups,
    validate,
)

__all__ = ["TARGET_STATES", "ConnectService", "TaskAssignment"]

T = TypeVar("T")
TARGET_STATES = ("RUNNING", "PAUSED", "STOPPED")
TASK_STATES = ("UNASSIGNED", "RUNNING", "PAUSED", "FAILED", "RESTARTING")
Config = dict[str, str | None]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def sink_group(name: str) -> str:
    """The consumer group that holds a sink connector's offsets."""
    return f"connect-{name}"


@dataclass(frozen=True, slots=True)
class TaskAssignment:
    """One task a worker must run, as its heartbeat answer gives it."""

    connector: str
    task: int
    generation: int
    restart_epoch: int
    target_state: str
    connector_config: Config
    task_config: Config


class ConnectService:
    def __init__(self, catalog: Catalog, *, worker_session_timeout_ms: int = 10_000) -> None:
        self.catalog = catalog
        self.worker_session_timeout_ms = worker_session_timeout_ms

    @staticmethod
    async def _run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await to_thread.run_sync(lambda: fn(*args, **kwargs))

    # ------------------------------------------------------------------ plugins

    @staticmethod
    def _plugin(connector_class: str) -> type[Connector]:
        try:
            return connect_plugins.find(connector_class)
        except connect_plugins.UnknownPluginError:
            raise UnknownConnectorPluginError(
                f"no connector plugin {connector_class!r} is installed", plugin=connector_class
            ) from None

    def list_plugins(self) -> list[dict[str, str]]:
        return [
            {"class": name, "type": cls.kind, "version": cls.version}
            for name, cls in sorted(connect_plugins.plugins().items())
        ]

    def plugin_config(self, plugin: str) -> list[dict[str, Any]]:
        return definitions(connect_plugins.config_groups(self._plugin(plugin)))

    def validate(self, plugin: str, raw: Mapping[str, Any]) -> dict[str, Any]:
        cls = self._plugin(plugin)
        config = normalise(raw)
        extra: dict[str, list[str]] = {}
        if cls.kind == "sink" and not config.get("topics") and not config.get("topics.regex"):
            extra["topics"] = ["A sink connector needs topics or topics.regex."]
        if cls.kind == "sink" and config.get("topics") and config.get("topics.regex"):
            extra["topics.regex"] = ["Give topics or topics.regex, not both."]
        if cls.kind == "sink" and config.get("errors.deadletterqueue.topic.name") in (
            config.get("topics") or ""
        ).split(","):
            extra["errors.deadletterqueue.topic.name"] = ["The dead-letter topic cannot be a consumed topic."]
        try:
            from tidelog.connect.transforms import build_chain

            build_chain(config)
        except ConfigValidationError as error:
            for key, messages in error.errors.items():
                extra.setdefault(key, []).extend(messages)
        return validate(cls.type_name, connect_plugins.config_groups(cls), config, extra)

    def _checked(self, name: str, raw: Mapping[str, Any]) -> tuple[type[Connector], Config, list[Config]]:
        """Gives the plugin, the normalised config and the task configs; raises on an invalid config."""
        config = normalise(raw)
        if config.get("name") not in (None, name):
            raise InvalidConnectorConfigError(
                f"the config's name {config.get('name')!r} is not the connector's name {name!r}",
                errors={"name": ["must be the connector's name"]},
            )
        config["name"] = name
        connector_class = config.get("connector.class")
        if not connector_class:
            raise InvalidConnectorConfigError(
                "connector.class is required", errors={"connector.class": ["Missing required configuration"]}
            )
        cls = self._plugin(connector_class)
        report = self.validate(connector_class, config)
        if report["error_count"]:
            errors = {
                c["value"]["name"]: c["value"]["errors"] for c in report["configs"] if c["value"]["errors"]
            }
            summary = "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items())
            raise InvalidConnectorConfigError(f"the connector config is invalid: {summary}", errors=errors)
        merged = parse_groups(connect_plugins.config_groups(cls), config)
        connector = cls()
        try:
            connector.start(merged)
            task_configs = connector.task_configs(int(merged.get("tasks.max", 1)))
        except Exception as error:  # the plugin's own checks: a readable 422, never a 500
            raise InvalidConnectorConfigError(
                f"{cls.type_name} refused the config: {error}", errors={"connector.class": [str(error)]}
            ) from None
        finally:
            connector.stop()
        return cls, config, [normalise(tc) for tc in task_configs]

    # ------------------------------------------------------------------ connectors

    def _get(self, session: Session, name: str) -> db.ConnectorRow:
        row = db.get_connector(session, name=name)
        if row is None:
            raise UnknownConnectorError(f"connector {name!r} does not exist", connector=name)
        return row

    @staticmethod
    def _hidden(row: db.ConnectorRow, config: Config) -> Config:
        try:
            groups = connect_plugins.config_groups(connect_plugins.find(row.connector_class))
        except connect_plugins.UnknownPluginError:
            groups = {}
        return hide(config, groups)

    def _info(self, session: Session, row: db.ConnectorRow) -> dict[str, Any]:
        config: Config = json.loads(row.config)
        tasks = [] if row.target_state == "STOPPED" else db.list_tasks(session, connector=row.name)
        return {
            "name": row.name,
            "config": self._hidden(row, config),
            "tasks": [{"connector": row.name, "task": t.task_id} for t in tasks],
            "type": row.kind,
        }

    def _write_tasks(
        self, session: Session, row: db.ConnectorRow, task_configs: Sequence[Config], now: int
    ) -> None:
        existing = {t.task_id: t for t in db.list_tasks(session, connector=row.name)}
        for task_id, task_config in enumerate(task_configs):
            text = _dumps(task_config)
            task = existing.pop(task_id, None)
            if task is None:
                session.add(
                    db.ConnectTaskRow(
                        connector=row.name,
                        task_id=task_id,
                        config=text,
                        worker_id=None,
                        generation=0,
                        state="UNASSIGNED",
                        trace=None,
                        restart_epoch=0,
                        updated_at_ms=now,
                    )
                )
            else:
                # A reconfigured task restarts with its new config (Kafka restarts every task).
                task.config = text
                task.restart_epoch += 1
                task.updated_at_ms = now
        for task in existing.values():
            session.delete(task)

    def _create(self, name: str, raw: Mapping[str, Any], initial_state: str) -> dict[str, Any]:
        cls, config, task_configs = self._checked(name, raw)
        now = _now_ms()
        with self.catalog.begin() as session:
            if db.get_connector(session, name=name) is not None:
                raise ConnectorExistsError(f"connector {name} already exists", connector=name)
            row = db.ConnectorRow(
                name=name,
                connector_class=str(config["connector.class"]),
                kind=cls.kind,
                config=_dumps(config),
                target_state=initial_state,
                trace=None,
                created_at_ms=now,
                updated_at_ms=now,
            )
            session.add(row)
            session.flush()
            self._write_tasks(session, row, task_configs, now)
            session.flush()
            return self._info(session, row)

    async def create(
        self, name: str, raw: Mapping[str, Any], initial_state: str = "RUNNING"
    ) -> dict[str, Any]:
        if initial_state not in TARGET_STATES:
            raise InvalidParameterError(f"initial_state must be one of {', '.join(TARGET_STATES)}")
        return await self._run(self._create, name, raw, initial_state)

    def _put_config(self, name: str, raw: Mapping[str, Any], patch: bool) -> tuple[dict[str, Any], bool]:
        with self.catalog.read() as session:
            current = db.get_connector(session, name=name)
            previous: Config = json.loads(current.config) if current is not None else {}
        if patch:
            if current is None:
                raise UnknownConnectorError(f"connector {name!r} does not exist", connector=name)
            merged: dict[str, Any] = dict(previous)
            for key, value in normalise(raw).items():
                if value is None:
                    merged.pop(key, None)  # a null in a PATCH removes the setting (KIP-477)
                else:
                    merged[key] = value
            raw = merged
        # A GET shows secrets as [hidden]: putting that back keeps the stored value.
        raw = {
            k: (previous.get(k) if v == HIDDEN and k in previous else v) for k, v in normalise(raw).items()
        }
        if current is None:
            return self._create(name, raw, "RUNNING"), True
        cls, config, task_configs = self._checked(name, raw)
        now = _now_ms()
        with self.catalog.begin() as session:
            row = self._get(session, name)
            row.config = _dumps(config)
            row.connector_class = str(config["connector.class"])
            row.kind = cls.kind
            row.trace = None
            row.updated_at_ms = now
            self._write_tasks(session, row, task_configs, now)
            session.flush()
            return self._info(session, row), False

    async def put_config(self, name: str, raw: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        return await self._run(self._put_config, name, raw, False)

    async def patch_config(self, name: str, raw: Mapping[str, Any]) -> dict[str, Any]:
        info, _created = await self._run(self._put_config, name, raw, True)
        return info

    def _delete(self, name: str) -> str:
        with self.catalog.begin() as session:
            row = self._get(session, name)
            kind = row.kind
            session.execute(delete(db.ConnectTaskRow).where(db.ConnectTaskRow.connector == name))
            session.execute(delete(db.ConnectTopicRow).where(db.ConnectTopicRow.connector == name))
            session.delete(row)
            return kind

    async def delete(self, name: str) -> None:
        # Offsets stay, as in Kafka: a connector created again with this name resumes from them.
        await self._run(self._delete, name)

    def _names(self) -> list[str]:
        with self.catalog.read() as session:
            return [row.name for row in db.list_connectors(session)]

    async def names(self) -> list[str]:
        return await self._run(self._names)

    def _info_of(self, name: str) -> dict[str, Any]:
        with self.catalog.read() as session:
            return self._info(session, self._get(session, name))

    async def info(self, name: str) -> dict[str, Any]:
        return await self._run(self._info_of, name)

    async def config(self, name: str) -> Config:
        info = await self.info(name)
        config: Config = info["config"]
        return config

    def _tasks(self, name: str) -> list[dict[str, Any]]:
        with self.catalog.read() as session:
            row = self._get(session, name)
            if row.target_state == "STOPPED":
                return []
            return [
                {
                    "id": {"connector": name, "task": t.task_id},
                    "config": self._hidden(row, json.loads(t.config)),
                }
                for t in db.list_tasks(session, connector=name)
            ]

    async def tasks(self, name: str) -> list[dict[str, Any]]:
        return await self._run(self._tasks, name)

    # ------------------------------------------------------------------ status

    @staticmethod
    def _live(session: Session, now: int) -> dict[str, db.ConnectWorkerRow]:
        return {
            w.worker_id: w for w in db.list_workers(session) if w.last_seen_ms + w.session_timeout_ms >= now
        }

    @staticmethod
    def _task_status(task: db.ConnectTaskRow, live: Mapping[str, object]) -> dict[str, Any]:
        state = task.state
        if task.worker_id is None or task.worker_id not in live:
            state = "UNASSIGNED" if state != "FAILED" else state
        out: dict[str, Any] = {"id": task.task_id, "state": state, "worker_id": task.worker_id or ""}
        if task.trace and state == "FAILED":
            out["trace"] = task.trace
        return out

    def _status(self, session: Session, row: db.ConnectorRow, now: int) -> dict[str, Any]:
        live = self._live(session, now)
        tasks = [] if row.target_state == "STOPPED" else db.list_tasks(session, connector=row.name)
        task_status = [self._task_status(t, live) for t in tasks]
        worker = next((t.worker_id for t in tasks if t.worker_id in live), None) or (
            min(live) if live else ""
        )
        if row.trace:
            state = "FAILED"
        elif row.target_state in ("STOPPED", "PAUSED"):
            state = row.target_state
        else:
            state = "RUNNING" if live else "UNASSIGNED"
        connector: dict[str, Any] = {"state": state, "worker_id": worker}
        if row.trace:
            connector["trace"] = row.trace
        return {"name": row.name, "connector": connector, "tasks": task_status, "type": row.kind}

    def _status_of(self, name: str) -> dict[str, Any]:
        with self.catalog.read() as session:
            return self._status(session, self._get(session, name), _now_ms())

    async def status(self, name: str) -> dict[str, Any]:
        return await self._run(self._status_of, name)

    def _expanded(self, expand: Sequence[str]) -> dict[str, dict[str, Any]]:
        now = _now_ms()
        out: dict[str, dict[str, Any]] = {}
        with self.catalog.read() as session:
            for row in db.list_connectors(session):
                entry: dict[str, Any] = {}
                if "status" in expand:
                    entry["status"] = self._status(session, row, now)
                if "info" in expand:
                    entry["info"] = self._info(session, row)
                out[row.name] = entry
        return out

    async def expanded(self, expand: Sequence[str]) -> dict[str, dict[str, Any]]:
        return await self._run(self._expanded, expand)

    def _task_status_of(self, name: str, task_id: int) -> dict[str, Any]:
        with self.catalog.read() as session:
            row = self._get(session, name)
            task = self._task_row(session, row, task_id)
            return self._task_status(task, self._live(session, _now_ms()))

    async def task_status(self, name: str, task_id: int) -> dict[str, Any]:
        return await self._run(self._task_status_of, name, task_id)

    @staticmethod
    def _task_row(session: Session, row: db.ConnectorRow, task_id: int) -> db.ConnectTaskRow:
        task = session.get(db.ConnectTaskRow, (row.name, task_id))
        if task is None or row.target_state == "STOPPED":
            raise UnknownConnectorTaskError(
                f"connector {row.name} has no task {task_id}", connector=row.name, task=task_id
            )
        return task

    def _snapshot(self) -> dict[str, dict[str, Any]]:
        now = _now_ms()
        with self.catalog.read() as session:
            return {row.name: self._status(session, row, now) for row in db.list_connectors(session)}

    async def snapshot(self) -> dict[str, dict[str, Any]]:
        """Gives the status of every connector (the SSE stream sends what changes)."""
        return await self._run(self._snapshot)

    # ------------------------------------------------------------------ lifecycle

    def _restart(self, name: str, include_tasks: bool, only_failed: bool) -> dict[str, Any] | None:
        now = _now_ms()
        with self.catalog.begin() as session:
            row = self._get(session, name)
            live = self._live(session, now)
            connector_failed = bool(row.trace)
            if not only_failed or connector_failed:
                row.trace = None  # restarting the connector recomputes its task configs below
            if include_tasks:
                for task in db.list_tasks(session, connector=name):
                    failed = self._task_status(task, live)["state"] == "FAILED"
                    if only_failed and not failed:
                        continue
                    task.restart_epoch += 1
                    task.state = "RESTARTING"
                    task.trace = None
                    task.updated_at_ms = now
            config = json.loads(row.config)
        if not only_failed or connector_failed:
            try:
                _cls, _config, task_configs = self._checked(name, config)
            except InvalidConnectorConfigError as error:
                with self.catalog.begin() as session:
                    self._get(session, name).trace = f"InvalidConnectorConfigError: {error.detail}"
            else:
                with self.catalog.begin() as session:
                    row = self._get(session, name)
                    existing = {t.task_id: t.config for t in db.list_tasks(session, connector=name)}
                    if [existing.get(i) for i in range(len(task_configs))] != [
                        _dumps(c) for c in task_configs
                    ] or len(existing) != len(task_configs):
                        self._write_tasks(session, row, task_configs, now)
        if not include_tasks and not only_failed:
            return None
        return self._status_of(name)

    async def restart(self, name: str, *, include_tasks: bool, only_failed: bool) -> dict[str, Any] | None:
        """Restarts the connector (and its tasks, or only the failed ones); gives the status when tasks
        were included (Kafka answers 202 with it), else ``None`` (204)."""
        return await self._run(self._restart, name, include_tasks, only_failed)

    def _restart_task(self, name: str, task_id: int) -> None:
        with self.catalog.begin() as session:
            task = self._task_row(session, self._get(session, name), task_id)
            task.restart_epoch += 1
            task.state = "RESTARTING"
            task.trace = None
            task.updated_at_ms = _now_ms()

    async def restart_task(self, name: str, task_id: int) -> None:
        await self._run(self._restart_task, name, task_id)

    def _set_target(self, name: str, state: str) -> None:
        with self.catalog.begin() as session:
            row = self._get(session, name)
            row.target_state = state
            row.updated_at_ms = _now_ms()

    async def set_target_state(self, name: str, state: Literal["RUNNING", "PAUSED", "STOPPED"]) -> None:
        await self._run(self._set_target, name, state)

    # ------------------------------------------------------------------ offsets and topics

    def _source_offsets(self, name: str) -> tuple[str, list[dict[str, Any]]]:
        with self.catalog.read() as session:
            row = self._get(session, name)
            if row.kind == "sink":
                return "sink", []
            return "source", [
                {"partition": json.loads(o.partition_key), "offset": json.loads(o.offset)}
                for o in db.list_offsets(session, connector=name)
            ]

    async def offsets(self, name: str, group_offsets: Callable[[str], Any]) -> dict[str, Any]:
        """Gives ``{"offsets": [{"partition": …, "offset": …}]}`` (Kafka's ConnectorOffsets);
        ``group_offsets`` reads a sink's consumer group."""
        kind, offsets = await self._run(self._source_offsets, name)
        if kind == "sink":
            committed = await group_offsets(sink_group(name))
            offsets = [
                {
                    "partition": {"kafka_topic": c.topic, "kafka_partition": c.partition},
                    "offset": {"kafka_offset": c.offset},
                }
                for c in committed
            ]
        return {"offsets": offsets}

    def _stopped_kind(self, name: str) -> str:
        with self.catalog.read() as session:
            row = self._get(session, name)
            if row.target_state != "STOPPED":
                raise ConnectorNotStoppedError(
                    f"connector {name} is {row.target_state}: offsets change only while it is STOPPED "
                    "(PUT /v1/connectors/{name}/stop)",
                    connector=name,
                )
            return row.kind

    def _alter_source(self, name: str, entries: Sequence[Mapping[str, Any]]) -> None:
        now = _now_ms()
        with self.catalog.begin() as session:
            for entry in entries:
                key = _dumps(entry["partition"])
                current = session.get(db.ConnectOffsetRow, (name, key))
                if entry.get("offset") is None:
                    if current is not None:
                        session.delete(current)
                elif current is None:
                    session.add(
                        db.ConnectOffsetRow(
                            connector=name,
                            partition_key=key,
                            offset=_dumps(entry["offset"]),
                            updated_at_ms=now,
                        )
                    )
                else:
                    current.offset = _dumps(entry["offset"])
                    current.updated_at_ms = now

    async def alter_offsets(
        self,
        name: str,
        entries: Sequence[Mapping[str, Any]],
        alter_group: Callable[[str, list[tuple[str, int, int | None]]], Any],
    ) -> None:
        kind = await self._run(self._stopped_kind, name)
        if kind == "source":
            for entry in entries:
                if not isinstance(entry.get("partition"), dict) or not (
                    entry.get("offset") is None or isinstance(entry.get("offset"), dict)
                ):
                    raise InvalidParameterError(
                        "each entry needs a partition object and an offset object or null"
                    )
            await self._run(self._alter_source, name, entries)
            return
        changes: list[tuple[str, int, int | None]] = []
        for entry in entries:
            partition, offset = entry.get("partition") or {}, entry.get("offset")
            topic, number = partition.get("kafka_topic"), partition.get("kafka_partition")
            value = None if offset is None else offset.get("kafka_offset")
            if (
                not isinstance(topic, str)
                or not isinstance(number, int)
                or not (value is None or (isinstance(value, int) and value >= 0))
            ):
                raise InvalidParameterError(
                    "a sink offset is {partition: {kafka_topic, kafka_partition},"
                    " offset: {kafka_offset} or null}"
                )
            changes.append((topic, number, value))
        await alter_group(sink_group(name), changes)

    def _reset_source(self, name: str) -> None:
        with self.catalog.begin() as session:
            db.delete_offsets(session, connector=name)

    async def reset_offsets(self, name: str, delete_group: Callable[[str], Any]) -> None:
        kind = await self._run(self._stopped_kind, name)
        if kind == "source":
            await self._run(self._reset_source, name)
        else:
            await delete_group(sink_group(name))

    def _topics(self, name: str) -> list[str]:
        with self.catalog.read() as session:
            self._get(session, name)
            return db.list_topics(session, connector=name)

    async def topics(self, name: str) -> dict[str, dict[str, list[str]]]:
        return {name: {"topics": await self._run(self._topics, name)}}

    def _reset_topics(self, name: str) -> None:
        with self.catalog.begin() as session:
            self._get(session, name)
            session.execute(delete(db.ConnectTopicRow).where(db.ConnectTopicRow.connector == name))

    async def reset_topics(self, name: str) -> None:
        await self._run(self._reset_topics, name)

    # ------------------------------------------------------------------ workers

    def _heartbeat(
        self, worker_id: str, running: Sequence[tuple[str, int]], session_timeout_ms: int
    ) -> list[TaskAssignment]:
        now = _now_ms()
        with self.catalog.begin() as session:
            db.lock_assignment(session)
            worker = session.get(db.ConnectWorkerRow, worker_id)
            running_keys = sorted({(c, int(t)) for c, t in running})
            if worker is None:
                worker = db.ConnectWorkerRow(
                    worker_id=worker_id, last_seen_ms=now, session_timeout_ms=session_timeout_ms, running="[]"
                )
                session.add(worker)
            worker.last_seen_ms = now
            worker.session_timeout_ms = session_timeout_ms
            worker.running = _dumps(running_keys)
            session.flush()
            live = self._live(session, now)
            live_running = {
                w.worker_id: {(c, int(t)) for c, t in json.loads(w.running)} for w in live.values()
            }
            connectors = {row.name: row for row in db.list_connectors(session)}
            tasks = db.list_tasks(session)
            slots = [
                TaskSlot(
                    (t.connector, t.task_id),
                    t.worker_id,
                    connectors[t.connector].target_state != "STOPPED" and not connectors[t.connector].trace,
                )
                for t in tasks
            ]
            changes = assign(slots, live_running)
            by_key = {(t.connector, t.task_id): t for t in tasks}
            for key, new_worker in changes.items():
                task = by_key[key]
                task.worker_id = new_worker
                task.updated_at_ms = now
                if new_worker is not None:
                    task.generation += 1
                    if task.state != "FAILED":
                        task.state = "UNASSIGNED"
            # A worker runs what it was just given from now on: no one else may take it meanwhile.
            workers_by_id = {w.worker_id: w for w in live.values()}
            for key, new_worker in changes.items():
                if new_worker is not None and new_worker in workers_by_id:
                    holder = workers_by_id[new_worker]
                    keys = {(c, int(t)) for c, t in json.loads(holder.running)} | {key}
                    holder.running = _dumps(sorted(keys))
            for gone in [w for w in db.list_workers(session) if w.worker_id not in live]:
                if gone.last_seen_ms + gone.session_timeout_ms * 10 < now:
                    session.delete(gone)  # long dead: forget it
            return [
                TaskAssignment(
                    t.connector,
                    t.task_id,
                    t.generation,
                    t.restart_epoch,
                    connectors[t.connector].target_state,
                    json.loads(connectors[t.connector].config),
                    json.loads(t.config),
                )
                for t in tasks
                if t.worker_id == worker_id
            ]

    async def heartbeat(
        self, worker_id: str, running: Sequence[tuple[str, int]], session_timeout_ms: int | None = None
    ) -> list[TaskAssignment]:
        """Renews the worker's lease, runs the assignment, gives the tasks the worker must run."""
        timeout = session_timeout_ms or self.worker_session_timeout_ms
        return await self._run(self._heartbeat, worker_id, running, timeout)

    def _leave(self, worker_id: str) -> None:
        with self.catalog.begin() as session:
            db.lock_assignment(session)
            worker = session.get(db.ConnectWorkerRow, worker_id)
            if worker is not None:
                session.delete(worker)
            for task in db.list_tasks(session):
                if task.worker_id == worker_id:
                    task.worker_id = None

    async def leave(self, worker_id: str) -> None:
        """A worker shutting down cleanly: its tasks are free at once (no lease to wait out)."""
        await self._run(self._leave, worker_id)

    def _current_task(
        self, session: Session, name: str, task_id: int, worker_id: str, generation: int
    ) -> db.ConnectTaskRow:
        task = session.get(db.ConnectTaskRow, (name, task_id), with_for_update=True)
        # A task revoked from this worker (worker_id cleared, generation unchanged until the next
        # assignment) may still store its last offsets while it stops: a clean handover re-reads nothing.
        if task is None or task.generation != generation or task.worker_id not in (None, worker_id):
            raise StaleTaskGenerationError(
                f"task {name}/{task_id} generation {generation} on {worker_id} is not the current assignment",
                connector=name,
                task=task_id,
            )
        return task

    def _report(
        self, name: str, task_id: int, worker_id: str, generation: int, state: str, trace: str | None
    ) -> None:
        with self.catalog.begin() as session:
            task = self._current_task(session, name, task_id, worker_id, generation)
            task.state = state
            task.trace = trace if state == "FAILED" else None
            task.updated_at_ms = _now_ms()

    async def report_status(
        self, name: str, task_id: int, *, worker_id: str, generation: int, state: str, trace: str | None
    ) -> None:
        if state not in TASK_STATES:
            raise InvalidParameterError(f"state must be one of {', '.join(TASK_STATES)}")
        await self._run(self._report, name, task_id, worker_id, generation, state, trace)

    def _commit(
        self,
        name: str,
        task_id: int,
        worker_id: str,
        generation: int,
        offsets: Sequence[Mapping[str, Any]],
        topics: Sequence[str],
    ) -> None:
        now = _now_ms()
        with self.catalog.begin() as session:
            self._current_task(session, name, task_id, worker_id, generation)
            for entry in offsets:
                key = _dumps(entry["partition"])
                current = session.get(db.ConnectOffsetRow, (name, key))
                if current is None:
                    session.add(
                        db.ConnectOffsetRow(
                            connector=name,
                            partition_key=key,
                            offset=_dumps(entry["offset"]),
                            updated_at_ms=now,
                        )
                    )
                else:
                    current.offset = _dumps(entry["offset"])
                    current.updated_at_ms = now
            known = set(db.list_topics(session, connector=name))
            for topic in sorted(set(topics) - known):
                session.add(db.ConnectTopicRow(connector=name, topic=topic))

    async def commit_task(
        self,
        name: str,
        task_id: int,
        *,
        worker_id: str,
        generation: int,
        offsets: Sequence[Mapping[str, Any]],
        topics: Sequence[str],
    ) -> None:
        """Stores a task's source offsets and active topics, if its assignment is still current."""
        await self._run(self._commit, name, task_id, worker_id, generation, offsets, topics)


def format_trace(error: BaseException) -> str:
    """The trace text of ``error`` (status shows it as Kafka shows a Java stack trace)."""
    return "".join(traceback.format_exception(error))
