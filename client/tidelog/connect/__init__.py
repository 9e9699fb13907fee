"""``tidelog connect``: a Kafka Connect for tidelog, over the public HTTP API only.

:mod:`tidelog.connect.api` is the plugin API; the worker runtime and the built-in connectors live
beside it.
"""

from tidelog.connect.api import (
    ConfigDef,
    ConfigKey,
    ConfigType,
    ConnectError,
    Connector,
    DataError,
    RetriableError,
    SinkRecord,
    SinkTask,
    SinkTaskContext,
    SourceRecord,
    SourceTask,
    SourceTaskContext,
    classify,
)

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
