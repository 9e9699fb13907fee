"""``file-source`` and ``file-sink``: Kafka's FileStream connectors, plus NDJSON.

``file-source`` reads a file line by line (following it as it grows) and produces one record per
line to ``topic``: the source partition is ``{"filename": <path>}`` and the offset
``{"position": <byte offset after the line>}``, exactly FileStreamSourceTask's, so a restarted task
resumes after the last line whose record was acknowledged. A partial last line (no newline yet) is
left for the next poll. With ``format=ndjson`` each line is parsed as JSON; a line that is not JSON is
a data error of the conversion stage (``errors.tolerance`` decides: fail, skip, or dead-letter the
line as read).

``file-sink`` appends one line per record to ``file``: the value as text (``format=text``, Kafka's
``String.valueOf``) or as JSON (``ndjson``); ``flush`` fsyncs, so the sink's committed offsets never
pass what is on disk.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, ClassVar, Literal

from tidelog.connect.api import (
    ConfigDef,
    ConfigKey,
    ConfigType,
    Connector,
    DataError,
    SinkRecord,
    SinkTask,
    SinkTaskContext,
    SourceRecord,
    SourceTask,
    SourceTaskContext,
)

__all__ = ["FileSinkConnector", "FileSinkTask", "FileSourceConnector", "FileSourceTask"]

_FORMAT = ConfigKey(
    "format",
    ConfigType.STRING,
    "text: one string per line; ndjson: one JSON value per line.",
    default="text",
    choices=("text", "ndjson"),
)


class FileSourceTask(SourceTask):
    def __init__(self) -> None:
        self._stream: IO[bytes] | None = None
        self._path = ""
        self._topic = ""
        self._batch_size = 2000
        self._ndjson = False
        self._position = 0

    def start(self, config: Mapping[str, Any], context: SourceTaskContext) -> None:
        self._path = str(config["file"])
        self._topic = str(config["topic"])
        self._batch_size = int(config.get("batch.size", 2000))
        self._ndjson = config.get("format", "text") == "ndjson"
        stored = context.offset({"filename": self._path})
        self._position = int(stored["position"]) if stored and "position" in stored else 0

    def _open(self) -> IO[bytes] | None:
        if self._stream is None:
            try:
                self._stream = open(self._path, "rb")  # noqa: SIM115 - kept open across polls
            except FileNotFoundError:
                return None
            self._stream.seek(self._position)
        return self._stream

    def poll(self) -> Sequence[SourceRecord]:
        stream = self._open()
        if stream is None:
            time.sleep(0.2)
            return []
        records: list[SourceRecord] = []
        while len(records) < self._batch_size:
            line = stream.readline()
            if not line or not line.endswith(b"\n"):
                stream.seek(self._position)  # a partial line: read it again once it is complete
                break
            self._position += len(line)
            text = line.rstrip(b"\r\n").decode("utf-8", errors="replace")
            value: Any = text
            error: BaseException | None = None
            if self._ndjson:
                try:
                    value = json.loads(text)
                except ValueError as exc:
                    error = DataError(f"line ending at byte {self._position} is not JSON: {exc}")
            records.append(
                SourceRecord(
                    {"filename": self._path}, {"position": self._position}, self._topic, value, error=error
                )
            )
        if not records:
            time.sleep(0.1)
        return records

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


class FileSourceConnector(Connector):
    type_name: ClassVar[str] = "file-source"
    kind: ClassVar[Literal["source", "sink"]] = "source"

    def __init__(self) -> None:
        self._config: dict[str, Any] = {}

    @classmethod
    def config_def(cls) -> ConfigDef:
        return ConfigDef(
            (
                ConfigKey(
                    "file",
                    ConfigType.STRING,
                    "The file to read (followed as it grows).",
                    required=True,
                    importance="HIGH",
                ),
                ConfigKey(
                    "topic", ConfigType.STRING, "The topic to produce to.", required=True, importance="HIGH"
                ),
                ConfigKey("batch.size", ConfigType.INT, "Most lines returned by one poll.", default=2000),
                _FORMAT,
            )
        )

    @classmethod
    def task_class(cls) -> type[SourceTask]:
        return FileSourceTask

    def start(self, config: Mapping[str, Any]) -> None:
        self._config = dict(config)

    def task_configs(self, max_tasks: int) -> list[dict[str, Any]]:
        return [dict(self._config)]  # one file, one reader: FileStreamSourceConnector has one task


class FileSinkTask(SinkTask):
    def __init__(self) -> None:
        self._stream: IO[str] | None = None
        self._ndjson = False

    def start(self, config: Mapping[str, Any], context: SinkTaskContext) -> None:
        path = Path(str(config["file"]))
        path.parent.mkdir(parents=True, exist_ok=True)
        self._stream = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the task's life
        self._ndjson = config.get("format", "text") == "ndjson"

    def put(self, records: Sequence[SinkRecord]) -> None:
        assert self._stream is not None
        for record in records:
            if self._ndjson:
                line = json.dumps(record.value, separators=(",", ":"), ensure_ascii=False)
            else:
                line = (
                    "null"
                    if record.value is None
                    else (record.value if isinstance(record.value, str) else json.dumps(record.value))
                )
            self._stream.write(line + "\n")

    def flush(self, offsets: Mapping[tuple[str, int], int]) -> None:
        if self._stream is not None:
            self._stream.flush()
            os.fsync(self._stream.fileno())

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


class FileSinkConnector(Connector):
    type_name: ClassVar[str] = "file-sink"
    kind: ClassVar[Literal["source", "sink"]] = "sink"

    def __init__(self) -> None:
        self._config: dict[str, Any] = {}

    @classmethod
    def config_def(cls) -> ConfigDef:
        return ConfigDef(
            (
                ConfigKey(
                    "file", ConfigType.STRING, "The file to append to.", required=True, importance="HIGH"
                ),
                _FORMAT,
            )
        )

    @classmethod
    def task_class(cls) -> type[SinkTask]:
        return FileSinkTask

    def start(self, config: Mapping[str, Any]) -> None:
        self._config = dict(config)

    def task_configs(self, max_tasks: int) -> list[dict[str, Any]]:
        return [dict(self._config)]  # one output file: more tasks would interleave its lines
