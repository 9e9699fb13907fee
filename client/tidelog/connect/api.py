"""The plugin API of ``tidelog connect``: what a connector package implements.

Modelled on Kafka Connect's ``Connector`` / ``SourceTask`` / ``SinkTask`` and the errant-record
reporter of KIP-610, in Python. Every method may be plain or ``async def``: the worker awaits a
coroutine function and runs a plain one in a thread, so a blocking driver never stalls the worker.

A third party ships a connector as a package with an entry point in the group ``tidelog.connectors``
whose name is the connector's type (``file-source``) and whose object is the :class:`Connector`
subclass.

Failures a task raises or reports are classified (see :func:`classify`)::

    ConnectError
    ├── RetriableError   an outage (connection refused/reset, timeout, HTTP 401/403/404/407/408/429,
    │                    5xx, serialization failure, deadlock): retried within errors.retry.timeout,
    │                    then the task FAILS; never sent to the dead-letter topic
    └── DataError        the record itself is bad (conversion, constraint violation, HTTP 400/413/422):
                         goes to the tolerance decision (fail, skip, or dead-letter)

Any other exception counts as a :class:`DataError` when it is raised while converting or transforming
one record, and as fatal (the task FAILS at once) anywhere else.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

__all__ = [
    "ConfigDef",
    "ConfigKey",
    "ConfigType",
    "ConnectError",
    "Connector",
    "DataError",
    "RetriableError",
    "SinkRecord",
    "SinkTask",
    "SinkTaskContext",
    "SourceRecord",
    "SourceTask",
    "SourceTaskContext",
    "classify",
]

#: JSON-serialisable mappings: a source partition (``{"filename": "/var/log/a"}``) and its offset
#: (``{"position": 4096}``), stored by the runtime in the catalog, per connector.
SourcePartition = Mapping[str, Any]
SourceOffset = Mapping[str, Any]


class ConnectError(Exception):
    """Base of the errors a connector raises on purpose."""


class RetriableError(ConnectError):
    """An outage of the external system: retried, then the task fails; never dead-lettered.

    ``retry_after_s`` (an HTTP ``Retry-After``) makes the next attempt wait at least that long."""

    def __init__(self, message: str = "", *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DataError(ConnectError):
    """The record cannot be handled: subject to ``errors.tolerance`` and the dead-letter topic."""


def classify(exc: BaseException) -> Literal["retriable", "data", "fatal"]:
    """Gives how the runtime treats ``exc``: retry it, apply tolerance to its record, or fail."""
    if isinstance(exc, RetriableError):
        return "retriable"
    if isinstance(exc, DataError):
        return "data"
    return "fatal"


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """A record a source task hands to the runtime, with where it came from in the source."""

    source_partition: SourcePartition
    source_offset: SourceOffset
    topic: str
    value: Any
    key: Any = None
    headers: Mapping[str, str] | None = None
    partition: int | None = None
    timestamp_ms: int | None = None
    #: Set by a task that could not convert this record (a line that is not JSON, …): the runtime
    #: applies ``errors.tolerance`` to it at the conversion stage, dead-lettering ``value`` as read,
    #: and its offset still counts as handled when the error is tolerated.
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class SinkRecord:
    """A record a sink task receives: fetched from ``topic``/``partition`` at ``offset``."""

    topic: str
    partition: int
    offset: int
    key: Any
    value: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    timestamp_ms: int | None = None


class ConfigType(enum.Enum):
    """Kafka's ``ConfigDef.Type``; PASSWORD values show as ``[hidden]`` everywhere they are shown."""

    STRING = "STRING"
    INT = "INT"
    LONG = "LONG"
    DOUBLE = "DOUBLE"
    BOOLEAN = "BOOLEAN"
    LIST = "LIST"
    PASSWORD = "PASSWORD"


@dataclass(frozen=True, slots=True)
class ConfigKey:
    """One setting of a connector: Kafka's ``ConfigDef.ConfigKey``."""

    name: str
    type: ConfigType
    documentation: str
    default: Any = None
    required: bool = False
    importance: Literal["HIGH", "MEDIUM", "LOW"] = "MEDIUM"
    #: Raises ``ValueError`` with a readable message when the parsed value is not allowed.
    validator: Callable[[Any], None] | None = None
    #: Closed set of allowed values (shown by ``/connector-plugins/{type}/config``), if any.
    choices: Sequence[str] | None = None


