"""``verifiable-source`` and ``verifiable-sink``: Kafka's VerifiableSource/SinkTask, for system tests.

Each source task emits ``{"task": <id>, "seqno": <n>}`` with n = 0, 1, 2, … at ``throughput`` records
per second; its source partition is ``{"task": <id>}`` and its offset ``{"seqno": n}``, so a
restarted task continues after the last stored sequence number. The sink appends every record it
receives, with its topic, partition and offset, as one JSON line to ``<file>.<task id>`` (fsynced on
flush), so a
test can check that no sequence number is missing and count duplicates.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import IO, Any, ClassVar, Literal

from tidelog.connect.api import (
    ConfigDef,
    ConfigKey,
    ConfigType,
    Connector,
    SinkRecord,
    SinkTask,
    SinkTaskContext,
    SourceRecord,
    SourceTask,
    SourceTaskContext,
)

__all__ = ["VerifiableSinkConnector", "VerifiableSourceConnector"]


class VerifiableSourceTask(SourceTask):
    def __init__(self) -> None:
        self._task = 0
        self._topic = ""
        self._next = 0
        self._interval = 0.01
        self._last = 0.0

    def start(self, config: Mapping[str, Any], context: SourceTaskContext) -> None:
        self._task = int(config["task.id"])
        self._topic = str(config["topic"])
        self._interval = 1.0 / max(1, int(config.get("throughput", 100)))
        stored = context.offset({"task": self._task})
        self._next = int(stored["seqno"]) + 1 if stored else 0

    def poll(self) -> Sequence[SourceRecord]:
        now = time.monotonic()
        due = max(1, min(100, int((now - self._last) / self._interval))) if self._last else 1
        wait = self._last + self._interval - now
        if wait > 0:
            time.sleep(min(wait, 1.0))
        self._last = time.monotonic()
        records = []
        for _ in range(due):
            seqno = self._next
            self._next += 1
            records.append(
                SourceRecord(
                    {"task": self._task},
                    {"seqno": seqno},
                    self._topic,
                    {"task": self._task, "seqno": seqno},
                    key=str(self._task),
                )
            )
        return records

    def stop(self) -> None:
        pass


class VerifiableSourceConnector(Connector):
    type_name: ClassVar[str] = "verifiable-source"
    kind: ClassVar[Literal["source", "sink"]] = "source"

    def __init__(self) -> None:
        self._config: dict[str, Any] = {}

    @classmethod
    def config_def(cls) -> ConfigDef:
        return ConfigDef(
            (
                ConfigKey("topic", ConfigType.STRING, "The topic to produce to.", required=True),
                ConfigKey("throughput", ConfigType.INT, "Records per second per task.", default=100),
            )
        )

    @classmethod
    def task_class(cls) -> type[SourceTask]:
        return VerifiableSourceTask

    def start(self, config: Mapping[str, Any]) -> None:
        self._config = dict(config)

    def task_configs(self, max_tasks: int) -> list[dict[str, Any]]:
        return [{**self._config, "task.id": str(i)} for i in range(max_tasks)]


class VerifiableSinkTask(SinkTask):
    def __init__(self) -> None:
        self._stream: IO[str] | None = None

    def start(self, config: Mapping[str, Any], context: SinkTaskContext) -> None:
        # one file per task: <file>.<task id>, appended to by whichever worker runs the task
        path = f"{config['file']}.{config.get('task.id', 0)}"
        self._stream = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the task's life

    def put(self, records: Sequence[SinkRecord]) -> None:
        assert self._stream is not None
        for r in records:
            line = {"topic": r.topic, "partition": r.partition, "offset": r.offset, "value": r.value}
            self._stream.write(json.dumps(line) + "\n")

    def flush(self, offsets: Mapping[tuple[str, int], int]) -> None:
        if self._stream is not None:
            self._stream.flush()
            os.fsync(self._stream.fileno())

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


class VerifiableSinkConnector(Connector):
    type_name: ClassVar[str] = "verifiable-sink"
    kind: ClassVar[Literal["source", "sink"]] = "sink"

    def __init__(self) -> None:
        self._config: dict[str, Any] = {}

    @classmethod
    def config_def(cls) -> ConfigDef:
        return ConfigDef(
            (ConfigKey("file", ConfigType.STRING, "JSON lines of what was received.", required=True),)
        )

    @classmethod
    def task_class(cls) -> type[SinkTask]:
        return VerifiableSinkTask

    def start(self, config: Mapping[str, Any]) -> None:
        self._config = dict(config)

    def task_configs(self, max_tasks: int) -> list[dict[str, Any]]:
        return [{**self._config, "task.id": str(i)} for i in range(max_tasks)]