@dataclass(frozen=True, slots=True)
class ConfigDef:
    """The settings of a connector; the worker parses and validates configs with it."""

    keys: Sequence[ConfigKey] = ()

    def key(self, name: str) -> ConfigKey | None:
        """Gives the key called ``name``, if declared."""
        return next((k for k in self.keys if k.name == name), None)


class SourceTaskContext(ABC):
    """What the runtime offers a running source task."""

    @abstractmethod
    def offset(self, partition: SourcePartition) -> SourceOffset | None:
        """Gives the last stored offset of ``partition`` (the contiguous acknowledged prefix)."""


class SinkTaskContext(ABC):
    """What the runtime offers a running sink task."""

    @abstractmethod
    def assignment(self) -> Sequence[tuple[str, int]]:
        """Gives the (topic, partition) pairs this task currently consumes."""


class SourceTask(ABC):
    """Reads from an external system; the runtime produces what :meth:`poll` returns."""

    @abstractmethod
    def start(self, config: Mapping[str, Any], context: SourceTaskContext) -> Awaitable[None] | None:
        """Opens the task with its parsed config; reads stored offsets through ``context``."""

    @abstractmethod
    def poll(self) -> Sequence[SourceRecord] | Awaitable[Sequence[SourceRecord]]:
        """Gives the next records, waiting at most about a second; ``[]`` when there are none."""

    def commit(self, offsets: Mapping[Any, SourceOffset]) -> Awaitable[None] | None:  # noqa: B027
        """Called after ``offsets`` (source partition → offset) were stored: acknowledge upstream."""

    @abstractmethod
    def stop(self) -> Awaitable[None] | None:
        """Closes the task; called once, also after a failure."""


class SinkTask(ABC):
    """Writes to an external system the records the runtime fetched for it."""

    @abstractmethod
    def start(self, config: Mapping[str, Any], context: SinkTaskContext) -> Awaitable[None] | None:
        """Opens the task with its parsed config."""

    @abstractmethod
    def put(
        self, records: Sequence[SinkRecord]
    ) -> Sequence[BaseException | None] | Awaitable[Sequence[BaseException | None] | None] | None:
        """Delivers ``records``; gives per-record outcomes aligned with them (``None`` for success),
        or ``None`` when all succeeded. Raising fails the whole batch: the runtime retries a
        :class:`RetriableError`, and bisects a batch that raised a :class:`DataError` to find the
        poison record before applying tolerance to it alone."""

    def flush(self, offsets: Mapping[tuple[str, int], int]) -> Awaitable[None] | None:  # noqa: B027
        """Makes everything put so far durable; ``offsets`` (next offset per partition) follow."""

    @abstractmethod
    def stop(self) -> Awaitable[None] | None:
        """Closes the task; called once, also after a failure."""


class Connector(ABC):
    """A connector type: validates its config and splits the work into task configs."""

    #: The type name used in configs (``connector.class``) and in the entry point.
    type_name: ClassVar[str]
    kind: ClassVar[Literal["source", "sink"]]
    version: ClassVar[str] = "0.1.0"

    @classmethod
    @abstractmethod
    def config_def(cls) -> ConfigDef:
        """Gives the settings this connector declares (beyond the runtime's common ones)."""

    @classmethod
    @abstractmethod
    def task_class(cls) -> type[SourceTask] | type[SinkTask]:
        """Gives the task type the runtime instantiates for each task config."""

    @abstractmethod
    def start(self, config: Mapping[str, Any]) -> None:
        """Takes the connector's parsed config."""

    @abstractmethod
    def task_configs(self, max_tasks: int) -> list[dict[str, Any]]:
        """Gives at most ``max_tasks`` task configs (each a config for one task)."""

    def stop(self) -> None:  # noqa: B027
        """Releases what :meth:`start` took."""
